package main

import (
	"database/sql"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// TestConnectionsDestinationFromTheCLI adds a destination connection with
// a SQLite query as its source (a relative path, kept absolute), runs it,
// and reads its counts in history and its rejected row with
// `connections rejects`; a second run writes nothing.
func TestConnectionsDestinationFromTheCLI(t *testing.T) {
	e := newConnEnv(t, sandbox.Options{Prospects: 20, RateLimit: 100000}, nil)
	db, err := sql.Open("sqlite", filepath.Join(e.dir, "warehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Exec(`CREATE TABLE signups (email TEXT, first TEXT, plan TEXT)`)
	for i := range 12 {
		db.Exec(`INSERT INTO signups VALUES ($1, $2, 'pro')`, fmt.Sprintf("cli%02d@dest.example", i), fmt.Sprintf("Person %d", i))
	}
	db.Exec(`INSERT INTO signups VALUES ('bad@', 'Bad', 'pro')`)
	db.Close()

	e.fails("--from is for destination connections", "add", "x", "--credential", "main", "--to", "sqlite:x.db", "--from", "sqlite:w.db?query=SELECT 1")
	e.fails("PGPASSWORD", "add", "x", "--credential", "main", "--direction", "destination", "--from",
		"postgres://u:hunter2@127.0.0.1/wh?query=SELECT 1", "--type", "prospect", "--mode", "upsert", "--match", "emails")
	out := e.ok("add", "signups", "--credential", "main", "--direction", "destination",
		"--from", "sqlite:warehouse.db?query=SELECT email, first FROM signups WHERE plan = 'pro'",
		"--type", "prospect", "--mode", "upsert", "--match", "emails", "--map", "email=emails", "--map", "first=firstName", "--every", "15m")
	if !strings.Contains(out, "Added destination connection signups") || !strings.Contains(out, "sqlite:"+e.dir) ||
		!strings.Contains(out, "prospect (upsert by emails)") {
		t.Fatalf("add: %s", out)
	}
	out = e.ok("run", "signups", "--wait")
	// What a destination run did: its rows by outcome, read from its
	// source, not a sync's records into a destination.
	if !strings.Contains(out, "Running signups (job 1) from sqlite:") || !regexp.MustCompile(`prospect +12 +0 +0 +1 `).MatchString(out) ||
		!strings.Contains(out, "13 rows from sqlite:") || !strings.Contains(out, "1 rejected row: outreach-connector connections rejects signups") ||
		strings.Contains(out, "records") {
		t.Fatalf("run --wait of a destination connection:\n%s", out)
	}
	hist := e.ok("history", "signups")
	if !strings.Contains(hist, "created 12, updated 0, unchanged 0, rejected 1") {
		t.Fatalf("history lacks the counts:\n%s", hist)
	}
	rej := e.ok("rejects", "signups")
	if !strings.Contains(rej, "LINE") || !strings.Contains(rej, "13") || !strings.Contains(rej, "email") || !strings.Contains(rej, `"bad@" is not an email address`) {
		t.Fatalf("rejects:\n%s", rej)
	}
	var v struct {
		Run     struct{ ID string }
		Rejects []struct {
			Line   int
			Column string
			Reason string
			Row    map[string]any
		}
	}
	e.jsonOf(&v, "rejects", "signups")
	if len(v.Rejects) != 1 || v.Rejects[0].Line != 13 || v.Rejects[0].Column != "email" || v.Rejects[0].Row["email"] != "bad@" {
		t.Fatalf("rejects --json: %+v", v)
	}
	first := v.Run.ID
	writes := e.sb.Counters().WriteRequests
	e.ok("run", "signups", "--wait")
	if w := e.sb.Counters().WriteRequests - writes; w != 0 {
		t.Fatalf("the second run sent %d writes; want 0", w)
	}
	if hist := e.ok("history", "signups"); !strings.Contains(hist, "created 0, updated 0, unchanged 12, rejected 1") {
		t.Fatalf("history after the second run:\n%s", hist)
	}
	e.jsonOf(&v, "rejects", "signups", "--run", first)
	if v.Run.ID != first || len(v.Rejects) != 1 {
		t.Fatalf("rejects --run %s: %+v", first, v)
	}
	if show := e.ok("show", "signups"); !strings.Contains(show, "Source") || !strings.Contains(show, "prospect (upsert by emails)") ||
		!regexp.MustCompile(`Map +email → emails, first → firstName\n`).MatchString(show) || !regexp.MustCompile(`Mailbox +—\n`).MatchString(show) ||
		strings.Contains(show, "Live") || strings.Contains(show, "Start date") || strings.Contains(show, "Page size") {
		t.Fatalf("show:\n%s", show)
	}
}

// TestRunWaitOnARunWaitingForRetry: `run --wait` on a connection whose run
// failed and waits for its retry waits for the next attempt and reports
// its error, rather than ending at once on the attempt already over.
func TestRunWaitOnARunWaitingForRetry(t *testing.T) {
	e := newConnEnv(t, sandbox.Options{Prospects: 5, RateLimit: 100000}, nil)
	// A source database that is down fails a run for a while, not for
	// good (a wrong query would stop the connection at once): nothing
	// listens on port 1.
	e.ok("add", "broken", "--credential", "main", "--direction", "destination",
		"--from", "postgres://127.0.0.1:1/warehouse?query=SELECT email FROM signups", "--type", "prospect", "--mode", "upsert", "--match", "emails")
	if list, _, _ := e.run("connections", "list"); !strings.Contains(list, "Outreach prospects from postgres://127.0.0.1:1/warehouse") {
		t.Fatalf("the list does not say where a destination connection's data goes:\n%s", list)
	}
	_, first, code := e.run("connections", "run", "broken", "--wait")
	if code == 0 || !strings.Contains(first, "refused") || !strings.Contains(first, "attempt 1") {
		t.Fatalf("first run --wait: exit %d: %s", code, first)
	}
	out, second, code := e.run("connections", "run", "broken", "--wait")
	if code == 0 || !strings.Contains(out, "waiting for it") || strings.Contains(out, "No run was recorded") ||
		!strings.Contains(second, "refused") || !strings.Contains(second, "attempt 2") {
		t.Fatalf("run --wait on a run waiting for its retry: exit %d\n%s\n%s", code, out, second)
	}
}

// TestAddRefusesAQueryTheSourceRefuses: a destination connection whose
// query names a column the source table lacks is refused when added, with
// the database's words and the flag to fix, and nothing is stored.
func TestAddRefusesAQueryTheSourceRefuses(t *testing.T) {
	e := newConnEnv(t, sandbox.Options{Prospects: 5, RateLimit: 100000}, nil)
	db, err := sql.Open("sqlite", filepath.Join(e.dir, "warehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE signups (email TEXT)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out, errOut, code := e.run("connections", "add", "broken", "--credential", "main", "--direction", "destination",
		"--from", "sqlite:warehouse.db?query=SELECT nope FROM signups", "--type", "prospect", "--mode", "upsert", "--match", "emails")
	if code == 0 || !strings.Contains(errOut, "no such column: nope") || !strings.Contains(errOut, "--from") || strings.Contains(errOut, "--to") {
		t.Fatalf("add with a bad query: exit %d\n%s\n%s", code, out, errOut)
	}
	if list, _, _ := e.run("connections", "list", "--json"); strings.Contains(list, "broken") {
		t.Fatalf("a refused connection was stored: %s", list)
	}
}

// TestEditDestinationConnection: `connections edit` changes a destination
// connection's source and load (--from, --type, --mode, --match, --map,
// --then, --mailbox; --no-map and --no-then drop them), keeps what is not
// given, checks the result as add does, and refuses flags of the other
// direction.
func TestEditDestinationConnection(t *testing.T) {
	e := newConnEnv(t, sandbox.Options{Prospects: 5, RateLimit: 100000}, nil)
	db, err := sql.Open("sqlite", filepath.Join(e.dir, "warehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE signups (email TEXT, first TEXT, last TEXT)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	e.ok("add", "signups", "--credential", "main", "--direction", "destination",
		"--from", "sqlite:warehouse.db?query=SELECT email, first FROM signups", "--type", "prospect", "--mode", "upsert",
		"--match", "emails", "--map", "email=emails", "--map", "first=firstName", "--then", "add-tags:signup")
	e.ok("add", "src", "--credential", "main", "--to", "sqlite:src.db")
	type shown struct {
		Destination string               `json:"destination"`
		Load        *connection.LoadSpec `json:"load"`
	}
	show := func() shown {
		var v shown
		e.jsonOf(&v, "show", "signups")
		if v.Load == nil {
			t.Fatalf("show --json of a destination connection has no load")
		}
		return v
	}

	out := e.ok("edit", "signups", "--from", "sqlite:warehouse.db?query=SELECT email, last FROM signups", "--map", "email=emails",
		"--map", "last=lastName", "--no-then")
	if !strings.Contains(out, "Updated signups: from sqlite:"+e.dir) {
		t.Errorf("edit says %q", out)
	}
	v := show()
	if v.Destination != "sqlite:"+filepath.Join(e.dir, "warehouse.db")+"?query=SELECT email, last FROM signups" ||
		v.Load.Type != "prospect" || v.Load.Mode != "upsert" || !slices.Equal(v.Load.Match, []string{"emails"}) ||
		!maps.Equal(v.Load.Map, map[string]string{"email": "emails", "last": "lastName"}) || v.Load.Then != nil {
		t.Fatalf("after --from, --map and --no-then: %+v %+v", v, v.Load)
	}
	e.ok("edit", "signups", "--mode", "CREATE", "--then", "add-tags:a,b")
	if v := show(); v.Load.Mode != "create" || !slices.Equal(v.Load.Then, []string{"add-tags:a,b"}) || len(v.Load.Map) != 2 {
		t.Fatalf("after --mode and --then: %+v", v.Load)
	}
	e.ok("edit", "signups", "--no-map", "--from", "sqlite:warehouse.db?query=SELECT email AS emails FROM signups")
	if v := show(); v.Load.Map != nil || v.Load.Mode != "create" {
		t.Fatalf("after --no-map: %+v", v.Load)
	}

	e.fails("no such column: nope", "edit", "signups", "--from", "sqlite:warehouse.db?query=SELECT nope FROM signups")
	e.fails("mailbox", "edit", "signups", "--then", "add-to-sequence:Sequence 1")
	e.fails(`Fix: load: mode "merge": use create, update or upsert`+"\n", "edit", "signups", "--mode", "merge")
	e.fails("Fix: --from: source sqlite: needs a file and a query", "edit", "signups", "--from", "sqlite:warehouse.db")
	e.fails("--to is for source connections", "edit", "signups", "--to", "sqlite:x.db")
	e.fails("--streams is for source connections", "edit", "signups", "--streams", "prospects")
	e.fails("give --map or --no-map", "edit", "signups", "--map", "a=b", "--no-map")
	e.fails("--type is for destination connections", "edit", "src", "--type", "account")
	if v := show(); v.Load.Mode != "create" || !strings.Contains(v.Destination, "SELECT email AS emails") {
		t.Fatalf("a refused edit changed the connection: %+v", v)
	}
}
