package jobs

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/postgres/pgtest"
)

// wait bounds every wait on an event; reaching it fails the test.
const wait = 60 * time.Second

// offsetClock is the system clock moved by an offset the test sets. It
// keeps Go's monotonic reading, which River's own timing relies on.
type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *offsetClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// testDB is one database both drivers are tested on.
type testDB struct {
	name string
	// target is the SQLite path or the PostgreSQL URL; schema the
	// PostgreSQL schema of the test.
	target, schema string
}

// open opens a queue on the test database; the test stops and closes it.
func (d testDB) open(t testing.TB, opts Options) *Queue {
	t.Helper()
	opts.testOnly = true
	if opts.Clock == nil {
		opts.Clock = &offsetClock{}
	}
	var q *Queue
	var err error
	ctx := context.Background()
	if d.name == "sqlite" {
		q, err = OpenSQLite(ctx, d.target, opts)
	} else {
		opts.Schema = d.schema
		q, err = OpenPostgres(ctx, d.target, opts)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := q.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
		q.Close()
	})
	return q
}

// sqliteTemplate is a SQLite file already migrated, made once by TestMain:
// River's migrations take seconds under the race detector, so each test
// starts from a copy.
var sqliteTemplate string

func TestMain(m *testing.M) {
	if os.Getenv(envNode) == "" { // not in the helper node process
		dir, err := os.MkdirTemp("", "jobs-test-")
		if err != nil {
			panic(err)
		}
		sqliteTemplate = filepath.Join(dir, "template.db")
		q, err := OpenSQLite(context.Background(), sqliteTemplate, Options{testOnly: true})
		if err != nil {
			panic(err)
		}
		q.Close()
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func sqliteDB(t testing.TB) testDB {
	path := filepath.Join(t.TempDir(), "app.db")
	b, err := os.ReadFile(sqliteTemplate)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return testDB{name: "sqlite", target: path}
}

// postgresDB gives the test a fresh schema; skipped when PostgreSQL is
// unreachable (see pgtest).
func postgresDB(t testing.TB) testDB {
	dsn := pgtest.DSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return testDB{name: "postgres", target: dsn, schema: u.Query().Get("search_path")}
}

// forEachDB runs f on SQLite and on PostgreSQL.
func forEachDB(t *testing.T, f func(t *testing.T, db testDB)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		f(t, sqliteDB(t))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		f(t, postgresDB(t))
	})
}

// events is a node's event stream, read one connection at a time: events
// of other connections wait for their turn.
type events struct {
	c       <-chan Event
	pending []Event
}

// subscribe subscribes to q's events until the test ends.
func subscribe(t *testing.T, q *Queue) *events {
	c, cancel := q.Subscribe()
	t.Cleanup(cancel)
	return &events{c: c}
}

// next returns the next event of connection id, failing after wait.
func (e *events) next(t *testing.T, id string) Event {
	t.Helper()
	for i, ev := range e.pending {
		if ev.Job.ConnectionID == id {
			e.pending = append(e.pending[:i], e.pending[i+1:]...)
			return ev
		}
	}
	timeout := time.After(wait)
	for {
		select {
		case ev, ok := <-e.c:
			if !ok {
				t.Fatal("event stream closed")
			}
			if ev.Job.ConnectionID == id {
				return ev
			}
			e.pending = append(e.pending, ev)
		case <-timeout:
			t.Fatalf("no event for %s within %s", id, wait)
		}
	}
}

// recv receives from c, failing after wait.
func recv[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(wait):
		t.Fatalf("%s did not happen within %s", what, wait)
		panic("unreachable")
	}
}

// allJobs lists every connection_run job, whatever its state.
func allJobs(t *testing.T, q *Queue) []Job {
	t.Helper()
	rows, err := q.eng.list(context.Background(), rivertype.JobStateAvailable, rivertype.JobStateCancelled, rivertype.JobStateCompleted,
		rivertype.JobStateDiscarded, rivertype.JobStatePending, rivertype.JobStateRetryable, rivertype.JobStateRunning, rivertype.JobStateScheduled)
	if err != nil {
		t.Fatal(err)
	}
	var out []Job
	for _, r := range rows {
		j, err := jobFromRow(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, j)
	}
	return out
}

// call is one invocation of a RunFunc.
type call struct {
	id      string
	trigger connection.Trigger
}
