package outreach_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/outreach-connector/outreach-connector/outreach"
)

// fakeAPI is an http.RoundTripper that plays Outreach without a network,
// for tests inside a synctest bubble: a fixed rate-limit window on a
// server clock that may be skewed from the local one, and requests that
// can hang.
type fakeAPI struct {
	skew   time.Duration // server clock minus local clock
	limit  int
	window time.Duration
	noDate bool
	// hang says whether request number i (from 0) hangs, and whether the
	// hang ignores the request's context (as a broken transport would).
	hang func(i int) (hangs, ignoresContext bool)

	mu        sync.Mutex
	n         int
	used      int
	windowEnd time.Time
	limited   int // 429s sent
}

func (f *fakeAPI) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	i := f.n
	f.n++
	f.mu.Unlock()
	if f.hang != nil {
		if hangs, ignores := f.hang(i); hangs {
			if ignores {
				time.Sleep(10 * time.Minute)
			} else {
				<-r.Context().Done()
				return nil, r.Context().Err()
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now().Add(f.skew)
	if !now.Before(f.windowEnd) {
		f.windowEnd, f.used = now.Truncate(time.Second).Add(f.window), 0
	}
	h := http.Header{}
	if !f.noDate {
		h.Set("Date", now.UTC().Format(http.TimeFormat))
	}
	status, body := 200, `{"data":{"type":"prospect","id":1,"attributes":{}}}`
	if f.limit > 0 {
		h.Set("X-RateLimit-Limit", strconv.Itoa(f.limit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(max(f.limit-f.used-1, 0)))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(f.windowEnd.Unix(), 10))
		if f.used >= f.limit {
			f.limited++
			status, body = 429, `{"errors":[{"id":"rateLimitExceeded","title":"Rate Limit Exceeded"}]}`
			h.Set("Retry-After", strconv.Itoa(int(f.windowEnd.Sub(now).Seconds()+0.999)))
		}
		f.used++
	}
	h.Set("Content-Type", "application/vnd.api+json")
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}

func fakeClient(t *testing.T, api *fakeAPI, limiter *outreach.RateLimiter, opts ...outreach.Option) *outreach.Client {
	t.Helper()
	base := []outreach.Option{outreach.WithBaseURL("http://outreach.test/api/v2"), outreach.WithTokenSource(outreach.StaticToken("t")),
		outreach.WithHTTPClient(&http.Client{Transport: api}), outreach.WithRateLimiter(limiter),
		outreach.WithRetryPolicy(outreach.RetryPolicy{BaseDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond})}
	c, err := outreach.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestResetWaitsUseTheServersDate: the server's clock is two minutes off
// ours; a 10-second window must cost about 10 seconds, as the offset
// between X-RateLimit-Reset and the answer's Date says, not 130 seconds
// (ahead) or a burst of 429s (behind).
func TestResetWaitsUseTheServersDate(t *testing.T) {
	for _, skew := range []time.Duration{2 * time.Minute, -2 * time.Minute, 0} {
		t.Run("skew "+skew.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				api := &fakeAPI{skew: skew, limit: 5, window: 10 * time.Second}
				c := fakeClient(t, api, outreach.NewRateLimiter(outreach.RateLimiterOptions{}))
				start := time.Now()
				for i := range 15 { // three windows
					if _, err := c.Do(context.Background(), "GET", "prospects/1", nil); err != nil {
						t.Fatalf("request %d: %v", i, err)
					}
				}
				took := time.Since(start)
				if took < 18*time.Second || took > 26*time.Second {
					t.Errorf("15 requests at 5 per 10 s window took %s, want about 20 s (two waits of one window each)", took)
				}
				if api.limited != 0 {
					t.Errorf("the server answered %d 429s; the limiter should have waited for the reset", api.limited)
				}
				if w := c.RateLimiter().Waited(); w < 16*time.Second || w > took {
					t.Errorf("Waited() = %s, want the two windows' waits of the %s taken", w, took)
				}
			})
		})
	}
}

