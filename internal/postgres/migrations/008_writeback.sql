-- Write-back (issue 10), part two. load_actions journals the actions a
-- load runs on its records after its rows (--then add-to-sequence,
-- assign-owner, add-tags): each record's intent (pending) before its
-- request and its outcome (done, already, failed) after, so that a load
-- stopped while acting and run again does not act twice.
CREATE TABLE load_actions (
    load_id    TEXT NOT NULL REFERENCES loads (id) ON DELETE CASCADE,
    action     TEXT NOT NULL,
    record_id  BIGINT NOT NULL,
    status     TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (load_id, action, record_id)
);

-- A destination connection's load: type, mode, match, mapping and
-- actions (JSON, connection.LoadSpec), empty for source connections. Its
-- rows come from the connection's destination_url (a SQL query).
ALTER TABLE connections ADD COLUMN load_spec TEXT NOT NULL DEFAULT '';

-- The rows a destination connection's run rejected: the source line, the
-- column at fault, the reason (Outreach's error id and JSON pointer when
-- Outreach refused), and the row's values (JSON).
CREATE TABLE connection_rejects (
    run_id        TEXT NOT NULL REFERENCES connection_runs (id) ON DELETE CASCADE,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    line          BIGINT NOT NULL,
    column_name   TEXT NOT NULL DEFAULT '',
    reason        TEXT NOT NULL,
    error_id      TEXT NOT NULL DEFAULT '',
    pointer       TEXT NOT NULL DEFAULT '',
    row_values    TEXT NOT NULL,
    PRIMARY KEY (run_id, line)
);
CREATE INDEX connection_rejects_by_connection ON connection_rejects (connection_id, run_id);
