package outreach_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

func startSandbox(t testing.TB, opts sandbox.Options) *sandbox.Server {
	t.Helper()
	if opts.Prospects == 0 {
		opts.Prospects = 100
	}
	srv, err := sandbox.Start("", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// refreshingSource is a TokenSource that refreshes through the sandbox's
// token endpoint when the client reports a rejected token.
type refreshingSource struct {
	srv     *sandbox.Server
	mu      sync.Mutex
	access  string
	refresh string
	count   int
}

func (s *refreshingSource) Token(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.access, nil
}

func (s *refreshingSource) Refresh(ctx context.Context, rejected string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.access != rejected {
		return s.access, nil
	}
	app := s.srv.Apps()[0]
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {s.refresh}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}}
	resp, err := http.PostForm(s.srv.URL+"/oauth/token", form)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&tok) != nil {
		return "", fmt.Errorf("refresh: status %d", resp.StatusCode)
	}
	s.access, s.refresh = tok.AccessToken, tok.RefreshToken
	s.count++
	return s.access, nil
}

func newClient(t testing.TB, srv *sandbox.Server, ts outreach.TokenSource, opts ...outreach.Option) *outreach.Client {
	t.Helper()
	if ts == nil {
		access, _, err := srv.IssueToken(1)
		if err != nil {
			t.Fatal(err)
		}
		ts = outreach.StaticToken(access)
	}
	base := []outreach.Option{outreach.WithBaseURL(srv.URL + "/api/v2"), outreach.WithTokenSource(ts),
		outreach.WithRetryPolicy(outreach.RetryPolicy{BaseDelay: time.Millisecond, MaxDelay: 20 * time.Millisecond, MaxAttempts: 8})}
	c, err := outreach.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func collect(t testing.TB, c *outreach.Client, path string, opts *outreach.ListOptions) []*outreach.Resource {
	t.Helper()
	var out []*outreach.Resource
	for r, err := range c.List(context.Background(), path, opts) {
		if err != nil {
			t.Fatalf("list %s: %v", path, err)
		}
		out = append(out, r)
	}
	return out
}

func ids(rs []*outreach.Resource) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	slices.Sort(out)
	return out
}

// TestEveryStreamUnderFaultsAndATightRateLimit is the issue's acceptance
// test: list every collection to the end with faults injected and a small
// rate limit, with a quota below 1, and compare with a clean listing.
func TestEveryStreamUnderFaultsAndATightRateLimit(t *testing.T) {
	clean := startSandbox(t, sandbox.Options{Prospects: 150, Seed: 3})
	faulty := startSandbox(t, sandbox.Options{Prospects: 150, Seed: 3, RateLimit: 60, RateWindow: time.Second,
		Faults: sandbox.Faults{ServerErrors: 0.1, GatewayTimeouts: 0.05, ConnectionResets: 0.05, UnsortedPages: 0.3,
			BadGateway: 0.5, LargePageSize: 50, Maintenance: 0.03, MaintenanceSeconds: 1}})
	cc := newClient(t, clean, nil)
	limiter := outreach.NewRateLimiter(outreach.RateLimiterOptions{QuotaLimit: 0.8})
	var mu sync.Mutex
	worstUsed := 0
	fc := newClient(t, faulty, nil, outreach.WithRateLimiter(limiter), outreach.WithObserver(func(ev outreach.RequestEvent) {
		if ev.RateLimit.Limit > 0 {
			mu.Lock()
			worstUsed = max(worstUsed, ev.RateLimit.Limit-ev.RateLimit.Remaining)
			mu.Unlock()
		}
	}))
	for _, res := range clean.Catalog().Resources() {
		if !res.Ops.List {
			continue
		}
		want := ids(collect(t, cc, res.Path, &outreach.ListOptions{PageSize: 40}))
		got := ids(collect(t, fc, res.Path, &outreach.ListOptions{PageSize: 40}))
		if !slices.Equal(got, want) {
			t.Errorf("%s: %d records under faults, want the %d of a clean listing", res.Path, len(got), len(want))
		}
		if res.Ops.Get && len(want) > 0 {
			r, _, err := fc.Get(context.Background(), res.Path, want[len(want)-1], nil)
			if err != nil || r.ID != want[len(want)-1] || r.Type != res.Type {
				t.Errorf("%s: get %d under faults: %v", res.Path, want[len(want)-1], err)
			}
		}
	}
	c := faulty.Counters()
	if c.RateLimited != 0 {
		t.Errorf("the sandbox sent %d 429s; the quota limit should have prevented them", c.RateLimited)
	}
	if c.FaultsInjected == 0 {
		t.Error("no fault was injected; the test proves nothing")
	}
	if worstUsed > 48 {
		t.Errorf("used %d requests of a window of 60, more than the 80%% quota allows", worstUsed)
	}
}

