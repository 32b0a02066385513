package main

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/postgres/pgtest"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// These tests drive the built binary through `connections`, against a
// sandbox running in the test process whose credential is imported into
// the app database with `credentials import`.

// connEnv is a directory with an app database and key, and a connected
// credential "main" of a sandbox served on a loopback port.
type connEnv struct {
	t   *testing.T
	dir string
	db  string // the app database: a SQLite file in dir, or PostgreSQL
	sb  *sandbox.Sandbox
}

// newConnEnv starts a sandbox, its handler wrapped by wrap when not nil,
// and imports its credential "main".
func newConnEnv(t *testing.T, opts sandbox.Options, wrap func(http.Handler) http.Handler) *connEnv {
	t.Helper()
	return newConnEnvIn(t, "", opts, wrap)
}

// newConnEnvIn is newConnEnv with the app database db ("" for a SQLite
// file in the directory).
func newConnEnvIn(t *testing.T, db string, opts sandbox.Options, wrap func(http.Handler) http.Handler) *connEnv {
	t.Helper()
	opts.MintInterval = -1
	sb, err := sandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = sb
	if wrap != nil {
		h = wrap(sb)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		sb.Close()
	})
	e := &connEnv{t: t, dir: t.TempDir(), db: db, sb: sb}
	if e.db == "" {
		e.db = filepath.Join(e.dir, "app.db")
	}
	app := sb.Apps()[0]
	secret := filepath.Join(e.dir, "secret")
	os.WriteFile(secret, []byte(app.ClientSecret), 0o600)
	_, refresh, err := sb.IssueToken(1)
	if err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(e.dir, "refresh")
	os.WriteFile(token, []byte(refresh), 0o600)
	out, errOut, code := e.run("credentials", "import", "--name", "main", "--client-id", app.ClientID, "--client-secret-file", secret,
		"--refresh-token-file", token, "--api-base-url", srv.URL+"/api/v2", "--redirect-uri", app.RedirectURIs[0])
	if code != 0 {
		t.Fatalf("credentials import: exit %d\n%s%s", code, out, errOut)
	}
	return e
}

// storeArgs point a command at the environment's app database and key.
func (e *connEnv) storeArgs() []string {
	return []string{"--db", e.db, "--key-file", filepath.Join(e.dir, "app.key"), "--log-level", "warn"}
}

