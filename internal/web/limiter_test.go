package web

import (
	"testing"
	"time"
)

func TestSignInLimiterBacksOffPerAddressAndGlobally(t *testing.T) {
	l := newSignInLimiter()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range signInFreePerIP {
		if w := l.wait("10.0.0.1", now); w != 0 {
			t.Fatalf("attempt %d must be free, wait %v", i+1, w)
		}
		l.fail("10.0.0.1", now)
	}
	if w := l.wait("10.0.0.1", now); w != 0 {
		t.Fatalf("after %d failures the next attempt is free still; wait %v", signInFreePerIP, w)
	}
	l.fail("10.0.0.1", now)
	want := time.Second
	for range 5 {
		if w := l.wait("10.0.0.1", now); w != want {
			t.Fatalf("wait = %v, want %v", w, want)
		}
		if w := l.wait("10.0.0.2", now); w != 0 {
			t.Fatalf("another address must not wait: %v", w)
		}
		now = now.Add(want)
		if w := l.wait("10.0.0.1", now); w != 0 {
			t.Fatalf("after the wait: %v", w)
		}
		l.fail("10.0.0.1", now)
		want *= 2
	}
	l.succeed("10.0.0.1")
	if w := l.wait("10.0.0.1", now); w != 0 {
		t.Errorf("a correct token clears the address: wait %v", w)
	}
	// Many addresses together: the global allowance.
	l = newSignInLimiter()
	for i := range signInFreeGlobal + 1 {
		l.fail(string(rune('a'+i%26))+string(rune('a'+i/26)), now)
	}
	if w := l.wait("fresh-address", now); w <= 0 {
		t.Errorf("after %d failures from many addresses a fresh address must wait", signInFreeGlobal+1)
	}
	// Quiet time forgets.
	now = now.Add(signInForget + signInMaxWait)
	if w := l.wait("fresh-address", now); w != 0 {
		t.Errorf("wait after quiet time: %v", w)
	}
}

func TestSignInLimiterCapsTheWait(t *testing.T) {
	l := newSignInLimiter()
	now := time.Unix(0, 0)
	for range 100 {
		l.fail("x", now)
	}
	if w := l.wait("x", now); w != signInMaxWait {
		t.Errorf("wait = %v, want the cap %v", w, signInMaxWait)
	}
}
