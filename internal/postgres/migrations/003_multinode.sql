-- Several nodes (issue 9, item 7). A scheduled run records the due time it
-- fulfils (Unix milliseconds, 0 for runs not due by a schedule), so a due
-- time is seen to run once. outreach_rate_budget counts the requests every
-- node made for one Outreach user in one rate-limit window, named by the
-- window's reset on Outreach's clock (Unix milliseconds), so that all nodes
-- together stay within a connection's quota share (internal/ratebudget).
-- granted is the grant of the last update, read back by RETURNING, and share_limit
-- the limit the last taker gave, for a taker that does not know it yet.
ALTER TABLE connection_runs ADD COLUMN due_at BIGINT NOT NULL DEFAULT 0;

CREATE TABLE outreach_rate_budget (
    outreach_user TEXT NOT NULL,
    window_reset  BIGINT NOT NULL,
    used          BIGINT NOT NULL DEFAULT 0,
    granted       BIGINT NOT NULL DEFAULT 0,
    share_limit   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (outreach_user, window_reset)
);