func TestQuotaLimitHoldsAcrossGoroutines(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Prospects: 60, RateLimit: 12, RateWindow: time.Second, MintInterval: -1})
	limiter := outreach.NewRateLimiter(outreach.RateLimiterOptions{QuotaLimit: 0.5})
	var mu sync.Mutex
	worst := 0
	observer := outreach.WithObserver(func(ev outreach.RequestEvent) {
		mu.Lock()
		defer mu.Unlock()
		worst = max(worst, ev.RateLimit.Limit-ev.RateLimit.Remaining)
	})
	// Two clients of the same user share the limiter, as two syncs would.
	clients := []*outreach.Client{newClient(t, srv, nil, outreach.WithRateLimiter(limiter), observer)}
	clients = append(clients, newClient(t, srv, nil, outreach.WithRateLimiter(limiter), observer))
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			got := collect(t, clients[i%2], "prospects", &outreach.ListOptions{PageSize: 20})
			if len(got) != 60 {
				t.Errorf("goroutine %d listed %d prospects, want 60", i, len(got))
			}
		})
	}
	wg.Wait()
	if worst > 6 {
		t.Errorf("a window saw %d requests, more than half of 12", worst)
	}
	if n := srv.Counters().RateLimited; n != 0 {
		t.Errorf("429s = %d, want 0", n)
	}
}

func TestBudgetAndQuotaErrors(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Prospects: 50})
	c := newClient(t, srv, nil, outreach.WithRateLimiter(outreach.NewRateLimiter(outreach.RateLimiterOptions{Budget: 2})))
	var err error
	n := 0
	for _, e := range c.Pages(context.Background(), "prospects", &outreach.ListOptions{PageSize: 10}) {
		if e != nil {
			err = e
			break
		}
		n++
	}
	var rl *outreach.RateLimitError
	if n != 2 || !errors.As(err, &rl) || rl.Reason != "budget" {
		t.Errorf("pages %d, error %v; want 2 pages then a budget error", n, err)
	}

	tight := startSandbox(t, sandbox.Options{Prospects: 50, RateLimit: 2, RateWindow: time.Hour})
	c = newClient(t, tight, nil, outreach.WithRateLimiter(outreach.NewRateLimiter(outreach.RateLimiterOptions{MaxWait: time.Second})))
	err = nil
	for _, e := range c.Pages(context.Background(), "prospects", &outreach.ListOptions{PageSize: 10}) {
		if e != nil {
			err = e
			break
		}
	}
	if !errors.As(err, &rl) || rl.Reason != "quota" || rl.Limit != 2 || rl.Reset.IsZero() {
		t.Errorf("error = %v, want a quota RateLimitError with the window's reset instead of an hour's wait", err)
	}
	if tight.Counters().RateLimited != 0 {
		t.Error("the client let a request through into a 429")
	}
}

func TestTypedErrors(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Prospects: 20, MintInterval: -1})
	ctx := context.Background()
	admin := newClient(t, srv, nil)
	readOnly, _, _ := srv.IssueToken(1, "prospects.read")
	restricted, _, _ := srv.IssueToken(2)
	tests := []struct {
		name  string
		do    func() error
		check func(error) bool
	}{
		{"not found", func() error { _, _, err := admin.Get(ctx, "prospects", 99999, nil); return err },
			func(err error) bool { return errors.Is(err, outreach.ErrNotFound) }},
		{"validation", func() error {
			_, err := admin.Create(ctx, "prospects", &outreach.Resource{Type: "prospect", Attributes: map[string]json.RawMessage{"openCount": json.RawMessage(`"x"`)}})
			return err
		}, func(err error) bool {
			var e *outreach.APIError
			return errors.As(err, &e) && e.StatusCode == 422 && e.Errors[0].Source.Pointer == "/data/attributes/openCount"
		}},
		{"missing scope", func() error {
			_, _, err := newClient(t, srv, outreach.StaticToken(readOnly)).Get(ctx, "accounts", 1, nil)
			return err
		}, func(err error) bool {
			var e *outreach.AuthError
			return errors.As(err, &e) && e.Kind == outreach.MissingScope && e.Scope == "accounts.read"
		}},
		{"governance", func() error {
			u := &outreach.Resource{Type: "user", ID: 3}
			u.Set("title", "x")
			_, err := newClient(t, srv, outreach.StaticToken(restricted)).Update(ctx, "users", u)
			return err
		}, func(err error) bool {
			var e *outreach.AuthError
			return errors.As(err, &e) && e.Kind == outreach.GovernanceDenied
		}},
		{"rejected token without a refresher", func() error {
			_, _, err := newClient(t, srv, outreach.StaticToken("garbage")).Get(ctx, "prospects", 1, nil)
			return err
		}, func(err error) bool {
			var e *outreach.AuthError
			return errors.As(err, &e) && e.Kind == outreach.TokenRejected
		}},
		{"token to another origin", func() error {
			_, err := admin.Do(ctx, "GET", "http://example.com/api/v2/prospects", nil)
			return err
		}, func(err error) bool { return err != nil && strings.Contains(err.Error(), "not the API's origin") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); !tt.check(err) {
				t.Errorf("error = %v (%T)", err, err)
			}
		})
	}
}

