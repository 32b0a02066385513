package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/postgres/pgtest"
	"github.com/outreach-connector/outreach-connector/outreach"
)

// These tests run `serve` processes as nodes sharing one PostgreSQL app
// database, against a `sandbox` process, all built from this package.

// Schedules run ten times faster: "every 1m" is due every 6 s.
const (
	testScale = 10
	dueEvery  = time.Minute / testScale
)

// cluster is an app database, a sandbox process behind a counting proxy,
// and the nodes started on them.
type cluster struct {
	t       *testing.T
	dir     string
	dsn     string
	sandbox string // the sandbox's own URL
	proxy   *windowProxy
	env     []string
	nodes   []*node
	reader  string // an access token of another user, to read the org
}

// node is one serve process.
type node struct {
	name   string
	cmd    *exec.Cmd
	logs   syncBuffer
	banner syncBuffer
	exited chan error
	done   bool
}

// windowProxy forwards to the sandbox and counts the API answers of each
// rate-limit window (by their X-RateLimit-Reset) and the 429s.
type windowProxy struct {
	mu      sync.Mutex
	windows map[string]int
	refused int
}

func (p *windowProxy) worst() (string, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w, n := "", 0
	for k, v := range p.windows {
		if v > n {
			w, n = k, v
		}
	}
	return w, n
}

// newCluster starts a sandbox process with a tight rate limit (limit per
// window) and latency, a proxy that counts its windows, a fresh PostgreSQL
// database, and imports the sandbox's credential "main".
func newCluster(t *testing.T, limit int, window time.Duration, prospects int) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), dsn: pgtest.Database(t),
		env: []string{TimeScaleEnv + "=" + fmt.Sprint(testScale)}}
	if v := os.Getenv(SharedBudgetEnv); v != "" {
		c.env = append(c.env, SharedBudgetEnv+"="+v) // to show the tests fail without it
	}
	sb := command(t, c.dir, "sandbox", "--addr", "127.0.0.1:0", "--mint-interval", "0", "--prospects", fmt.Sprint(prospects), "--seed", "7",
		"--rate-limit", fmt.Sprint(limit), "--rate-window", window.String(), "--faults", `{"latency_ms":40,"latency_jitter_ms":20}`)
	out, err := sb.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sb.Stderr = io.Discard
	if err := sb.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Process.Kill(); sb.Wait() })
	fields := map[string]*regexp.Regexp{"url": regexp.MustCompile(`listening on (http://\S+)`), "id": regexp.MustCompile(`Client id\s+(\S+)`),
		"secret": regexp.MustCompile(`Client secret\s+(\S+)`), "redirect": regexp.MustCompile(`Redirect URI\s+(\S+)`)}
	got := map[string]string{}
	sc := bufio.NewScanner(out)
	for len(got) < len(fields) && sc.Scan() {
		for k, re := range fields {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				got[k] = m[1]
			}
		}
	}
	if len(got) < len(fields) {
		t.Fatalf("the sandbox did not say how to connect: %v", got)
	}
	go io.Copy(io.Discard, out)
	c.sandbox = got["url"]

	target, _ := url.Parse(c.sandbox)
	c.proxy = &windowProxy{windows: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(r *http.Response) error {
		if reset := r.Header.Get("X-RateLimit-Reset"); reset != "" {
			c.proxy.mu.Lock()
			c.proxy.windows[reset]++
			if r.StatusCode == http.StatusTooManyRequests {
				c.proxy.refused++
			}
			c.proxy.mu.Unlock()
		}
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)

	var tok struct {
		Refresh string `json:"refresh_token"`
	}
	c.sandboxJSON("POST", "/_sandbox/tokens", `{"user":1}`, &tok)
	secret := filepath.Join(c.dir, "secret")
	refresh := filepath.Join(c.dir, "refresh")
	os.WriteFile(secret, []byte(got["secret"]), 0o600)
	os.WriteFile(refresh, []byte(tok.Refresh), 0o600)
	c.cli("credentials", "import", "--name", "main", "--client-id", got["id"], "--client-secret-file", secret,
		"--refresh-token-file", refresh, "--api-base-url", srv.URL+"/api/v2", "--redirect-uri", got["redirect"])
	return c
}

