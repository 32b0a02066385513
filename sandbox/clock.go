package sandbox

import (
	"sync"
	"time"
)

// Clock is the sandbox's notion of time. Token lifetimes, rate-limit
// windows and record timestamps all read it, so a test can advance it by
// fifteen days without waiting. It is safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	frozen bool
	at     time.Time     // the time when frozen
	offset time.Duration // added to the system clock when not frozen
}

// NewClock returns a clock. With a zero start it follows the system clock;
// otherwise it stands still at start and moves only when advanced.
func NewClock(start time.Time) *Clock {
	if start.IsZero() {
		return &Clock{}
	}
	return &Clock{frozen: true, at: start.UTC()}
}

// Now returns the current sandbox time, in UTC.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen {
		return c.at
	}
	return time.Now().UTC().Add(c.offset)
}

// Advance moves the clock forward by d (negative d is ignored).
func (c *Clock) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen {
		c.at = c.at.Add(d)
		return
	}
	c.offset += d
}
