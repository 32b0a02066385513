-- Write-back loads (issue 10) and their journal. A load is identified by
-- load_id (derived from type, source, mode and match, or --load-id), and a
-- rerun of an unfinished load resumes it. load_rows holds each source row
-- once, by its match key: its intent (pending, with the action) is written
-- before the request and its outcome (created, updated, unchanged,
-- rejected, with the Outreach id) after. holder is the process running the
-- load (host/pid/nonce) and heartbeat_at when it last wrote, so that a
-- second process does not run the same load at once. Times are Unix
-- milliseconds.
CREATE TABLE loads (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    mode        TEXT NOT NULL,
    match_attrs TEXT NOT NULL,
    source      TEXT NOT NULL,
    status      TEXT NOT NULL,
    runs        INTEGER NOT NULL DEFAULT 1,
    summary     TEXT NOT NULL DEFAULT '',
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL DEFAULT 0,
    holder       TEXT NOT NULL DEFAULT '',
    heartbeat_at INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE load_rows (
    load_id     TEXT NOT NULL REFERENCES loads (id) ON DELETE CASCADE,
    row_key     TEXT NOT NULL,
    line        INTEGER NOT NULL,
    action      TEXT NOT NULL,
    status      TEXT NOT NULL,
    outreach_id INTEGER NOT NULL DEFAULT 0,
    detail      TEXT NOT NULL DEFAULT '',
    attempts    INTEGER NOT NULL DEFAULT 0,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (load_id, row_key)
);
CREATE INDEX load_rows_by_status ON load_rows (load_id, status);
