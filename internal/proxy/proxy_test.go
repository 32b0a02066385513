package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/postgres"
	"github.com/outreach-connector/outreach-connector/internal/postgres/pgtest"
	"github.com/outreach-connector/outreach-connector/internal/proxy"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
	"github.com/outreach-connector/outreach-connector/internal/sqlstore"
	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// env is the proxy in front of a sandbox, over a SQLite app database with
// two credentials: "sales" (Outreach user 1) and "support" (user 2). The
// sandbox sits behind a recording front that keeps the headers of every
// request it receives, and can hold a path until released.
type env struct {
	t        testing.TB
	sb       *sandbox.Sandbox
	upstream *httptest.Server
	srv      *httptest.Server
	db       appDB
	m        *credential.Manager
	sales    *credential.Record
	support  *credential.Record
	limiters *outreach.RateLimiters
	logs     *syncBuffer

	mu   sync.Mutex
	seen []http.Header // headers of API requests the sandbox received
	// hold, when set, is called for every upstream request before the
	// sandbox answers it (to hold or redirect one).
	hold func(w http.ResponseWriter, r *http.Request) bool
	// skew moves the proxy's clock ahead (past its caches).
	skew atomic.Int64
	// drop, when set, makes the front of the proxy lose the answer of the
	// next request: the proxy runs, its answer is thrown away and the
	// connection closed.
	drop atomic.Bool
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// appDB is the app database, SQLite or PostgreSQL.
type appDB interface {
	credential.Store
	APIKeys() *sqlstore.APIKeys
	Idempotency() *sqlstore.Idempotency
	Close() error
}

type envOptions struct {
	// postgres: the app database on PostgreSQL (skipped when unreachable).
	postgres  bool
	rateLimit int
	maxWait   time.Duration
	// quiet: no recording of upstream headers, the access log discarded
	// (benchmarks).
	quiet bool
	// latency delays every answer of the sandbox.
	latency time.Duration
	// attemptTimeout bounds one attempt (0: the default).
	attemptTimeout time.Duration
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	ctx := t.Context()
	e := &env{t: t, logs: &syncBuffer{}}
	sb, err := sandbox.New(sandbox.Options{Prospects: 40, RateLimit: o.rateLimit, Faults: sandbox.Faults{LatencyMillis: int(o.latency / time.Millisecond)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	e.sb = sb
	e.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !o.quiet && strings.HasPrefix(r.URL.Path, "/api/") {
			e.mu.Lock()
			e.seen = append(e.seen, r.Header.Clone())
			hold := e.hold
			e.mu.Unlock()
			if hold != nil && hold(w, r) {
				return
			}
		}
		sb.ServeHTTP(w, r)
	}))
	t.Cleanup(e.upstream.Close)
	if o.postgres {
		e.db, err = postgres.Open(ctx, pgtest.DSN(t))
	} else {
		e.db, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "app.db"))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	keys, err := credential.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	e.m, err = credential.NewManager(credential.Options{Store: e.db, Keyring: keys})
	if err != nil {
		t.Fatal(err)
	}
	app := sb.Apps()[0]
	imp := func(name string, user int64) *credential.Record {
		_, refresh, err := sb.IssueToken(user)
		if err != nil {
			t.Fatal(err)
		}
		sb.Clock().Advance(time.Minute) // past the sandbox's minting interval
		rec, err := e.m.Import(ctx, credential.NewCredential{Name: name, ClientID: app.ClientID, ClientSecret: app.ClientSecret,
			Scopes: sb.Catalog().Scopes(), Environment: credential.Development, APIBaseURL: e.upstream.URL + "/api/v2",
			RedirectURI: app.RedirectURIs[0]}, refresh)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	e.sales, e.support = imp("sales", 1), imp("support", 2)
	e.limiters = outreach.NewRateLimiters(outreach.RateLimiterOptions{})
	var logTo io.Writer = e.logs
	if o.quiet {
		logTo = io.Discard
	}
	p, err := proxy.New(proxy.Options{Credentials: e.m, Keys: e.db.APIKeys(), Idempotency: e.db.Idempotency(), Limiter: e.limiters.For,
		SignedIn: func(r *http.Request) bool { c, err := r.Cookie("session"); return err == nil && c.Value == "signed-in" },
		Now:      func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) },
		MaxWait:  o.maxWait, AttemptTimeout: o.attemptTimeout, Logger: slog.New(slog.NewJSONHandler(logTo, nil)),
		Retry: outreach.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.drop.CompareAndSwap(true, false) {
			p.ServeHTTP(httptest.NewRecorder(), r)
			panic(http.ErrAbortHandler) // the answer is lost on its way back
		}
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

// key creates an API key for the credentials (ids) and returns it.
func (e *env) key(name string, creds ...string) string {
	e.t.Helper()
	secret, k, err := proxy.NewKey(name, creds, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.APIKeys().CreateKey(e.t.Context(), k); err != nil {
		e.t.Fatal(err)
	}
	return secret
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

// call sends a request to the proxy; header is "Name: value" pairs.
func (e *env) call(method, path, body string, header ...string) (*answer, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, h := range header {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Add(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &answer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

func (e *env) must(method, path, body string, header ...string) *answer {
	e.t.Helper()
	a, err := e.call(method, path, body, header...)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return a
}

func bearer(key string) string { return "Authorization: Bearer " + key }

// Anonymous callers, wrong keys, keys of other credentials and revoked keys
// are refused before Outreach is called; a key reaches its credentials, the
// signed-in session every credential.
func TestAuthentication(t *testing.T) {
	e := newEnv(t, envOptions{})
	salesKey := e.key("sales-only", e.sales.ID)
	before := e.sb.Counters().Requests
	for _, c := range []struct {
		name   string
		status int
		header []string
	}{
		{"anonymous", 401, nil},
		{"not a key", 401, []string{"Authorization: Bearer 0123456789abcdef"}},
		{"unknown key", 401, []string{bearer(proxy.KeyPrefix + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")}},
		{"key of the other credential", 403, []string{"X-Api-Key: " + salesKey}},
		{"a session cookie from another site", 403, []string{"Cookie: session=signed-in", "Sec-Fetch-Site: cross-site"}},
		{"a stale session", 401, []string{"Cookie: session=stale"}},
	} {
		a := e.must("GET", "/proxy/support/prospects", "", c.header...)
		if a.status != c.status {
			t.Errorf("%s: %d %s; want %d", c.name, a.status, a.body, c.status)
		}
	}
	if n := e.sb.Counters().Requests - before; n != 0 {
		t.Fatalf("refused calls reached Outreach %d times", n)
	}
	if a := e.must("GET", "/proxy/sales/prospects?page[size]=2", "", bearer(salesKey)); a.status != 200 {
		t.Fatalf("key on its credential: %d %s", a.status, a.body)
	}
	if a := e.must("GET", "/proxy/"+e.sales.ID+"/prospects/1", "", bearer(salesKey)); a.status != 200 {
		t.Fatalf("key on its credential by id: %d %s", a.status, a.body)
	}
	if a := e.must("GET", "/proxy/support/prospects/1", "", "Cookie: session=signed-in", "Sec-Fetch-Site: same-origin"); a.status != 200 {
		t.Fatalf("session: %d %s", a.status, a.body)
	}
	if err := e.db.APIKeys().RevokeKey(t.Context(), "sales-only", time.Now()); err != nil {
		t.Fatal(err)
	}
	// Revoked by another process: refused once the proxy's cache of the
	// key has expired.
	e.skew.Add(int64(proxy.DefaultCacheFor))
	if a := e.must("GET", "/proxy/sales/prospects/1", "", bearer(salesKey)); a.status != 401 {
		t.Fatalf("revoked key: %d %s; want 401", a.status, a.body)
	}
	keys, err := e.db.APIKeys().ListKeys(t.Context())
	if err != nil || len(keys) != 1 || keys[0].LastUsed.IsZero() {
		t.Fatalf("keys %+v, %v; want the key's last use recorded", keys, err)
	}
}

// The caller's Authorization and cookies never reach Outreach: the sandbox
// sees the credential's own token and no cookie; a body without a content
// type gets JSON:API's, and the answer comes back as Outreach gave it.
func TestHeadersForwarded(t *testing.T) {
	e := newEnv(t, envOptions{})
	k := e.key("writer", e.sales.ID)
	body := `{"data":{"type":"prospect","attributes":{"firstName":"Ada","lastName":"Lovelace"}}}`
	a := e.must("POST", "/proxy/sales/prospects", body, bearer(k), "Cookie: oc_session=abc; other=1", "Accept: application/vnd.api+json")
	if a.status != 201 {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	if a.header.Get("X-RateLimit-Limit") == "" {
		t.Error("the answer lost Outreach's X-RateLimit-Limit header")
	}
	e.mu.Lock()
	h := e.seen[len(e.seen)-1]
	e.mu.Unlock()
	if got := h.Get("Authorization"); got == "" || strings.Contains(got, k) || !strings.HasPrefix(got, "Bearer ") {
		t.Errorf("Outreach saw Authorization %q; want the credential's token", got)
	}
	if h.Get("Cookie") != "" || h.Get("X-Api-Key") != "" {
		t.Errorf("Outreach saw Cookie %q / X-Api-Key %q", h.Get("Cookie"), h.Get("X-Api-Key"))
	}
	if ct := h.Get("Content-Type"); ct != "application/vnd.api+json" {
		t.Errorf("Content-Type sent %q; want the JSON:API media type", ct)
	}
	if e.sb.Counters().Creates != 1 {
		t.Fatalf("creates %d", e.sb.Counters().Creates)
	}
}

// A redirect to another host comes back to the caller as it is: the proxy
// does not follow it (and so never sends the token there).
func TestRedirectElsewhereNotFollowed(t *testing.T) {
	e := newEnv(t, envOptions{})
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	e.hold = func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/moved") {
			http.Redirect(w, r, other.URL+"/steal", http.StatusFound)
			return true
		}
		return false
	}
	k := e.key("k", e.sales.ID)
	req, _ := http.NewRequest("GET", e.srv.URL+"/proxy/sales/moved", nil)
	req.Header.Set("Authorization", "Bearer "+k)
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || elsewhere.Load() != 0 {
		t.Fatalf("status %d, the other host called %d times; want the 302 back and no call", resp.StatusCode, elsewhere.Load())
	}
}

// A burst larger than the Outreach user's budget: what fits goes through,
// the rest gets our 429 with Retry-After, and Outreach answers no 429. The
// budget is the one the user's other clients (a sync) spend too.
func TestBurstGetsOur429(t *testing.T) {
	e := newEnv(t, envOptions{rateLimit: 12})
	k := e.key("burst", e.sales.ID)
	// A sync-like client of the same user spends from the same limiter.
	c, err := outreach.NewClient(outreach.WithBaseURL(e.sales.APIBaseURL), outreach.WithTokenSource(e.m.TokenSource(e.sales.ID)),
		outreach.WithRateLimiter(e.limiters.For(e.sales.OutreachUserID)))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Do(t.Context(), "GET", "prospects/1", nil); err != nil {
			t.Fatal(err)
		}
	}
	spent := e.sb.Counters().RequestsByUser["1"] // the import's identity call and the sync's
	const burst = 30
	var wg sync.WaitGroup
	statuses := make([]*answer, burst)
	for i := range burst {
		wg.Go(func() {
			a, err := e.call("GET", "/proxy/sales/prospects/"+strconv.Itoa(i%5+1), "", bearer(k), "X-Max-Wait: 0")
			if err != nil {
				t.Error(err)
				return
			}
			statuses[i] = a
		})
	}
	wg.Wait()
	ok, limited := 0, 0
	for _, a := range statuses {
		switch {
		case a == nil:
		case a.status == 200:
			ok++
		case a.status == 429:
			limited++
			if s, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("our 429 has Retry-After %q", a.header.Get("Retry-After"))
			}
		default:
			t.Errorf("status %d: %s", a.status, a.body)
		}
	}
	cs := e.sb.Counters()
	if cs.RateLimited != 0 {
		t.Fatalf("Outreach (the sandbox) answered %d 429s", cs.RateLimited)
	}
	if limited == 0 || ok == 0 || ok+limited != burst {
		t.Fatalf("%d through, %d limited of %d", ok, limited, burst)
	}
	// What went through is exactly what the budget had left after the
	// other client's requests: the two spend one budget.
	if ok != 12-int(spent) {
		t.Fatalf("%d proxy requests went through; the budget had %d left", ok, 12-spent)
	}
	if !strings.Contains(e.logs.String(), `"status":429`) {
		t.Error("the access log has no 429 line")
	}
}

// A bad X-Max-Wait is refused with a message saying what to send.
func TestBadMaxWait(t *testing.T) {
	e := newEnv(t, envOptions{})
	k := e.key("k", e.sales.ID)
	a := e.must("GET", "/proxy/sales/prospects", "", bearer(k), "X-Max-Wait: soon")
	if a.status != 400 || !strings.Contains(string(a.body), "2s") {
		t.Fatalf("%d %s", a.status, a.body)
	}
}

// A POST with an Idempotency-Key whose answer is lost on the way back to
// the caller, sent again: one record is created, and the repeat gets the
// first answer, marked replayed, without a second call to Outreach.
func TestIdempotentRepeatAfterDroppedAnswer(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := "sqlite"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) { idempotentRepeatAfterDroppedAnswer(t, envOptions{postgres: pg}) })
	}
}

func idempotentRepeatAfterDroppedAnswer(t *testing.T, o envOptions) {
	e := newEnv(t, o)
	k := e.key("writer", e.sales.ID)
	body := `{"data":{"type":"prospect","attributes":{"firstName":"Grace","lastName":"Hopper"}}}`
	e.drop.Store(true)
	if _, err := e.call("POST", "/proxy/sales/prospects", body, bearer(k), "Idempotency-Key: create-grace-1"); err == nil {
		t.Fatal("the first answer arrived; the test meant to lose it")
	}
	writes := e.sb.Counters().WriteRequests
	a := e.must("POST", "/proxy/sales/prospects", body, bearer(k), "Idempotency-Key: create-grace-1")
	if a.status != 201 || a.header.Get("Idempotent-Replayed") != "true" || !strings.Contains(string(a.body), "Hopper") {
		t.Fatalf("repeat: %d %v %s", a.status, a.header, a.body)
	}
	cs := e.sb.Counters()
	if cs.Creates != 1 || cs.WriteRequests != writes {
		t.Fatalf("creates %d, write requests %d → %d; want one create and no call for the repeat", cs.Creates, writes, cs.WriteRequests)
	}
	// The same key on another body is refused; without a key, a POST is
	// never retried, even on a 500.
	if a := e.must("POST", "/proxy/sales/prospects", strings.Replace(body, "Grace", "G.", 1), bearer(k), "Idempotency-Key: create-grace-1"); a.status != 422 {
		t.Fatalf("same key, other body: %d %s", a.status, a.body)
	}
	if err := e.sb.SetFaults(sandbox.Faults{ServerErrors: 1}); err != nil {
		t.Fatal(err)
	}
	faults := e.sb.Counters().FaultsInjected
	if a := e.must("POST", "/proxy/sales/prospects", body, bearer(k)); a.status != 500 {
		t.Fatalf("POST on a 500: %d %s", a.status, a.body)
	}
	if n := e.sb.Counters().FaultsInjected - faults; n != 1 {
		t.Fatalf("a POST without a key was sent %d times; want once", n)
	}
	faults = e.sb.Counters().FaultsInjected
	if a := e.must("GET", "/proxy/sales/prospects/1", "", bearer(k)); a.status != 500 {
		t.Fatalf("GET on 500s: %d", a.status)
	}
	if n := e.sb.Counters().FaultsInjected - faults; n != 3 {
		t.Fatalf("a GET was sent %d times on 500s; want 3 (the retry policy's attempts)", n)
	}
}

// A keyed write whose answer Outreach loses (the connection resets after
// the create committed) is not sent again by the repeat: the repeat is
// told the outcome is unknown, and one record exists.
func TestIdempotentLostUpstreamAnswer(t *testing.T) {
	e := newEnv(t, envOptions{})
	k := e.key("writer", e.sales.ID)
	if err := e.sb.SetFaults(sandbox.Faults{CommittedResets: 1}); err != nil {
		t.Fatal(err)
	}
	body := `{"data":{"type":"prospect","attributes":{"firstName":"Alan","lastName":"Turing"}}}`
	a := e.must("POST", "/proxy/sales/prospects", body, bearer(k), "Idempotency-Key: alan")
	if a.status != 502 || !strings.Contains(string(a.body), `"outcomeUnknown"`) || !strings.Contains(string(a.body), "may or may not") {
		t.Fatalf("lost answer: %d %s; want 502 outcomeUnknown", a.status, a.body)
	}
	// Without a key the answer says the same, and how to make a repeat safe.
	a = e.must("POST", "/proxy/sales/prospects", strings.Replace(body, "Alan", "Ada", 1), bearer(k))
	if a.status != 502 || !strings.Contains(string(a.body), `"outcomeUnknown"`) || !strings.Contains(string(a.body), "Idempotency-Key") {
		t.Fatalf("lost answer of a write without a key: %d %s; want 502 outcomeUnknown", a.status, a.body)
	}
	e.sb.SetFaults(sandbox.Faults{})
	a = e.must("POST", "/proxy/sales/prospects", body, bearer(k), "Idempotency-Key: alan")
	if a.status != 502 || a.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("repeat: %d %s; want the kept 502", a.status, a.body)
	}
	if cs := e.sb.Counters(); cs.Creates != 2 {
		t.Fatalf("creates %d; want 2 (Alan once, Ada once)", cs.Creates)
	}
}

// A DELETE whose answer Outreach loses after deleting is sent again by the
// proxy; Outreach's 404 to the repeat comes back with X-Earlier-Attempt-Lost,
// so the caller knows the lost attempt may have deleted it.
func TestDeleteWhoseAnswerWasLost(t *testing.T) {
	e := newEnv(t, envOptions{})
	k := e.key("writer", e.sales.ID)
	if err := e.sb.SetFaults(sandbox.Faults{CommittedResets: 1}); err != nil {
		t.Fatal(err)
	}
	a := e.must("DELETE", "/proxy/sales/prospects/2", "", bearer(k))
	if a.status != 404 || a.header.Get(outreach.HeaderEarlierAttemptLost) != "true" {
		t.Fatalf("DELETE whose answer was lost: %d %v %s; want 404 with %s", a.status, a.header, a.body, outreach.HeaderEarlierAttemptLost)
	}
	e.sb.SetFaults(sandbox.Faults{})
	if a := e.must("GET", "/proxy/sales/prospects/2", "", bearer(k)); a.status != 404 {
		t.Fatalf("GET after the DELETE: %d", a.status)
	}
	if a := e.must("DELETE", "/proxy/sales/prospects/2", "", bearer(k)); a.status != 404 || a.header.Get(outreach.HeaderEarlierAttemptLost) != "" {
		t.Fatalf("DELETE of a record gone before: %d %v; want Outreach's 404", a.status, a.header)
	}
}

// A repeat that arrives while the first request with the key still runs
// gets 409; once the first is answered, repeats get its answer.
func TestIdempotentConcurrentRepeat(t *testing.T) {
	e := newEnv(t, envOptions{})
	k := e.key("writer", e.sales.ID)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	e.hold = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == "POST" {
			once.Do(func() { close(entered); <-release })
		}
		return false
	}
	body := `{"data":{"type":"prospect","attributes":{"firstName":"Edsger"}}}`
	first := make(chan *answer, 1)
	go func() {
		a, err := e.call("POST", "/proxy/sales/prospects", body, bearer(k), "Idempotency-Key: e1")
		if err != nil {
			t.Error(err)
		}
		first <- a
	}()
	<-entered // the first is at Outreach now
	if a := e.must("POST", "/proxy/sales/prospects", body, bearer(k), "Idempotency-Key: e1"); a.status != 409 || a.header.Get("Retry-After") == "" {
		t.Fatalf("concurrent repeat: %d %s; want 409 with Retry-After", a.status, a.body)
	}
	close(release)
	if a := <-first; a == nil || a.status != 201 {
		t.Fatalf("first: %+v", a)
	}
	if a := e.must("POST", "/proxy/sales/prospects", body, bearer(k), "Idempotency-Key: e1"); a.status != 201 || a.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("later repeat: %d", a.status)
	}
	if e.sb.Counters().Creates != 1 {
		t.Fatalf("creates %d", e.sb.Counters().Creates)
	}
}

// X-Paginate: all follows links.next and answers every record once, one a
// line.
func TestPaginateAll(t *testing.T) {
	e := newEnv(t, envOptions{})
	k := e.key("reader", e.sales.ID)
	a := e.must("GET", "/proxy/sales/prospects?page[size]=7", "", bearer(k), "X-Paginate: all")
	if a.status != 200 || a.header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("%d %v %s", a.status, a.header, a.body)
	}
	ids := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(a.body))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var r struct {
			Type string `json:"type"`
			ID   any    `json:"id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Type != "prospect" {
			t.Fatalf("line %d %q: %v", n+1, sc.Text(), err)
		}
		id, _ := json.Marshal(r.ID)
		if ids[string(id)] {
			t.Fatalf("prospect %s twice", id)
		}
		ids[string(id)] = true
		n++
	}
	// Every prospect the sandbox has, counted directly.
	c, err := outreach.NewClient(outreach.WithBaseURL(e.sales.APIBaseURL), outreach.WithTokenSource(e.m.TokenSource(e.sales.ID)))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := c.Do(t.Context(), "GET", "prospects?count=true&page[size]=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Meta struct {
			Count int `json:"count"`
		} `json:"meta"`
	}
	json.Unmarshal(raw, &doc)
	if n != doc.Meta.Count || n < 15 {
		t.Fatalf("%d lines; the sandbox has %d prospects", n, doc.Meta.Count)
	}
	if !strings.Contains(e.logs.String(), `"pages":`) {
		t.Error("the access log does not say how many pages")
	}
	// Not a list: refused.
	if a := e.must("GET", "/proxy/sales/prospects/1", "", bearer(k), "X-Paginate: all"); a.status != 400 {
		t.Fatalf("paginate a single record: %d", a.status)
	}
}

// The access log names the caller and the status but never the key, the
// Outreach token, or secret-looking query values.
func TestAccessLogRedacted(t *testing.T) {
	e := newEnv(t, envOptions{})
	k := e.key("logged", e.sales.ID)
	a := e.must("GET", "/proxy/sales/prospects?filter[firstName]=Ada&access_token=SECRETVALUE1&code=SECRETCODE2&page[after]=CURSOR3", "", bearer(k))
	if a.status != 200 && a.status != 400 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	e.must("GET", "/proxy/sales/prospects", "", bearer(proxy.KeyPrefix+"WRONGKEYWRONGKEY"))
	tok, err := e.m.Token(context.Background(), e.sales.ID)
	if err != nil {
		t.Fatal(err)
	}
	logs := e.logs.String()
	for _, secret := range []string{k, strings.TrimPrefix(k, proxy.KeyPrefix), "WRONGKEY", tok, "SECRETVALUE1", "SECRETCODE2", "CURSOR3"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, `"caller":"logged"`) || !strings.Contains(logs, `"credential":"sales"`) || !strings.Contains(logs, "filter") {
		t.Errorf("the log lacks caller, credential or path:\n%s", logs)
	}
}

// A key whose first request's process stopped before Outreach's answer was
// kept (a pending claim older than a keyed write may run) is answered 502
// "outcome unknown", kept, and Outreach is not called.
func TestIdempotentClaimOfAStoppedProcess(t *testing.T) {
	e := newEnv(t, envOptions{})
	k := e.key("writer", e.sales.ID)
	secretKey, err := e.db.APIKeys().KeyByHash(t.Context(), proxy.HashKey(k))
	if err != nil {
		t.Fatal(err)
	}
	body := `{"data":{"type":"prospect","attributes":{"firstName":"Barbara"}}}`
	// The claim as a stopped process left it: same request, 10 minutes ago.
	long := time.Now().Add(-10 * time.Minute)
	claim, _, err := e.db.Idempotency().Begin(t.Context(), secretKey.ID, "b1", proxy.Fingerprint("POST", "prospects", []byte(body)), long, long.Add(proxy.IdempotencyTTL))
	if err != nil || claim != proxy.Claimed {
		t.Fatal(claim, err)
	}
	writes := e.sb.Counters().WriteRequests
	for range 2 {
		a := e.must("POST", "/proxy/sales/prospects", body, bearer(k), "Idempotency-Key: b1")
		if a.status != 502 || !strings.Contains(string(a.body), "outcomeUnknown") {
			t.Fatalf("repeat of a stopped claim: %d %s", a.status, a.body)
		}
	}
	if n := e.sb.Counters().WriteRequests - writes; n != 0 {
		t.Fatalf("Outreach was called %d times", n)
	}
}

// Bodies stream both ways: Outreach receives the start of a request body
// before the caller has sent the rest, and the caller reads the start of an
// answer before Outreach has sent the rest. (HTTP clients and servers
// buffer a few KiB, so the halves are 64 KiB each and half of one is
// awaited.)
func TestBodiesStream(t *testing.T) {
	e := newEnv(t, envOptions{})
	k := e.key("streamer", e.sales.ID)
	const half = 64 << 10
	gotFirst, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	defer letGo()
	e.hold = func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case strings.HasSuffix(r.URL.Path, "/upload"):
			buf := make([]byte, half/2)
			if _, err := io.ReadFull(r.Body, buf); err != nil || buf[0] != 'a' {
				t.Errorf("upload starts %q, %v", buf[:8], err)
			}
			close(gotFirst)
			rest, _ := io.ReadAll(r.Body)
			fmt.Fprint(w, len(buf)+len(rest))
			return true
		case strings.HasSuffix(r.URL.Path, "/download"):
			w.Write(bytes.Repeat([]byte("a"), half))
			w.(http.Flusher).Flush()
			<-release
			w.Write(bytes.Repeat([]byte("b"), half))
			return true
		}
		return false
	}
	const bound = time.Minute // a bound on waiting for an event; reaching it fails
	// Upload: the second half is written only once Outreach has read half
	// of the first.
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", e.srv.URL+"/proxy/sales/upload", pr)
	req.Header.Set("Authorization", "Bearer "+k)
	req.Header.Set("Content-Type", "application/vnd.api+json")
	done := make(chan string, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- string(b)
	}()
	pw.Write(bytes.Repeat([]byte("a"), half))
	select {
	case <-gotFirst:
	case <-time.After(bound):
		pw.CloseWithError(errors.New("gave up"))
		t.Fatal("Outreach did not get the start of the body before its end was sent: the proxy buffers request bodies")
	}
	pw.Write(bytes.Repeat([]byte("b"), half))
	pw.Close()
	if got := <-done; got != strconv.Itoa(2*half) {
		t.Fatalf("upload answer %q", got)
	}
	// Download: the caller reads half of the first half while Outreach
	// holds the second.
	req, _ = http.NewRequestWithContext(t.Context(), "GET", e.srv.URL+"/proxy/sales/download", nil)
	req.Header.Set("Authorization", "Bearer "+k)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var timedOut atomic.Bool
	read := make(chan struct{})
	go func() {
		select {
		case <-read:
		case <-time.After(bound):
			timedOut.Store(true)
		}
		letGo()
	}()
	first := make([]byte, half/2)
	_, err = io.ReadFull(resp.Body, first)
	close(read)
	if err != nil || first[0] != 'a' || timedOut.Load() {
		t.Fatalf("first half: %v, timed out %v: the proxy buffers answers", err, timedOut.Load())
	}
	rest, _ := io.ReadAll(resp.Body)
	if len(rest) != half+half/2 || rest[len(rest)-1] != 'b' {
		t.Fatalf("the rest is %d bytes", len(rest))
	}
}

// When another process spends the user's window behind the proxy's back,
// Outreach answers the proxy 429 once: the caller gets our 429 with
// Retry-After, not Outreach's, and the next request does not reach
// Outreach.
func TestWindowSpentElsewhere(t *testing.T) {
	e := newEnv(t, envOptions{rateLimit: 8})
	k := e.key("k", e.sales.ID)
	if a := e.must("GET", "/proxy/sales/prospects/1", "", bearer(k)); a.status != 200 {
		t.Fatalf("first: %d", a.status)
	}
	// Another process: a client with a limiter of its own, until the
	// window is spent.
	other, err := outreach.NewClient(outreach.WithBaseURL(e.sales.APIBaseURL), outreach.WithTokenSource(e.m.TokenSource(e.sales.ID)),
		outreach.WithRateLimiter(outreach.NewRateLimiter(outreach.RateLimiterOptions{MaxWait: -1})))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		_, err := other.Do(t.Context(), "GET", "prospects/2", nil)
		var rl *outreach.RateLimitError
		if errors.As(err, &rl) {
			break
		}
		if err != nil || i > 20 {
			t.Fatalf("the other process: %v after %d requests", err, i)
		}
	}
	limited := e.sb.Counters().RateLimited
	for range 2 {
		a := e.must("GET", "/proxy/sales/prospects/1", "", bearer(k), "X-Max-Wait: 1s")
		if a.status != 429 || a.header.Get("Retry-After") == "" || !strings.Contains(string(a.body), "rateLimited") {
			t.Fatalf("after the window was spent elsewhere: %d %v %s; want our 429", a.status, a.header, a.body)
		}
	}
	if n := e.sb.Counters().RateLimited - limited; n > 1 {
		t.Fatalf("Outreach answered the proxy %d 429s; want at most the one that taught it", n)
	}
}

// Headers with values we do not take, and paths that would climb out of
// the API however their dots are written, are refused with what to send
// instead; Outreach is not called.
func TestRefusesBadHeadersAndDotSegments(t *testing.T) {
	e := newEnv(t, envOptions{})
	k := e.key("reader", e.sales.ID)
	before := e.sb.Counters().Requests
	for _, c := range []struct {
		path   string
		header string
		status int
		id     string
	}{
		{"/proxy/sales/prospects", "X-Paginate: some", 400, "badPaginate"},
		{"/proxy/sales/prospects", "X-Max-Wait: -5s", 400, "badMaxWait"},
		{"/proxy/sales/prospects", "X-Max-Wait: -1", 400, "badMaxWait"},
		{"/proxy/sales/prospects", "X-Max-Wait: soon", 400, "badMaxWait"},
		{"/proxy/sales/.%2e/.%2e/_sandbox/counters", "", 404, "notFound"},
		{"/proxy/sales/%2E./_sandbox/counters", "", 404, "notFound"},
		{"/proxy/sales/prospects/..%2f..%2f_sandbox", "", 404, "notFound"},
	} {
		h := []string{bearer(k)}
		if c.header != "" {
			h = append(h, c.header)
		}
		a := e.must("GET", c.path, "", h...)
		if a.status != c.status || !strings.Contains(string(a.body), `"`+c.id+`"`) {
			t.Errorf("%s %s: %d %s; want %d %s", c.path, c.header, a.status, a.body, c.status, c.id)
		}
	}
	if n := e.sb.Counters().Requests - before; n != 0 {
		t.Errorf("Outreach was called %d times", n)
	}
}

// X-Max-Wait bounds every wait of a request, a Retry-After too: Outreach's
// maintenance answer asking for more is passed on at once, not waited out
// and repeated.
func TestMaxWaitBoundsRetryAfter(t *testing.T) {
	e := newEnv(t, envOptions{})
	k := e.key("k", e.sales.ID)
	if err := e.sb.SetFaults(sandbox.Faults{Maintenance: 1, MaintenanceSeconds: 3}); err != nil {
		t.Fatal(err)
	}
	before := e.sb.Counters().FaultsInjected
	a := e.must("GET", "/proxy/sales/prospects/1", "", bearer(k), "X-Max-Wait: 1s")
	if a.status != 503 || a.header.Get("Retry-After") == "" || !strings.Contains(string(a.body), "scheduledServerMaintenance") {
		t.Fatalf("during maintenance: %d %v %s; want Outreach's 503 with its Retry-After", a.status, a.header, a.body)
	}
	if n := e.sb.Counters().FaultsInjected - before; n != 1 {
		t.Fatalf("Outreach was asked %d times; want once (its Retry-After is past X-Max-Wait)", n)
	}
}

// Outreach hanging: the proxy answers 504 after one attempt timeout, not
// after repeating the attempt (six attempt timeouts, six minutes).
func TestHangAnsweredAfterOneAttempt(t *testing.T) {
	e := newEnv(t, envOptions{attemptTimeout: 300 * time.Millisecond})
	k := e.key("k", e.sales.ID)
	if err := e.sb.SetFaults(sandbox.Faults{Hangs: 1}); err != nil {
		t.Fatal(err)
	}
	before := e.sb.Counters().FaultsInjected
	a := e.must("GET", "/proxy/sales/prospects/1", "", bearer(k))
	if a.status != 504 || !strings.Contains(string(a.body), "upstreamTimeout") {
		t.Fatalf("Outreach hanging: %d %s; want our 504", a.status, a.body)
	}
	if n := e.sb.Counters().FaultsInjected - before; n != 1 {
		t.Fatalf("Outreach was sent %d attempts; want one", n)
	}
}
