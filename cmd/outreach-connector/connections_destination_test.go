package main

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

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
	t.Logf("run: %s", out)
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
	if show := e.ok("show", "signups"); !strings.Contains(show, "Source") || !strings.Contains(show, "prospect (upsert by emails)") {
		t.Fatalf("show:\n%s", show)
	}
}

// TestRunWaitOnARunWaitingForRetry: `run --wait` on a connection whose run
// failed and waits for its retry waits for the next attempt and reports
// its error, rather than ending at once on the attempt already over.
func TestRunWaitOnARunWaitingForRetry(t *testing.T) {
	e := newConnEnv(t, sandbox.Options{Prospects: 5, RateLimit: 100000}, nil)
	db, err := sql.Open("sqlite", filepath.Join(e.dir, "warehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Exec(`CREATE TABLE signups (email TEXT)`)
	db.Close()
	e.ok("add", "broken", "--credential", "main", "--direction", "destination",
		"--from", "sqlite:warehouse.db?query=SELECT nope FROM signups", "--type", "prospect", "--mode", "upsert", "--match", "emails")
	_, first, code := e.run("connections", "run", "broken", "--wait")
	if code == 0 || !strings.Contains(first, "no such column") || !strings.Contains(first, "attempt 1") {
		t.Fatalf("first run --wait: exit %d: %s", code, first)
	}
	out, second, code := e.run("connections", "run", "broken", "--wait")
	if code == 0 || !strings.Contains(out, "waiting for it") || strings.Contains(out, "No run was recorded") ||
		!strings.Contains(second, "no such column") || !strings.Contains(second, "attempt 2") {
		t.Fatalf("run --wait on a run waiting for its retry: exit %d\n%s\n%s", code, out, second)
	}
}
