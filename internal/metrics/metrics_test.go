package metrics_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/outreach-connector/outreach-connector/internal/metrics"
	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// scrape serves GET /metrics and parses the text it answers.
func scrape(t *testing.T, m *metrics.Metrics) scraped {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

type scraped map[string]*dto.MetricFamily

// series returns the series of the family name, keyed by their labels
// written as k=v,k=v in label-name order.
func (s scraped) series(name string) map[string]float64 {
	out := map[string]float64{}
	f, ok := s[name]
	if !ok {
		return out
	}
	for _, m := range f.GetMetric() {
		var ls []string
		for _, l := range m.GetLabel() {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		var v float64
		switch {
		case m.Counter != nil:
			v = m.Counter.GetValue()
		case m.Gauge != nil:
			v = m.Gauge.GetValue()
		case m.Untyped != nil:
			v = m.Untyped.GetValue()
		}
		out[strings.Join(ls, ",")] = v
	}
	return out
}

func (s scraped) typeOf(name string) dto.MetricType { return s[name].GetType() }

// want checks that the family holds exactly the series given.
func want(t *testing.T, s scraped, name string, series map[string]float64) {
	t.Helper()
	got := s.series(name)
	if len(got) != len(series) {
		t.Errorf("%s: got series %v, want %v", name, got, series)
		return
	}
	for k, v := range series {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s{%s} = %v (present %v), want %v; all: %v", name, k, g, ok, v, got)
		}
	}
}

// TestOutreachRequests drives a real client against the sandbox through a
// known sequence of answers and reads the counters: every attempt counts
// once, by method and status, and the rate-limit gauges say what the last
// answer said.
func TestOutreachRequests(t *testing.T) {
	srv, err := sandbox.Start("", sandbox.Options{Seed: 7, Prospects: 5, RateLimit: 50})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	access, _, err := srv.IssueToken(1)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	m.SetQuotaShare("1", 0.5)
	c, err := outreach.NewClient(outreach.WithBaseURL(srv.URL+"/api/v2"), outreach.WithTokenSource(outreach.StaticToken(access)),
		outreach.WithRetryPolicy(outreach.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Nanosecond, MaxDelay: time.Nanosecond}),
		outreach.WithObserver(m.ObserveRequests("acme", "1")))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	for range 3 {
		if _, err := c.Do(ctx, http.MethodGet, "prospects?page[size]=1", nil); err != nil {
			t.Fatalf("list prospects: %v", err)
		}
	}
	for range 2 {
		if _, err := c.Do(ctx, http.MethodGet, "prospects/987654321", nil); !errors.Is(err, outreach.ErrNotFound) {
			t.Fatalf("get a missing prospect: %v, want not found", err)
		}
	}
	body := []byte(`{"data":{"type":"prospect","id":987654321,"attributes":{"firstName":"X"}}}`)
	if _, err := c.Do(ctx, http.MethodPatch, "prospects/987654321", body); !errors.Is(err, outreach.ErrNotFound) {
		t.Fatalf("update a missing prospect: %v, want not found", err)
	}
	// No answer at all: three attempts, each counted as "error".
	if err := srv.SetFaults(sandbox.Faults{ConnectionResets: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, http.MethodGet, "prospects", nil); err == nil {
		t.Fatal("a request whose connection is reset succeeded")
	}
	resets := srv.Counters().FaultsInjected
	// Server errors: three attempts, each counted as 500.
	if err := srv.SetFaults(sandbox.Faults{ServerErrors: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, http.MethodGet, "prospects", nil); err == nil {
		t.Fatal("a request answered 500 succeeded")
	}

	s := scrape(t, m)
	if s.typeOf("outreach_connector_outreach_requests_total") != dto.MetricType_COUNTER {
		t.Errorf("requests_total is a %v, want a counter", s.typeOf("outreach_connector_outreach_requests_total"))
	}
	want(t, s, "outreach_connector_outreach_requests_total", map[string]float64{
		"credential=acme,method=GET,status=200":   3,
		"credential=acme,method=GET,status=404":   2,
		"credential=acme,method=PATCH,status=404": 1,
		"credential=acme,method=GET,status=error": 3,
		"credential=acme,method=GET,status=500":   3,
	})
	// The sandbox agrees: it answered 6 requests and then sent 3 errors.
	// (It reset more than 3 connections: net/http retries a request on its
	// own, unseen, when a kept-alive connection closes before answering.)
	if got := srv.Counters(); got.Requests != 6 || got.FaultsInjected-resets != 3 {
		t.Errorf("sandbox counted %d requests and %d server errors, want 6 and 3", got.Requests, got.FaultsInjected-resets)
	}
	// The injected faults carry no rate-limit headers: the gauges hold the
	// sixth answer's, 50 - 6 remaining.
	want(t, s, "outreach_connector_outreach_ratelimit_limit", map[string]float64{"user=1": 50})
	want(t, s, "outreach_connector_outreach_ratelimit_remaining", map[string]float64{"user=1": 44})
	want(t, s, "outreach_connector_outreach_ratelimit_used_ratio", map[string]float64{"user=1": 6.0 / 50})
	want(t, s, "outreach_connector_outreach_ratelimit_quota_share", map[string]float64{"user=1": 0.5})
}

// TestObserverWithoutUser counts requests of a credential whose Outreach
// user is not known yet, and sets no rate-limit series for it.
func TestObserverWithoutUser(t *testing.T) {
	m := metrics.New()
	obs := m.ObserveRequests("new", "")
	var ev outreach.RequestEvent
	ev.Method, ev.StatusCode = http.MethodGet, 200
	ev.RateLimit.Limit, ev.RateLimit.Remaining = 100, 99
	obs(ev)
	s := scrape(t, m)
	want(t, s, "outreach_connector_outreach_requests_total", map[string]float64{"credential=new,method=GET,status=200": 1})
	want(t, s, "outreach_connector_outreach_ratelimit_remaining", nil)
}

// TestOddLabels keeps label values bounded and valid: an unknown method is
// "other", and a name that is not UTF-8 cannot make recording fail.
func TestOddLabels(t *testing.T) {
	m := metrics.New()
	obs := m.ObserveRequests("bad\xffname", "u\xff")
	obs(outreach.RequestEvent{Method: "BREW", StatusCode: 418, RateLimit: struct{ Limit, Remaining int }{10, 3}})
	m.RunFinished("c\xff", "succeeded")
	m.SetTokenReader(func(context.Context) ([]metrics.TokenState, error) {
		return []metrics.TokenState{{Credential: "t\xff", Status: "connected"}}, nil
	})
	s := scrape(t, m)
	want(t, s, "outreach_connector_outreach_requests_total", map[string]float64{"credential=bad\uFFFDname,method=other,status=418": 1})
	want(t, s, "outreach_connector_outreach_ratelimit_remaining", map[string]float64{"user=u\uFFFD": 3})
	want(t, s, "outreach_connector_runs_total", map[string]float64{"connection=c\uFFFD,outcome=succeeded": 1})
	want(t, s, "outreach_connector_credential_status", map[string]float64{"credential=t\uFFFD,status=connected": 1})
}

// TestTokens reads token expiry and refresh-token age at scrape time: the
// clock moves and the values follow without anything being recorded.
func TestTokens(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clock := sandbox.NewClock(t0)
	m := metrics.New(metrics.WithClock(clock.Now))
	s := scrape(t, m)
	want(t, s, "outreach_connector_refresh_token_max_age_seconds", map[string]float64{"": 14 * 24 * 3600})
	want(t, s, "outreach_connector_credential_status", nil) // no reader yet

	m.SetTokenReader(func(context.Context) ([]metrics.TokenState, error) {
		return []metrics.TokenState{
			{Credential: "acme", Status: "connected", ExpiresAt: t0.Add(90 * time.Minute), IssuedAt: t0.Add(-13 * 24 * time.Hour)},
			{Credential: "gone", Status: "needs_reauthorization"},
		}, nil
	})
	s = scrape(t, m)
	want(t, s, "outreach_connector_credential_status", map[string]float64{
		"credential=acme,status=connected": 1, "credential=gone,status=needs_reauthorization": 1})
	want(t, s, "outreach_connector_access_token_expires_in_seconds", map[string]float64{"credential=acme": 5400})
	want(t, s, "outreach_connector_refresh_token_age_seconds", map[string]float64{"credential=acme": 13 * 24 * 3600})

	clock.Advance(2 * time.Hour)
	s = scrape(t, m)
	want(t, s, "outreach_connector_access_token_expires_in_seconds", map[string]float64{"credential=acme": -1800})
	want(t, s, "outreach_connector_refresh_token_age_seconds", map[string]float64{"credential=acme": 13*24*3600 + 7200})
}

// TestRunsAndRecords counts a known sequence of runs and records.
func TestRunsAndRecords(t *testing.T) {
	m := metrics.New()
	m.RunFinished("a", "succeeded")
	m.RunFinished("a", "succeeded")
	m.RunFinished("a", "failed")
	m.RunFinished("b", "cancelled")
	m.RecordsSynced("a", "prospects", 120)
	m.RecordsSynced("a", "prospects", 30)
	m.RecordsSynced("a", "accounts", 7)
	m.RecordsSynced("a", "users", 0)  // nothing
	m.RecordsSynced("a", "users", -5) // nothing, and no panic
	s := scrape(t, m)
	if s.typeOf("outreach_connector_runs_total") != dto.MetricType_COUNTER || s.typeOf("outreach_connector_records_synced_total") != dto.MetricType_COUNTER {
		t.Error("runs_total and records_synced_total must be counters")
	}
	want(t, s, "outreach_connector_runs_total", map[string]float64{
		"connection=a,outcome=succeeded": 2, "connection=a,outcome=failed": 1, "connection=b,outcome=cancelled": 1})
	want(t, s, "outreach_connector_records_synced_total", map[string]float64{
		"connection=a,stream=prospects": 150, "connection=a,stream=accounts": 7})

	m.ForgetConnection("a")
	s = scrape(t, m)
	want(t, s, "outreach_connector_runs_total", map[string]float64{"connection=b,outcome=cancelled": 1})
	want(t, s, "outreach_connector_records_synced_total", nil)
}

// TestCursorLagAndQueue reads cursor lag and queue depth at scrape time.
func TestCursorLagAndQueue(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clock := sandbox.NewClock(t0)
	m := metrics.New(metrics.WithClock(clock.Now))
	m.SetCursorReader(func(context.Context) ([]metrics.CursorState, error) {
		return []metrics.CursorState{
			{Connection: "a", Stream: "prospects", Cursor: t0.Add(-15 * time.Minute)},
			{Connection: "a", Stream: "accounts", Cursor: t0.Add(time.Minute)}, // ahead of us: no lag
			{Connection: "a", Stream: "users"},                                 // never synced: no series
		}, nil
	})
	queue := map[string]int64{"available": 3, "running": 1, "retryable": 0}
	m.SetQueueReader(func(context.Context) (map[string]int64, error) { return queue, nil })
	s := scrape(t, m)
	want(t, s, "outreach_connector_cursor_lag_seconds", map[string]float64{
		"connection=a,stream=prospects": 900, "connection=a,stream=accounts": 0})
	want(t, s, "outreach_connector_job_queue_depth", map[string]float64{"state=available": 3, "state=running": 1, "state=retryable": 0})

	clock.Advance(time.Hour)
	queue = map[string]int64{"running": 2}
	s = scrape(t, m)
	want(t, s, "outreach_connector_cursor_lag_seconds", map[string]float64{
		"connection=a,stream=prospects": 4500, "connection=a,stream=accounts": 3540})
	want(t, s, "outreach_connector_job_queue_depth", map[string]float64{"state=running": 2})
}

// TestReaderError: a reader that fails costs its own metrics, not the
// scrape; the failure is logged and counted, and the rest is served.
func TestReaderError(t *testing.T) {
	var logs bytes.Buffer
	m := metrics.New(metrics.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	m.RunFinished("a", "succeeded")
	m.SetTokenReader(func(context.Context) ([]metrics.TokenState, error) {
		return nil, errors.New("credential store unreachable")
	})
	m.SetQueueReader(func(ctx context.Context) (map[string]int64, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("a reader's context has no deadline")
		}
		return map[string]int64{"available": 1}, nil
	})
	s := scrape(t, m)
	want(t, s, "outreach_connector_runs_total", map[string]float64{"connection=a,outcome=succeeded": 1})
	want(t, s, "outreach_connector_job_queue_depth", map[string]float64{"state=available": 1})
	want(t, s, "outreach_connector_credential_status", nil)
	if !strings.Contains(logs.String(), "credential store unreachable") {
		t.Errorf("the failure was not logged: %q", logs.String())
	}
	s = scrape(t, m)
	want(t, s, "promhttp_metric_handler_errors_total", map[string]float64{"cause=gathering": 1, "cause=encoding": 0})
}

// TestInstancesAreSeparate: each Metrics has its own registry, and none
// touches the client library's default registry.
func TestInstancesAreSeparate(t *testing.T) {
	m1, m2 := metrics.New(), metrics.New()
	m1.RunFinished("a", "succeeded")
	m1.ObserveRequests("c", "u")(outreach.RequestEvent{Method: http.MethodGet, StatusCode: 200})
	want(t, scrape(t, m2), "outreach_connector_runs_total", nil)
	want(t, scrape(t, m2), "outreach_connector_outreach_requests_total", nil)
	want(t, scrape(t, m1), "outreach_connector_runs_total", map[string]float64{"connection=a,outcome=succeeded": 1})
	fams, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "outreach_connector_") {
			t.Errorf("%s is in the default registry", f.GetName())
		}
	}
}

