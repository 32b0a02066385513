package syncer_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/postgres"
	"github.com/outreach-connector/outreach-connector/internal/postgres/pgtest"
	"github.com/outreach-connector/outreach-connector/internal/singer"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

type env struct {
	srv    *sandbox.Server
	client *outreach.Client
	db     *sqlite.DB
	path   string
	now    func() time.Time // the engine's clock; nil: the real one
}

func newEnv(t *testing.T, opts sandbox.Options) *env {
	t.Helper()
	if opts.Prospects == 0 {
		opts.Prospects = 150
	}
	opts.MintInterval = -1
	srv, err := sandbox.Start("", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	access, _, err := srv.IssueToken(1)
	if err != nil {
		t.Fatal(err)
	}
	client, err := outreach.NewClient(outreach.WithBaseURL(srv.URL+"/api/v2"), outreach.WithTokenSource(outreach.StaticToken(access)),
		outreach.WithRetryPolicy(outreach.RetryPolicy{BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond, MaxAttempts: 10}))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sync.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &env{srv: srv, client: client, db: db, path: path}
}

func (e *env) streams(t *testing.T) []*connection.Stream {
	t.Helper()
	cat, err := syncer.Discover(context.Background(), e.client)
	if err != nil {
		t.Fatal(err)
	}
	return syncer.Streams(cat)
}

func (e *env) run(t *testing.T, streams []*connection.Stream, opts syncer.Options) []syncer.Result {
	t.Helper()
	if opts.StartDate.IsZero() {
		opts.StartDate = time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	results := syncer.NewEngine(e.client, e.db, nil, e.now).Run(context.Background(), streams, opts)
	if err := syncer.Failed(results); err != nil {
		t.Fatalf("sync: %v", err)
	}
	return results
}

// table reads id → updatedAt-or-createdAt and one more column of a table.
func table(t *testing.T, path string, s *connection.Stream, col string) map[int64]string {
	t.Helper()
	return tables(t, path, []*connection.Stream{s}, col)[s.Name]
}

// tables reads the same of several tables over one connection (each new
// SQLite connection parses the whole schema).
func tables(t *testing.T, path string, streams []*connection.Stream, col string) map[string]map[int64]string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	all := map[string]map[int64]string{}
	for _, s := range streams {
		cursor := s.CursorField
		if cursor == "" {
			cursor = "id"
		}
		q := fmt.Sprintf(`SELECT id, COALESCE(CAST(%q AS TEXT), ''), COALESCE(CAST(%q AS TEXT), '') FROM %q WHERE "_deleted_at" IS NULL`, cursor, col, s.Name)
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		out := map[int64]string{}
		for rows.Next() {
			var id int64
			var c, v string
			rows.Scan(&id, &c, &v)
			out[id] = c + "|" + v
		}
		rows.Close()
		all[s.Name] = out
	}
	return all
}

// upstream reads the same from the sandbox through the client.
func upstream(t *testing.T, c *outreach.Client, s *connection.Stream, col string) map[int64]string {
	t.Helper()
	out := map[int64]string{}
	for r, err := range c.List(context.Background(), s.Path, nil) {
		if err != nil {
			t.Fatal(err)
		}
		cursor := fmt.Sprint(r.ID)
		if s.CursorField != "" {
			cursor = r.String(s.CursorField)
		}
		v := r.String(col)
		if col == "id" {
			v = fmt.Sprint(r.ID)
		}
		out[r.ID] = cursor + "|" + v
	}
	return out
}

func equalMaps(a, b map[int64]string) (string, bool) {
	for id, v := range a {
		if w, ok := b[id]; !ok || w != v {
			return fmt.Sprintf("id %d: %q vs %q", id, v, w), false
		}
	}
	for id := range b {
		if _, ok := a[id]; !ok {
			return fmt.Sprintf("id %d missing on one side", id), false
		}
	}
	return "", true
}

func TestEveryStream(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	streams := e.streams(t)
	if len(streams) < 45 {
		t.Fatalf("streams = %d, want every listable collection", len(streams))
	}
	results := e.run(t, streams, syncer.Options{})
	got := tables(t, e.path, streams, "id")
	for i, s := range streams {
		want := upstream(t, e.client, s, "id")
		got := got[s.Name]
		if diff, ok := equalMaps(got, want); !ok {
			t.Errorf("%s: table differs from Outreach: %s", s.Name, diff)
		}
		if results[i].Records < len(want) {
			t.Errorf("%s: result says %d records, Outreach has %d", s.Name, results[i].Records, len(want))
		}
	}
	for _, name := range []string{"prospects", "call_dispositions", "sequence_states", "content_category_memberships", "project", "events", "duties"} {
		if !slices.ContainsFunc(streams, func(s *connection.Stream) bool { return s.Name == name }) {
			t.Errorf("no stream %s", name)
		}
	}
}

func TestIncrementalRunsFollowAMovingTarget(t *testing.T) {
	// Outreach's clock and the sync's are one clock that moves only when
	// told, so updatedAt (second precision) moves on without waiting.
	clock := sandbox.NewClock(time.Now().Truncate(time.Second))
	e := newEnv(t, sandbox.Options{Prospects: 300, Clock: clock, RateLimit: 1 << 30})
	e.now = clock.Now
	var picked []*connection.Stream
	for _, s := range e.streams(t) {
		switch s.Name {
		case "prospects", "accounts", "opportunities", "tasks", "calls":
			picked = append(picked, s)
		}
	}
	col := map[string]string{"prospects": "title", "accounts": "industry", "opportunities": "name", "tasks": "note", "calls": "note"}
	first := e.run(t, picked, syncer.Options{Reconcile: true})
	total := 0
	for _, r := range first {
		total += r.Records
	}
	for round := range 3 {
		clock.Advance(2 * time.Second)
		e.srv.Mutate(200)
		results := e.run(t, picked, syncer.Options{Reconcile: true, Lookback: time.Second})
		read := 0
		for _, r := range results {
			read += r.Records
		}
		if read >= total/2 {
			t.Errorf("round %d read %d records; an incremental run should read about what changed, not %d", round, read, total)
		}
		for _, s := range picked {
			if diff, ok := equalMaps(table(t, e.path, s, col[s.Name]), upstream(t, e.client, s, col[s.Name])); !ok {
				t.Errorf("round %d, %s: %s", round, s.Name, diff)
			}
		}
	}
}

// TestFaultsDoNotChangeTheResult syncs a few streams under heavy faults
// (every stream of an org, under the faults of issue 8, is
// TestFaultsAcceptance's).
func TestFaultsDoNotChangeTheResult(t *testing.T) {
	clean := newEnv(t, sandbox.Options{Seed: 5})
	faulty := newEnv(t, sandbox.Options{Seed: 5, Faults: sandbox.Faults{ServerErrors: 0.1, ConnectionResets: 0.05, UnsortedPages: 0.5,
		BadGateway: 0.5, LargePageSize: 50, GatewayTimeouts: 0.05}})
	streams := pick(clean.streams(t), []string{"prospects", "accounts", "mailings", "sequence_states", "events", "duties", "project"})
	clean.run(t, streams, syncer.Options{})
	faulty.run(t, streams, syncer.Options{PageSize: 200})
	as, bs := tables(t, clean.path, streams, "id"), tables(t, faulty.path, streams, "id")
	for _, s := range streams {
		a, b := as[s.Name], bs[s.Name]
		if diff, ok := equalMaps(a, b); !ok {
			t.Errorf("%s differs under faults: %s", s.Name, diff)
		}
	}
	if faulty.srv.Counters().FaultsInjected == 0 {
		t.Error("no fault injected")
	}
}

func TestNoTwoRunsOfAStream(t *testing.T) {
	e := newEnv(t, sandbox.Options{Prospects: 20})
	s := e.streams(t)[0]
	ctx := context.Background()
	host, _ := os.Hostname()
	now := time.Now()
	other := connection.Lease{Host: host, PID: os.Getpid(), RunID: "someone-else", Acquired: now, Expires: now.Add(time.Hour)}
	if err := e.db.Lock(ctx, s.Name, other, now); err != nil {
		t.Fatal(err)
	}
	results := syncer.NewEngine(e.client, e.db, nil, nil).Run(ctx, []*connection.Stream{s}, syncer.Options{})
	var locked *connection.LockedError
	if !errors.As(results[0].Err, &locked) || locked.Holder.RunID != "someone-else" {
		t.Errorf("a run of a stream another live run holds: %v", results[0].Err)
	}
	e.db.Unlock(ctx, s.Name, "someone-else")
	if results := syncer.NewEngine(e.client, e.db, nil, nil).Run(ctx, []*connection.Stream{s}, syncer.Options{}); results[0].Err != nil {
		t.Errorf("after unlock: %v", results[0].Err)
	}
}

func TestEveryStreamIntoPostgres(t *testing.T) {
	e := newEnv(t, sandbox.Options{Prospects: 100})
	dsn := pgtest.DSN(t)
	pg, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	streams := e.streams(t)
	opts := syncer.Options{StartDate: time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC), Reconcile: true}
	if err := syncer.Failed(syncer.NewEngine(e.client, pg, nil, nil).Run(context.Background(), streams, opts)); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range streams {
		var n int
		if err := db.QueryRow(fmt.Sprintf(`SELECT count(*) FROM %q WHERE "_deleted_at" IS NULL`, s.Name)).Scan(&n); err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		if want := len(upstream(t, e.client, s, "id")); n != want {
			t.Errorf("%s: %d rows in PostgreSQL, Outreach has %d", s.Name, n, want)
		}
	}
	var hist string
	if err := db.QueryRow(`SELECT "contactHistogram"::text FROM prospects WHERE id = 1`).Scan(&hist); err != nil || len(hist) < 20 {
		t.Errorf("prospect 1 contactHistogram = %q, %v; want the nested arrays as jsonb", hist, err)
	}
}

// A destination that cannot record deletes is refused when the run asks
// for reconciliation, before anything is written.
func TestReconcileNeedsAReconciler(t *testing.T) {
	e := newEnv(t, sandbox.Options{Prospects: 3})
	var out bytes.Buffer
	w, err := singer.New(&out, nil)
	if err != nil {
		t.Fatal(err)
	}
	var prospects []*connection.Stream
	for _, s := range e.streams(t) {
		if s.Name == "prospects" {
			prospects = append(prospects, s)
		}
	}
	results := syncer.NewEngine(e.client, w, nil, nil).Run(context.Background(), prospects,
		syncer.Options{StartDate: time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC), Reconcile: true})
	if len(results) != 1 || !errors.Is(results[0].Err, syncer.ErrCannotReconcile) {
		t.Fatalf("results = %+v, want ErrCannotReconcile", results)
	}
	if out.Len() != 0 {
		t.Errorf("wrote %d bytes before refusing", out.Len())
	}
	// Without reconciliation the same destination syncs.
	if err := syncer.Failed(syncer.NewEngine(e.client, w, nil, nil).Run(context.Background(), prospects,
		syncer.Options{StartDate: time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)})); err != nil {
		t.Fatal(err)
	}
}
