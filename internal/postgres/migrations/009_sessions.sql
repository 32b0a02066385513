-- Sign-in sessions of the web UI, in the app database so that every node
-- behind one load balancer knows them and a restart signs nobody out.
-- A session is named by the SHA-256 of its cookie (hex), and expires_at is in Unix
-- milliseconds.
CREATE TABLE web_sessions (
    id_hash    TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
)
