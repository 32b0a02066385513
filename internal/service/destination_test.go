package service_test

import (
	"database/sql"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/jobs"
	"github.com/outreach-connector/outreach-connector/internal/service"
	"github.com/outreach-connector/outreach-connector/internal/sqlstore"
)

// warehouse writes a SQLite file with a signups table of n good rows and
// one with a bad email, and returns its path.
func warehouse(t *testing.T, dir string, n int) string {
	t.Helper()
	path := filepath.Join(dir, "warehouse.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE signups (email TEXT, first TEXT, title TEXT, plan TEXT)`); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := db.Exec(`INSERT INTO signups VALUES ($1, $2, $3, 'pro')`, fmt.Sprintf("signup%02d@warehouse.example", i),
			fmt.Sprintf("Person %d", i), fmt.Sprintf("Title %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO signups VALUES ('not-an-email', 'Bad', 'Row', 'pro')`); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestScheduledDestinationConnectionLoadsOnceAndRerunWritesNothing: a
// destination connection on a 15-minute schedule, whose source is a SQL
// query on a SQLite file, is queued by the scheduler when due and loads
// the query's rows into the sandbox (one rejected, kept for the run); a
// second run writes nothing and keeps the rejected row again.
func TestScheduledDestinationConnectionLoadsOnceAndRerunWritesNothing(t *testing.T) {
	for _, pg := range []bool{false, true} {
		t.Run(map[bool]string{false: "sqlite", true: "postgres"}[pg], func(t *testing.T) {
			testScheduledDestination(t, envOptions{start: true, postgres: pg})
		})
	}
}

func testScheduledDestination(t *testing.T, o envOptions) {
	e := newEnv(t, o)
	wh := warehouse(t, e.dir, 30)
	c, err := e.svc.Create(e.ctx, service.NewConnection{Name: "signups", Credential: "sandbox", Direction: connection.DirectionDestination,
		DestinationURL: "sqlite:" + wh + "?query=SELECT email, first, title FROM signups WHERE plan = 'pro' ORDER BY rowid",
		Schedule:       "15m",
		Load: &connection.LoadSpec{Type: "prospect", Mode: "upsert", Match: []string{"emails"},
			Map: map[string]string{"email": "emails", "first": "firstName"}}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.svc.Get(e.ctx, c.Name)
	if err != nil {
		t.Fatal(err)
	}
	if st.NextDue.IsZero() || strings.Join(st.ScopesNeeded, " ") != "prospects.write" || len(st.ScopesMissing) != 0 {
		t.Fatalf("status: next due %v, scopes %v missing %v", st.NextDue, st.ScopesNeeded, st.ScopesMissing)
	}
	// The schedule as if set 15 minutes ago: due now, queued by the tick.
	if err := e.q.Schedule(e.ctx, c.ID, c.Schedule, time.Now().Add(-15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	before := e.sb.Counters()
	// The queue's own scheduler ticks once as it starts: either tick may
	// queue the run, and only one does (a due time is claimed once).
	if n, err := e.q.Tick(e.ctx); err != nil || n > 1 {
		t.Fatalf("tick: %d runs queued, %v; want at most 1", n, err)
	}
	e.finished(c.ID)
	runs, err := e.svc.History(e.ctx, c.Name, 5)
	if err != nil || len(runs) != 1 {
		t.Fatalf("history: %v %v", runs, err)
	}
	r := runs[0]
	if r.Outcome != connection.Succeeded || r.Trigger != connection.Scheduled {
		t.Fatalf("run: %s %s %q\n%s", r.Trigger, r.Outcome, r.Error, strings.Join(r.Log, "\n"))
	}
	tot := r.Totals()
	if tot.Created != 30 || tot.Updated != 0 || tot.Unchanged != 0 || tot.Rejected != 1 || tot.Requests == 0 {
		t.Fatalf("first run: %+v", r.Streams)
	}
	after := e.sb.Counters()
	if got := after.Creates - before.Creates; got != 30 {
		t.Fatalf("the sandbox committed %d creates; want 30", got)
	}
	rj, err := e.svc.Rejects(e.ctx, c.Name, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if rj.Run == nil || rj.Run.ID != r.ID || len(rj.Rejects) != 1 || rj.Rejects[0].Column != "email" || rj.Rejects[0].Line != 31 ||
		!strings.Contains(rj.Rejects[0].Reason, "not an email") || rj.Rejects[0].Row["email"] != "not-an-email" {
		t.Fatalf("rejects: %+v", rj)
	}

	// Run again: every row is as Outreach has it; no write.
	r2 := e.runNow(c)
	tot = r2.Totals()
	if r2.Outcome != connection.Succeeded || tot.Unchanged != 30 || tot.Rejected != 1 || tot.Created+tot.Updated != 0 {
		t.Fatalf("second run: %s %q %+v", r2.Outcome, r2.Error, r2.Streams)
	}
	if w := e.sb.Counters().WriteRequests - after.WriteRequests; w != 0 {
		t.Fatalf("the second run sent %d write requests; want 0", w)
	}
	rj2, err := e.svc.Rejects(e.ctx, c.Name, r2.ID, 0)
	if err != nil || len(rj2.Rejects) != 1 {
		t.Fatalf("rejects of the second run: %+v %v", rj2, err)
	}
	if old, err := e.svc.Rejects(e.ctx, c.Name, r.ID, 0); err != nil || len(old.Rejects) != 1 {
		t.Fatalf("rejects of the first run, kept: %+v %v", old, err)
	}
	if streams, err := e.svc.Streams(e.ctx, c.Name); err != nil || len(streams) != 0 {
		t.Fatalf("streams of a destination connection: %v %v", streams, err)
	}
	if _, err := e.svc.Resync(e.ctx, c.Name, nil); err == nil || !strings.Contains(err.Error(), "writes into Outreach") {
		t.Fatalf("resync: %v", err)
	}
	// Deleting the connection drops its load journal.
	journal := e.store.(service.WriteBackStore).LoadJournal().(*sqlstore.Loads)
	if _, rows, err := journal.Get(e.ctx, "conn_"+c.ID); err != nil || len(rows) != 31 {
		t.Fatalf("the connection's journal: %d rows, %v; want 31", len(rows), err)
	}
	if err := e.svc.Delete(e.ctx, c.Name, true); err != nil {
		t.Fatal(err)
	}
	if _, rows, err := journal.Get(e.ctx, "conn_"+c.ID); err == nil || len(rows) != 0 {
		t.Fatalf("the deleted connection's journal remains: %d rows, %v", len(rows), err)
	}
}

// TestDestinationConnectionRefusesWhatItCannotRun: a password in the
// source URL (it would be stored in clear), no match, a type Outreach
// does not let the API write, an enrolment without a mailbox.
func TestDestinationConnectionRefusesWhatItCannotRun(t *testing.T) {
	e := newEnv(t, envOptions{})
	ok := connection.LoadSpec{Type: "prospect", Mode: "upsert", Match: []string{"emails"}}
	tests := []struct {
		name, url string
		spec      connection.LoadSpec
		want      string
	}{
		{"password", "postgres://app:secret@127.0.0.1/wh?query=SELECT 1", ok, "PGPASSWORD"},
		{"no query", "sqlite:/tmp/wh.db", ok, "needs a file and a query"},
		{"csv", "csv:people.csv", ok, "source scheme \"csv\""},
		{"no match", "sqlite:/tmp/wh.db?query=SELECT 1", connection.LoadSpec{Type: "prospect", Mode: "upsert"}, "match attributes"},
		{"bad mode", "sqlite:/tmp/wh.db?query=SELECT 1", connection.LoadSpec{Type: "prospect", Mode: "merge", Match: []string{"emails"}}, "use create, update or upsert"},
		{"no mailbox", "sqlite:/tmp/wh.db?query=SELECT 1", connection.LoadSpec{Type: "prospect", Mode: "upsert", Match: []string{"emails"},
			Then: []string{"add-to-sequence:1"}}, "needs --mailbox"},
	}
	for _, tt := range tests {
		spec := tt.spec
		_, err := e.svc.Create(e.ctx, service.NewConnection{Name: "d-" + strings.ReplaceAll(tt.name, " ", "-"), Credential: "sandbox",
			Direction: connection.DirectionDestination, DestinationURL: tt.url, Load: &spec})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want an error saying %q", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows the password: %v", tt.name, err)
		}
	}
	if cs, err := e.svc.List(e.ctx); err != nil || len(cs) != 0 {
		t.Fatalf("refused connections were stored: %v %v", cs, err)
	}
}

// TestDestinationRunFailsMidwayNotifiesAndTheNextRunResumes: the source's
// query fails after 200 of 250 rows were written (SQLite raises an integer
// overflow at row 230, while a flag is set). The run fails and notifies;
// with the flag cleared the next run resumes the same load at once (the
// failed run's rows are counted as done by an earlier run, not written
// again), creates only the 50 others, and notifies the recovery.
func TestDestinationRunFailsMidwayNotifiesAndTheNextRunResumes(t *testing.T) {
	rc := &receiver{t: t, secret: []byte("s3cret-s3cret"), got: make(chan service.Notification, 10)}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	e := newEnv(t, envOptions{start: true, notify: hook.URL, secret: rc.secret})
	path := filepath.Join(e.dir, "warehouse.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.Exec(`CREATE TABLE flags (broken INTEGER)`)
	db.Exec(`INSERT INTO flags VALUES (1)`)
	db.Exec(`CREATE TABLE signups (email TEXT)`)
	for i := range 250 {
		db.Exec(`INSERT INTO signups VALUES ($1)`, fmt.Sprintf("mid%03d@warehouse.example", i))
	}
	c, err := e.svc.Create(e.ctx, service.NewConnection{Name: "midway", Credential: "sandbox", Direction: connection.DirectionDestination,
		DestinationURL: "sqlite:" + path + "?query=SELECT email, CASE WHEN rowid = 230 AND (SELECT broken FROM flags) = 1 " +
			"THEN abs(-9223372036854775807 - 1) END AS custom1 FROM signups ORDER BY rowid",
		Load: &connection.LoadSpec{Type: "prospect", Mode: "upsert", Match: []string{"emails"}, Map: map[string]string{"email": "emails"}}})
	if err != nil {
		t.Fatal(err)
	}
	before := e.sb.Counters().Creates
	r := e.runNow(c)
	if r.Outcome != connection.Failed || !strings.Contains(r.Error, "overflow") {
		t.Fatalf("first run: %s %q\n%s", r.Outcome, r.Error, strings.Join(r.Log, "\n"))
	}
	if tot := r.Totals(); tot.Created != 200 {
		t.Fatalf("first run created %d before the query failed; want 200 (two chunks)", tot.Created)
	}
	select {
	case n := <-rc.got:
		if n.Event != service.EventRunFailed || n.Run.ID != r.ID {
			t.Fatalf("notification %+v", n)
		}
	default:
		t.Fatal("no notification of the failed run")
	}
	if _, err := db.Exec(`UPDATE flags SET broken = 0`); err != nil {
		t.Fatal(err)
	}
	r2 := e.runNow(c)
	if r2.Outcome != connection.Succeeded {
		t.Fatalf("second run: %s %q\n%s", r2.Outcome, r2.Error, strings.Join(r2.Log, "\n"))
	}
	if tot := r2.Totals(); tot.Created != 250 || !strings.Contains(strings.Join(r2.Log, "\n"), "earlier_runs=200") {
		t.Fatalf("second run: %+v\n%s", r2.Streams, strings.Join(r2.Log, "\n"))
	}
	if got := e.sb.Counters().Creates - before; got != 250 {
		t.Fatalf("the sandbox committed %d creates over both runs; want 250", got)
	}
	select {
	case n := <-rc.got:
		if n.Event != service.EventRunRecovered || n.Run.ID != r2.ID {
			t.Fatalf("notification %+v", n)
		}
	default:
		t.Fatal("no notification of the recovery")
	}
}

// TestDestinationSourceQueryMistakes: a query naming a column the source
// lacks is refused when the connection is added, with a problem on the
// source URL that names the column; a query that breaks later (the column
// renamed away) fails its run once, discarded rather than retried with
// backoff (River cancels its job), with an error saying to correct the query.
func TestDestinationSourceQueryMistakes(t *testing.T) {
	e := newEnv(t, envOptions{start: true})
	path := warehouse(t, e.dir, 3)
	spec := connection.LoadSpec{Type: "prospect", Mode: "upsert", Match: []string{"emails"}, Map: map[string]string{"email": "emails"}}
	_, err := e.svc.Create(e.ctx, service.NewConnection{Name: "typo", Credential: "sandbox", Direction: connection.DirectionDestination,
		DestinationURL: "sqlite:" + path + "?query=SELECT emial FROM signups", Load: &spec})
	var inv *service.InvalidError
	if !errors.As(err, &inv) || len(inv.Problems) != 1 || inv.Problems[0].Field != connection.FieldDestination ||
		!strings.Contains(inv.Problems[0].Message, "no such column: emial") {
		t.Fatalf("a query with a misspelt column: %v; want one problem on %s naming the column", err, connection.FieldDestination)
	}
	c, err := e.svc.Create(e.ctx, service.NewConnection{Name: "later", Credential: "sandbox", Direction: connection.DirectionDestination,
		DestinationURL: "sqlite:" + path + "?query=SELECT email FROM signups", Load: &spec})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`ALTER TABLE signups RENAME COLUMN email TO mail`); err != nil {
		t.Fatal(err)
	}
	before := e.sb.Counters().Creates
	if _, err := e.svc.RunNow(e.ctx, c.Name); err != nil {
		t.Fatal(err)
	}
	ev := e.finished(c.ID)
	if ev.Kind != jobs.JobCancelled {
		t.Fatalf("the run's job: %s (%s); want it ended (River cancels a job not to retry), not retried", ev.Kind, ev.Job.State)
	}
	runs, err := e.svc.History(e.ctx, c.Name, 5)
	if err != nil || len(runs) != 1 {
		t.Fatalf("history: %d runs, %v; want the one failed run", len(runs), err)
	}
	if r := runs[0]; r.Outcome != connection.Failed || !strings.Contains(r.Error, "no such column: email") || !strings.Contains(r.Error, "correct the query") {
		t.Fatalf("run: %s %q", r.Outcome, r.Error)
	}
	if got := e.sb.Counters().Creates - before; got != 0 {
		t.Fatalf("%d creates", got)
	}
}
