package syncer

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

// fakeLocker records lock calls; fail, when set, decides each renewal.
type fakeLocker struct {
	mu       sync.Mutex
	renewals []connection.Lease
	unlocked []string
	fail     func(n int) error // n counts renewals from 1
}

func (f *fakeLocker) Prepare(context.Context, *connection.Stream) error { return nil }
func (f *fakeLocker) State(context.Context, string) (connection.State, error) {
	return connection.State{}, nil
}
func (f *fakeLocker) Write(context.Context, *connection.Stream, []connection.Record, connection.State) error {
	return nil
}
func (f *fakeLocker) MarkDeleted(context.Context, *connection.Stream, []int64, string) (int, error) {
	return 0, nil
}

func (f *fakeLocker) Lock(_ context.Context, _ string, l connection.Lease, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l.Expires.Sub(l.Acquired) == connection.LeaseTime { // the first take
		return nil
	}
	f.renewals = append(f.renewals, l)
	if f.fail != nil {
		return f.fail(len(f.renewals))
	}
	return nil
}

func (f *fakeLocker) Unlock(_ context.Context, stream, runID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unlocked = append(f.unlocked, stream+"/"+runID)
	return nil
}

func (f *fakeLocker) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.renewals)
}

func testEngine(dst connection.Destination) *Engine {
	return &Engine{dst: dst, log: slog.New(slog.DiscardHandler), now: time.Now, host: "h", pid: 1}
}

func TestHeartbeatRenewsTheLeaseUntilReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLocker{}
		start := time.Now()
		ctx, release, err := testEngine(f).hold(t.Context(), "widgets", "run1")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(connection.LeaseTime + connection.LeaseTime/6) // in the bubble: no real wait
		synctest.Wait()
		if n := f.count(); n != 3 {
			t.Errorf("renewals after %v = %d, want 3", connection.LeaseTime+connection.LeaseTime/6, n)
		}
		for i, l := range f.renewals {
			beat := start.Add(time.Duration(i+1) * connection.LeaseTime / 3)
			if !l.Acquired.Equal(start) || !l.Expires.Equal(beat.Add(connection.LeaseTime)) || l.RunID != "run1" {
				t.Errorf("renewal %d = %+v; want acquired %v, expires %v", i+1, l, start, beat.Add(connection.LeaseTime))
			}
		}
		release()
		if ctx.Err() == nil {
			t.Error("the stream's context lives on after release")
		}
		if len(f.unlocked) != 1 || f.unlocked[0] != "widgets/run1" {
			t.Errorf("unlocked = %v", f.unlocked)
		}
		time.Sleep(connection.LeaseTime)
		if n := f.count(); n != 3 {
			t.Errorf("renewals after release: %d, want 3", n)
		}
	})
}

func TestHeartbeatCancelsAStreamThatLostItsLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLocker{fail: func(n int) error {
			return &connection.LockedError{Stream: "widgets", Holder: connection.Lease{Host: "other", PID: 2, RunID: "run2"}}
		}}
		ctx, release, err := testEngine(f).hold(t.Context(), "widgets", "run1")
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		<-ctx.Done()
		var lost *lostLockError
		var locked *connection.LockedError
		if cause := context.Cause(ctx); !errors.As(cause, &lost) || !errors.As(cause, &locked) {
			t.Errorf("cause = %v; want a lost lock naming the holder", cause)
		}
		if n := f.count(); n != 1 {
			t.Errorf("renewals = %d, want the one that found another holder", n)
		}
	})
}

func TestHeartbeatRetriesWhileTheLeaseLasts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLocker{fail: func(int) error { return errors.New("database is locked") }}
		start := time.Now()
		ctx, release, err := testEngine(f).hold(t.Context(), "widgets", "run1")
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		time.Sleep(connection.LeaseTime/3 + time.Second)
		synctest.Wait()
		if ctx.Err() != nil {
			t.Fatalf("one failed renewal ended the stream: %v", context.Cause(ctx))
		}
		<-ctx.Done()
		// The next beat would come when the lease has run out: give up
		// while it still holds.
		if got := time.Since(start); got >= connection.LeaseTime {
			t.Errorf("gave up after %v, want before the lease ends (%v)", got, connection.LeaseTime)
		}
		if n := f.count(); n != 2 {
			t.Errorf("renewals = %d, want 2", n)
		}
	})
}

func TestLeaseStale(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	now := time.Now()
	dead := exec.Command(os.Args[0], "-test.run=^$")
	dead.Env = []string{"GORACE=atexit_sleep_ms=0"} // no 1 s pause at exit under -race
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		l    connection.Lease
		want bool
	}{
		{"this process", connection.Lease{Host: host, PID: os.Getpid(), Expires: now.Add(time.Second)}, false},
		{"expired", connection.Lease{Host: host, PID: os.Getpid(), Expires: now}, true},
		{"a process that ended", connection.Lease{Host: host, PID: dead.ProcessState.Pid(), Expires: now.Add(time.Hour)}, true},
		{"another host", connection.Lease{Host: "elsewhere.invalid", PID: dead.ProcessState.Pid(), Expires: now.Add(time.Hour)}, false},
	} {
		if got := tt.l.Stale(now); got != tt.want {
			t.Errorf("%s: Stale = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestHeartbeatSaysNothingWhenTheRunStops cancels the run while a renewal
// is under way: the renewal fails with the cancellation, which is the run
// stopping, not a lock trouble worth a warning.
func TestHeartbeatSaysNothingWhenTheRunStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		run, stop := context.WithCancel(t.Context())
		f := &fakeLocker{fail: func(int) error { stop(); return run.Err() }}
		var logs bytes.Buffer
		e := testEngine(f)
		e.log = slog.New(slog.NewTextHandler(&logs, nil))
		_, release, err := e.hold(run, "widgets", "run1")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(connection.LeaseTime/3 + time.Second)
		synctest.Wait()
		release()
		if f.count() != 1 || strings.Contains(logs.String(), "renew") {
			t.Errorf("renewals %d; logs:\n%s", f.count(), logs.String())
		}
	})
}
