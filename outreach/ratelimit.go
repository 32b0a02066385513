package outreach

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rateInfo is what the X-RateLimit-* headers of one response say.
type rateInfo struct {
	limit, remaining int
	reset            time.Time
	ok               bool // the headers were present and parsed
	// window names the window by its reset on the server's clock (from
	// X-RateLimit-Reset; zero without it); server is the answer's time.
	window, server time.Time
}

// serverNow is the server's time when it answered: the answer's Date
// header, or now when it has none (or an unreadable one).
func serverNow(h http.Header, now time.Time) time.Time {
	if t, err := http.ParseTime(h.Get("Date")); err == nil {
		return t
	}
	return now
}

// rateFromHeaders parses X-RateLimit-Limit, X-RateLimit-Remaining (the
// first of comma-separated values: Outreach sends "9999, 19988") and
// X-RateLimit-Reset (epoch seconds; a number below 10,000,000 is taken as
// seconds from now, and an HTTP or ISO 8601 date is accepted too). An absolute
// reset is read on the server's clock: the wait is the reset minus the
// answer's Date, applied to the local now, so a server clock ahead or
// behind ours does not lengthen or shorten it. Without a Date header the
// reset is compared with the local clock.
func rateFromHeaders(h http.Header, now time.Time) rateInfo {
	var ri rateInfo
	srv := serverNow(h, now)
	limit, err1 := strconv.Atoi(strings.TrimSpace(h.Get("X-RateLimit-Limit")))
	rem := h.Get("X-RateLimit-Remaining")
	if i := strings.IndexByte(rem, ','); i >= 0 {
		rem = rem[:i]
	}
	remaining, err2 := strconv.Atoi(strings.TrimSpace(rem))
	if err1 != nil || err2 != nil {
		return ri
	}
	ri.limit, ri.remaining, ri.ok = limit, remaining, true
	if reset := parseReset(h.Get("X-RateLimit-Reset"), srv); !reset.IsZero() {
		ri.reset = now.Add(reset.Sub(srv))
		ri.window, ri.server = reset.Truncate(time.Second), srv
	} else {
		if d, ok := parseRetryAfter(h.Get("Retry-After"), srv); ok {
			ri.reset = now.Add(d)
		} else {
			ri.reset = now.Add(time.Hour) // Outreach's window when nothing better is known
		}
	}
	return ri
}

func parseReset(v string, now time.Time) time.Time {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n < 1e7 { // a delta in seconds (Outreach's window is an hour), not an epoch
			return now.Add(time.Duration(n * float64(time.Second)))
		}
		return time.Unix(int64(n), 0)
	}
	if t, ok := parseDate(v); ok {
		return t
	}
	return time.Time{}
}

