CREATE TABLE credentials (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    description         TEXT NOT NULL DEFAULT '',
    client_id           TEXT NOT NULL,
    client_secret       BYTEA NOT NULL,
    scopes              TEXT NOT NULL,
    environment         TEXT NOT NULL,
    api_base_url        TEXT NOT NULL,
    redirect_uri        TEXT NOT NULL,
    status              TEXT NOT NULL,
    outreach_user_id    TEXT NOT NULL DEFAULT '',
    outreach_user_email TEXT NOT NULL DEFAULT '',
    outreach_org        TEXT NOT NULL DEFAULT '',
    tokens              BYTEA,
    token_expires_at    BIGINT NOT NULL DEFAULT 0,
    last_refresh_at     BIGINT NOT NULL DEFAULT 0,
    last_error          TEXT NOT NULL DEFAULT '',
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

CREATE TABLE credential_leases (
    credential_id TEXT PRIMARY KEY REFERENCES credentials (id) ON DELETE CASCADE,
    owner         TEXT NOT NULL,
    expires_at    BIGINT NOT NULL
);

CREATE TABLE oauth_states (
    hash          TEXT PRIMARY KEY,
    credential_id TEXT NOT NULL REFERENCES credentials (id) ON DELETE CASCADE,
    browser       TEXT NOT NULL,
    verifier      BYTEA NOT NULL,
    expires_at    BIGINT NOT NULL
);

CREATE TABLE credential_events (
    id            BIGSERIAL PRIMARY KEY,
    credential_id TEXT NOT NULL REFERENCES credentials (id) ON DELETE CASCADE,
    at            BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    message       TEXT NOT NULL
);
CREATE INDEX credential_events_by_credential ON credential_events (credential_id, id);