// run runs the binary with args (and the store flags) through pipes.
func (e *connEnv) run(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	cmd := command(e.t, e.dir, append(args, e.storeArgs()...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return out.String(), errOut.String(), exit.ExitCode()
	case err != nil:
		e.t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errOut.String(), 0
}

// ok runs a connections subcommand that must succeed and returns stdout.
func (e *connEnv) ok(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run(append([]string{"connections"}, args...)...)
	if code != 0 {
		e.t.Fatalf("connections %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	if testing.Verbose() {
		e.t.Logf("$ connections %s\n%s%s", strings.Join(args, " "), out, errOut)
	}
	return out
}

// fails runs a connections subcommand that must fail saying want.
func (e *connEnv) fails(want string, args ...string) {
	e.t.Helper()
	out, errOut, code := e.run(append([]string{"connections"}, args...)...)
	if code == 0 || !strings.Contains(errOut, want) {
		e.t.Errorf("connections %s: exit %d, stderr %q; want a failure saying %q (stdout %q)", strings.Join(args, " "), code, errOut, want, out)
	}
}

// jsonOf runs a subcommand with --json and decodes its output into v.
func (e *connEnv) jsonOf(v any, args ...string) {
	e.t.Helper()
	out := e.ok(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("connections %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

type listed struct {
	Connections []struct {
		ID          string   `json:"id"`
		Name        string   `json:"name"`
		State       string   `json:"state"`
		Credential  string   `json:"credential"`
		Destination string   `json:"destination"`
		Namespace   string   `json:"namespace"`
		Streams     []string `json:"streams"`
		Schedule    string   `json:"schedule"`
		Paused      bool     `json:"paused"`
		NextRunAt   *string  `json:"next_run_at"`
		QuotaShare  float64  `json:"quota_share"`
		LastRun     *struct {
			Outcome string `json:"outcome"`
			Records int64  `json:"records"`
		} `json:"last_run"`
	} `json:"connections"`
}

type history struct {
	Runs []struct {
		ID      string `json:"id"`
		Trigger string `json:"trigger"`
		Outcome string `json:"outcome"`
		Error   string `json:"error"`
		Records int64  `json:"records"`
		EndedAt *string
		Streams []struct {
			Stream  string `json:"stream"`
			Records int64  `json:"records"`
		} `json:"streams"`
	} `json:"runs"`
}

var runSummary = regexp.MustCompile(`(\d+) records? in (\d+) streams? into (\S+) in [\d.]+ s: succeeded\.`)

// TestConnectionsLifecycle walks a connection through the CLI as a
// script would: add, list --json, run --wait, history --json, show --json,
// pause, resume, run (queued), cancel, delete --yes --drop-data.
func TestConnectionsLifecycle(t *testing.T) {
	t.Parallel()
	e := newConnEnv(t, sandbox.Options{Prospects: 60}, nil)
	dest := "sqlite:" + filepath.Join(e.dir, "out.db")

	out := e.ok("add", "Acme EU", "--credential", "main", "--to", dest, "--every", "15m", "--streams", "prospects,accounts,stages",
		"--start-date", "2015-01-01", "--quota-limit", "0.5")
	if !strings.Contains(out, "Added connection Acme EU") || !strings.Contains(out, "namespace acme_eu") {
		t.Errorf("add: %s", out)
	}
	e.fails("exists", "add", "Acme EU", "--credential", "main", "--to", dest)
	e.fails("one schedule", "add", "x", "--credential", "main", "--to", dest, "--every", "1h", "--cron", "0 * * * *")
	e.fails("scheme", "add", "x", "--credential", "main", "--to", "ftp://example.com/x")
	e.fails("start-date", "add", "x", "--credential", "main", "--to", dest, "--start-date", "yesterday")
	e.fails("too short", "add", "x", "--credential", "main", "--to", dest, "--every", "10s")
	e.fails("required", "add", "x", "--to", dest)

	var l listed
	e.jsonOf(&l, "list")
	if len(l.Connections) != 1 {
		t.Fatalf("list --json: %+v", l)
	}
	c := l.Connections[0]
	if c.Name != "Acme EU" || c.Credential != "main" || c.Destination != dest || c.Namespace != "acme_eu" || c.Schedule != "every 15m" ||
		c.QuotaShare != 0.5 || strings.Join(c.Streams, ",") != "prospects,accounts,stages" || c.Paused || c.LastRun != nil {
		t.Errorf("list --json: %+v", c)
	}
	table := e.ok("list")
	if !regexp.MustCompile(`NAME\s+STATE\s+SCHEDULE\s+LAST RUN\s+NEXT RUN\s+RECORDS\s+DESTINATION`).MatchString(table) ||
		!strings.Contains(table, "every 15m") {
		t.Errorf("list:\n%s", table)
	}

	out = e.ok("run", "Acme EU", "--wait")
	m := runSummary.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("run --wait: no summary of a succeeded run:\n%s", out)
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 || m[2] != "3" {
		t.Errorf("run --wait synced %s records in %s streams, want some in 3:\n%s", m[1], m[2], out)
	}
	if streamRecords(out, "prospects") != 60 {
		t.Errorf("run --wait: want 60 prospects in the per-stream summary:\n%s", out)
	}

	var h history
	e.jsonOf(&h, "history", "Acme EU")
	if len(h.Runs) != 1 || h.Runs[0].Outcome != "succeeded" || h.Runs[0].Trigger != "manual" || h.Runs[0].Records == 0 || len(h.Runs[0].Streams) != 3 {
		t.Errorf("history --json: %+v", h)
	}
	if out := e.ok("history", "Acme EU"); !strings.Contains(out, "succeeded") || !strings.Contains(out, "manual") {
		t.Errorf("history:\n%s", out)
	}

	var s struct {
		Name         string `json:"name"`
		StreamStatus []struct {
			Stream string `json:"stream"`
			Cursor string `json:"cursor"`
			Rows   int64  `json:"rows"`
		} `json:"stream_status"`
		Runs []struct {
			Outcome string `json:"outcome"`
		} `json:"runs"`
	}
	e.jsonOf(&s, "show", "Acme EU")
	prospects := false
	for _, st := range s.StreamStatus {
		if st.Stream == "prospects" {
			prospects = st.Rows == 60 && st.Cursor != ""
		}
	}
	if !prospects || len(s.Runs) != 1 {
		t.Errorf("show --json: want prospects with 60 rows and a cursor, and one run: %+v", s)
	}
	if out := e.ok("show", "Acme EU"); !strings.Contains(out, "acme_eu") || !regexp.MustCompile(`prospects\s+\S+\s+60`).MatchString(out) {
		t.Errorf("show:\n%s", out)
	}

	// A second run reads only what changed; a resync of prospects reads
	// them all again.
	out = e.ok("run", "Acme EU", "--wait")
	if n := streamRecords(out, "prospects"); n < 0 || n >= 60 {
		t.Errorf("second run --wait read %d prospects, want fewer than the first run's 60:\n%s", n, out)
	}
	out = e.ok("resync", "Acme EU", "--streams", "prospects", "--wait")
	if streamRecords(out, "prospects") != 60 || !runSummary.MatchString(out) {
		t.Errorf("resync --streams prospects --wait: want the 60 prospects read again:\n%s", out)
	}

	if out := e.ok("pause", "Acme EU"); !strings.Contains(out, "Paused") {
		t.Errorf("pause: %s", out)
	}
	e.jsonOf(&l, "list")
	if c := l.Connections[0]; !c.Paused || c.State != "paused" {
		t.Errorf("after pause: %+v", c)
	}
	if out := e.ok("resume", "Acme EU"); !strings.Contains(out, "Resumed") {
		t.Errorf("resume: %s", out)
	}
	e.jsonOf(&l, "list")
	if c := l.Connections[0]; c.Paused || c.State == "paused" || c.NextRunAt == nil || c.LastRun == nil || c.LastRun.Records == 0 {
		t.Errorf("after resume: %+v", c)
	}

	if out := e.ok("edit", "Acme EU", "--manual", "--quota-limit", "0.25"); !strings.Contains(out, "Updated Acme EU") || !strings.Contains(out, "manual") {
		t.Errorf("edit: %s", out)
	}
	e.jsonOf(&l, "list")
	if c := l.Connections[0]; c.Schedule != "manual" || c.NextRunAt != nil || c.QuotaShare != 0.25 || c.Namespace != "acme_eu" {
		t.Errorf("after edit --manual --quota-limit 0.25: %+v", c)
	}
	e.ok("edit", "Acme EU", "--all-streams")
	e.jsonOf(&l, "list")
	if c := l.Connections[0]; c.Streams != nil {
		t.Errorf("after edit --all-streams: streams %v, want null (every readable stream)", c.Streams)
	}
	e.ok("edit", "Acme EU", "--streams", "prospects,accounts,stages")
	e.fails("nothing to change", "edit", "Acme EU")
	e.fails("not both", "edit", "Acme EU", "--all-streams", "--streams", "stages")
	e.fails("one schedule", "edit", "Acme EU", "--manual", "--every", "1h")

	// Without --wait a run is queued for serve; cancel takes it back.
	if out := e.ok("run", "Acme EU"); !regexp.MustCompile(`Queued a run of Acme EU \(job \d+\)`).MatchString(out) {
		t.Errorf("run: %s", out)
	}
	if out := e.ok("cancel", "Acme EU"); !strings.Contains(out, "Cancelled") {
		t.Errorf("cancel: %s", out)
	}

	e.fails("--yes", "delete", "Acme EU") // off a terminal
	if n := countRows(t, filepath.Join(e.dir, "out.db"), "sqlite_master WHERE type = 'table' AND name LIKE 'acme_eu%'"); n == 0 {
		t.Fatal("the connection's tables are not in out.db")
	}
	if out := e.ok("delete", "Acme EU", "--yes", "--drop-data"); !strings.Contains(out, "Deleted Acme EU") {
		t.Errorf("delete: %s", out)
	}
	if n := countRows(t, filepath.Join(e.dir, "out.db"), "sqlite_master WHERE type = 'table' AND name LIKE 'acme_eu%'"); n != 0 {
		t.Errorf("%d tables of the connection left after delete --drop-data", n)
	}
	e.jsonOf(&l, "list")
	if len(l.Connections) != 0 {
		t.Errorf("list after delete: %+v", l)
	}
	e.fails("not found", "show", "Acme EU")
	e.fails("not found", "run", "Acme EU", "--wait")
}

// TestConnectionsRedactPasswords: a destination's password never shows,
// in tables or JSON.
func TestConnectionsRedactPasswords(t *testing.T) {
	t.Parallel()
	e := newConnEnv(t, sandbox.Options{Prospects: 10}, nil)
	e.ok("add", "pg", "--credential", "main", "--to", "postgres://test:s3cr3t-pw@127.0.0.1:5432/test", "--paused", "--streams", "stages")
	for _, args := range [][]string{{"list"}, {"list", "--json"}, {"show", "pg", "--json"}} {
		out, errOut, _ := e.run(append([]string{"connections"}, args...)...)
		if strings.Contains(out+errOut, "s3cr3t-pw") || !strings.Contains(out, "xxxxx") {
			t.Errorf("connections %s shows the password or no redaction:\n%s%s", strings.Join(args, " "), out, errOut)
		}
	}
	assertSealed(t, "sqlite", e.db, "s3cr3t-pw")

	// Another key file: a clear refusal, not a URL without its password.
	other := command(t, e.dir, "connections", "list", "--db", e.db, "--key-file", filepath.Join(e.dir, "other.key"))
	var stdout, stderr bytes.Buffer
	other.Stdout, other.Stderr = &stdout, &stderr
	other.Run()
	out, errOut, code := stdout.String(), stderr.String(), other.ProcessState.ExitCode()
	if code == 0 || !strings.Contains(errOut, "sealed") || !strings.Contains(errOut, "--key-file") || strings.Contains(out+errOut, "s3cr3t-pw") {
		t.Errorf("list with another key file: exit %d\n%s%s", code, out, errOut)
	} else if testing.Verbose() {
		t.Logf("list with another key file:\n%s", errOut)
	}
	out, errOut, code = e.run("credentials", "rotate-key")
	if code != 0 || !strings.Contains(out, "and 1 connection destination password.") {
		t.Fatalf("rotate-key: exit %d\n%s%s", code, out, errOut)
	}
	assertSealed(t, "sqlite", e.db, "s3cr3t-pw")
	if out := e.ok("show", "pg"); !strings.Contains(out, "postgres://test:xxxxx@127.0.0.1:5432/test") {
		t.Errorf("show after rotate-key:\n%s", out)
	}
}

// TestConnectionsRefusals: what the service refuses exits non-zero saying
// nothing was changed and what to fix, flag by flag; nothing is stored.
func TestConnectionsRefusals(t *testing.T) {
	t.Parallel()
	e := newConnEnv(t, sandbox.Options{Prospects: 10}, nil)
	dest := "sqlite:" + filepath.Join(e.dir, "out.db")
	for _, tc := range []struct {
		args []string
		says []string
	}{
		{[]string{"add", "bad", "--credential", "main", "--to", "ftp://x", "--every", "5s", "--quota-limit", "3", "--namespace", "Bad NS"},
			[]string{"--to: destination scheme", "--every/--cron: interval 5s is too short", "--quota-limit: quota share 3 is out of range", "--namespace: namespace"}},
		{[]string{"add", "bad", "--credential", "nobody", "--to", dest}, []string{`credential "nobody"`, "not found"}},
	} {
		out, errOut, code := e.run(append([]string{"connections"}, tc.args...)...)
		if code == 0 || !strings.Contains(errOut, "Refused; nothing was changed. Fix: ") {
			t.Errorf("connections %s: exit %d\n%s%s", strings.Join(tc.args, " "), code, out, errOut)
		}
		for _, want := range tc.says {
			if !strings.Contains(errOut, want) {
				t.Errorf("connections %s: stderr lacks %q:\n%s", strings.Join(tc.args, " "), want, errOut)
			}
		}
	}
	// A name that names nothing is not a refusal to fix flag by flag.
	if _, errOut, code := e.run("connections", "cancel", "nobody"); code == 0 || !strings.Contains(errOut, `connection "nobody" not found`) ||
		strings.Contains(errOut, "Refused") {
		t.Errorf("connections cancel nobody: exit %d\n%s", code, errOut)
	}
	e.ok("add", "ok", "--credential", "main", "--to", dest, "--streams", "stages")
	e.fails("Refused; nothing was changed. Fix: connection \"ok\": connection: a connection with this name exists", "add", "ok", "--credential", "main", "--to", dest)
	e.fails("Refused; nothing was changed. Fix: connection \"other\": connection: another connection uses this namespace", "add", "other",
		"--credential", "main", "--to", dest, "--namespace", "ok")
	e.fails("Refused; nothing was changed. Fix: connection ok: the connection has no run queued or running", "cancel", "ok")
	var l listed
	e.jsonOf(&l, "list")
	if len(l.Connections) != 1 || l.Connections[0].Name != "ok" {
		t.Errorf("after the refusals: %+v", l)
	}
}

// assertSealed checks that no connection row of the app database holds
// password in clear, and that some row holds a sealed destination.
func assertSealed(t *testing.T, driver, dsn, password string) {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT destination_url, destination_sealed FROM connections`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	sealed := 0
	for rows.Next() {
		var clear, blob string
		if err := rows.Scan(&clear, &blob); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(clear+blob, password) {
			t.Errorf("the app database holds the password in clear: %q", clear)
		}
		if blob != "" {
			sealed++
		}
	}
	if sealed == 0 {
		t.Error("no sealed destination in the app database")
	}
}

// TestConnectionsRunWaitFails: a run that fails exits non-zero with its
// error, and the history records it.
func TestConnectionsRunWaitFails(t *testing.T) {
	t.Parallel()
	e := newConnEnv(t, sandbox.Options{Prospects: 10}, nil)
	e.ok("add", "broken", "--credential", "main", "--to", "sqlite:"+filepath.Join(e.dir, "missing", "dir", "out.db"), "--streams", "stages")
	out, errOut, code := e.run("connections", "run", "broken", "--wait")
	if code == 0 || !strings.Contains(errOut, "the run of broken failed") {
		t.Errorf("run --wait of a failing connection: exit %d\n%s%s", code, out, errOut)
	}
	var h history
	e.jsonOf(&h, "history", "broken")
	if len(h.Runs) != 1 || h.Runs[0].Outcome != "failed" || h.Runs[0].Error == "" {
		t.Errorf("history --json: %+v", h)
	}
}

// TestConnectionsDeleteOnTerminal: on a terminal delete asks, and only y
// deletes.
func TestConnectionsDeleteOnTerminal(t *testing.T) {
	t.Parallel()
	e := newConnEnv(t, sandbox.Options{Prospects: 10}, nil)
	e.ok("add", "keep", "--credential", "main", "--to", "jsonl:"+filepath.Join(e.dir, "export"), "--streams", "stages")
	for _, answer := range []string{"n", "y"} {
		tm := startTerminal(t, e.dir, append([]string{"connections", "delete", "keep"}, e.storeArgs()...)...)
		if !tm.waitFor(regexp.MustCompile(`Its data stays in jsonl:.*\[y/N\] `), 30*time.Second) {
			t.Fatalf("no question on the terminal:\n%s", tm.output())
		}
		tm.master.Write([]byte(answer + "\r"))
		code := tm.wait(30 * time.Second)
		switch answer {
		case "n":
			if code == 0 || !strings.Contains(tm.output(), "keep was not deleted") {
				t.Errorf("answer n: exit %d\n%s", code, tm.output())
			}
			e.ok("show", "keep")
		case "y":
			if code != 0 || !strings.Contains(tm.output(), "Deleted keep") {
				t.Errorf("answer y: exit %d\n%s", code, tm.output())
			}
			e.fails("not found", "show", "keep")
		}
	}
}

// TestConnectionsRunWaitInterrupt: Ctrl-C during run --wait interrupts
// the run (exit 130), keeps what it committed, and the next run --wait
// resumes it to the end.
func TestConnectionsRunWaitInterrupt(t *testing.T) {
	t.Parallel()
	// The sandbox holds the run's requests for prospects after the fifth
	// until the test lets them go (or the run gives up on them): the run
	// is then surely in the middle of the stream.
	var seen atomic.Int64
	held := make(chan struct{}, 1)
	release := make(chan struct{})
	var once sync.Once
	gate := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/prospects") && seen.Add(1) > 5 {
				select {
				case held <- struct{}{}:
				default:
				}
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
	e := newConnEnv(t, sandbox.Options{Prospects: 1000}, gate)
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before the server closes
	e.ok("add", "big", "--credential", "main", "--to", "sqlite:"+filepath.Join(e.dir, "out.db"), "--streams", "prospects", "--page-size", "25")
	tm := startTerminal(t, e.dir, append([]string{"connections", "run", "big", "--wait"}, e.storeArgs()...)...)
	select {
	case <-held:
	case <-time.After(time.Minute):
		t.Fatalf("the run never reached its sixth page:\n%s", tm.output())
	}
	tm.master.Write([]byte{3})
	if code := tm.wait(30 * time.Second); code != 130 {
		t.Errorf("exit status %d after Ctrl-C, want 130:\n%s", code, tm.output())
	}
	if out := tm.output(); !strings.Contains(out, "Interrupted") || strings.Contains(out, "Error:") {
		t.Errorf("want an interruption, not an error:\n%s", out)
	}
	var h history
	e.jsonOf(&h, "history", "big")
	if len(h.Runs) != 1 || h.Runs[0].Outcome != "interrupted" || h.Runs[0].Records == 0 {
		t.Errorf("history after Ctrl-C: want one interrupted run that synced some records: %+v", h)
	}
	once.Do(func() { close(release) })
	out := e.ok("run", "big", "--wait")
	if !runSummary.MatchString(out) {
		t.Fatalf("second run --wait:\n%s", out)
	}
	e.jsonOf(&h, "history", "big")
	if len(h.Runs) != 2 || h.Runs[0].Outcome != "succeeded" || h.Runs[0].Records+h.Runs[1].Records < 1000 || h.Runs[0].Records >= 1000 {
		t.Errorf("the second run must resume where the first stopped, not start over: %+v", h)
	}
	var s struct {
		StreamStatus []struct {
			Stream string `json:"stream"`
			Rows   int64  `json:"rows"`
		} `json:"stream_status"`
	}
	e.jsonOf(&s, "show", "big")
	if len(s.StreamStatus) != 1 || s.StreamStatus[0].Rows != 1000 {
		t.Errorf("show --json after the resumed run: want 1000 prospects: %+v", s)
	}
}

// streamRecords reads a stream's records from run --wait's summary; -1
// when the stream is not in it.
func streamRecords(out, stream string) int {
	m := regexp.MustCompile(`(?m)^\s*` + stream + `\s+(\d+)\s`).FindStringSubmatch(out)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestConnectionsOnPostgres keeps the app database, the job queue and the
// synced data in PostgreSQL: the connection's data in a schema of its own,
// which delete --drop-data removes.
func TestConnectionsOnPostgres(t *testing.T) {
	t.Parallel()
	appDB := pgtest.DSN(t)
	e := newConnEnvIn(t, appDB, sandbox.Options{Prospects: 40}, nil)
	u, err := url.Parse(appDB)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Del("search_path")
	u.RawQuery = q.Encode()
	// A password (trust authentication ignores it): the run must get the
	// sealed URL back whole.
	u.User = url.UserPassword(u.User.Username(), "pg-s3cr3t")
	dest := u.String()
	b := make([]byte, 5)
	rand.Read(b)
	ns := "c_" + hex.EncodeToString(b)
	db, err := sql.Open("pgx", dest)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t.Cleanup(func() { db.Exec(`DROP SCHEMA IF EXISTS ` + ns + ` CASCADE`) })

	e.ok("add", "warehouse", "--credential", "main", "--to", dest, "--namespace", ns, "--streams", "prospects,stages", "--every", "1h")
	out := e.ok("run", "warehouse", "--wait")
	if streamRecords(out, "prospects") != 40 || !runSummary.MatchString(out) {
		t.Fatalf("run --wait into PostgreSQL:\n%s", out)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM ` + ns + `.prospects`).Scan(&n); err != nil || n != 40 {
		t.Errorf("%s.prospects: %d rows, %v; want 40", ns, n, err)
	}
	var l listed
	e.jsonOf(&l, "list")
	if len(l.Connections) != 1 || l.Connections[0].LastRun == nil || l.Connections[0].LastRun.Outcome != "succeeded" || l.Connections[0].NextRunAt == nil {
		t.Errorf("list --json: %+v", l)
	}
	assertSealed(t, "pgx", appDB, "pg-s3cr3t")
	if out, errOut, code := e.run("credentials", "rotate-key"); code != 0 || !strings.Contains(out, "and 1 connection destination password.") {
		t.Fatalf("rotate-key: exit %d\n%s%s", code, out, errOut)
	}
	assertSealed(t, "pgx", appDB, "pg-s3cr3t")
	// Dropping the data opens the destination: the URL opened with the new key.
	e.ok("delete", "warehouse", "--yes", "--drop-data")
	if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = $1`, ns).Scan(&n); err != nil || n != 0 {
		t.Errorf("schema %s left after delete --drop-data (%d, %v)", ns, n, err)
	}
}
