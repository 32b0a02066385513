package sandbox

import (
	"sync"
	"time"
)

// rateLimiter counts API requests per Outreach user in fixed windows: the
// first request of a user opens a window of the configured length; every
// token and app of that user shares it.
type rateLimiter struct {
	limit  int
	window time.Duration
	mu     sync.Mutex
	users  map[string]*rateWindow
}

type rateWindow struct {
	start time.Time
	used  int
}

// rateDecision is what the limiter tells about one request.
type rateDecision struct {
	allowed   bool
	limit     int
	remaining int
	reset     time.Time
}

func newRateLimiter(limit int, window time.Duration) *rateLimiter {
	return &rateLimiter{limit: limit, window: window, users: map[string]*rateWindow{}}
}

// take counts one request of user at now.
func (l *rateLimiter) take(user string, now time.Time) rateDecision {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.users[user]
	if w == nil || !now.Before(w.start.Add(l.window)) {
		w = &rateWindow{start: now}
		l.users[user] = w
	}
	d := rateDecision{limit: l.limit, reset: w.start.Add(l.window)}
	if w.used >= l.limit {
		return d
	}
	w.used++
	d.allowed, d.remaining = true, l.limit-w.used
	return d
}
