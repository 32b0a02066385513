// Package ratebudget shares Outreach users' hourly request budgets among
// processes through the app database (SQLite or PostgreSQL): it implements
// outreach.SharedBudget on the table outreach_rate_budget of the app
// migrations (003). Every node of one database, and every process on one
// SQLite file, counts its requests there before sending them, so together
// they never pass a quota share of a window.
package ratebudget

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// unlimited is a limit that counts requests already sent, whatever the
// window's limit (outreach's noLimit).
const unlimited = 1<<31 - 1

// keep is how long rows of past windows are kept.
const keep = 24 * time.Hour

// Budget is an outreach.SharedBudget on a database. Safe for concurrent
// use.
type Budget struct {
	db  *sql.DB
	now func() time.Time
}

// New returns the budget kept in db, which holds the app migrations. now
// tells the time (nil: time.Now), for leases and clean-up.
func New(db *sql.DB, now func() time.Time) *Budget {
	if now == nil {
		now = time.Now
	}
	return &Budget{db: db, now: now}
}

// Take implements outreach.SharedBudget: one statement grants up to n of
// what is left of limit in user's window and counts it, atomically (a row
// lock on PostgreSQL, the write lock on SQLite).
func (b *Budget) Take(ctx context.Context, user string, window, now time.Time, n, limit int) (int, time.Time, error) {
	if user == "" || n <= 0 {
		return 0, window, nil
	}
	if window.IsZero() {
		// The newest window of user that has not yet reset, if any.
		var w int64
		err := b.db.QueryRowContext(ctx, `SELECT window_reset FROM outreach_rate_budget WHERE outreach_user = $1 AND window_reset > $2
			ORDER BY window_reset DESC LIMIT 1`, user, now.UnixMilli()).Scan(&w)
		if errors.Is(err, sql.ErrNoRows) {
			return b.claimProbe(ctx, user)
		}
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("ratebudget: %w", err)
		}
		window = time.UnixMilli(w).UTC()
	}
	w := window.UnixMilli()
	res, err := b.db.ExecContext(ctx, `INSERT INTO outreach_rate_budget (outreach_user, window_reset, used, granted) VALUES ($1, $2, 0, 0)
		ON CONFLICT (outreach_user, window_reset) DO NOTHING`, user, w)
	if err != nil {
		return 0, window, fmt.Errorf("ratebudget: %w", err)
	}
	if added, _ := res.RowsAffected(); added > 0 {
		// A new window: forget those of long ago.
		if _, err := b.db.ExecContext(ctx, `DELETE FROM outreach_rate_budget WHERE window_reset < $1 AND window_reset <> 0`, b.now().Add(-keep).UnixMilli()); err != nil {
			return 0, window, fmt.Errorf("ratebudget: %w", err)
		}
	}
	// Every SET expression reads the row as it was before the update. A
	// limit of 0 (the caller does not know it) is the last one given.
	lim := `(CASE WHEN CAST($4 AS BIGINT) > 0 THEN CAST($4 AS BIGINT) ELSE share_limit END)`
	n64 := `CAST($3 AS BIGINT)`
	var granted int64
	err = b.db.QueryRowContext(ctx, `UPDATE outreach_rate_budget SET
		granted = CASE WHEN used + `+n64+` <= `+lim+` THEN `+n64+` WHEN used < `+lim+` THEN `+lim+` - used ELSE 0 END,
		used = CASE WHEN used + `+n64+` <= `+lim+` THEN used + `+n64+` WHEN used < `+lim+` THEN `+lim+` ELSE used END,
		share_limit = CASE WHEN CAST($4 AS BIGINT) > 0 AND CAST($4 AS BIGINT) < CAST($5 AS BIGINT) THEN CAST($4 AS BIGINT) ELSE share_limit END
		WHERE outreach_user = $1 AND window_reset = $2 RETURNING granted`, user, w, int64(n), int64(limit), int64(unlimited)).Scan(&granted)
	if err != nil {
		return 0, window, fmt.Errorf("ratebudget: %w", err)
	}
	return int(granted), window, nil
}

// probeLease is how long one caller has to learn a user's new window
// before another may try.
const probeLease = 5 * time.Second

// claimProbe lets one caller at a time learn user's window: the row of
// window 0 holds, in used, until when the last caller's lease runs.
func (b *Budget) claimProbe(ctx context.Context, user string) (int, time.Time, error) {
	now := b.now()
	res, err := b.db.ExecContext(ctx, `INSERT INTO outreach_rate_budget (outreach_user, window_reset, used, granted) VALUES ($1, 0, $2, 0)
		ON CONFLICT (outreach_user, window_reset) DO UPDATE SET used = excluded.used WHERE outreach_rate_budget.used <= $3`,
		user, now.Add(probeLease).UnixMilli(), now.UnixMilli())
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("ratebudget: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return 1, time.Time{}, nil
	}
	return 0, time.Time{}, nil
}

// Used returns how many requests of user were counted in window (tests,
// metrics).
func (b *Budget) Used(ctx context.Context, user string, window time.Time) (int, error) {
	var used int64
	err := b.db.QueryRowContext(ctx, `SELECT used FROM outreach_rate_budget WHERE outreach_user = $1 AND window_reset = $2`,
		user, window.UnixMilli()).Scan(&used)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return int(used), err
}
