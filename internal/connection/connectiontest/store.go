// Package connectiontest is the conformance suite every connection.Store
// implementation runs, and an in-memory Store for other packages' tests.
package connectiontest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

// RunStore runs the suite; newStore returns an empty store for one test.
func RunStore(t *testing.T, newStore func(t *testing.T) connection.Store) {
	t.Run("CRUD", func(t *testing.T) { testCRUD(t, newStore(t)) })
	t.Run("Namespaces", func(t *testing.T) { testNamespaces(t, newStore(t)) })
	t.Run("Update", func(t *testing.T) { testUpdate(t, newStore(t)) })
	t.Run("Runs", func(t *testing.T) { testRuns(t, newStore(t)) })
	t.Run("DeleteCascades", func(t *testing.T) { testDeleteCascades(t, newStore(t)) })
}

var base = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// NewConnection returns a valid connection for tests, every field set.
func NewConnection(name string) *connection.Connection {
	s, err := connection.ParseSchedule("every 15m")
	if err != nil {
		panic(err)
	}
	c := &connection.Connection{ID: connection.NewID(), Name: name, CredentialID: "cred-" + name, Direction: connection.DirectionSource,
		DestinationURL: "sqlite:./outreach.db", Streams: []string{"prospects", "accounts"}, Schedule: s,
		StartDate: base.AddDate(-1, 0, 0), PageSize: 100, QuotaShare: 0.5, NotifyURL: "http://127.0.0.1:9/hook",
		CreatedAt: base, UpdatedAt: base}
	c.SetDefaults()
	return c
}

// compare compares connections and runs, schedules by their text.
var compare = cmp.Options{cmp.Comparer(func(a, b connection.Schedule) bool { return a.String() == b.String() })}

func mustCreate(t *testing.T, s connection.Store, c *connection.Connection) {
	t.Helper()
	if err := s.CreateConnection(context.Background(), c); err != nil {
		t.Fatalf("CreateConnection(%s): %v", c.Name, err)
	}
}

