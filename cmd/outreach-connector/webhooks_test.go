package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/postgres/pgtest"
	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// recorded is one webhook delivery the sandbox sent, and serve's answer.
type recorded struct {
	url    string
	header http.Header
	body   []byte
	status int
}

// deliveryRecorder is the sandbox's webhook transport: it passes every
// delivery on and keeps a copy.
type deliveryRecorder struct {
	mu  sync.Mutex
	got []recorded
}

func (d *deliveryRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := http.DefaultTransport.RoundTrip(req)
	rec := recorded{url: req.URL.String(), header: req.Header.Clone(), body: body}
	if err == nil {
		rec.status = resp.StatusCode
	}
	d.mu.Lock()
	d.got = append(d.got, rec)
	d.mu.Unlock()
	return resp, err
}

func (d *deliveryRecorder) all() []recorded {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]recorded(nil), d.got...)
}

// liveStreams are the mutator's types, each with the attribute its updates
// rewrite.
var liveStreams = []struct{ stream, path, attr string }{
	{"prospects", "prospects", "title"}, {"accounts", "accounts", "industry"}, {"opportunities", "opportunities", "name"},
	{"tasks", "tasks", "note"},
}

// freePort returns a loopback address nothing listens on.
func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestLiveConnectionFollowsTheSandbox: serve (the built binary, with
// --public-url) keeps a live connection's SQLite or PostgreSQL destination equal to the
// sandbox within two seconds of each change, without a scheduled run;
// deletes become deleted rows; forged, altered and replayed deliveries
// change nothing; a webhook Outreach disabled is re-enabled and the gap is
// caught up.
func TestLiveConnectionFollowsTheSandbox(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); testLiveConnection(t, false) })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); testLiveConnection(t, true) })
}

// liveDest reads a live connection's destination: SQLite (tables
// live__STREAM) or PostgreSQL (schema live).
type liveDest struct {
	db *sql.DB
	pg bool
}

// table names a stream's table.
func (d liveDest) table(stream string) string {
	if d.pg {
		return `live."` + stream + `"`
	}
	return "live__" + stream
}

func (d liveDest) updatedAt() string {
	if d.pg {
		return `to_char("updatedAt" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`
	}
	return `"updatedAt"`
}

