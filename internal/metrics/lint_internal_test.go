package metrics

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/outreach-connector/outreach-connector/outreach"
)

// TestLint checks every metric, with one series of each, against
// Prometheus's naming and help conventions.
func TestLint(t *testing.T) {
	m := New()
	m.ObserveRequests("c", "u")(outreach.RequestEvent{Method: http.MethodGet, StatusCode: 200, RateLimit: struct{ Limit, Remaining int }{10, 9}})
	m.SetQuotaShare("u", 1)
	m.RunFinished("a", "succeeded")
	m.RecordsSynced("a", "prospects", 1)
	m.ProxyRequest("c", 200)
	m.ProxyRateLimited("c")
	m.ProxyUpstream("c", time.Second)
	now := time.Now()
	m.SetTokenReader(func(context.Context) ([]TokenState, error) {
		return []TokenState{{Credential: "c", Status: "connected", ExpiresAt: now, IssuedAt: now}}, nil
	})
	m.SetCursorReader(func(context.Context) ([]CursorState, error) {
		return []CursorState{{Connection: "a", Stream: "prospects", Cursor: now}}, nil
	})
	m.SetQueueReader(func(context.Context) (map[string]int64, error) { return map[string]int64{"available": 1}, nil })
	problems, err := testutil.GatherAndLint(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	n, err := testutil.GatherAndCount(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Error("nothing gathered")
	}
}
