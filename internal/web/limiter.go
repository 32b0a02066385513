package web

import (
	"sync"
	"time"
)

// signInLimiter slows down guessing the admin token. Each client address
// may fail a few times freely; every further failure doubles the wait
// before the next attempt (1 s, 2 s, 4 s, ... at most 15 minutes). The
// same holds, with a larger allowance, for all addresses together, so
// many addresses cannot share the work. Failures are forgotten after 15
// quiet minutes; a correct token clears its address's record.
type signInLimiter struct {
	mu     sync.Mutex
	perIP  map[string]*failures
	global failures
}

type failures struct {
	count int
	last  time.Time // of the latest failure
	until time.Time // no attempt before this
}

const (
	signInFreePerIP  = 5
	signInFreeGlobal = 50
	signInMaxWait    = 15 * time.Minute
	signInForget     = 15 * time.Minute
	signInMaxTracked = 10000
)

func newSignInLimiter() *signInLimiter {
	return &signInLimiter{perIP: map[string]*failures{}}
}

// wait returns how long the address must wait before its next attempt;
// zero when it may try now.
func (l *signInLimiter) wait(ip string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	until := l.global.until
	if f := l.perIP[ip]; f != nil && f.until.After(until) {
		until = f.until
	}
	if d := until.Sub(now); d > 0 {
		return d
	}
	return 0
}

// fail records a wrong token from ip.
func (l *signInLimiter) fail(ip string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.perIP[ip]
	if f == nil {
		if len(l.perIP) >= signInMaxTracked {
			l.prune(now)
		}
		f = &failures{}
		l.perIP[ip] = f
	}
	f.add(now, signInFreePerIP)
	l.global.add(now, signInFreeGlobal)
}

// succeed clears ip's failures.
func (l *signInLimiter) succeed(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.perIP, ip)
}

func (f *failures) add(now time.Time, free int) {
	if now.Sub(f.last) > signInForget {
		f.count = 0
	}
	f.count++
	f.last = now
	if over := f.count - free; over > 0 {
		wait := signInMaxWait
		if over <= 20 {
			wait = min(time.Second<<(over-1), signInMaxWait)
		}
		f.until = now.Add(wait)
	}
}

// prune drops addresses whose failures are forgotten. The caller holds
// l.mu.
func (l *signInLimiter) prune(now time.Time) {
	for ip, f := range l.perIP {
		if now.Sub(f.last) > signInForget && !f.until.After(now) {
			delete(l.perIP, ip)
		}
	}
}
