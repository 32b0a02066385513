-- Live connections (issue 11): a connection whose changes Outreach pushes
-- as webhooks. webhook_subscriptions holds the webhooks made at Outreach
-- for it, one per resource type. secret is the signing secret sealed with
-- the credential keyring (never stored or logged in clear). Times are
-- Unix milliseconds, 0 for none.
ALTER TABLE connections ADD COLUMN live BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE webhook_subscriptions (
    connection_id    TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    webhook_id       BIGINT NOT NULL,
    resource         TEXT NOT NULL,
    url              TEXT NOT NULL,
    secret           BYTEA NOT NULL,
    created_at       BIGINT NOT NULL,
    last_delivery_at BIGINT NOT NULL DEFAULT 0,
    disabled_reason  TEXT NOT NULL DEFAULT '',
    disabled_since   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (connection_id, webhook_id)
);