func TestRefreshOnceMidIteration(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Prospects: 120, Clock: sandbox.NewClock(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))})
	access, refresh, err := srv.IssueToken(1)
	if err != nil {
		t.Fatal(err)
	}
	ts := &refreshingSource{srv: srv, access: access, refresh: refresh}
	c := newClient(t, srv, ts)
	n, pages := 0, 0
	for page, err := range c.Pages(context.Background(), "prospects", &outreach.ListOptions{PageSize: 30}) {
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		pages++
		n += len(page.Resources)
		if pages == 2 {
			srv.Clock().Advance(2*time.Hour + time.Minute) // the access token expires mid-iteration
		}
	}
	if n != 120 || ts.count != 1 {
		t.Errorf("listed %d prospects with %d refreshes, want 120 with exactly 1", n, ts.count)
	}
	if got := srv.Counters().Refreshes; got != 1 {
		t.Errorf("sandbox refreshes = %d, want 1", got)
	}
}

func TestRetriesReadsNotWrites(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Prospects: 20, MintInterval: -1})
	c := newClient(t, srv, nil, outreach.WithRetryPolicy(outreach.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond}))
	srv.SetFaults(sandbox.Faults{ServerErrors: 1})
	ctx := context.Background()
	before := srv.Counters().FaultsInjected
	_, _, err := c.Get(ctx, "prospects", 1, nil)
	if got := srv.Counters().FaultsInjected - before; err == nil || got != 3 {
		t.Errorf("GET under 500s: %d requests (err %v), want 3 attempts", got, err)
	}
	before = srv.Counters().FaultsInjected
	_, err = c.Create(ctx, "accounts", &outreach.Resource{Type: "account", Attributes: map[string]json.RawMessage{"name": json.RawMessage(`"A"`)}})
	if got := srv.Counters().FaultsInjected - before; err == nil || got != 1 {
		t.Errorf("POST under 500s: %d requests (err %v), want 1: writes are not retried", got, err)
	}
	writer := newClient(t, srv, nil, outreach.WithRetryPolicy(outreach.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, RetryWrites: true}))
	before = srv.Counters().FaultsInjected
	writer.Create(ctx, "accounts", &outreach.Resource{Type: "account", Attributes: map[string]json.RawMessage{"name": json.RawMessage(`"A"`)}})
	if got := srv.Counters().FaultsInjected - before; got != 3 {
		t.Errorf("POST with RetryWrites: %d requests, want 3", got)
	}

	srv.SetFaults(sandbox.Faults{Maintenance: 0.5, MaintenanceSeconds: 1})
	before = srv.Counters().FaultsInjected
	start := time.Now()
	for range 4 {
		if _, _, err := c.Get(ctx, "prospects", 2, nil); err != nil {
			var api *outreach.APIError
			if !errors.As(err, &api) || api.StatusCode != 503 || api.RetryAfter <= 0 {
				t.Fatalf("maintenance error = %v, want 503 with RetryAfter", err)
			}
		}
	}
	if srv.Counters().FaultsInjected-before > 0 && time.Since(start) < 500*time.Millisecond {
		t.Errorf("maintenance retries took %s: Retry-After was not honoured", time.Since(start))
	}
}

func TestHalvesHeavyPages(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Prospects: 300, Faults: sandbox.Faults{BadGateway: 1, LargePageSize: 100}})
	c := newClient(t, srv, nil)
	var sizes []int
	total := 0
	for page, err := range c.Pages(context.Background(), "mailings", nil) {
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, page.PageSize)
		total += len(page.Resources)
	}
	if total != 300 || sizes[0] != 62 {
		t.Errorf("mailings = %d with page sizes %v, want 300 at 62 (1000 halved until at most 100)", total, sizes)
	}
}

