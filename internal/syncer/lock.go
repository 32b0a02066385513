package syncer

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"time"
)

// Locker is implemented by destinations that several runs, in several
// processes or machines, can write at once (a database, a directory). The
// engine takes each stream before writing it and keeps its lease alive
// with a heartbeat while the stream runs. A destination without Locker is
// written by one run only (Singer's standard output).
type Locker interface {
	// Lock stores l as the stream's lease when the stream is free, when
	// the current lease is l.RunID's own (a renewal), or when the current
	// lease is Stale at now; otherwise it returns a *LockedError naming
	// the holder. Of two runs that find one lease stale, one wins.
	Lock(ctx context.Context, stream string, l Lease, now time.Time) error
	// Unlock deletes the stream's lease if runID holds it.
	Unlock(ctx context.Context, stream, runID string) error
}

// Lease is one run's hold on a stream of a destination.
type Lease struct {
	Host     string    `json:"host"`   // host name of the holder
	PID      int       `json:"pid"`    // process id of the holder on Host
	RunID    string    `json:"run_id"` // unique per Engine.Run
	Acquired time.Time `json:"acquired"`
	// Expires is when the hold lapses unless the holder renews it.
	Expires time.Time `json:"expires"`
}

// LeaseTime is how long a lease lasts unless renewed; a running stream
// renews it every LeaseTime/3. A run that dies on another host keeps its
// streams at most this long; on the same host its streams are free at
// once.
const LeaseTime = 30 * time.Second

// Stale reports whether the lease no longer protects a run at now: it has
// expired, or its holder is a process of this host that is gone.
func (l Lease) Stale(now time.Time) bool {
	if !now.Before(l.Expires) {
		return true
	}
	host, err := os.Hostname()
	return err == nil && l.Host == host && l.PID > 0 && !processAlive(l.PID)
}

// LockedError is the error of Lock when another run holds the stream.
type LockedError struct {
	Stream string
	Holder Lease
}

func (e *LockedError) Error() string {
	h := e.Holder
	return fmt.Sprintf("another sync of stream %s is running: pid %d on host %s holds it since %s (its lease, renewed while it runs, "+
		"ends %s); wait for it to finish or stop it", e.Stream, h.PID, h.Host, h.Acquired.UTC().Format(time.RFC3339),
		h.Expires.UTC().Format(time.RFC3339))
}

// lostLockError cancels a stream whose lease could not be kept.
type lostLockError struct{ err error }

func (e *lostLockError) Error() string { return "lost the stream lock: " + e.err.Error() }
func (e *lostLockError) Unwrap() error { return e.err }

// hold takes the stream for the run and starts its heartbeat. The
// returned context ends when the lease cannot be kept (its cause a
// *lostLockError); release stops the heartbeat, waits for it, and
// deletes the lease. Without a Locker it does nothing.
func (e *Engine) hold(ctx context.Context, stream, runID string) (context.Context, func(), error) {
	lk, ok := e.dst.(Locker)
	if !ok {
		return ctx, func() {}, nil
	}
	now := e.now()
	l := Lease{Host: e.host, PID: e.pid, RunID: runID, Acquired: now, Expires: now.Add(LeaseTime)}
	if err := lk.Lock(ctx, stream, l, now); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		e.heartbeat(ctx, lk, stream, l, stop, cancel)
	}()
	release := func() {
		close(stop)
		<-done
		cancel(nil)
		if err := lk.Unlock(context.WithoutCancel(ctx), stream, runID); err != nil {
			e.log.Warn("could not release the stream lock; it lapses by itself", "stream", stream, "err", err)
		}
	}
	return ctx, release, nil
}

// heartbeat renews l every LeaseTime/3 until stop is closed or ctx ends.
// A renewal that fails for another reason than a competing holder is
// retried on the next beat while the last lease lasts.
func (e *Engine) heartbeat(ctx context.Context, lk Locker, stream string, l Lease, stop <-chan struct{}, cancel context.CancelCauseFunc) {
	t := time.NewTicker(LeaseTime / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := e.now()
		next := l
		next.Expires = now.Add(LeaseTime)
		err := lk.Lock(ctx, stream, next, now)
		if err == nil {
			l = next
			continue
		}
		if ctx.Err() != nil {
			return // the run is stopping: not a failed renewal
		}
		var locked *LockedError
		if errors.As(err, &locked) || !now.Add(LeaseTime/3).Before(l.Expires) {
			cancel(&lostLockError{err})
			return
		}
		e.log.Warn("could not renew the stream lock; retrying", "stream", stream, "err", err)
	}
}

// newRunID returns a run id no other run of any host has.
func newRunID() string { return rand.Text() }
