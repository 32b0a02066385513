-- Connections and their run history (issue 9). Times are Unix
-- milliseconds, 0 for none. namespace_key is the namespace with the
-- normalised destination URL (sqlstore.NamespaceKey): its unique index
-- refuses two connections writing into one namespace of one destination.
CREATE TABLE connections (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    credential_id   TEXT NOT NULL REFERENCES credentials (id),
    direction       TEXT NOT NULL,
    destination_url TEXT NOT NULL,
    namespace       TEXT NOT NULL,
    namespace_key   TEXT NOT NULL,
    streams         TEXT NOT NULL,
    schedule        TEXT NOT NULL,
    start_date      INTEGER NOT NULL DEFAULT 0,
    page_size       INTEGER NOT NULL DEFAULT 0,
    quota_share     REAL NOT NULL,
    paused          BOOLEAN NOT NULL DEFAULT FALSE,
    notify_url      TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX connections_name_unique ON connections (name);
CREATE UNIQUE INDEX connections_namespace_key_unique ON connections (namespace_key);
CREATE INDEX connections_by_credential ON connections (credential_id);

-- streams and log are JSON: per-stream statistics, and the last log lines.
CREATE TABLE connection_runs (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    run_trigger   TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    started_at    INTEGER NOT NULL,
    ended_at      INTEGER NOT NULL DEFAULT 0,
    outcome       TEXT NOT NULL DEFAULT '',
    error_message TEXT NOT NULL DEFAULT '',
    streams       TEXT NOT NULL,
    log           TEXT NOT NULL
);
CREATE INDEX connection_runs_by_connection ON connection_runs (connection_id, started_at, seq);