// TestResetWithoutADateHeader: with no Date, the reset is compared with
// the local clock, as before.
func TestResetWithoutADateHeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &fakeAPI{limit: 5, window: 10 * time.Second, noDate: true}
		c := fakeClient(t, api, outreach.NewRateLimiter(outreach.RateLimiterOptions{}))
		start := time.Now()
		for i := range 10 {
			if _, err := c.Do(context.Background(), "GET", "prospects/1", nil); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		if took := time.Since(start); took < 8*time.Second || took > 13*time.Second || api.limited != 0 {
			t.Errorf("two windows took %s with %d 429s, want about 10 s and none", took, api.limited)
		}
	})
}

// TestHungRequestIsAbandonedAndRetried: an attempt that gets no answer is
// abandoned after the attempt timeout and retried, and the callers waiting
// for the window to be learnt go on no later than that.
func TestHungRequestIsAbandonedAndRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &fakeAPI{limit: 100, window: time.Hour, hang: func(i int) (bool, bool) { return i == 0, false }}
		var attempts []outreach.RequestEvent
		var mu sync.Mutex
		c := fakeClient(t, api, outreach.NewRateLimiter(outreach.RateLimiterOptions{}), outreach.WithAttemptTimeout(5*time.Second), outreach.WithObserver(func(ev outreach.RequestEvent) {
			mu.Lock()
			attempts = append(attempts, ev)
			mu.Unlock()
		}))
		start := time.Now()
		var wg sync.WaitGroup
		done := make([]time.Duration, 3)
		for g := range 3 {
			wg.Go(func() {
				if _, err := c.Do(context.Background(), "GET", "prospects/1", nil); err != nil {
					t.Errorf("caller %d: %v", g, err)
				}
				done[g] = time.Since(start)
			})
			synctest.Wait() // the first caller's request is the probe, and hangs
		}
		wg.Wait()
		for g, d := range done {
			if d > 6*time.Second {
				t.Errorf("caller %d finished after %s; nothing should wait much past the 5 s attempt timeout", g, d)
			}
		}
		var timeouts []error
		for _, ev := range attempts {
			var timeout *outreach.AttemptTimeoutError
			if errors.As(ev.Err, &timeout) && timeout.After == 5*time.Second && strings.Contains(timeout.Error(), "attempt timeout") {
				timeouts = append(timeouts, ev.Err)
			}
		}
		if len(attempts) != 4 || len(timeouts) != 1 {
			t.Errorf("%d attempts with %d attempt timeouts (%v); want 4 attempts, the hung one timed out once", len(attempts), len(timeouts), timeouts)
		}
	})
}

// TestAStuckProbeDoesNotHoldBackOthers: even when a transport ignores the
// context and a probe never comes back, the other callers of the limiter
// wait no longer than the attempt timeout before probing themselves.
func TestAStuckProbeDoesNotHoldBackOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &fakeAPI{limit: 100, window: time.Hour, hang: func(i int) (bool, bool) { return i == 0, true }}
		c := fakeClient(t, api, outreach.NewRateLimiter(outreach.RateLimiterOptions{}), outreach.WithAttemptTimeout(5*time.Second))
		start := time.Now()
		var wg sync.WaitGroup
		wg.Go(func() { c.Do(context.Background(), "GET", "prospects/1", nil) }) // stuck for 10 minutes
		synctest.Wait()
		done := make([]time.Duration, 2)
		for g := range 2 {
			wg.Go(func() {
				if _, err := c.Do(context.Background(), "GET", "prospects/1", nil); err != nil {
					t.Errorf("caller %d: %v", g, err)
				}
				done[g] = time.Since(start)
			})
		}
		wg.Wait()
		for g, d := range done {
			if d > 6*time.Second {
				t.Errorf("caller %d finished after %s, held back by a stuck probe longer than the 5 s attempt timeout", g, d)
			}
		}
	})
}

func TestAttemptTimeoutMustBePositive(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		if _, err := outreach.NewClient(outreach.WithTokenSource(outreach.StaticToken("t")), outreach.WithAttemptTimeout(d)); err == nil {
			t.Errorf("WithAttemptTimeout(%s) accepted", d)
		}
	}
}
