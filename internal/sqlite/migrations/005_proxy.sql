-- The authenticating proxy (issue 11). api_keys are the keys callers of
-- /proxy/ present: hash is the hex SHA-256 of the key (the key itself is
-- shown once and never stored), credentials the comma-separated ids of the
-- credentials the key may use. proxy_idempotency keeps, for 24 hours, the
-- answer to a write sent with an Idempotency-Key: owner is the key's id
-- (or "session"), fingerprint a hash of the method, path and body. state is
-- pending while the request runs, done once status, header (JSON) and body
-- hold its answer. Times are Unix milliseconds, 0 meaning never.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    hash        TEXT NOT NULL UNIQUE,
    credentials TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    last_used   INTEGER NOT NULL DEFAULT 0,
    revoked_at  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE proxy_idempotency (
    owner       TEXT NOT NULL,
    idem_key    TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state       TEXT NOT NULL,
    status      INTEGER NOT NULL DEFAULT 0,
    header      TEXT NOT NULL DEFAULT '',
    body        BLOB,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (owner, idem_key)
);
CREATE INDEX proxy_idempotency_expiry ON proxy_idempotency (expires_at);
