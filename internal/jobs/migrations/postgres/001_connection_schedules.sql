CREATE TABLE IF NOT EXISTS /*schema*/connection_schedules (
    connection_id TEXT PRIMARY KEY,
    schedule      TEXT NOT NULL,
    next_due      BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS connection_schedules_next_due ON /*schema*/connection_schedules (next_due);