// parseRetryAfter reads seconds, an HTTP date, or an ISO 8601 date (as on
// Outreach's 503 maintenance answers) into a wait from now. For a date,
// pass the server's now (serverNow) so that clock skew does not count.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
		return time.Duration(n * float64(time.Second)), true
	}
	if t, ok := parseDate(v); ok {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func parseDate(v string) (time.Time, bool) {
	if t, err := http.ParseTime(v); err == nil {
		return t, true
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// RateLimiterOptions configure a RateLimiter.
type RateLimiterOptions struct {
	// QuotaLimit is the share of the hourly quota this limiter may use, in
	// (0, 1]; 0 means 1. When the used share of the window would pass it,
	// requests wait for the window's reset.
	QuotaLimit float64
	// Budget caps the requests of this limiter's lifetime (a run); 0 means
	// no cap. Past it, requests fail with a *RateLimitError (Reason
	// "budget").
	Budget int64
	// MaxWait caps one wait for the window to reset; a longer wait fails
	// with a *RateLimitError (Reason "quota") instead. 0 means 65 minutes
	// (a full Outreach window); negative means never wait.
	MaxWait time.Duration
	// Now tells the time; nil means time.Now.
	Now func() time.Time
	// OnWait, when set, is called when requests start to wait for the
	// window to reset (once per wait, however many callers wait), so that
	// a caller can say why nothing moves. It runs on the waiting goroutine,
	// outside the limiter's lock, and must return quickly.
	OnWait func(RateWait)
	// Shared, when set, is the budget of User shared with other processes
	// (SharedBudget): every request also needs a permit from it, taken
	// SharedBatch (default DefaultSharedBatch) at a time; when it grants
	// none, requests wait for the window to reset.
	Shared      SharedBudget
	User        string
	SharedBatch int
}

// RateWait describes a wait for Outreach's rate-limit window to reset.
type RateWait struct {
	Until            time.Time // when requests go out again
	Remaining, Limit int       // of the window, as Outreach last said
}

// RateLimiter paces requests to stay within Outreach's per-user rate limit
// and the caller's quota. Outreach counts 10,000 requests an hour per user
// across every app and token of that user, so share one RateLimiter among
// every client and goroutine that uses the same Outreach user. It learns
// the window from the X-RateLimit-* headers of each answer. Safe for
// concurrent use.
type RateLimiter struct {
	quota   float64
	budget  int64
	maxWait time.Duration
	now     func() time.Time
	onWait  func(RateWait)

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced whenever state changes
	known      bool          // limit/remaining/reset come from an answer
	limit      int
	remaining  int // as of the last answer
	reset      time.Time
	inFlight   int       // sent, not yet answered
	probeSince time.Time // when the last probe went out
	sent       int64     // over the lifetime, for the budget
	// the time callers spent waiting for a window to reset
	waited       time.Duration
	resetWaiters int
	waitStart    time.Time
	announced    time.Time // the reset last told to onWait
	window       time.Time // the known window's reset on the server's clock
	shared       sharedState
}

// NewRateLimiter returns a limiter.
func NewRateLimiter(opts RateLimiterOptions) *RateLimiter {
	l := &RateLimiter{quota: opts.QuotaLimit, budget: opts.Budget, maxWait: opts.MaxWait, now: opts.Now, onWait: opts.OnWait, changed: make(chan struct{})}
	if l.quota <= 0 || l.quota > 1 {
		l.quota = 1
	}
	if l.maxWait == 0 {
		l.maxWait = 65 * time.Minute
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.shared = sharedState{budget: opts.Shared, user: opts.User, batch: opts.SharedBatch}
	if l.shared.batch <= 0 {
		l.shared.batch = DefaultSharedBatch
	}
	return l
}

// Sent returns how many requests the limiter let through.
func (l *RateLimiter) Sent() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent
}

// acquire waits until one request may be sent and counts it in flight.
// Every successful acquire must be followed by one release. probeBound is
// the longest one attempt of the caller may take: a probe (the one request
// allowed while the window is unknown) older than that no longer holds the
// others back, so a hung request cannot stall every caller.
func (l *RateLimiter) acquire(ctx context.Context, probeBound time.Duration) error {
	maxWait := maxWaitOf(ctx, l.maxWait)
	for {
		l.mu.Lock()
		now := l.now()
		if l.known && !now.Before(l.reset) {
			// The window has passed: the next answer will tell the new one.
			l.known = false
		}
		if l.budget > 0 && l.sent >= l.budget {
			l.mu.Unlock()
			return &RateLimitError{Limit: int(l.budget), Reason: "budget"}
		}
		if err := l.shared.err; err != nil {
			l.shared.err = nil
			l.mu.Unlock()
			return fmt.Errorf("outreach: the rate budget shared with other processes: %w", err)
		}
		var wait time.Duration
		resetWait := false
		d := sharedProbe // without a shared budget: as always
		switch {
		case !l.known:
			if d = l.sharedGate(now, false); d != sharedProbe {
				break
			}
			// One probe at a time until an answer tells the window, but no
			// longer than an attempt may take.
			overdue := probeBound > 0 && !now.Before(l.probeSince.Add(probeBound))
			if l.inFlight == 0 || overdue {
				l.probeSince = now
				l.shared.probes++
				l.shared.probe = false
				l.take()
				l.mu.Unlock()
				return nil
			}
			if probeBound > 0 {
				wait = l.probeSince.Add(probeBound).Sub(now)
			}
		default:
			allowed := int(float64(l.limit) * l.quota)
			used := l.limit - l.remaining + l.inFlight
			if used < allowed {
				if d = l.sharedGate(now, true); d == sharedProbe {
					l.take()
					l.mu.Unlock()
					return nil
				}
				break
			}
			if l.inFlight == 0 {
				wait, resetWait = l.reset.Sub(now), true
			}
		}
		switch d {
		case sharedSend:
			l.take()
			l.mu.Unlock()
			return nil
		case sharedFetch:
			l.mu.Unlock()
			l.fetchPermits(ctx)
			if err := ctx.Err(); err != nil {
				return err
			}
			continue
		case sharedReset:
			wait, resetWait = l.sharedResetWait(now), true
		case sharedLater:
			wait = l.shared.retryAt.Sub(now)
		}
		if resetWait && wait > 0 && (maxWait < 0 || wait > maxWait) {
			err := &RateLimitError{Limit: l.limit, Remaining: l.remaining, Reset: l.reset, Reason: "quota"}
			l.mu.Unlock()
			return err
		}
		changed := l.changed
		var notice *RateWait
		if resetWait {
			l.beginResetWait(now)
			if l.onWait != nil && !l.announced.Equal(l.reset) {
				l.announced = l.reset
				notice = &RateWait{Until: l.reset, Remaining: l.remaining, Limit: l.limit}
			}
		}
		l.mu.Unlock()
		if notice != nil {
			l.onWait(*notice)
		}
		var timer <-chan time.Time
		if wait > 0 {
			t := time.NewTimer(wait)
			defer t.Stop()
			timer = t.C
		}
		var err error
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-changed:
		case <-timer:
		}
		if resetWait {
			l.mu.Lock()
			l.endResetWait()
			l.mu.Unlock()
		}
		if err != nil {
			return err
		}
	}
}

// beginResetWait and endResetWait bracket a caller's wait for the window
// to reset; the limiter counts the time during which at least one caller
// waits. Call them with mu held.
func (l *RateLimiter) beginResetWait(now time.Time) {
	if l.resetWaiters == 0 {
		l.waitStart = now
	}
	l.resetWaiters++
}

func (l *RateLimiter) endResetWait() {
	l.resetWaiters--
	if l.resetWaiters == 0 {
		l.waited += l.now().Sub(l.waitStart)
	}
}

// Waited returns how long requests were held back waiting for a rate-limit
// window to reset: the time the quota, not the server, cost. Overlapping
// waits of several callers count once.
func (l *RateLimiter) Waited() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.waited
	if l.resetWaiters > 0 {
		w += l.now().Sub(l.waitStart)
	}
	return w
}

func (l *RateLimiter) take() {
	l.inFlight++
	l.sent++
}

func (l *RateLimiter) notify() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// release ends a request. h is the answer's header, nil when there was no
// answer; status is its status code.
func (l *RateLimiter) release(h http.Header, status int) {
	defer l.settleProbes()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
	if h == nil || !rateFromHeaders(h, l.now()).ok {
		l.sharedAnswered(rateInfo{}, l.now())
	}
	if h != nil {
		now := l.now()
		if ri := rateFromHeaders(h, now); ri.ok {
			// X-RateLimit-Reset has one-second precision: the window may end
			// up to a second after it says, so wait that second too rather
			// than send a request into the old window.
			ri.reset = ri.reset.Add(time.Second)
			if !ri.reset.After(now) {
				ri.reset = now.Add(time.Second)
			}
			// Answers can arrive out of order: within one window keep the
			// lowest remaining count seen.
			if !l.known || ri.reset.After(l.reset.Add(time.Second)) || ri.remaining < l.remaining {
				l.remaining = ri.remaining
			}
			if !l.known || ri.reset.After(l.reset) {
				l.reset, l.window = ri.reset, ri.window
			}
			l.sharedAnswered(ri, now)
			l.limit, l.known = ri.limit, true
			if status == http.StatusTooManyRequests {
				l.remaining = 0
			}
		} else if status == http.StatusTooManyRequests {
			if d, ok := parseRetryAfter(h.Get("Retry-After"), serverNow(h, now)); ok {
				l.known, l.remaining, l.reset = true, 0, now.Add(d)
				if l.limit == 0 {
					l.limit = 1
				}
			}
		}
	}
	l.notify()
}

// RateLimiters hands out one RateLimiter per Outreach user, so that every
// client and goroutine acting for the same user shares that user's quota.
// Safe for concurrent use.
type RateLimiters struct {
	opts RateLimiterOptions
	mu   sync.Mutex
	m    map[string]*RateLimiter
}

// NewRateLimiters returns a registry whose limiters use opts.
func NewRateLimiters(opts RateLimiterOptions) *RateLimiters {
	return &RateLimiters{opts: opts, m: map[string]*RateLimiter{}}
}

// For returns the limiter of the Outreach user with the given id (as
// GET /api/v2 reports it), creating it on first use.
func (r *RateLimiters) For(user string) *RateLimiter {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.m[user]
	if !ok {
		l = NewRateLimiter(r.opts)
		r.m[user] = l
	}
	return l
}

// maxWaitKey carries a caller's own bound on waiting for a window to reset
// (WithMaxWait).
type maxWaitKey struct{}

// WithMaxWait returns a context under which a request waits at most d for
// the rate-limit window to reset; when the wait would be longer it fails at
// once with a *RateLimitError (Reason "quota", Reset set). d <= 0 means never
// wait. It can only shorten the limiter's own MaxWait, never lengthen it.
func WithMaxWait(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, maxWaitKey{}, d)
}

// maxWaitOf is the limiter's bound narrowed by the context's (WithMaxWait);
// negative means never wait.
func maxWaitOf(ctx context.Context, limiter time.Duration) time.Duration {
	d, ok := ctx.Value(maxWaitKey{}).(time.Duration)
	if !ok {
		return limiter
	}
	if d <= 0 {
		return -1
	}
	if limiter < 0 || limiter < d {
		return limiter
	}
	return d
}
