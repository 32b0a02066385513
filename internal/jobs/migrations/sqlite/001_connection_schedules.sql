CREATE TABLE IF NOT EXISTS connection_schedules (
    connection_id TEXT PRIMARY KEY,
    schedule      TEXT NOT NULL,
    next_due      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS connection_schedules_next_due ON connection_schedules (next_due);