func testLiveConnection(t *testing.T, pg bool) {
	rec := &deliveryRecorder{}
	clock := sandbox.NewClock(time.Now().Add(-2 * time.Minute).Truncate(time.Second))
	e := newConnEnv(t, sandbox.Options{Prospects: 40, Seed: 11, Clock: clock, WebhookClient: &http.Client{Transport: rec, Timeout: 5 * time.Second}}, nil)
	destPath := filepath.Join(e.dir, "out.db")
	destURL := "sqlite:" + destPath
	if pg {
		destURL = pgtest.Database(t)
	}
	var streams []string
	for _, s := range liveStreams {
		streams = append(streams, s.stream)
	}
	e.ok("add", "live", "--credential", "main", "--to", destURL, "--streams", strings.Join(streams, ","))
	e.ok("run", "live", "--wait")

	// A connection into JSON Lines cannot be live.
	e.ok("add", "files", "--credential", "main", "--to", "jsonl:"+filepath.Join(e.dir, "files"), "--streams", "prospects")
	e.fails("only SQLite and PostgreSQL destinations can be live", "live", "files", "on")

	addr := freePort(t)
	public := "http://" + addr
	s := startServe(t, binary(t), e.dir, "", "--addr", addr, "--public-url", public, "--webhook-check", "200ms", "--log-level", "info")
	out := e.ok("live", "live", "on")
	if !strings.Contains(out, "live is live") {
		t.Errorf("live on: %s", out)
	}
	var l listed
	e.jsonOf(&l, "list")
	var connID string
	for _, c := range l.Connections {
		if c.Name == "live" {
			connID = c.ID
		}
	}
	// serve's check subscribes it (one webhook per type) and queues a
	// catch-up run; wait for that run to end, so what follows is the
	// webhooks' doing alone.
	waitFor(t, 60*time.Second, "the catch-up run after subscribing", func() (bool, string) {
		var h history
		e.jsonOf(&h, "history", "live")
		return len(h.Runs) >= 2 && h.Runs[0].Outcome == "succeeded", fmt.Sprintf("%+v\n%s", h.Runs, s.logs.String())
	})
	if show := e.ok("show", "live"); !regexp.MustCompile(`Live\s+yes`).MatchString(show) {
		t.Errorf("show after live on:\n%s", show)
	}
	client := sandboxClient(t, e.sb)
	hooks := listAllResources(t, client, "webhooks")
	if len(hooks) != len(liveStreams) {
		t.Fatalf("webhooks at the sandbox: %d, want one per type (%d)", len(hooks), len(liveStreams))
	}
	for _, h := range hooks {
		if h.String("url") != public+"/webhooks/"+connID || h.String("action") != "*" {
			t.Errorf("webhook %d: url %q action %q", h.ID, h.String("url"), h.String("action"))
		}
	}
	if strings.Contains(s.logs.String(), hooks[0].String("secret")) {
		t.Error("serve logged a webhook secret")
	}

	driver, dsn := "sqlite", "file:"+destPath+"?mode=ro"
	if pg {
		driver, dsn = "pgx", destURL
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dest := liveDest{db: db, pg: pg}
	same := func() (bool, string) { return sameAsSandbox(t, client, dest) }
	if ok, diff := same(); !ok {
		t.Fatalf("before any change the destination differs: %s", diff)
	}

	// Changes: the mutator (creates, updates, deletes), and a hard delete
	// through the API; each must be in the destination within two seconds.
	for i := range 25 {
		clock.Advance(time.Second)
		e.sb.Mutate(1)
		waitFor(t, 2*time.Second, fmt.Sprintf("mutation %d in the destination", i), same)
	}
	victim := listAllResources(t, client, "prospects")[0].ID
	clock.Advance(time.Second)
	if err := client.Delete(context.Background(), "prospects", victim); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "the API delete in the destination", same)
	var deleted int
	if err := db.QueryRow(`SELECT COUNT(*) FROM `+dest.table("prospects")+` WHERE id = $1 AND _deleted_at IS NOT NULL`, victim).Scan(&deleted); err != nil || deleted != 1 {
		t.Errorf("prospect %d deleted through the API: %d deleted rows (%v)", victim, deleted, err)
	}

	// A genuine delivery of an update, kept for replaying, then a later
	// update of the same prospect.
	target := listAllResources(t, client, "prospects")[0].ID
	clock.Advance(time.Second)
	patchTitle(t, client, target, "first title")
	waitFor(t, 2*time.Second, "the first title", same)
	old := findDelivery(t, rec, "prospect.updated", target, `"first title"`)
	clock.Advance(time.Second)
	patchTitle(t, client, target, "second title")
	waitFor(t, 2*time.Second, "the second title", same)

	post := func(path string, header http.Header, body []byte) int {
		req, _ := http.NewRequest("POST", public+path, bytes.NewReader(body))
		req.Header = header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Replayed: accepted as a delivery, but it does not roll the row back.
	if got := post("/webhooks/"+connID, old.header, old.body); got != http.StatusNoContent {
		t.Errorf("replayed delivery: %d, want 204", got)
	}
	// Altered: the signed body with another title.
	altered := bytes.Replace(old.body, []byte("first title"), []byte("forged title"), 1)
	if got := post("/webhooks/"+connID, old.header, altered); got != http.StatusUnauthorized {
		t.Errorf("altered delivery: %d, want 401", got)
	}
	forged := old.header.Clone()
	forged.Set("Outreach-Webhook-Signature", sandbox.Sign("a guessed secret", altered))
	if got := post("/webhooks/"+connID, forged, altered); got != http.StatusUnauthorized {
		t.Errorf("forged delivery: %d, want 401", got)
	}
	forged.Del("Outreach-Webhook-Signature")
	if got := post("/webhooks/"+connID, forged, altered); got != http.StatusUnauthorized {
		t.Errorf("unsigned delivery: %d, want 401", got)
	}
	if got := post("/webhooks/no-such-connection", old.header, old.body); got != http.StatusNotFound {
		t.Errorf("delivery for an unknown connection: %d, want 404", got)
	}
	if got := post("/webhooks/"+connID, old.header, bytes.Repeat([]byte("x"), 2<<20)); got != http.StatusRequestEntityTooLarge {
		t.Errorf("a 2 MiB delivery: %d, want 413", got)
	}
	var title string
	if err := db.QueryRow(`SELECT title FROM `+dest.table("prospects")+` WHERE id = $1`, target).Scan(&title); err != nil || title != "second title" {
		t.Errorf("after replayed and forged deliveries the title is %q (%v), want second title", title, err)
	}
	if ok, diff := same(); !ok {
		t.Errorf("after replayed and forged deliveries: %s", diff)
	}

	// Outreach disables the prospect webhook; changes meanwhile are not
	// delivered. serve re-enables it and a catch-up run brings the gap.
	hookID, _ := strconv.ParseInt(old.header.Get("Outreach-Webhook-Id"), 10, 64)
	if err := e.sb.DisableWebhook(hookID, "endpoint failing"); err != nil {
		t.Fatal(err)
	}
	before := len(rec.all())
	clock.Advance(time.Second)
	patchTitle(t, client, target, "changed while disabled")
	created, err := client.Create(context.Background(), "prospects", &outreach.Resource{Type: "prospect",
		Attributes: map[string]json.RawMessage{"firstName": json.RawMessage(`"Gap"`), "title": json.RawMessage(`"created while disabled"`)}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the gap caught up after the webhook was re-enabled", same)
	for _, d := range rec.all()[before:] {
		if bytes.Contains(d.body, []byte("while disabled")) {
			t.Errorf("a change made while the webhook was disabled was delivered: %s", d.body)
		}
	}
	h, _, err := client.Get(context.Background(), "webhooks", hookID, nil)
	if err != nil {
		t.Fatal(err)
	}
	var active bool
	json.Unmarshal(h.Attributes["active"], &active)
	if !active || h.String("disabledReason") != "" {
		t.Errorf("webhook %d after the check: active %v, reason %q", hookID, active, h.String("disabledReason"))
	}
	if !strings.Contains(s.logs.String(), "re-enabled") {
		t.Errorf("serve did not log the re-enabled webhook:\n%s", s.logs.String())
	}
	// And deliveries flow again.
	clock.Advance(time.Second)
	patchTitle(t, client, created.ID, "delivered again")
	waitFor(t, 2*time.Second, "a change after re-enabling", same)

	_, metrics := s.get("/metrics", s.token)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`outreach_connector_webhook_deliveries_applied_total\{connection="live",outcome="written",stream="prospects"\} [1-9]`),
		regexp.MustCompile(`outreach_connector_webhook_deliveries_applied_total\{connection="live",outcome="stale",stream="prospects"\} [1-9]`),
		regexp.MustCompile(`outreach_connector_webhook_deliveries_rejected_total\{reason="bad_signature"\} 3`),
		regexp.MustCompile(`outreach_connector_webhook_deliveries_rejected_total\{reason="unknown_connection"\} 1`),
		regexp.MustCompile(`outreach_connector_webhook_apply_lag_seconds_count [1-9]`),
	} {
		if !want.MatchString(metrics) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Not live: its webhooks are deleted at Outreach.
	e.ok("live", "live", "off", "--public-url", public)
	// (A check that ran meanwhile may have made one again from the state
	// before; the next check, seeing the connection not live, deletes it.)
	waitFor(t, 10*time.Second, "no webhooks at the sandbox after live off", func() (bool, string) {
		n := len(listAllResources(t, client, "webhooks"))
		return n == 0, fmt.Sprintf("%d left", n)
	})
	s.stop()
}

// waitFor polls cond until it holds or the deadline passes (then the test
// fails with cond's last explanation).
func waitFor(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %s", what, within, why)
		}
		time.Sleep(20 * time.Millisecond) // the next poll of the observed state
	}
}

