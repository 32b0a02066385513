package sandbox

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"
)

// Faults are failures injected into API responses. Each rate is the
// probability in [0, 1] that one request gets the fault.
type Faults struct {
	// ServerErrors answers 500 with a JSON:API error.
	ServerErrors float64 `json:"server_errors"`
	// BadGateway answers 502, like Outreach's gateway when a page is too
	// heavy, for collection requests with page[size] above LargePageSize.
	BadGateway    float64 `json:"bad_gateway"`
	LargePageSize int     `json:"large_page_size"` // 100 when zero
	// GatewayTimeouts answers 504.
	GatewayTimeouts float64 `json:"gateway_timeouts"`
	// Maintenance answers 503 scheduledServerMaintenance with an ISO 8601
	// Retry-After MaintenanceSeconds ahead (30 when zero).
	Maintenance        float64 `json:"maintenance"`
	MaintenanceSeconds int     `json:"maintenance_seconds"`
	// ConnectionResets closes the connection without an answer.
	ConnectionResets float64 `json:"connection_resets"`
	// Hangs holds the request open until the client gives up (at most
	// five minutes), then closes the connection.
	Hangs float64 `json:"hangs"`
	// UnsortedPages shuffles the records within a page.
	UnsortedPages float64 `json:"unsorted_pages"`
	// CommittedResets and CommittedBadGateway make a write ambiguous: the
	// create, update, delete or action is committed, then the connection
	// is closed with a TCP reset (CommittedResets) or a 502 gateway page
	// is answered (CommittedBadGateway) instead of the result, as when
	// Outreach's gateway loses the answer of a write that went through.
	// A client cannot tell from the failure whether the write happened.
	CommittedResets     float64 `json:"committed_resets"`
	CommittedBadGateway float64 `json:"committed_bad_gateway"`
	// TokenErrors answers 503 from POST /oauth/token.
	TokenErrors float64 `json:"token_errors"`
	// LatencyMillis delays every API response; LatencyJitterMillis adds up
	// to that much more at random.
	LatencyMillis       int `json:"latency_ms"`
	LatencyJitterMillis int `json:"latency_jitter_ms"`
}

func (f Faults) validate() error {
	for name, r := range map[string]float64{"server_errors": f.ServerErrors, "bad_gateway": f.BadGateway,
		"gateway_timeouts": f.GatewayTimeouts, "maintenance": f.Maintenance, "connection_resets": f.ConnectionResets,
		"hangs": f.Hangs, "unsorted_pages": f.UnsortedPages, "token_errors": f.TokenErrors,
		"committed_resets": f.CommittedResets, "committed_bad_gateway": f.CommittedBadGateway} {
		if r < 0 || r > 1 {
			return fmt.Errorf("sandbox: fault rate %s = %v: must be between 0 and 1", name, r)
		}
	}
	if f.LatencyMillis < 0 || f.LatencyJitterMillis < 0 || f.LargePageSize < 0 || f.MaintenanceSeconds < 0 {
		return fmt.Errorf("sandbox: fault latency, large_page_size and maintenance_seconds must not be negative")
	}
	return nil
}

type faultInjector struct {
	mu  sync.Mutex
	f   Faults
	rnd *rand.Rand
}

func newFaultInjector(f Faults, seed uint64) *faultInjector {
	return &faultInjector{f: f, rnd: rand.New(rand.NewPCG(seed, 0xfa17))}
}

func (fi *faultInjector) set(f Faults) {
	fi.mu.Lock()
	fi.f = f
	fi.mu.Unlock()
}

func (fi *faultInjector) get() Faults {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	return fi.f
}

// roll reports whether a fault with the given rate fires.
func (fi *faultInjector) roll(rate func(Faults) float64) bool {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	r := rate(fi.f)
	return r > 0 && fi.rnd.Float64() < r
}

func (fi *faultInjector) shuffle(n int, swap func(i, j int)) {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	fi.rnd.Shuffle(n, swap)
}

func (fi *faultInjector) latency() time.Duration {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	d := time.Duration(fi.f.LatencyMillis) * time.Millisecond
	if fi.f.LatencyJitterMillis > 0 {
		d += time.Duration(fi.rnd.IntN(fi.f.LatencyJitterMillis+1)) * time.Millisecond
	}
	return d
}

// inject applies the request-level faults to an API request. It reports
// true when it answered (or dropped) the request.
func (s *Sandbox) inject(w http.ResponseWriter, r *http.Request) bool {
	fi := s.faults
	if d := fi.latency(); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return true
		}
	}
	switch {
	case fi.roll(func(f Faults) float64 { return f.ConnectionResets }):
		s.stats.faults.Add(1)
		resetConnection(w)
		return true
	case fi.roll(func(f Faults) float64 { return f.Hangs }):
		s.stats.faults.Add(1)
		t := time.NewTimer(5 * time.Minute)
		select {
		case <-r.Context().Done():
		case <-s.closing:
		case <-t.C:
		}
		t.Stop()
		resetConnection(w)
		return true
	case fi.roll(func(f Faults) float64 { return f.Maintenance }):
		s.stats.faults.Add(1)
		secs := fi.get().MaintenanceSeconds
		if secs == 0 {
			secs = 30
		}
		until := s.clock.Now().Add(time.Duration(secs) * time.Second).Format("2006-01-02T15:04:05Z")
		w.Header().Set("Retry-After", until)
		writeErrors(w, http.StatusServiceUnavailable, apiError{ID: "scheduledServerMaintenance", Title: "Scheduled Server Maintenance",
			Detail: "Scheduled server maintenance is under way; please try again at " + until + "."})
		return true
	case fi.roll(func(f Faults) float64 { return f.ServerErrors }):
		s.stats.faults.Add(1)
		writeErrors(w, http.StatusInternalServerError, apiError{ID: "internalServerError", Title: "Internal Server Error",
			Detail: "An unexpected error occurred."})
		return true
	case fi.roll(func(f Faults) float64 { return f.GatewayTimeouts }):
		s.stats.faults.Add(1)
		writeGatewayPage(w, http.StatusGatewayTimeout)
		return true
	}
	return false
}

// loseAnswer applies the committed-write faults after a write was
// committed: it reports true when it dropped the connection or answered
// 502 in place of the write's result.
func (s *Sandbox) loseAnswer(w http.ResponseWriter) bool {
	fi := s.faults
	switch {
	case fi.roll(func(f Faults) float64 { return f.CommittedResets }):
		s.stats.faults.Add(1)
		s.stats.lostAnswers.Add(1)
		resetConnection(w)
		return true
	case fi.roll(func(f Faults) float64 { return f.CommittedBadGateway }):
		s.stats.faults.Add(1)
		s.stats.lostAnswers.Add(1)
		writeGatewayPage(w, http.StatusBadGateway)
		return true
	}
	return false
}

// writeGatewayPage answers like a load balancer: HTML, not JSON:API.
func writeGatewayPage(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<html><head><title>%d %s</title></head><body><center><h1>%d %s</h1></center></body></html>\n",
		status, http.StatusText(status), status, http.StatusText(status))
}

// resetConnection drops the connection with a TCP reset.
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	conn.Close()
}
