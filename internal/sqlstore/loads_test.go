package sqlstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/load"
	"github.com/outreach-connector/outreach-connector/internal/sqlstore"
)

// TestLoadJournal: a load's rows are recorded once each by key (the last
// record wins), an unfinished load resumes with its rows, and a finished
// one starts over empty; on SQLite and PostgreSQL.
func TestLoadJournal(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db := b.open(t).(interface{ Loads() *sqlstore.Loads })
			j := db.Loads()
			info := load.LoadInfo{ID: "ld_1", Type: "prospect", Mode: load.Upsert, Match: []string{"emails"}, Source: "csv:/x.csv", Holder: "h/1/a"}
			resumed, rows, err := j.Begin(ctx, info)
			if err != nil || resumed || len(rows) != 0 {
				t.Fatalf("first Begin: resumed %v, %d rows, %v; want a new load", resumed, len(rows), err)
			}
			if err := j.Record(ctx, "ld_1", "h/1/a", load.Entry{Key: "a@x.example", Line: 1, Action: load.ActionCreate, Status: load.Pending, Attempts: 1},
				load.Entry{Key: "b@x.example", Line: 2, Action: load.ActionNone, Status: load.Unchanged, OutreachID: 7}); err != nil {
				t.Fatal(err)
			}
			if err := j.Record(ctx, "ld_1", "h/1/a", load.Entry{Key: "a@x.example", Line: 1, Action: load.ActionCreate, Status: load.Created, OutreachID: 9, Attempts: 1}); err != nil {
				t.Fatal(err)
			}
			// Another process may not run the load while its holder is alive
			// and writes; it may once the holder is known to be gone.
			other := info
			other.Holder = "h/2/b"
			var busy *load.BusyError
			if _, _, err := j.Begin(ctx, other); !errors.As(err, &busy) || busy.Holder != "h/1/a" {
				t.Fatalf("Begin by another holder: %v; want a BusyError naming h/1/a", err)
			}
			other.HolderGone = func(h string) bool { return h == "h/1/a" }
			if resumed, _, err := j.Begin(ctx, other); err != nil || !resumed {
				t.Fatalf("Begin by another holder after the first is gone: resumed %v, %v", resumed, err)
			}
			if err := j.Record(ctx, "ld_1", "h/1/a"); !errors.Is(err, load.ErrLeaseLost) {
				t.Fatalf("Record by the old holder: %v; want ErrLeaseLost", err)
			}
			info.HolderGone = func(h string) bool { return h == "h/2/b" }
			resumed, rows, err = j.Begin(ctx, info)
			if err != nil || !resumed || len(rows) != 2 {
				t.Fatalf("second Begin: resumed %v, %d rows, %v; want the load resumed with 2 rows", resumed, len(rows), err)
			}
			if rows[0].Key != "a@x.example" || rows[0].Status != load.Created || rows[0].OutreachID != 9 || rows[1].Status != load.Unchanged {
				t.Fatalf("rows %+v", rows)
			}
			if err := j.Finish(ctx, "ld_1", "h/1/a", `{"rows":2}`); err != nil {
				t.Fatal(err)
			}
			l, _, err := j.Get(ctx, "ld_1")
			if err != nil || l.Status != "finished" || l.Runs != 3 || l.Summary != `{"rows":2}` {
				t.Fatalf("Get: %+v, %v", l, err)
			}
			resumed, rows, err = j.Begin(ctx, info)
			if err != nil || resumed || len(rows) != 0 {
				t.Fatalf("Begin after Finish: resumed %v, %d rows, %v; want a fresh load", resumed, len(rows), err)
			}
		})
	}
}