func listAllResources(t *testing.T, c *outreach.Client, path string) []*outreach.Resource {
	t.Helper()
	var out []*outreach.Resource
	for r, err := range c.List(context.Background(), path, nil) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func patchTitle(t *testing.T, c *outreach.Client, id int64, title string) {
	t.Helper()
	v, _ := json.Marshal(title)
	if _, err := c.Update(context.Background(), "prospects", &outreach.Resource{Type: "prospect", ID: id,
		Attributes: map[string]json.RawMessage{"title": v}}); err != nil {
		t.Fatal(err)
	}
}

// findDelivery returns the last answered delivery of event about id
// whose body holds holding. The
// recorder keeps a delivery when serve's answer has arrived, which can be
// a moment after the change is visible in the destination: it waits
// (bounded) for it.
func findDelivery(t *testing.T, rec *deliveryRecorder, event string, id int64, holding string) recorded {
	t.Helper()
	var found recorded
	waitFor(t, 2*time.Second, fmt.Sprintf("a %s delivery about %d", event, id), func() (bool, string) {
		all := rec.all()
		for i := len(all) - 1; i >= 0; i-- {
			d := all[i]
			if d.status == http.StatusNoContent && bytes.Contains(d.body, []byte(`"eventName":"`+event+`"`)) &&
				bytes.Contains(d.body, []byte(`"id":`+strconv.FormatInt(id, 10)+`,`)) && bytes.Contains(d.body, []byte(holding)) {
				found = d
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d deliveries recorded", len(all))
	})
	return found
}

// sameAsSandbox compares, for every live stream, the records of the
// sandbox with the destination's rows not marked deleted: the same ids,
// each with the same updatedAt and mutated attribute.
func sameAsSandbox(t *testing.T, c *outreach.Client, dest liveDest) (bool, string) {
	t.Helper()
	for _, s := range liveStreams {
		want := map[int64]string{}
		for _, r := range listAllResources(t, c, s.path) {
			want[r.ID] = r.String("updatedAt") + " | " + r.String(s.attr)
		}
		rows, err := dest.db.Query(fmt.Sprintf(`SELECT id, %s, "%s" FROM %s WHERE _deleted_at IS NULL`, dest.updatedAt(), s.attr, dest.table(s.stream)))
		if err != nil {
			return false, err.Error()
		}
		got := map[int64]string{}
		for rows.Next() {
			var id int64
			var upd, v sql.NullString
			if err := rows.Scan(&id, &upd, &v); err != nil {
				rows.Close()
				return false, err.Error()
			}
			got[id] = upd.String + " | " + v.String
		}
		rows.Close()
		for id, w := range want {
			if g, ok := got[id]; !ok || g != w {
				return false, fmt.Sprintf("%s %d: destination %q (present %v), sandbox %q", s.stream, id, g, ok, w)
			}
		}
		for id, g := range got {
			if _, ok := want[id]; !ok {
				return false, fmt.Sprintf("%s %d: in the destination (%q), gone from the sandbox, not marked deleted", s.stream, id, g)
			}
		}
	}
	return true, ""
}

// TestLiveSecretsAreSealedAndRotated: with --public-url the CLI makes the
// webhooks at once; their secrets are in the app database only sealed,
// and credentials rotate-key re-seals them with the new key.
func TestLiveSecretsAreSealedAndRotated(t *testing.T) {
	t.Parallel()
	e := newConnEnv(t, sandbox.Options{Prospects: 10}, nil)
	e.ok("add", "acme", "--credential", "main", "--to", "sqlite:"+filepath.Join(e.dir, "out.db"), "--streams", "prospects,accounts")
	out := e.ok("live", "acme", "on", "--public-url", "http://127.0.0.1:9")
	if !strings.Contains(out, "Outreach delivers its changes to http://127.0.0.1:9/webhooks/") || !strings.Contains(out, "catch-up run is queued") {
		t.Errorf("live on: %s", out)
	}
	hooks := listAllResources(t, sandboxClient(t, e.sb), "webhooks")
	if len(hooks) != 2 {
		t.Fatalf("webhooks at the sandbox: %d", len(hooks))
	}
	keyIDs := func() []string {
		db, err := sql.Open("sqlite", "file:"+e.db+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.Query(`SELECT secret FROM webhook_subscriptions`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var ids []string
		for rows.Next() {
			var b []byte
			rows.Scan(&b)
			for _, h := range hooks {
				if bytes.Contains(b, []byte(h.String("secret"))) {
					t.Error("a webhook secret is stored in clear")
				}
			}
			id, _ := credential.KeyIDOf(b)
			ids = append(ids, id)
		}
		return ids
	}
	before := keyIDs()
	stdout, stderr, code := e.run("credentials", "rotate-key")
	if code != 0 || !strings.Contains(stdout, "Re-sealed 2 webhook secrets") {
		t.Fatalf("rotate-key: exit %d\n%s%s", code, stdout, stderr)
	}
	keys, err := credential.LoadKeyring(filepath.Join(e.dir, "app.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	after := keyIDs()
	if len(after) != 2 || after[0] != keys.Current() || after[1] != keys.Current() || before[0] == keys.Current() {
		t.Errorf("sealed with keys %v before and %v after rotating to %s", before, after, keys.Current())
	}
	e.fails("give the connection's name and on or off", "live", "acme", "maybe")
}
