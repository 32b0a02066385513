package connectiontest

import (
	"context"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

// event builds an event of TestStream setting the named columns (id is
// always set) from rec.
func event(s *connection.Stream, kind connection.EventKind, rec connection.Record, at string, cols ...string) connection.Event {
	set := make([]bool, len(s.Columns))
	set[0] = true
	for _, c := range cols {
		set[colIndex(s, c)] = true
	}
	return connection.Event{Kind: kind, Record: rec, Set: set, At: at}
}

// RunApplier is the suite of connection.Applier: newHarness gives an
// empty destination that implements it.
func RunApplier(t *testing.T, newHarness func(t *testing.T) Harness) {
	ctx := context.Background()
	setup := func(t *testing.T) (Harness, connection.Applier, *connection.Stream) {
		h := newHarness(t)
		a, ok := h.Dest.(connection.Applier)
		if !ok {
			t.Fatalf("%T is not a connection.Applier", h.Dest)
		}
		s := TestStream("widgets")
		must(t, h.Dest.Prepare(ctx, s))
		return h, a, s
	}
	apply := func(t *testing.T, a connection.Applier, s *connection.Stream, ev connection.Event, want connection.Applied) {
		t.Helper()
		got, err := a.Apply(ctx, s, ev)
		if err != nil || got != want {
			t.Fatalf("Apply(%s %d) = %q, %v; want %q", ev.Kind, ev.Record.ID, got, err, want)
		}
	}
	all := []string{"name", "count", "score", "flag", "updatedAt", "tags", "ownerId", "memberIds", connection.ExtrasColumn}

	t.Run("CreatedThenPartialUpdate", func(t *testing.T) {
		h, a, s := setup(t)
		apply(t, a, s, event(s, connection.Created, record(1, "one", 10, true, "2026-01-01T00:00:01.000Z"), "", all...), connection.Written)
		// An update carries only what changed: the rest stays.
		upd := record(1, "renamed", 0, false, "2026-01-01T00:00:05.000Z")
		apply(t, a, s, event(s, connection.Updated, upd, "", "name", "updatedAt"), connection.Written)
		rows := h.Rows(t, s)
		if r := rows[1]; r["name"] != "renamed" || r["count"] != "10" || r["flag"] != "true" || r["ownerId"] != "7" || !sameInstant(r["updatedAt"], "2026-01-01T00:00:05.000Z") {
			t.Errorf("after a partial update: %v", r)
		}
		if st, _ := h.Dest.State(ctx, s.Name); st.Cursor != "" {
			t.Errorf("Apply moved the stream's cursor to %q", st.Cursor)
		}
	})
	t.Run("OlderAndRepeatedChangeNothing", func(t *testing.T) {
		h, a, s := setup(t)
		must(t, h.Dest.Write(ctx, s, []connection.Record{record(1, "synced", 3, true, "2026-01-02T00:00:00.000Z")}, connection.State{Cursor: "2026-01-02T00:00:00.000Z"}))
		old := record(1, "older", 2, false, "2026-01-01T00:00:00.000Z")
		apply(t, a, s, event(s, connection.Updated, old, "", "name", "count", "updatedAt"), connection.Stale)
		apply(t, a, s, event(s, connection.Created, old, "", all...), connection.Stale)
		if r := h.Rows(t, s)[1]; r["name"] != "synced" || r["count"] != "3" {
			t.Errorf("an older event rolled the row back: %v", r)
		}
		same := record(1, "same second", 4, true, "2026-01-02T00:00:00.000Z")
		ev := event(s, connection.Updated, same, "", "name", "updatedAt")
		apply(t, a, s, ev, connection.Written) // not older: applied
		apply(t, a, s, ev, connection.Written) // and again: harmless
		if r := h.Rows(t, s)[1]; r["name"] != "same second" || r["count"] != "3" {
			t.Errorf("an event of the same updatedAt: %v", r)
		}
	})
	t.Run("UpdateOfUnknownRowInserts", func(t *testing.T) {
		h, a, s := setup(t)
		apply(t, a, s, event(s, connection.Updated, record(9, "nine", 0, false, "2026-01-01T00:00:00.000Z"), "", "name", "updatedAt"), connection.Written)
		if r := h.Rows(t, s)[9]; r["name"] != "nine" || r["count"] != "" {
			t.Errorf("row 9: %v", r)
		}
	})
	t.Run("DestroyedMarksDeleted", func(t *testing.T) {
		h, a, s := setup(t)
		must(t, h.Dest.Write(ctx, s, []connection.Record{record(1, "one", 1, true, "2026-01-01T00:00:00.000Z"),
			record(2, "two", 2, true, "2026-01-01T00:00:00.000Z")}, connection.State{Cursor: "x"}))
		at := "2026-01-03T00:00:00.000Z"
		apply(t, a, s, event(s, connection.Destroyed, record(1, "one", 1, true, "2026-01-01T00:00:00.000Z"), at, all...), connection.Written)
		rows := h.Rows(t, s)
		if _, ok := rows[1]; ok || len(rows) != 1 {
			t.Errorf("after destroying 1, rows not deleted: %v", rows)
		}
		// Repeated: already marked. Later updates never bring it back.
		apply(t, a, s, event(s, connection.Destroyed, record(1, "one", 1, true, "2026-01-01T00:00:00.000Z"), at, all...), connection.Stale)
		apply(t, a, s, event(s, connection.Updated, record(1, "zombie", 1, true, "2026-01-09T00:00:00.000Z"), "", "name", "updatedAt"), connection.Stale)
		apply(t, a, s, event(s, connection.Updated, record(1, "zombie", 1, true, ""), "", "name"), connection.Stale)
		if _, ok := h.Rows(t, s)[1]; ok {
			t.Error("a deleted row came back")
		}
		// A record never synced is kept, deleted, with its last values.
		apply(t, a, s, event(s, connection.Destroyed, record(5, "five", 5, true, "2026-01-01T00:00:00.000Z"), at, all...), connection.Written)
		apply(t, a, s, event(s, connection.Destroyed, record(5, "five", 5, true, "2026-01-01T00:00:00.000Z"), at, all...), connection.Stale)
		if _, ok := h.Rows(t, s)[5]; ok {
			t.Error("a destroyed record appeared as live")
		}
		if in, ok := h.Dest.(connection.Inspector); ok {
			infos, err := in.Inspect(ctx)
			must(t, err)
			for _, i := range infos {
				if i.Stream == s.Name && i.Rows != 1 {
					t.Errorf("Inspect rows = %d, want 1 (deleted rows not counted)", i.Rows)
				}
			}
		}
	})
	t.Run("SyncPageOlderThanADeliveryKeepsTheDelivery", func(t *testing.T) {
		// A run read version 1 before a delivery applied version 2; its
		// page, written after, must not roll the row back.
		h, a, s := setup(t)
		apply(t, a, s, event(s, connection.Created, record(1, "v2", 2, true, "2026-01-02T00:00:00.000Z"), "", all...), connection.Written)
		must(t, h.Dest.Write(ctx, s, []connection.Record{record(1, "v1", 1, true, "2026-01-01T00:00:00.000Z"),
			record(2, "other", 1, true, "2026-01-01T00:00:00.000Z")}, connection.State{Cursor: "2026-01-01T00:00:00.000Z"}))
		rows := h.Rows(t, s)
		if rows[1]["name"] != "v2" || rows[2]["name"] != "other" {
			t.Errorf("after an older page: %v", rows)
		}
		if st, _ := h.Dest.State(ctx, s.Name); st.Cursor != "2026-01-01T00:00:00.000Z" {
			t.Errorf("the page's state was not committed: %q", st.Cursor)
		}
	})
	t.Run("Mismatch", func(t *testing.T) {
		_, a, s := setup(t)
		if _, err := a.Apply(ctx, s, connection.Event{Kind: connection.Created, Record: connection.Record{ID: 1, Values: []any{int64(1)}}, Set: []bool{true}}); err == nil {
			t.Error("an event of another shape was applied")
		}
		if _, err := a.Apply(ctx, s, event(s, "merged", record(1, "x", 1, true, ""), "", "name")); err == nil {
			t.Error("an unknown kind was applied")
		}
	})
}
