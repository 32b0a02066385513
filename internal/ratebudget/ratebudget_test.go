package ratebudget_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/postgres"
	"github.com/outreach-connector/outreach-connector/internal/postgres/pgtest"
	"github.com/outreach-connector/outreach-connector/internal/ratebudget"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
)

// budgets opens the app database on SQLite and on PostgreSQL, twice each
// (two processes' pools on one database).
func budgets(t *testing.T, now func() time.Time) map[string][2]*ratebudget.Budget {
	t.Helper()
	ctx := context.Background()
	out := map[string][2]*ratebudget.Budget{}
	path := filepath.Join(t.TempDir(), "app.db")
	var sq [2]*ratebudget.Budget
	for i := range sq {
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		sq[i] = ratebudget.New(db.DB(), now)
	}
	out["sqlite"] = sq
	dsn := pgtest.DSN(t)
	var pg [2]*ratebudget.Budget
	for i := range pg {
		db, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		pg[i] = ratebudget.New(db.DB(), now)
	}
	out["postgres"] = pg
	return out
}

// Forty takers on two pools ask for 3 at a time from a window of 50: the
// grants add up to exactly 50, the count says 50, and a zero window finds
// the open window while one that has reset is not found.
func TestTakeNeverGrantsMoreThanTheLimit(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	for name, b := range budgets(t, clock) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			window := now.Add(30 * time.Minute)
			var mu sync.Mutex
			total := 0
			var wg sync.WaitGroup
			for i := range 40 {
				wg.Go(func() {
					g, reset, err := b[i%2].Take(ctx, "u1", window, now, 3, 50)
					if err != nil {
						t.Error(err)
						return
					}
					if !reset.Equal(window) || g < 0 || g > 3 {
						t.Errorf("granted %d in %v", g, reset)
					}
					mu.Lock()
					total += g
					mu.Unlock()
				})
			}
			wg.Wait()
			if total != 50 {
				t.Errorf("granted %d in all, want 50", total)
			}
			if used, err := b[0].Used(ctx, "u1", window); err != nil || used != 50 {
				t.Errorf("used %d, %v", used, err)
			}
			// Another user has a budget of its own.
			if g, _, err := b[1].Take(ctx, "u2", window, now, 3, 50); err != nil || g != 3 {
				t.Errorf("u2: granted %d, %v", g, err)
			}
			// Requests already sent are counted whatever the limit.
			if g, _, err := b[1].Take(ctx, "u1", window, now, 2, 1<<31-1); err != nil || g != 2 {
				t.Errorf("counting sent requests: granted %d, %v", g, err)
			}
			// A caller that does not know the window is given the open one.
			g, reset, err := b[1].Take(ctx, "u2", time.Time{}, now, 2, 50)
			if err != nil || g != 2 || !reset.Equal(window) {
				t.Errorf("zero window: granted %d in %v, %v", g, reset, err)
			}
			// When no window is known, one caller at a time may learn it.
			if g, reset, err := b[0].Take(ctx, "u3", time.Time{}, now, 2, 50); err != nil || g != 1 || !reset.IsZero() {
				t.Errorf("no window known: granted %d in %v, %v; want a probe", g, reset, err)
			}
			if g, reset, err := b[1].Take(ctx, "u3", time.Time{}, now, 2, 50); err != nil || g != 0 || !reset.IsZero() {
				t.Errorf("no window known, another is learning it: granted %d in %v, %v", g, reset, err)
			}
			past := now.Add(-time.Minute)
			if _, _, err := b[0].Take(ctx, "u4", past, now, 1, 50); err != nil {
				t.Fatal(err)
			}
			if g, reset, err := b[0].Take(ctx, "u4", time.Time{}, now, 2, 50); err != nil || g != 1 || !reset.IsZero() {
				t.Errorf("a window that has reset: granted %d in %v, %v", g, reset, err)
			}
		})
	}
}