// sandboxJSON calls the sandbox's control API.
func (c *cluster) sandboxJSON(method, path, body string, v any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.sandbox+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			c.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// cli runs a command of the binary on the app database; it must succeed.
func (c *cluster) cli(args ...string) string {
	c.t.Helper()
	cmd := command(c.t, c.dir, append(args, "--db", c.dsn, "--key-file", filepath.Join(c.dir, "app.key"), "--log-level", "warn")...)
	cmd.Env = append(cmd.Env, c.env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("%s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

// start starts node name and waits for it to serve.
func (c *cluster) start(name string) *node {
	c.t.Helper()
	return c.startWith(name, "--node-id", name, "--run-timeout", "10s", "--rescue-after", "12s")
}

// startWith starts a node called name (in the test) with serve flags of
// its own beside the cluster's.
func (c *cluster) startWith(name string, flags ...string) *node {
	c.t.Helper()
	n := &node{name: name, exited: make(chan error, 1)}
	n.cmd = command(c.t, c.dir, append([]string{"serve", "--addr", "127.0.0.1:0", "--db", c.dsn, "--key-file", filepath.Join(c.dir, "app.key"),
		"--admin-token-file", filepath.Join(c.dir, "admin-"+name), "--workers", "4"}, flags...)...)
	n.cmd.Env = append(n.cmd.Env, c.env...)
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	n.cmd.Stderr = &n.logs
	if err := n.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() {
		io.Copy(&n.banner, stdout)
		n.exited <- n.cmd.Wait()
	}()
	c.t.Cleanup(func() {
		n.cmd.Process.Kill()
		if c.t.Failed() {
			// Keep the node's log for whoever reads the failure.
			path := filepath.Join(os.TempDir(), fmt.Sprintf("%s-%s.log", strings.ReplaceAll(c.t.Name(), "/", "_"), name))
			if os.WriteFile(path, []byte(n.logs.String()), 0o600) == nil {
				c.t.Logf("the log of %s is in %s", name, path)
			}
		}
	})
	c.waitFor(name+" serving", 60*time.Second, func() bool {
		select {
		case err := <-n.exited:
			c.t.Fatalf("%s exited: %v\n%s", name, err, n.logs.String())
		default:
		}
		return strings.Contains(n.banner.String(), "serving on")
	})
	c.nodes = append(c.nodes, n)
	return n
}

// kill ends a node with SIGKILL: no clean-up at all.
func (n *node) kill(t *testing.T) {
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-n.exited
	n.done = true
}

// stop ends a node with SIGTERM and expects a clean exit.
func (n *node) stop(t *testing.T) {
	t.Helper()
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.exited:
		if err != nil {
			t.Errorf("%s exited with %v:\n%s", n.name, err, n.logs.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not stop on SIGTERM", n.name)
	}
	n.done = true
}

// waitFor polls cond (bounded); the waits end on what the processes
// wrote to the database, never on time alone.
func (c *cluster) waitFor(what string, limit time.Duration, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			for _, n := range c.nodes {
				if !n.done {
					// Go prints every goroutine's stack on SIGQUIT: where it waits.
					n.cmd.Process.Signal(syscall.SIGQUIT)
					<-n.exited
					n.done = true
				}
			}
			var logs strings.Builder
			for _, n := range c.nodes {
				fmt.Fprintf(&logs, "--- %s\n%s\n", n.name, tail(n.logs.String(), 30))
			}
			c.t.Fatalf("timed out waiting for %s\n%s", what, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// db opens the app database (which also holds the connections' data, in
// their schemas).
func (c *cluster) db() *sql.DB {
	c.t.Helper()
	db, err := sql.Open("pgx", c.dsn)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { db.Close() })
	return db
}

// runRow is a run as the app database has it.
type runRow struct {
	conn, outcome, trigger string
	due                    int64
	attempt                int
}

func runs(t *testing.T, db *sql.DB) []runRow {
	t.Helper()
	rows, err := db.Query(`SELECT connection_id, outcome, run_trigger, due_at, attempt FROM connection_runs`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []runRow
	for rows.Next() {
		var r runRow
		if err := rows.Scan(&r.conn, &r.outcome, &r.trigger, &r.due, &r.attempt); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// coalesced reads, from every node's log, the due times a node found
// covered by a run already queued or running: by connection, Unix ms.
var coalescedLine = regexp.MustCompile(`covers this due time" .*connection=(\S+) due=(\S+)`)

func (c *cluster) coalesced() map[string][]int64 {
	out := map[string][]int64{}
	for _, n := range c.nodes {
		for _, m := range coalescedLine.FindAllStringSubmatch(n.logs.String(), -1) {
			due, err := time.Parse(time.RFC3339Nano, m[2])
			if err != nil {
				c.t.Fatalf("%s logged a due time %q: %v", n.name, m[2], err)
			}
			out[m[1]] = append(out[m[1]], due.UnixMilli())
		}
	}
	return out
}

// checkEveryDueOnce checks each connection's due times from the first
// after since (when a node was up: earlier ones collapse into the run
// queued when a node comes, by design) to the last one that succeeded:
// every one on the schedule's grid was either
// run by exactly one successful run, or covered (coalesced) by a run still
// queued or running then, never both, and none is missing.
func (c *cluster) checkEveryDueOnce(db *sql.DB, ids []string, since time.Time) (succeededDues int) {
	c.t.Helper()
	succeeded := map[string]map[int64]int{}
	for _, r := range runs(c.t, db) {
		if r.outcome == "succeeded" && r.due != 0 {
			if succeeded[r.conn] == nil {
				succeeded[r.conn] = map[int64]int{}
			}
			succeeded[r.conn][r.due]++
		}
	}
	coalesced := c.coalesced()
	for _, id := range ids {
		seen := map[int64]string{}
		var dues []int64
		for due, n := range succeeded[id] {
			if n != 1 {
				c.t.Errorf("connection %s: due time %s ran %d times", id, time.UnixMilli(due).UTC(), n)
			}
			seen[due] = "run"
			dues = append(dues, due)
			succeededDues++
		}
		last := slices.Max(dues)
		for _, due := range coalesced[id] {
			if seen[due] != "" {
				c.t.Errorf("connection %s: due time %s both %s and coalesced", id, time.UnixMilli(due).UTC(), seen[due])
			}
			seen[due] = "coalesced"
			if due < last {
				dues = append(dues, due)
			}
		}
		slices.Sort(dues)
		first, _ := slices.BinarySearch(dues, since.UnixMilli())
		dues = dues[first:]
		if len(dues) < 3 {
			c.t.Errorf("connection %s: %d due times after the nodes started; want several", id, len(dues))
		}
		for i := 1; i < len(dues); i++ {
			if gap := time.Duration(dues[i]-dues[i-1]) * time.Millisecond; gap != dueEvery {
				c.t.Errorf("connection %s: due times %s then %s (%s apart, want %s): a due time was skipped",
					id, time.UnixMilli(dues[i-1]).UTC(), time.UnixMilli(dues[i]).UTC(), gap, dueEvery)
			}
		}
	}
	return succeededDues
}

// orgIDs lists the ids of a collection as the sandbox has them, read as
// another user (with a rate budget of its own).
func (c *cluster) orgIDs(path string) []int64 {
	c.t.Helper()
	if c.reader == "" {
		var tok struct {
			Access string `json:"access_token"`
		}
		c.sandboxJSON("POST", "/_sandbox/tokens", `{"user":2}`, &tok)
		c.reader = tok.Access
	}
	cl, err := outreach.NewClient(outreach.WithBaseURL(c.sandbox+"/api/v2"), outreach.WithTokenSource(outreach.StaticToken(c.reader)))
	if err != nil {
		c.t.Fatal(err)
	}
	var ids []int64
	for r, err := range cl.List(context.Background(), path, &outreach.ListOptions{PageSize: 100}) {
		if err != nil {
			c.t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	return ids
}

// checkData compares every connection's rows with the sandbox's org: no
// row lost, none twice.
func (c *cluster) checkData(db *sql.DB, namespaces []string, streams ...string) {
	c.t.Helper()
	for _, st := range streams {
		want := c.orgIDs(st)
		if len(want) == 0 {
			c.t.Fatalf("the sandbox has no %s", st)
		}
		for _, ns := range namespaces {
			rows, err := db.Query(`SELECT id FROM ` + ns + `.` + st + ` ORDER BY id`)
			if err != nil {
				c.t.Fatal(err)
			}
			var got []int64
			for rows.Next() {
				var id int64
				rows.Scan(&id)
				got = append(got, id)
			}
			rows.Close()
			if !slices.Equal(got, want) {
				c.t.Errorf("%s.%s: %d rows, want the sandbox's %d (equal: %v)", ns, st, len(got), len(want), slices.Equal(got, want))
			}
		}
	}
}

// checkBudget reads the sandbox's counters and the proxy's windows: no
// 429, no window past the share.
func (c *cluster) checkBudget(share int) {
	c.t.Helper()
	var counters struct {
		RateLimited int64 `json:"rate_limited"`
		Requests    int64 `json:"requests"`
	}
	c.sandboxJSON("GET", "/_sandbox/counters", "", &counters)
	window, worst := c.proxy.worst()
	c.t.Logf("sandbox: %d requests, %d refused (429); busiest window (reset %s): %d requests, share %d",
		counters.Requests, counters.RateLimited, window, worst, share)
	if counters.RateLimited != 0 {
		c.t.Errorf("the sandbox answered %d requests with 429", counters.RateLimited)
	}
	if worst > share {
		c.t.Errorf("window with reset %s saw %d requests of the Outreach user, more than the quota share of %d", window, worst, share)
	}
}

// TestThreeNodes runs three serve nodes on one PostgreSQL database with
// ten connections of one Outreach user due every (scaled) minute, against
// a slow sandbox with a tight rate limit. One node is killed (SIGKILL)
// while it runs a connection's first sync with pages committed; the run is
// rescued by another node and completes. Every due time runs exactly once
// (or is covered by the run still going then), every connection's rows
// equal the sandbox's, no request is refused and no window sees more than
// the quota share. With OUTREACH_CONNECTOR_SHARED_BUDGET=off in the
// environment the nodes pace alone and the budget checks fail.
func TestThreeNodes(t *testing.T) {
	t.Parallel()
	const (
		limit     = 120
		window    = 5 * time.Second
		quota     = 0.25
		share     = 30 // limit × quota
		prospects = 60
	)
	c := newCluster(t, limit, window, prospects)
	db := c.db()
	var ids, names []string
	for i := range 10 {
		name := fmt.Sprintf("c%d", i)
		c.cli("connections", "add", name, "--credential", "main", "--to", c.dsn, "--streams", "prospects,accounts",
			"--every", "1m", "--quota-limit", fmt.Sprint(quota), "--page-size", "10")
		names = append(names, name)
	}
	var l listed
	if err := json.Unmarshal([]byte(c.cli("connections", "list", "--json")), &l); err != nil {
		t.Fatal(err)
	}
	nsOf := map[string]string{}
	for _, conn := range l.Connections {
		ids = append(ids, conn.ID)
		nsOf[conn.ID] = conn.Namespace
	}
	for _, name := range []string{"n1", "n2", "n3"} {
		c.start(name)
	}
	up := time.Now()

	// A first sync in progress on a node that is not River's leader, with
	// pages committed and more to come: kill that node.
	var victim *node
	var victimConn string
	c.waitFor("a first sync half done on a node", 60*time.Second, func() bool {
		var leader string
		db.QueryRow(`SELECT leader_id FROM river_leader`).Scan(&leader)
		rows, err := db.Query(`SELECT args->>'connection_id', attempted_by[array_length(attempted_by, 1)] FROM river_job
			WHERE state = 'running' AND kind = 'connection_run' AND attempt = 1`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var conn, by string
			rows.Scan(&conn, &by)
			if by == leader || leader == "" {
				continue
			}
			var n int
			if db.QueryRow(`SELECT COUNT(*) FROM `+nsOf[conn]+`.prospects`).Scan(&n) != nil || n == 0 || n > prospects/2 {
				continue
			}
			for _, nd := range c.nodes {
				if nd.name == by {
					victim, victimConn = nd, conn
					return true
				}
			}
		}
		return false
	})
	victim.kill(t)
	t.Logf("killed %s while it ran connection %s", victim.name, victimConn)

	// The rescued run succeeds elsewhere as a retry of the same due time,
	// and every connection then runs a few more due times.
	c.waitFor("the rescued run and three more due times of every connection", 80*time.Second, func() bool {
		rs := runs(t, db)
		rescued := false
		after := map[string]int{}
		for _, r := range rs {
			if r.conn == victimConn && r.trigger == "retry" && r.outcome == "succeeded" {
				rescued = true
			}
			if r.outcome == "succeeded" && r.trigger == "scheduled" {
				after[r.conn]++
			}
		}
		if !rescued {
			return false
		}
		for _, id := range ids {
			if after[id] < 3 {
				return false
			}
		}
		return true
	})
	n := c.checkEveryDueOnce(db, ids, up)
	for _, nd := range c.nodes {
		if !nd.done {
			nd.stop(t)
		}
	}
	t.Logf("%d due times ran, each once", n)
	var namespaces []string
	for _, id := range ids {
		namespaces = append(namespaces, nsOf[id])
	}
	c.checkData(db, namespaces, "prospects", "accounts")
	c.checkBudget(share)
}

// TestRestartOfTheOnlyNode stops the only node (SIGTERM) and starts it
// again once a due time has passed while it was down: that due time runs
// once, at start, and no due time is skipped or run twice.
func TestRestartOfTheOnlyNode(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1000, 5*time.Second, 20)
	db := c.db()
	for _, name := range []string{"r0", "r1"} {
		c.cli("connections", "add", name, "--credential", "main", "--to", c.dsn, "--streams", "prospects", "--every", "1m")
	}
	var l listed
	if err := json.Unmarshal([]byte(c.cli("connections", "list", "--json")), &l); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, conn := range l.Connections {
		ids = append(ids, conn.ID)
	}
	succeeded := func() map[string]int {
		out := map[string]int{}
		for _, r := range runs(t, db) {
			if r.outcome == "succeeded" && r.due != 0 {
				out[r.conn]++
			}
		}
		return out
	}
	n := c.start("solo")
	up := time.Now()
	c.waitFor("two scheduled runs of each connection", 60*time.Second, func() bool {
		s := succeeded()
		return s[ids[0]] >= 2 && s[ids[1]] >= 2
	})
	n.stop(t)
	// A due time passes while no node is up (next_due is on the
	// schedules' scaled clock).
	var missed int64
	c.waitFor("a due time while the node is down", 30*time.Second, func() bool {
		return db.QueryRow(`SELECT MIN(next_due) FROM connection_schedules`).Scan(&missed) == nil &&
			missed < time.Now().UnixMilli()*testScale
	})
	missed /= testScale
	before := succeeded()
	c.start("solo")
	c.waitFor("the missed due time and two more of each connection", 60*time.Second, func() bool {
		s := succeeded()
		return s[ids[0]] >= before[ids[0]]+3 && s[ids[1]] >= before[ids[1]]+3
	})
	ran := 0
	for _, r := range runs(t, db) {
		if r.due == missed && r.outcome == "succeeded" {
			ran++
		}
	}
	if ran != 1 {
		t.Errorf("the due time %s, missed while the node was down, ran %d times; want once", time.UnixMilli(missed).UTC(), ran)
	}
	t.Logf("%d due times ran, each once", c.checkEveryDueOnce(db, ids, up))
	for _, nd := range c.nodes {
		if !nd.done {
			nd.stop(t)
		}
	}
}

// TestKilledOnlyNodeResumesAtOnce kills (SIGKILL) the only node, named by
// default (host and process), in the middle of a run, and starts it again:
// the new process sees its predecessor is gone and retries the run at once,
// not after --rescue-after (an hour here); the data ends complete.
func TestKilledOnlyNodeResumesAtOnce(t *testing.T) {
	t.Parallel()
	const prospects = 3000
	c := newCluster(t, 100000, time.Hour, prospects)
	db := c.db()
	c.cli("connections", "add", "k", "--credential", "main", "--to", c.dsn, "--streams", "prospects", "--manual", "--page-size", "10")
	var l listed
	if err := json.Unmarshal([]byte(c.cli("connections", "list", "--json")), &l); err != nil || len(l.Connections) != 1 {
		t.Fatal(l, err)
	}
	conn := l.Connections[0]
	slow := []string{"--run-timeout", "30m", "--rescue-after", "1h"}
	first := c.startWith("first", slow...)
	c.cli("connections", "run", "k")
	// The first run's record: the records it says it synced.
	recorded := func(outcome string) int64 {
		var streams string
		if err := db.QueryRow(`SELECT streams FROM connection_runs WHERE connection_id = $1 AND run_trigger = 'manual' AND outcome = $2`,
			conn.ID, outcome).Scan(&streams); err != nil {
			return -1
		}
		var st []struct{ Records int64 }
		if err := json.Unmarshal([]byte(streams), &st); err != nil {
			t.Fatalf("streams of the run: %q: %v", streams, err)
		}
		var n int64
		for _, s := range st {
			n += s.Records
		}
		return n
	}
	var synced int64
	c.waitFor("the run under way, its record showing it", 60*time.Second, func() bool {
		var n int
		synced = recorded("")
		return db.QueryRow(`SELECT COUNT(*) FROM `+conn.Namespace+`.prospects`).Scan(&n) == nil && n > 0 && n < prospects/2 && synced > 0
	})
	first.kill(t)
	c.startWith("second", slow...)
	c.waitFor("the run retried and finished", 90*time.Second, func() bool {
		for _, r := range runs(t, db) {
			if r.conn == conn.ID && r.trigger == "retry" && r.outcome == "succeeded" {
				return true
			}
		}
		return false
	})
	c.checkData(db, []string{conn.Namespace}, "prospects")
	// The killed run's record, closed as interrupted, keeps what it did.
	if n := recorded("interrupted"); n < synced || n >= prospects {
		t.Errorf("the killed run's record says %d records; it had said %d before the kill, of %d", n, synced, prospects)
	}
	for _, nd := range c.nodes {
		if !nd.done {
			nd.stop(t)
		}
	}
}