func testCRUD(t *testing.T, s connection.Store) {
	ctx := context.Background()
	a, b := NewConnection("alpha"), NewConnection("beta")
	b.Streams = nil // every readable stream
	b.Schedule = connection.Schedule{}
	b.Paused = true
	b.StartDate = time.Time{}
	mustCreate(t, s, b)
	mustCreate(t, s, a)
	if err := s.CreateConnection(ctx, NewConnection("alpha")); !errors.Is(err, connection.ErrNameTaken) {
		t.Errorf("create a second alpha: %v, want ErrNameTaken", err)
	}
	for _, want := range []*connection.Connection{a, b} {
		got, err := s.GetConnection(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, compare); diff != "" {
			t.Errorf("GetConnection(%s) mismatch (-want +got):\n%s", want.Name, diff)
		}
	}
	if got, err := s.GetConnectionByName(ctx, "beta"); err != nil || got.ID != b.ID || got.Streams != nil {
		t.Errorf("GetConnectionByName(beta) = %+v, %v (nil streams must stay nil)", got, err)
	}
	if _, err := s.GetConnection(ctx, "missing"); !errors.Is(err, connection.ErrNotFound) {
		t.Errorf("GetConnection(missing): %v, want ErrNotFound", err)
	}
	if _, err := s.GetConnectionByName(ctx, "missing"); !errors.Is(err, connection.ErrNotFound) {
		t.Errorf("GetConnectionByName(missing): %v, want ErrNotFound", err)
	}
	list, err := s.ListConnections(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "alpha" || list[1].Name != "beta" {
		t.Fatalf("ListConnections = %v, %v; want alpha, beta", list, err)
	}
	if err := s.DeleteConnection(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteConnection(ctx, a.ID); !errors.Is(err, connection.ErrNotFound) {
		t.Errorf("delete twice: %v, want ErrNotFound", err)
	}
	if list, _ := s.ListConnections(ctx); len(list) != 1 {
		t.Errorf("after delete: %d connections", len(list))
	}
}

// Two connections writing to the same destination need different
// namespaces; into different destinations they may share one.
func testNamespaces(t *testing.T, s connection.Store) {
	ctx := context.Background()
	a := NewConnection("a")
	a.Namespace = "sales"
	mustCreate(t, s, a)
	clash := NewConnection("b")
	clash.Namespace = "sales"
	if err := s.CreateConnection(ctx, clash); !errors.Is(err, connection.ErrNamespaceTaken) {
		t.Errorf("same namespace, same destination: %v, want ErrNamespaceTaken", err)
	}
	clash.DestinationURL = "sqlite:./other.db"
	if err := s.CreateConnection(ctx, clash); err != nil {
		t.Errorf("same namespace, other destination: %v", err)
	}
	clash.DestinationURL = a.DestinationURL
	if err := s.UpdateConnection(ctx, clash); !errors.Is(err, connection.ErrNamespaceTaken) {
		t.Errorf("update into a clash: %v, want ErrNamespaceTaken", err)
	}
}

func testUpdate(t *testing.T, s connection.Store) {
	ctx := context.Background()
	a, b := NewConnection("a"), NewConnection("b")
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	a.Name = "a2"
	a.Paused = true
	a.Streams = []string{"prospects"}
	a.Schedule, _ = connection.ParseSchedule("cron 0 * * * *")
	a.QuotaShare = 0.25
	a.UpdatedAt = base.Add(time.Hour)
	if err := s.UpdateConnection(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetConnection(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, got, compare); diff != "" {
		t.Errorf("after update (-want +got):\n%s", diff)
	}
	b.Name = "a2"
	if err := s.UpdateConnection(ctx, b); !errors.Is(err, connection.ErrNameTaken) {
		t.Errorf("rename onto another: %v, want ErrNameTaken", err)
	}
	missing := NewConnection("missing")
	if err := s.UpdateConnection(ctx, missing); !errors.Is(err, connection.ErrNotFound) {
		t.Errorf("update missing: %v, want ErrNotFound", err)
	}
}

func newRun(c *connection.Connection, i int) *connection.Run {
	return &connection.Run{ID: connection.NewID(), ConnectionID: c.ID, Trigger: connection.Scheduled, Attempt: 1,
		StartedAt: base.Add(time.Duration(i) * time.Minute)}
}

func testRuns(t *testing.T, s connection.Store) {
	ctx := context.Background()
	a, b := NewConnection("a"), NewConnection("b")
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	var runs []*connection.Run
	for i := range 5 {
		r := newRun(a, i)
		if err := s.StartRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	if err := s.StartRun(ctx, newRun(b, 9)); err != nil {
		t.Fatal(err)
	}
	// The last run is still going; the others end, after a progress.
	for i, r := range runs[:4] {
		r.Stream("prospects").Records = 7
		r.AddLog("progress")
		if err := s.UpdateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		r.Streams, r.Log = nil, nil
		st := r.Stream("prospects")
		st.Records, st.Pages, st.Requests, st.Deletions = int64(100*i), 2, 3, 1
		r.Stream("accounts").Error = "accounts: 403 forbidden"
		r.AddLog(fmt.Sprintf("run %d: synced", i))
		r.AddLog("ünïcode ✓")
		outcome := connection.Succeeded
		var err error
		if i == 2 {
			outcome, err = connection.Failed, errors.New("upstream 503")
		}
		r.Finish(r.StartedAt.Add(30*time.Second), outcome, err)
		if err := s.FinishRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// A running run's progress is stored; a finished run's is not changed
	// by a late one.
	runs[4].Stream("prospects").Records = 42
	runs[4].AddLog("a page")
	if err := s.UpdateRun(ctx, runs[4]); err != nil {
		t.Fatal(err)
	}
	late := *runs[3]
	late.Streams = []connection.StreamStats{{Stream: "prospects", Records: 1}}
	late.Outcome, late.EndedAt = connection.Running, time.Time{}
	if err := s.UpdateRun(ctx, &late); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateRun(ctx, newRun(a, 20)); !errors.Is(err, connection.ErrNotFound) {
		t.Errorf("UpdateRun of a run never started = %v, want ErrNotFound", err)
	}
	got, err := s.ListRuns(ctx, a.ID, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []*connection.Run{runs[4], runs[3], runs[2]}
	if diff := cmp.Diff(want, got, compare); diff != "" {
		t.Errorf("ListRuns newest first, limit 3 (-want +got):\n%s", diff)
	}
	if all, _ := s.ListRuns(ctx, a.ID, 100); len(all) != 5 {
		t.Errorf("ListRuns(a) = %d runs, want 5", len(all))
	}
	if none, err := s.ListRuns(ctx, "missing", 10); err != nil || len(none) != 0 {
		t.Errorf("ListRuns(missing) = %v, %v", none, err)
	}
}

func testDeleteCascades(t *testing.T, s connection.Store) {
	ctx := context.Background()
	a := NewConnection("a")
	mustCreate(t, s, a)
	if err := s.StartRun(ctx, newRun(a, 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteConnection(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if runs, err := s.ListRuns(ctx, a.ID, 10); err != nil || len(runs) != 0 {
		t.Errorf("runs after delete: %v, %v", runs, err)
	}
	again := NewConnection("a")
	again.Namespace = a.Namespace
	if err := s.CreateConnection(ctx, again); err != nil {
		t.Errorf("the name and namespace of a deleted connection are free again: %v", err)
	}
}

// OpenAtOnce opens a new database n times at once, as processes starting
// together do, and fails the test unless every open succeeds.
func OpenAtOnce(t *testing.T, n int, open func() (io.Closer, error)) {
	t.Helper()
	errs := make(chan error, n)
	for range n {
		go func() {
			db, err := open()
			if err == nil {
				err = db.Close()
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
