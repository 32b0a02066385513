package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// statesOf counts the sequence states of each prospect in the sequence.
func statesOf(t *testing.T, c *outreach.Client, seq int64) map[int64]int {
	t.Helper()
	out := map[int64]int{}
	for st, err := range c.List(context.Background(), "sequenceStates", &outreach.ListOptions{PageSize: 1000,
		Filters: []outreach.Filter{outreach.RelIn("sequence", seq)}}) {
		if err != nil {
			t.Fatal(err)
		}
		out[st.Relationships["prospect"].ID()]++
	}
	return out
}

// firstOf returns the id and an attribute of the first record at path.
func firstOf(t *testing.T, c *outreach.Client, path, attr string) (int64, string) {
	t.Helper()
	for r, err := range c.List(context.Background(), path, &outreach.ListOptions{PageSize: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		return r.ID, attrString(r, attr)
	}
	t.Fatalf("the sandbox has no %s", path)
	return 0, ""
}

// existingEmails returns n seeded prospects' first emails and ids.
func existingEmails(t *testing.T, c *outreach.Client, n int) ([]string, []int64) {
	t.Helper()
	var emails []string
	var ids []int64
	for r, err := range c.List(context.Background(), "prospects", &outreach.ListOptions{Fields: map[string][]string{"prospect": {"emails"}}}) {
		if err != nil {
			t.Fatal(err)
		}
		var es []string
		json.Unmarshal(r.Attributes["emails"], &es)
		if len(es) == 0 {
			continue
		}
		emails, ids = append(emails, es[0]), append(ids, r.ID)
		if len(emails) == n {
			break
		}
	}
	return emails, ids
}

// TestLoadThenEnrolsOnceAndSkipsEnrolled loads prospects and enrols the
// loaded ones (created, updated, unchanged; not the rejected) in a
// sequence named by its name, with a mailbox named by its email:
// prospects already in the sequence are skipped and counted, the rest
// enrolled by a bulk action, and a rerun enrols nobody and sends no write.
func TestLoadThenEnrolsOnceAndSkipsEnrolled(t *testing.T) {
	e := newConnEnv(t, sandbox.Options{Prospects: 50, RateLimit: 100000, BatchItemsPerSecond: 100000}, nil)
	client := sandboxClient(t, e.sb)
	seq, seqName := firstOf(t, client, "sequences", "name")
	box, boxEmail := firstOf(t, client, "mailboxes", "email")
	if seqName == "" || boxEmail == "" {
		t.Fatalf("sequence %d named %q, mailbox %d with email %q: the test needs both", seq, seqName, box, boxEmail)
	}
	before := statesOf(t, client, seq)
	emails, ids := existingEmails(t, client, 40)
	// Two existing prospects not yet in the sequence are enrolled first, by hand.
	var pre []int64
	for _, id := range ids {
		if before[id] == 0 && len(pre) < 2 {
			pre = append(pre, id)
		}
	}
	res, err := client.EnrollProspects(context.Background(), seq, box, pre)
	if err != nil || len(res) != 2 || res[0].Result != outreach.Enrolled || res[1].Result != outreach.Enrolled {
		t.Fatalf("enrol by hand: %v %+v", err, res)
	}
	already := 0
	for _, id := range ids {
		if before[id] > 0 || id == pre[0] || id == pre[1] {
			already++
		}
	}
	var b strings.Builder
	b.WriteString("email,title\n")
	for i, email := range emails {
		fmt.Fprintf(&b, "%s,Existing %d\n", email, i)
	}
	for i := range 20 {
		fmt.Fprintf(&b, "new%02d@then.example,New %d\n", i, i)
	}
	b.WriteString("not-an-email,Bad\n")
	writeFile(t, filepath.Join(e.dir, "people.csv"), b.String())
	args := []string{"load", "prospect", "--credential", "main", "--from", "csv:people.csv", "--mode", "upsert", "--match", "emails",
		"--map", "email=emails", "--then", "add-to-sequence:" + seqName, "--mailbox", boxEmail, "--then", "add-tags:then-test"}

	out, errOut, code := e.run(args...)
	t.Logf("%s%s", out, errOut)
	if code != 2 {
		t.Fatalf("exit %d; want 2 (a row was rejected)", code)
	}
	want := fmt.Sprintf("Then add-to-sequence:%s: 60 records: done %d, already %d, failed 0.", seqName, 60-already, already)
	if !strings.Contains(out, want) {
		t.Fatalf("summary lacks %q", want)
	}
	if want := "Then add-tags:then-test: 60 records: done 60, already 0, failed 0."; !strings.Contains(out, want) {
		t.Fatalf("summary lacks %q", want)
	}
	after := statesOf(t, client, seq)
	got := prospectsByEmail(t, client, append(emails, "new00@then.example", "new19@then.example"))
	for _, email := range []string{emails[0], emails[39], "new00@then.example", "new19@then.example"} {
		p := got[strings.ToLower(email)]
		if len(p) != 1 || after[p[0].ID] != 1 {
			t.Fatalf("%s: %d prospects, %d sequence states; want 1 and 1", email, len(p), after[p[0].ID])
		}
	}
	total := 0
	for id, n := range after {
		if n != before[id] && n != 1 {
			t.Fatalf("prospect %d has %d states in the sequence", id, n)
		}
		total += n - before[id]
	}
	if total != 62-already { // 60 loaded minus those already in, plus the two enrolled by hand
		t.Fatalf("%d new sequence states; want %d", total, 62-already)
	}

	// Run again: the load is finished, so it starts over; nothing changed,
	// everybody is in the sequence: no write at all.
	writes := e.sb.Counters().WriteRequests
	out, errOut, code = e.run(args...)
	t.Logf("rerun:\n%s%s", out, errOut)
	if code != 2 {
		t.Fatalf("rerun: exit %d; want 2", code)
	}
	if want := fmt.Sprintf("Then add-to-sequence:%s: 60 records: done 0, already 60, failed 0.", seqName); !strings.Contains(out, want) {
		t.Fatalf("rerun summary lacks %q", want)
	}
	if want := "Then add-tags:then-test: 60 records: done 0, already 60, failed 0."; !strings.Contains(out, want) {
		t.Fatalf("rerun summary lacks %q", want)
	}
	if w := e.sb.Counters().WriteRequests - writes; w != 0 {
		t.Fatalf("the rerun sent %d write requests; want 0", w)
	}

	// Outreach's rules: enrolment needs a mailbox, and only prospects are enrolled.
	out, errOut, code = e.run("load", "prospect", "--credential", "main", "--from", "csv:people.csv", "--mode", "upsert", "--match", "emails",
		"--map", "email=emails", "--then", "add-to-sequence:"+seqName)
	if code != 1 || !strings.Contains(errOut, "needs --mailbox") {
		t.Fatalf("without --mailbox: exit %d, %s%s", code, out, errOut)
	}
	writeFile(t, filepath.Join(e.dir, "accounts.csv"), "domain,name\nthen.example,Then Inc\n")
	out, errOut, code = e.run("load", "account", "--credential", "main", "--from", "csv:accounts.csv", "--mode", "upsert", "--match", "domain",
		"--then", "add-to-sequence:"+seqName, "--mailbox", boxEmail)
	if code != 1 || !strings.Contains(errOut, "only prospects are enrolled") {
		t.Fatalf("accounts into a sequence: exit %d, %s%s", code, out, errOut)
	}
}

// TestLoadThenKilledWhileEnrollingRerunEnrolsOnce kills a load with
// SIGKILL while its enrolment is in flight (the journal holds the
// enrolment's intents and no outcome yet) and runs it again: every
// prospect ends in the sequence once, and the rerun counts the ones the
// killed run enrolled as done, not as already enrolled.
func TestLoadThenKilledWhileEnrollingRerunEnrolsOnce(t *testing.T) {
	// Slow batches keep the enrolment in flight long enough to be seen.
	e := newConnEnv(t, sandbox.Options{Prospects: 10, RateLimit: 100000, BatchItemsPerSecond: 20}, nil)
	client := sandboxClient(t, e.sb)
	seq, _ := firstOf(t, client, "sequences", "name")
	box, _ := firstOf(t, client, "mailboxes", "email")
	before := statesOf(t, client, seq)
	var b strings.Builder
	b.WriteString("email\n")
	for i := range 200 {
		fmt.Fprintf(&b, "kill%03d@then.example\n", i)
	}
	writeFile(t, filepath.Join(e.dir, "people.csv"), b.String())
	args := []string{"load", "prospect", "--credential", "main", "--from", "csv:people.csv", "--mode", "upsert", "--match", "emails",
		"--map", "email=emails", "--then", fmt.Sprintf("add-to-sequence:%d", seq), "--mailbox", fmt.Sprint(box)}

	journal, err := sql.Open("sqlite", "file:"+e.db+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer journal.Close()
	pending := func() int {
		var n int
		if err := journal.QueryRow("SELECT COUNT(*) FROM load_actions WHERE status = 'pending'").Scan(&n); err != nil {
			return 0 // not migrated yet
		}
		return n
	}
	cmd := command(t, e.dir, append(args, e.storeArgs()...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// The instant: the intents are journaled and the batch has enrolled
	// some prospects, not all.
	inSequence := func() int {
		n := 0
		for id, c := range statesOf(t, client, seq) {
			n += c - before[id]
		}
		return n
	}
	for pending() < 200 || inSequence() == 0 {
		select {
		case err := <-exited:
			t.Fatalf("the load ended (%v) before its enrolment was in flight", err)
		default:
		}
		time.Sleep(2 * time.Millisecond) // polling interval, not a timing assumption
	}
	cmd.Process.Kill()
	<-exited
	mid := statesOf(t, client, seq)
	enrolled := 0
	for id, n := range mid {
		enrolled += n - before[id]
	}
	t.Logf("killed with %d intents pending and %d prospects enrolled", pending(), enrolled)
	if enrolled == 0 || enrolled == 200 {
		t.Fatalf("killed with %d of 200 enrolled; want the enrolment half done", enrolled)
	}

	out, errOut, code := e.run(args...)
	t.Logf("rerun:\n%s%s", out, errOut)
	if code != 0 {
		t.Fatalf("rerun: exit %d", code)
	}
	if !strings.Contains(out, "200 rows: created 200, updated 0, unchanged 0, rejected 0 (200 done by an earlier run)") {
		t.Fatalf("the rerun did not resume the load:\n%s", out)
	}
	if want := fmt.Sprintf("Then add-to-sequence:%d: 200 records: done 200, already 0, failed 0.", seq); !strings.Contains(out, want) {
		t.Fatalf("rerun summary lacks %q", want)
	}
	after := statesOf(t, client, seq)
	total := 0
	for id, n := range after {
		if n-before[id] > 1 {
			t.Fatalf("prospect %d enrolled %d times", id, n-before[id])
		}
		total += n - before[id]
	}
	if total != 200 {
		t.Fatalf("%d prospects enrolled; want 200", total)
	}
}
