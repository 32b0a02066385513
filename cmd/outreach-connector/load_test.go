package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/load"
	"github.com/outreach-connector/outreach-connector/internal/postgres/pgtest"
	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// These tests drive `outreach-connector load` as a user does, against a
// sandbox in the test process, and count what the sandbox committed.

// handlerTransport serves HTTP requests with a handler in the process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	return w.Result(), nil
}

// sandboxClient is an API client straight into the sandbox, for checks.
func sandboxClient(t *testing.T, sb *sandbox.Sandbox) *outreach.Client {
	t.Helper()
	access, _, err := sb.IssueToken(1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := outreach.NewClient(outreach.WithBaseURL("http://sandbox.test/api/v2"), outreach.WithTokenSource(outreach.StaticToken(access)),
		outreach.WithHTTPClient(&http.Client{Transport: handlerTransport{sb}}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// prospectsByEmail returns, for each email, the prospects that have it.
func prospectsByEmail(t *testing.T, c *outreach.Client, emails []string) map[string][]*outreach.Resource {
	t.Helper()
	out := map[string][]*outreach.Resource{}
	for i := 0; i < len(emails); i += 100 {
		var vs []any
		for _, e := range emails[i:min(i+100, len(emails))] {
			vs = append(vs, e)
		}
		for r, err := range c.List(context.Background(), "prospects", &outreach.ListOptions{Filters: []outreach.Filter{outreach.In("emails", vs...)},
			Fields: map[string][]string{"prospect": {"emails", "title", "firstName", "owner"}}}) {
			if err != nil {
				t.Fatal(err)
			}
			var es []string
			json.Unmarshal(r.Attributes["emails"], &es)
			for _, e := range es {
				out[strings.ToLower(e)] = append(out[strings.ToLower(e)], r)
			}
		}
	}
	return out
}

func attrString(r *outreach.Resource, name string) string {
	var s string
	json.Unmarshal(r.Attributes[name], &s)
	return s
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestLoadCreatesExactlyOnceThroughLostAnswers: 1,000 prospect creates
// while 10 % of writes are committed and then lose their answer (half a
// reset, half a 502). Every lost answer is resolved by looking the
// prospect up, so the sandbox commits exactly 1,000 creates and every
// email has one prospect. Without the resolution the retried creates
// would be duplicates (or, for prospects, refused as taken emails).
func TestLoadCreatesExactlyOnceThroughLostAnswers(t *testing.T) {
	e := newConnEnv(t, sandbox.Options{Prospects: 100, RateLimit: 100000,
		Faults: sandbox.Faults{CommittedResets: 0.05, CommittedBadGateway: 0.05}}, nil)
	var b strings.Builder
	b.WriteString("email,first_name,title\n")
	var emails []string
	for i := range 1000 {
		email := fmt.Sprintf("signup%04d@lost.example", i)
		emails = append(emails, email)
		fmt.Fprintf(&b, "%s,Person%d,Title %d\n", email, i, i)
	}
	writeFile(t, filepath.Join(e.dir, "signups.csv"), b.String())
	out, errOut, code := e.run("load", "prospect", "--credential", "main", "--from", "csv:signups.csv", "--mode", "create",
		"--match", "emails", "--map", "email=emails", "--map", "first_name=firstName")
	t.Logf("%s%s", out, errOut)
	if code != 0 {
		t.Fatalf("load: exit %d", code)
	}
	c := e.sb.Counters()
	if c.LostAnswers < 50 {
		t.Fatalf("only %d answers were lost; the test needs the faults to bite", c.LostAnswers)
	}
	if c.Creates != 1000 {
		t.Fatalf("the sandbox committed %d creates for 1,000 rows (%d answers lost); want exactly 1,000", c.Creates, c.LostAnswers)
	}
	if !strings.Contains(out, "1000 rows: created 1000, updated 0, unchanged 0, rejected 0") {
		t.Fatalf("summary does not account for 1,000 created rows:\n%s", out)
	}
	e.sb.SetFaults(sandbox.Faults{})
	got := prospectsByEmail(t, sandboxClient(t, e.sb), emails)
	for _, email := range emails {
		if n := len(got[email]); n != 1 {
			t.Fatalf("%s: %d prospects; want 1", email, n)
		}
	}
}

// TestLoadKilledAndRerunFinishesExactly kills an upsert of 5,000 rows
// with SIGKILL at instants the journal shows (after k rows are done, and
// while a write is in flight), runs the same command again each time, and
// checks that the sandbox ends with exactly the expected records and the
// journal holds every row once, with committed writes losing their answer
// now and then on top.
func TestLoadKilledAndRerunFinishesExactly(t *testing.T) {
	if testing.Short() {
		t.Skip("5,000 rows and several runs of the binary")
	}
	e := newConnEnv(t, sandbox.Options{Prospects: 2000, RateLimit: 1000000,
		Faults: sandbox.Faults{CommittedBadGateway: 0.02, CommittedResets: 0.01}}, nil)
	client := sandboxClient(t, e.sb)
	// 1,000 existing prospects to change, 1,000 to leave as they are, 3,000 new.
	type row struct{ email, title string }
	var rows []row
	var existing int
	for r, err := range client.List(context.Background(), "prospects", &outreach.ListOptions{Fields: map[string][]string{"prospect": {"emails", "title"}}}) {
		if err != nil {
			t.Fatal(err)
		}
		var es []string
		json.Unmarshal(r.Attributes["emails"], &es)
		if len(es) == 0 || existing == 2000 {
			continue
		}
		title := attrString(r, "title")
		if existing%2 == 0 {
			title = fmt.Sprintf("Changed %d", existing)
		}
		if title == "" {
			continue // an empty title in CSV is null: keep the test's arithmetic simple
		}
		rows = append(rows, row{es[0], title})
		existing++
	}
	if existing != 2000 {
		t.Fatalf("found %d seeded prospects with an email and a title; want 2,000", existing)
	}
	for i := range 3000 {
		rows = append(rows, row{fmt.Sprintf("new%04d@upsert.example", i), fmt.Sprintf("New %d", i)})
	}
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	var b strings.Builder
	b.WriteString("email,title\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "%s,%q\n", r.email, r.title)
	}
	writeFile(t, filepath.Join(e.dir, "people.csv"), b.String())
	args := append([]string{"load", "prospect", "--credential", "main", "--from", "csv:people.csv", "--mode", "upsert",
		"--match", "emails", "--map", "email=emails"}, e.storeArgs()...)

	journal, err := sql.Open("sqlite", "file:"+e.db+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer journal.Close()
	count := func(where string) int {
		var n int
		if err := journal.QueryRow("SELECT COUNT(*) FROM load_rows WHERE " + where).Scan(&n); err != nil {
			return 0 // not migrated yet
		}
		return n
	}
	// Each kill waits for an instant the journal shows, never for time.
	kills := []struct {
		name string
		when func() bool
	}{
		{"after 300 rows done", func() bool { return count("status <> 'pending'") >= 300 }},
		{"with a write in flight after 1,200 rows", func() bool {
			return count("status <> 'pending'") >= 1200 && count("status = 'pending'") > 0
		}},
		{"after 2,500 rows done", func() bool { return count("status <> 'pending'") >= 2500 }},
		{"with a write in flight after 3,800 rows", func() bool {
			return count("status <> 'pending'") >= 3800 && count("status = 'pending'") > 0
		}},
	}
	for _, k := range kills {
		cmd := command(t, e.dir, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		killed := false
	poll:
		for {
			select {
			case err := <-exited:
				t.Fatalf("the load ended (%v) before the instant %q", err, k.name)
			default:
			}
			if k.when() {
				cmd.Process.Kill() // SIGKILL: no chance to clean up
				killed = true
				break poll
			}
			time.Sleep(2 * time.Millisecond) // polling interval, not a timing assumption
		}
		<-exited
		t.Logf("killed %s: %d rows done, %d pending", k.name, count("status <> 'pending'"), count("status = 'pending'"))
		if !killed {
			t.Fatal("not killed")
		}
	}
	out, errOut, code := e.run(args[:len(args)-len(e.storeArgs())]...)
	t.Logf("final run:\n%s%s", out, errOut)
	if code != 0 {
		t.Fatalf("final run: exit %d", code)
	}
	if !strings.Contains(out, "5000 rows: created 3000, updated 1000, unchanged 1000, rejected 0") {
		t.Fatalf("the summary does not account for every row:\n%s", out)
	}
	c := e.sb.Counters()
	t.Logf("sandbox: %d creates, %d updates, %d write requests, %d lost answers", c.Creates, c.Updates, c.WriteRequests, c.LostAnswers)
	if c.Creates != 3000 || c.Updates != 1000 {
		t.Fatalf("the sandbox committed %d creates and %d updates; want exactly 3,000 and 1,000", c.Creates, c.Updates)
	}
	e.sb.SetFaults(sandbox.Faults{})
	var emails []string
	for _, r := range rows {
		emails = append(emails, r.email)
	}
	got := prospectsByEmail(t, client, emails)
	for _, r := range rows {
		ps := got[strings.ToLower(r.email)]
		if len(ps) != 1 || attrString(ps[0], "title") != r.title {
			t.Fatalf("%s: %d prospects (want 1) with title %q", r.email, len(ps), r.title)
		}
	}
	var total, distinct, pending int
	journal.QueryRow("SELECT COUNT(*), COUNT(DISTINCT line), SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) FROM load_rows").Scan(&total, &distinct, &pending)
	if total != 5000 || distinct != 5000 || pending != 0 {
		t.Fatalf("journal: %d rows, %d distinct lines, %d pending; want 5,000, 5,000, 0", total, distinct, pending)
	}
	for status, want := range map[string]int{"created": 3000, "updated": 1000, "unchanged": 1000} {
		if n := count("status = '" + status + "'"); n != want {
			t.Fatalf("journal: %d rows %s; want %d", n, status, want)
		}
	}
}

// TestLoadRejectsBadRowsAndWritesGoodOnes: bad emails, a too-long value,
// an unknown owner, an unknown pick-list value, an email twice in the file
// and an email Outreach already has are each rejected with a reason that
// names the column (Outreach's own refusal mapped from its JSON pointer);
// every good row is written; the exit status is 2; --rejects keeps them.
func TestLoadRejectsBadRowsAndWritesGoodOnes(t *testing.T) {
	e := newConnEnv(t, sandbox.Options{Prospects: 100}, nil)
	client := sandboxClient(t, e.sb)
	admin, _, err := client.Get(context.Background(), "users", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	taken, _, err := client.Get(context.Background(), "prospects", 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	var takenEmails []string
	json.Unmarshal(taken.Attributes["emails"], &takenEmails)
	owner := attrString(admin, "email")
	long := strings.Repeat("x", 300)
	csv := "line_email,title,owner,tier\n" +
		"good1@bad.example,CEO," + owner + ",Gold\n" + // 1 good
		"not-an-email,CTO,,\n" + // 2 bad email
		"a b@bad.example,CTO,,\n" + // 3 bad email
		"long@bad.example," + long + ",,\n" + // 4 too long
		"ghost@bad.example,VP,nobody@nowhere.example,\n" + // 5 unknown owner
		"good1@bad.example,Again,,\n" + // 6 duplicate in the file
		"good2@bad.example,,," + "\n" + // 7 good
		takenEmails[0] + ",Taken,,\n" + // 8 exists in Outreach already
		"tier@bad.example,,,Platinum\n" + // 9 not in the pick list
		"good3@bad.example,Engineer," + strings.ToUpper(owner) + ",silver\n" // 10 good
	writeFile(t, filepath.Join(e.dir, "bad.csv"), csv)
	before := e.sb.Counters()
	out, errOut, code := e.run("load", "prospect", "--credential", "main", "--from", "csv:bad.csv", "--mode", "create", "--match", "emails",
		"--map", "line_email=emails", "--map", "owner=owner.email", "--rejects", "rejects.jsonl")
	t.Logf("%s%s", out, errOut)
	if code != 2 {
		t.Fatalf("exit %d; want 2 (rows rejected)", code)
	}
	wantColumn := map[int]string{2: "line_email", 3: "line_email", 4: "title", 5: "owner", 6: "line_email", 8: "line_email", 9: "tier"}
	got := readRejects(t, filepath.Join(e.dir, "rejects.jsonl"))
	if len(got) != len(wantColumn) {
		t.Fatalf("%d rejects; want %d: %+v", len(got), len(wantColumn), got)
	}
	for line, col := range wantColumn {
		r, ok := got[line]
		if !ok || r.Column != col || r.Reason == "" || r.Row == nil {
			t.Fatalf("line %d: reject %+v; want one naming column %s with the row", line, r, col)
		}
	}
	if c := e.sb.Counters(); c.Creates-before.Creates != 3 {
		t.Fatalf("%d prospects created; want the 3 good rows", c.Creates-before.Creates)
	}
	ps := prospectsByEmail(t, client, []string{"good1@bad.example", "good2@bad.example", "good3@bad.example"})
	for _, email := range []string{"good1@bad.example", "good2@bad.example", "good3@bad.example"} {
		if len(ps[email]) != 1 {
			t.Fatalf("%s: %d prospects; want 1", email, len(ps[email]))
		}
	}
	if id := ps["good3@bad.example"][0].Relationships["owner"].ID(); id != 1 {
		t.Fatalf("good3's owner is user %d; want 1 (looked up by email)", id)
	}

	// Matched by another attribute, a taken email reaches Outreach, whose
	// refusal (pointer /data) is mapped back to the email column.
	writeFile(t, filepath.Join(e.dir, "gh.csv"), "gh,mail\nnew-handle-1,"+takenEmails[0]+"\nnew-handle-2,fresh@bad.example\n")
	out, errOut, code = e.run("load", "prospect", "--credential", "main", "--from", "csv:gh.csv", "--mode", "upsert", "--match", "githubUsername",
		"--map", "gh=githubUsername", "--map", "mail=emails", "--rejects", "gh-rejects.jsonl")
	t.Logf("%s%s", out, errOut)
	got = readRejects(t, filepath.Join(e.dir, "gh-rejects.jsonl"))
	if r, ok := got[1]; code != 2 || !ok || len(got) != 1 || r.Column != "mail" || r.ErrorID != "validationError" || r.Pointer != "/data" ||
		!strings.Contains(r.Reason, "email hash has already been taken") {
		t.Fatalf("exit %d, rejects %+v; want line 1 rejected by Outreach, mapped to column mail", code, got)
	}
}

type rejectLine struct {
	Line    int            `json:"line"`
	Column  string         `json:"column"`
	Reason  string         `json:"reason"`
	ErrorID string         `json:"error_id"`
	Pointer string         `json:"pointer"`
	Row     map[string]any `json:"row"`
}

func readRejects(t *testing.T, path string) map[int]rejectLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[int]rejectLine{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r rejectLine
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out[r.Line] = r
	}
	return out
}

// TestLoadDryRunWritesNothing: a dry run prints the plan (create, update,
// unchanged, reject, first diffs), sends no write request (sandbox
// counters) and leaves the journal empty; the real run then does what the
// plan said.
func TestLoadDryRunWritesNothing(t *testing.T) {
	e := newConnEnv(t, sandbox.Options{Prospects: 100}, nil)
	client := sandboxClient(t, e.sb)
	p1, _, _ := client.Get(context.Background(), "prospects", 1, nil)
	p2, _, _ := client.Get(context.Background(), "prospects", 2, nil)
	var e1, e2 []string
	json.Unmarshal(p1.Attributes["emails"], &e1)
	json.Unmarshal(p2.Attributes["emails"], &e2)
	writeFile(t, filepath.Join(e.dir, "plan.jsonl"), fmt.Sprintf(`{"emails": %q, "title": "Dry Run Title"}
{"emails": %q, "title": %q}
{"emails": "planned@dry.example", "title": "New"}
{"emails": "broken", "title": "Bad"}
`, e1[0], e2[0], attrString(p2, "title")))
	args := []string{"load", "prospect", "--credential", "main", "--from", "jsonl:plan.jsonl", "--mode", "upsert", "--match", "emails"}
	before := e.sb.Counters()
	out, errOut, code := e.run(append(args, "--dry-run")...)
	t.Logf("%s%s", out, errOut)
	if after := e.sb.Counters(); after.WriteRequests != before.WriteRequests {
		t.Fatalf("the dry run sent %d write requests; want 0", after.WriteRequests-before.WriteRequests)
	}
	if code != 2 || !strings.Contains(out, "Plan: 4 rows: create 1, update 1, unchanged 1, reject 1. Nothing was written") ||
		!strings.Contains(out, `title "`+attrString(p1, "title")+`" → "Dry Run Title"`) {
		t.Fatalf("exit %d; want 2 and the plan with its diffs:\n%s", code, out)
	}
	db, err := sql.Open("sqlite", "file:"+e.db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	db.QueryRow("SELECT COUNT(*) FROM load_rows").Scan(&n)
	if n != 0 {
		t.Fatalf("the dry run journaled %d rows; want none", n)
	}
	out, _, code = e.run(args...)
	if code != 2 || !strings.Contains(out, "4 rows: created 1, updated 1, unchanged 1, rejected 1") {
		t.Fatalf("real run: exit %d\n%s", code, out)
	}
	if c := e.sb.Counters(); c.WriteRequests-before.WriteRequests != 2 {
		t.Fatalf("the real run sent %d write requests; want 2 (one create, one update)", c.WriteRequests-before.WriteRequests)
	}
}

// TestLoadFromSQLQueries loads accounts from a SQLite file and from
// PostgreSQL through a query: a custom field by its label (with its pick
// list), the owner by a lookup of the user's email, matched on customId;
// the second run finds nothing to change and writes nothing.
func TestLoadFromSQLQueries(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			e := newConnEnv(t, sandbox.Options{Prospects: 100}, nil)
			client := sandboxClient(t, e.sb)
			admin, _, err := client.Get(context.Background(), "users", 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			var db *sql.DB
			var from string
			query := "SELECT cid, company, seg, rep FROM warehouse_accounts WHERE company <> 'skip me' ORDER BY cid"
			if backend == "sqlite" {
				path := filepath.Join(e.dir, "warehouse.db")
				db, err = sql.Open("sqlite", "file:"+path)
				from = "sqlite:" + path + "?query=" + query
			} else {
				dsn := pgtest.DSN(t)
				db, err = sql.Open("pgx", dsn)
				from = dsn + "&query=" + query
			}
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, stmt := range []string{`CREATE TABLE warehouse_accounts (cid TEXT, company TEXT, seg TEXT, rep TEXT)`,
				`INSERT INTO warehouse_accounts VALUES ('wh-1', 'Acme Rockets', 'enterprise', '` + attrString(admin, "email") + `'),
					('wh-2', 'Initech', 'SMB', NULL), ('wh-3', 'skip me', 'SMB', NULL)`} {
				if _, err := db.Exec(stmt); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"load", "account", "--credential", "main", "--from", from, "--mode", "upsert", "--match", "customId",
				"--map", "cid=customId", "--map", "company=name", "--map", "seg=Segment", "--map", "rep=owner.email"}
			out, errOut, code := e.run(args...)
			t.Logf("%s%s", out, errOut)
			if code != 0 || !strings.Contains(out, "2 rows: created 2, updated 0, unchanged 0, rejected 0") {
				t.Fatalf("first run: exit %d", code)
			}
			before := e.sb.Counters()
			out, _, code = e.run(args...)
			if code != 0 || !strings.Contains(out, "2 rows: created 0, updated 0, unchanged 2, rejected 0") || e.sb.Counters().WriteRequests != before.WriteRequests {
				t.Fatalf("second run: exit %d, %d writes\n%s", code, e.sb.Counters().WriteRequests-before.WriteRequests, out)
			}
			var found int
			for r, err := range client.List(context.Background(), "accounts", &outreach.ListOptions{Filters: []outreach.Filter{outreach.In("customId", "wh-1", "wh-2")}}) {
				if err != nil {
					t.Fatal(err)
				}
				found++
				if attrString(r, "customId") == "wh-1" && (attrString(r, "name") != "Acme Rockets" || attrString(r, "custom1") != "Enterprise" || r.Relationships["owner"].ID() != 1) {
					t.Fatalf("wh-1: name %q, custom1 %q, owner %d", attrString(r, "name"), attrString(r, "custom1"), r.Relationships["owner"].ID())
				}
			}
			if found != 2 {
				t.Fatalf("%d accounts with the loaded customIds; want 2", found)
			}
		})
	}
}

// TestLoadRefusesASecondRunAtOnce: while a load runs, the same command in
// another process is refused (two runs at once could each create a row
// whose outcome the other has not journaled yet); the first finishes
// exactly.
func TestLoadRefusesASecondRunAtOnce(t *testing.T) {
	e := newConnEnv(t, sandbox.Options{Prospects: 100, Faults: sandbox.Faults{LatencyMillis: 3}}, nil)
	var b strings.Builder
	b.WriteString("email\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "once%04d@busy.example\n", i)
	}
	writeFile(t, filepath.Join(e.dir, "busy.csv"), b.String())
	args := []string{"load", "prospect", "--credential", "main", "--from", "csv:busy.csv", "--mode", "create", "--match", "emails", "--map", "email=emails"}
	first := command(t, e.dir, append(args, e.storeArgs()...)...)
	var firstOut strings.Builder
	first.Stdout = &firstOut
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	journal, err := sql.Open("sqlite", "file:"+e.db+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer journal.Close()
	for {
		var n int
		journal.QueryRow("SELECT COUNT(*) FROM load_rows WHERE status = 'created'").Scan(&n)
		if n >= 20 {
			break
		}
		time.Sleep(2 * time.Millisecond) // polling interval, not a timing assumption
	}
	out, errOut, code := e.run(args...)
	if code != 1 || !strings.Contains(errOut, "is being run by") {
		t.Fatalf("second run while the first runs: exit %d\n%s%s\nwant exit 1 saying the load is being run", code, out, errOut)
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("first run: %v\n%s", err, firstOut.String())
	}
	if c := e.sb.Counters(); c.Creates != 1000 || !strings.Contains(firstOut.String(), "created 1000") {
		t.Fatalf("%d creates; want 1,000\n%s", c.Creates, firstOut.String())
	}
}

// TestLoadJournalOnPostgres keeps the app database, and so the journal, in
// PostgreSQL: a load through lost answers creates each row once, and the
// same command run again finds every row unchanged and writes nothing.
func TestLoadJournalOnPostgres(t *testing.T) {
	appDB := pgtest.DSN(t)
	e := newConnEnvIn(t, appDB, sandbox.Options{Prospects: 40, Faults: sandbox.Faults{CommittedResets: 0.1, CommittedBadGateway: 0.1}}, nil)
	var b strings.Builder
	b.WriteString("email,title\n")
	for i := range 200 {
		fmt.Fprintf(&b, "pg%03d@journal.example,T%d\n", i, i)
	}
	writeFile(t, filepath.Join(e.dir, "pg.csv"), b.String())
	args := []string{"load", "prospect", "--credential", "main", "--from", "csv:pg.csv", "--mode", "upsert", "--match", "emails", "--map", "email=emails"}
	out, errOut, code := e.run(args...)
	if code != 0 || !strings.Contains(out, "200 rows: created 200") || e.sb.Counters().Creates != 200 || e.sb.Counters().LostAnswers == 0 {
		t.Fatalf("exit %d, %d creates, %d lost answers\n%s%s", code, e.sb.Counters().Creates, e.sb.Counters().LostAnswers, out, errOut)
	}
	before := e.sb.Counters().WriteRequests
	out, errOut, code = e.run(args...)
	if code != 0 || !strings.Contains(out, "200 rows: created 0, updated 0, unchanged 200") || e.sb.Counters().WriteRequests != before {
		t.Fatalf("second run: exit %d\n%s%s", code, out, errOut)
	}
	db, err := sql.Open("pgx", appDB)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM load_rows WHERE status = 'unchanged'").Scan(&n); err != nil || n != 200 {
		t.Fatalf("journal in PostgreSQL: %d unchanged rows (%v); want 200", n, err)
	}
}

// Counts read as English: "1 row", "1 write request", "2 rows".
func TestLoadSummaryPlurals(t *testing.T) {
	var b strings.Builder
	printLoadSummary(&b, &load.Summary{LoadID: "l", Type: "prospect", Mode: "create", Rows: 1, Created: 1, ReadRequests: 1,
		WriteRequests: 1, Resolved: 1}, 1, false)
	printLoadSummary(&b, &load.Summary{LoadID: "l", Type: "prospect", Mode: "create", Rows: 1, Created: 1, ReadRequests: 1, DryRun: true}, 1, false)
	printLoadSummary(&b, &load.Summary{LoadID: "l", Type: "prospect", Mode: "create", Rows: 2, Created: 2, ReadRequests: 2, WriteRequests: 2}, 2, false)
	out := b.String()
	for _, want := range []string{"1 row: created 1", "1 write request and 1 read request (1 HTTP request)", "1 unknown outcome resolved",
		"Plan: 1 row: create 1", "(1 read request)", "2 rows: created 2", "2 write requests and 2 read requests (2 HTTP requests)"} {
		if !strings.Contains(out, want) {
			t.Errorf("the summaries do not say %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{"1 rows", "1 requests", "1 read requests", "1 unknown outcomes"} {
		if strings.Contains(out, bad) {
			t.Errorf("the summaries say %q:\n%s", bad, out)
		}
	}
}

// A flag left out is named with what to give: load without --mode,
// credentials add without a client secret.
func TestMissingFlagsSayWhatToGive(t *testing.T) {
	t.Setenv("OUTREACH_CLIENT_SECRET", "")
	dir := t.TempDir()
	store := []string{"--db", filepath.Join(dir, "c.db"), "--key-file", filepath.Join(dir, "c.key")}
	if _, _, err := runCommand(t, "", append([]string{"load", "prospect", "--credential", "main", "--from", "csv:x.csv"}, store...)...); err == nil ||
		err.Error() != "--mode is required: create, update or upsert" {
		t.Errorf("load without --mode: %v", err)
	}
	if _, _, err := runCommand(t, "", append([]string{"credentials", "add", "--name", "x", "--client-id", "y"}, store...)...); err == nil ||
		!strings.Contains(err.Error(), "--client-secret-file") || !strings.Contains(err.Error(), "OUTREACH_CLIENT_SECRET") {
		t.Errorf("credentials add without a client secret: %v", err)
	}
}