func TestFilters(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Prospects: 200})
	c := newClient(t, srv, nil)
	all := collect(t, c, "prospects", nil)
	pivot := all[50].Time("updatedAt")
	count := func(f func(*outreach.Resource) bool) int {
		n := 0
		for _, r := range all {
			if f(r) {
				n++
			}
		}
		return n
	}
	tests := []struct {
		name    string
		filters []outreach.Filter
		want    int
	}{
		{"in", []outreach.Filter{outreach.In("id", 1, 2, 3)}, 3},
		{"range", []outreach.Filter{outreach.Range("updatedAt", pivot, nil)}, count(func(r *outreach.Resource) bool { return !r.Time("updatedAt").Before(pivot) })},
		{"gte", []outreach.Filter{outreach.Gte("updatedAt", pivot)}, count(func(r *outreach.Resource) bool { return !r.Time("updatedAt").Before(pivot) })},
		{"window", []outreach.Filter{outreach.Gte("updatedAt", pivot), outreach.Lte("updatedAt", pivot.Add(24*time.Hour*90))},
			count(func(r *outreach.Resource) bool {
				u := r.Time("updatedAt")
				return !u.Before(pivot) && !u.After(pivot.Add(24*time.Hour*90))
			})},
		{"new syntax list", []outreach.Filter{outreach.Gte("updatedAt", time.Time{}), outreach.In("id", 4, 5)}, 2},
		{"relationship", []outreach.Filter{outreach.RelIn("account", 2, 3)}, count(func(r *outreach.Resource) bool { id := r.RelID("account"); return id == 2 || id == 3 })},
		{"null", []outreach.Filter{outreach.IsNull("githubUsername")}, count(func(r *outreach.Resource) bool { return r.IsNull("githubUsername") })},
		{"not null", []outreach.Filter{outreach.NotNull("githubUsername")}, count(func(r *outreach.Resource) bool { return !r.IsNull("githubUsername") })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := collect(t, c, "prospects", &outreach.ListOptions{Filters: tt.filters, Sort: []string{"updatedAt"}})
			if len(got) != tt.want {
				t.Errorf("matched %d, want %d", len(got), tt.want)
			}
			for i := 1; i < len(got); i++ {
				if got[i].Time("updatedAt").Before(got[i-1].Time("updatedAt")) {
					t.Fatalf("not sorted by updatedAt at %d", i)
				}
			}
		})
	}
}

func TestWritesAndReadModifyWrite(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Prospects: 30})
	c := newClient(t, srv, nil)
	ctx := context.Background()
	p := &outreach.Resource{Type: "prospect", Relationships: map[string]outreach.Relationship{"account": outreach.ToOne("account", 2)}}
	p.Set("firstName", "Ada")
	p.Set("emails", []string{"ada@example.org"})
	created, err := c.Create(ctx, "prospects", p)
	if err != nil {
		t.Fatal(err)
	}
	if created.ID == 0 || created.String("firstName") != "Ada" || created.RelID("account") != 2 {
		t.Fatalf("created = %d %q account %d", created.ID, created.String("firstName"), created.RelID("account"))
	}
	// Read, change one attribute, write back only the change: attributes
	// Outreach sends beyond the spec (accountName) survive in Attributes.
	got, _, err := c.Get(ctx, "prospects", 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.String("accountName") == "" {
		t.Fatal("undocumented attribute accountName was dropped")
	}
	change := &outreach.Resource{Type: "prospect", ID: got.ID}
	change.Set("title", "Head of Data")
	updated, err := c.Update(ctx, "prospects", change)
	if err != nil {
		t.Fatal(err)
	}
	if updated.String("title") != "Head of Data" || updated.String("accountName") != got.String("accountName") || updated.String("firstName") != got.String("firstName") {
		t.Errorf("update lost data: %q %q %q", updated.String("title"), updated.String("accountName"), updated.String("firstName"))
	}
	state := &outreach.Resource{Type: "sequenceState", Relationships: map[string]outreach.Relationship{
		"prospect": outreach.ToOne("prospect", created.ID), "sequence": outreach.ToOne("sequence", 1), "mailbox": outreach.ToOne("mailbox", 1)}}
	st, err := c.Create(ctx, "sequenceStates", state)
	if err != nil {
		t.Fatal(err)
	}
	paused, err := c.Action(ctx, "sequenceStates", st.ID, "pause", nil)
	if err != nil || paused.String("state") != "paused" {
		t.Errorf("pause: %v, state %q", err, paused.String("state"))
	}
	if err := c.Delete(ctx, "prospects", created.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "prospects", created.ID); !errors.Is(err, outreach.ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
}
