package outreach

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestRateFromHeaders(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name                     string
		limit, remaining, reset  string
		retryAfter               string
		wantOK                   bool
		wantLimit, wantRemaining int
		wantReset                time.Time
	}{
		{"epoch seconds", "10000", "9999", "1772370000", "", true, 10000, 9999, time.Unix(1772370000, 0)},
		{"two remaining values", "10000", "9999, 19988", "1772370000", "", true, 10000, 9999, time.Unix(1772370000, 0)},
		{"delta seconds", "100", "5", "30", "", true, 100, 5, now.Add(30 * time.Second)},
		{"http date", "100", "5", "Sun, 01 Mar 2026 12:10:00 GMT", "", true, 100, 5, now.Add(10 * time.Minute)},
		{"iso date", "100", "5", "2026-03-01T12:20:00Z", "", true, 100, 5, now.Add(20 * time.Minute)},
		{"no reset, retry-after", "100", "0", "", "45", true, 100, 0, now.Add(45 * time.Second)},
		{"no reset at all", "100", "0", "", "", true, 100, 0, now.Add(time.Hour)},
		{"missing", "", "", "", "", false, 0, 0, time.Time{}},
		{"garbage", "lots", "some", "soon", "", false, 0, 0, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range map[string]string{"X-RateLimit-Limit": tt.limit, "X-RateLimit-Remaining": tt.remaining, "X-RateLimit-Reset": tt.reset, "Retry-After": tt.retryAfter} {
				if v != "" {
					h.Set(k, v)
				}
			}
			got := rateFromHeaders(h, now)
			if got.ok != tt.wantOK || got.limit != tt.wantLimit || got.remaining != tt.wantRemaining || (tt.wantOK && !got.reset.Equal(tt.wantReset)) {
				t.Errorf("got ok=%v %d/%d reset %s, want ok=%v %d/%d reset %s", got.ok, got.remaining, got.limit, got.reset, tt.wantOK, tt.wantRemaining, tt.wantLimit, tt.wantReset)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"120", 2 * time.Minute, true},
		{"2026-03-01T12:00:30Z", 30 * time.Second, true},
		{"Sun, 01 Mar 2026 12:01:00 GMT", time.Minute, true},
		{"2026-03-01T11:00:00Z", 0, true}, // in the past: no wait
		{"whenever", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestRateLimitersSharePerUser(t *testing.T) {
	reg := NewRateLimiters(RateLimiterOptions{QuotaLimit: 0.5})
	a, b, c := reg.For("1"), reg.For("1"), reg.For("2")
	if a != b || a == c || a.quota != 0.5 {
		t.Errorf("For: same user gave %p and %p, other user %p; quota %v", a, b, c, a.quota)
	}
}

func TestResetReadOnTheServersClock(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	server := now.Add(2 * time.Minute) // the server's clock is ahead
	tests := []struct {
		name         string
		date, reset  string
		retryAfter   string
		wantReset    time.Time
		wantRetryFor time.Duration
	}{
		{"epoch", server.Format(http.TimeFormat), strconv.FormatInt(server.Add(10*time.Second).Unix(), 10), "", now.Add(10 * time.Second), 0},
		{"iso", server.Format(http.TimeFormat), server.Add(10 * time.Second).Format(time.RFC3339), "", now.Add(10 * time.Second), 0},
		{"delta", server.Format(http.TimeFormat), "10", "", now.Add(10 * time.Second), 0},
		{"retry-after date", server.Format(http.TimeFormat), "", server.Add(30 * time.Second).Format(time.RFC3339), now.Add(30 * time.Second), 30 * time.Second},
		{"no date: local clock", "", strconv.FormatInt(server.Add(10*time.Second).Unix(), 10), "", server.Add(10 * time.Second), 0},
		{"unreadable date: local clock", "yesterday", strconv.FormatInt(server.Add(10*time.Second).Unix(), 10), "", server.Add(10 * time.Second), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"X-Ratelimit-Limit": {"100"}, "X-Ratelimit-Remaining": {"0"}}
			for k, v := range map[string]string{"Date": tt.date, "X-RateLimit-Reset": tt.reset, "Retry-After": tt.retryAfter} {
				if v != "" {
					h.Set(k, v)
				}
			}
			if got := rateFromHeaders(h, now); !got.reset.Equal(tt.wantReset) {
				t.Errorf("reset = %s, want %s", got.reset, tt.wantReset)
			}
			if tt.wantRetryFor > 0 {
				if d, _ := parseRetryAfter(h.Get("Retry-After"), serverNow(h, now)); d != tt.wantRetryFor {
					t.Errorf("retry after %s, want %s", d, tt.wantRetryFor)
				}
			}
		})
	}
}

// TestOnWaitTellsAWaitOnce spends the window, then has two callers wait
// for its reset: OnWait is told once, with the reset and the counts.
func TestOnWaitTellsAWaitOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var waits []RateWait
		l := NewRateLimiter(RateLimiterOptions{OnWait: func(w RateWait) { waits = append(waits, w) }})
		if err := l.acquire(t.Context(), time.Minute); err != nil {
			t.Fatal(err)
		}
		reset := time.Now().Add(30 * time.Second)
		l.release(http.Header{"X-Ratelimit-Limit": {"150"}, "X-Ratelimit-Remaining": {"0"},
			"X-Ratelimit-Reset": {strconv.FormatInt(reset.Unix(), 10)}}, 200)
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				if err := l.acquire(t.Context(), time.Minute); err != nil {
					t.Error(err)
					return
				}
				l.release(nil, 0)
			})
		}
		synctest.Wait()
		if len(waits) != 1 || waits[0].Limit != 150 || waits[0].Remaining != 0 || waits[0].Until.Before(reset) {
			t.Fatalf("OnWait calls while waiting = %+v; want one saying 0 of 150 until %s", waits, reset)
		}
		wg.Wait()
		if len(waits) != 1 {
			t.Errorf("OnWait calls = %+v; want one", waits)
		}
	})
}
