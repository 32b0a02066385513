package outreach_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// memBudget is an outreach.SharedBudget in memory, as the app database
// keeps it (internal/ratebudget).
type memBudget struct {
	mu    sync.Mutex
	used  map[time.Time]int
	lease time.Time // until when a caller learns the window
}

func (b *memBudget) Take(_ context.Context, _ string, window, now time.Time, n, limit int) (int, time.Time, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if window.IsZero() {
		for w := range b.used {
			if w.After(now) && w.After(window) {
				window = w
			}
		}
		if window.IsZero() {
			if time.Now().Before(b.lease) {
				return 0, time.Time{}, nil
			}
			b.lease = time.Now().Add(5 * time.Second)
			return 1, time.Time{}, nil
		}
	}
	g := max(min(n, limit-b.used[window]), 0)
	b.used[window] += g
	return g, window, nil
}

// windowCounter counts the answers of each rate-limit window, by the
// X-RateLimit-Reset they carry.
type windowCounter struct {
	mu sync.Mutex
	by map[string]int
}

func (c *windowCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		if reset := resp.Header.Get("X-RateLimit-Reset"); reset != "" {
			c.mu.Lock()
			c.by[reset]++
			c.mu.Unlock()
		}
	}
	return resp, err
}

func (c *windowCounter) worst() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := 0
	for _, n := range c.by {
		w = max(w, n)
	}
	return w
}

// Three limiters of one Outreach user, as on three nodes, each with two
// clients listing at once against a slow sandbox: with a shared budget no
// window sees more than the quota share and no request is refused. The
// same load without it usually passes the share (logged, for comparison).
func TestSharedBudgetHoldsTheShareAcrossLimiters(t *testing.T) {
	for _, shared := range []bool{true, false} {
		srv := startSandbox(t, sandbox.Options{Prospects: 60, RateLimit: 20, RateWindow: 2 * time.Second, MintInterval: -1,
			Faults: sandbox.Faults{LatencyMillis: 40}})
		counter := &windowCounter{by: map[string]int{}}
		budget := &memBudget{used: map[time.Time]int{}}
		var clients []*outreach.Client
		for range 3 {
			opts := outreach.RateLimiterOptions{QuotaLimit: 0.5, User: "1", SharedBatch: 2}
			if shared {
				opts.Shared = budget
			}
			l := outreach.NewRateLimiter(opts)
			for range 2 {
				clients = append(clients, newClient(t, srv, nil, outreach.WithRateLimiter(l), outreach.WithHTTPClient(&http.Client{Transport: counter})))
			}
		}
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Go(func() {
				if got := collect(t, c, "prospects", &outreach.ListOptions{PageSize: 10}); len(got) != 60 {
					t.Errorf("listed %d prospects, want 60", len(got))
				}
			})
		}
		wg.Wait()
		worst, refused := counter.worst(), srv.Counters().RateLimited
		if shared && (worst > 10 || refused != 0) {
			t.Errorf("with a shared budget: a window saw %d requests (share: 10 of 20), %d refused", worst, refused)
		}
		t.Logf("shared=%v: worst window %d requests, %d refused", shared, worst, refused)
	}
}
