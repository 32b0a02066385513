package outreach

import (
	"context"
	"math"
	"time"
)

// SharedBudget counts one Outreach user's requests per rate-limit window
// across every process that acts for the user (several nodes on one
// database), so that together they stay within a quota share. A
// RateLimiter with RateLimiterOptions.Shared takes permits from it in
// small batches before sending.
//
// Windows are named by the reset time Outreach reports for them (the
// X-RateLimit-Reset of its answers, on Outreach's clock), which every
// process sees alike.
type SharedBudget interface {
	// Take asks for n more requests of user in window, which may use at
	// most limit requests in all, and returns how many it grants (0 to n).
	// A limit of 0 means the caller does not know it yet: the last limit
	// given for the window applies.
	// A zero window means the caller does not know the current window:
	// Take then uses the newest window recorded for user that has not yet
	// reset at now (Outreach's time, as well as the caller knows it), and
	// reports it as resetAt. When there is none, resetAt is zero
	// and Take grants 1 to one caller at a time (for a while): that caller
	// may send one request to learn the window; the others ask again
	// shortly. Otherwise resetAt is window.
	Take(ctx context.Context, user string, window, now time.Time, n, limit int) (granted int, resetAt time.Time, err error)
}

// DefaultSharedBatch is how many permits a limiter takes from a
// SharedBudget at a time.
const DefaultSharedBatch = 5

// noLimit is the limit of a Take that must count requests already sent.
const noLimit = math.MaxInt32

// sharedState is the part of a RateLimiter that deals with a SharedBudget;
// guarded by the limiter's mu.
type sharedState struct {
	budget SharedBudget
	user   string
	batch  int

	window    time.Time     // the window the permits belong to (server clock)
	permits   int           // left of those taken for window
	exhausted time.Time     // a window the budget refused more of
	skew      time.Duration // local clock minus the server's: the least seen
	skewKnown bool
	fetching  bool      // one Take at a time
	retryAt   time.Time // when to ask again for a window another caller is learning
	probe     bool      // the budget let this limiter learn the window
	probes    int       // requests sent without a permit, not yet answered
	owed      int       // of those, answered and not yet counted
	owedIn    time.Time // the window they were answered in
	err       error     // the last Take's error, for the next acquire
}

// sharedDecision is what acquire does next when a SharedBudget is set.
type sharedDecision int

const (
	sharedSend  sharedDecision = iota // a permit was taken: send
	sharedFetch                       // take permits from the budget (the caller fetches)
	sharedWait                        // another caller is fetching: wait for a change
	sharedReset                       // the window's share is spent: wait for its reset
	sharedProbe                       // no window known anywhere: probe as without a budget
	sharedLater                       // ask the budget again at retryAt
)

// sharedDecide decides for a request that the local limits allow, with
// mu held. known tells whether this limiter knows the window from an
// answer.
func (l *RateLimiter) sharedDecide(now time.Time, known bool) sharedDecision {
	s := &l.shared
	if known && !s.window.Equal(l.window) {
		// A new window: permits of the old one are no good in it.
		s.window, s.permits = l.window, 0
	}
	if !known && !s.window.IsZero() && !now.Before(l.localReset(s.window)) {
		s.window, s.permits = time.Time{}, 0
	}
	switch {
	case !s.window.IsZero() && s.exhausted.Equal(s.window):
		return sharedReset
	case !s.window.IsZero() && s.skewKnown && !now.Before(s.window.Add(s.skew-sharedGuard)):
		// Too near the window's end: a request sent now could arrive in
		// the next window, which its permit does not count in.
		return sharedReset
	case s.permits > 0:
		s.permits--
		return sharedSend
	case s.fetching:
		return sharedWait
	case !known && s.window.IsZero() && s.probe:
		// The window is unknown everywhere (or its limit here): one
		// request learns it.
		return sharedProbe
	case !known && s.window.IsZero() && now.Before(s.retryAt):
		return sharedLater
	}
	s.fetching = true
	return sharedFetch
}

// localReset is when a window named by its server reset ends on the local
// clock (with the second X-RateLimit-Reset may round away).
func (l *RateLimiter) localReset(window time.Time) time.Time {
	return window.Add(l.shared.skew + time.Second)
}

// fetchPermits takes a batch of permits from the budget, outside mu;
// allowed is the limit of the window for this limiter's quota share.
func (l *RateLimiter) fetchPermits(ctx context.Context) {
	l.mu.Lock()
	s := &l.shared
	window := s.window
	allowed := int(float64(l.limit) * l.quota)
	batch := s.batch
	serverNow := l.now().Add(-s.skew)
	l.mu.Unlock()

	granted, resetAt, err := s.budget.Take(ctx, s.user, window, serverNow, batch, allowed)

	l.mu.Lock()
	defer l.mu.Unlock()
	s.fetching = false
	switch {
	case err != nil:
		if ctx.Err() == nil {
			s.err = err
		}
	case resetAt.IsZero() && granted > 0:
		s.probe = true
	case resetAt.IsZero():
		s.retryAt = l.now().Add(probePoll)
	case granted == 0:
		s.window, s.exhausted = resetAt, resetAt
	default:
		if !s.window.Equal(resetAt) {
			s.window, s.permits = resetAt, 0
		}
		s.permits += granted
	}
	l.notify()
}

// sharedGuard is how long before a window's reset (by its whole-second
// X-RateLimit-Reset) a limiter stops using the window's permits.
const sharedGuard = time.Second

// probePoll is how soon a limiter asks again for a window that another
// caller is learning.
const probePoll = 50 * time.Millisecond

// settleProbes counts in the budget the requests sent without a permit
// (those that learned a window) once their answers named the window. It
// runs after release, outside mu.
func (l *RateLimiter) settleProbes() {
	l.mu.Lock()
	s := &l.shared
	owed, window := s.owed, s.owedIn
	if s.budget == nil || owed == 0 || window.IsZero() {
		l.mu.Unlock()
		return
	}
	s.owed = 0
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := s.budget.Take(ctx, s.user, window, time.Time{}, owed, noLimit); err != nil {
		l.mu.Lock()
		if s.owedIn.Equal(window) {
			s.owed += owed
		}
		l.mu.Unlock()
	}
}

// sharedAnswered notes an answer's window, with mu held.
func (l *RateLimiter) sharedAnswered(ri rateInfo, now time.Time) {
	s := &l.shared
	if s.probes > 0 {
		s.probes--
		if !ri.window.IsZero() {
			if !s.owedIn.Equal(ri.window) {
				s.owed = 0
			}
			s.owedIn = ri.window
			s.owed++
		}
	}
	if !ri.window.IsZero() {
		// Date has whole seconds and answers take time, so each sample
		// exceeds the true offset: the least is the best estimate.
		if d := now.Sub(ri.server); !s.skewKnown || d < s.skew {
			s.skew, s.skewKnown = d, true
		}
	}
}

// sharedGate is sharedDecide when a budget is set, and sharedProbe (go on
// as without one) otherwise.
func (l *RateLimiter) sharedGate(now time.Time, known bool) sharedDecision {
	if l.shared.budget == nil {
		return sharedProbe
	}
	return l.sharedDecide(now, known)
}

// sharedResetWait is how long to wait for the spent window to reset, with
// mu held: until both the budget's window and the limiter's own end, and
// never 0 (which would wait for nothing).
func (l *RateLimiter) sharedResetWait(now time.Time) time.Duration {
	until := l.localReset(l.shared.window)
	if l.known && l.reset.After(until) {
		until = l.reset
	}
	return max(until.Sub(now), 10*time.Millisecond)
}