// TestForget drops the series of a deleted credential and of an Outreach
// user no longer used.
func TestForget(t *testing.T) {
	m := metrics.New()
	ok := outreach.RequestEvent{Method: http.MethodGet, StatusCode: 200, RateLimit: struct{ Limit, Remaining int }{100, 90}}
	m.ObserveRequests("a", "1")(ok)
	m.ObserveRequests("b", "2")(ok)
	m.SetQuotaShare("1", 0.25)
	m.ForgetCredential("a")
	m.ForgetUser("1")
	s := scrape(t, m)
	want(t, s, "outreach_connector_outreach_requests_total", map[string]float64{"credential=b,method=GET,status=200": 1})
	want(t, s, "outreach_connector_outreach_ratelimit_remaining", map[string]float64{"user=2": 90})
	want(t, s, "outreach_connector_outreach_ratelimit_quota_share", nil)
}

// TestConcurrentObservers: clients of many goroutines record into one
// Metrics; no count is lost (and -race finds no data race).
func TestConcurrentObservers(t *testing.T) {
	m := metrics.New()
	const workers, each = 8, 250
	var wg sync.WaitGroup
	for w := range workers {
		obs := m.ObserveRequests("acme", "1")
		wg.Go(func() {
			for i := range each {
				obs(outreach.RequestEvent{Method: http.MethodGet, StatusCode: 200,
					RateLimit: struct{ Limit, Remaining int }{10000, 10000 - w*each - i}})
				m.RecordsSynced("a", "prospects", 2)
			}
			m.RunFinished("a", "succeeded")
		})
	}
	wg.Wait()
	s := scrape(t, m)
	want(t, s, "outreach_connector_outreach_requests_total", map[string]float64{"credential=acme,method=GET,status=200": workers * each})
	want(t, s, "outreach_connector_records_synced_total", map[string]float64{"connection=a,stream=prospects": 2 * workers * each})
	want(t, s, "outreach_connector_runs_total", map[string]float64{"connection=a,outcome=succeeded": workers})
	if got := s.series("outreach_connector_outreach_ratelimit_limit"); got["user=1"] != 10000 {
		t.Errorf("rate limit %v, want 10000", got)
	}
}
