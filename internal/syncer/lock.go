package syncer

import (
	"context"
	"crypto/rand"
	"errors"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

// lostLockError cancels a stream whose lease could not be kept.
type lostLockError struct{ err error }

func (e *lostLockError) Error() string { return "lost the stream lock: " + e.err.Error() }
func (e *lostLockError) Unwrap() error { return e.err }

// hold takes the stream for the run and starts its heartbeat. The
// returned context ends when the lease cannot be kept (its cause a
// *lostLockError); release stops the heartbeat, waits for it, and
// deletes the lease. Without a Locker it does nothing.
func (e *Engine) hold(ctx context.Context, stream, runID string) (context.Context, func(), error) {
	lk, ok := e.dst.(connection.Locker)
	if !ok {
		return ctx, func() {}, nil
	}
	now := e.now()
	l := connection.Lease{Host: e.host, PID: e.pid, RunID: runID, Acquired: now, Expires: now.Add(connection.LeaseTime)}
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
func (e *Engine) heartbeat(ctx context.Context, lk connection.Locker, stream string, l connection.Lease, stop <-chan struct{}, cancel context.CancelCauseFunc) {
	t := time.NewTicker(connection.LeaseTime / 3)
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
		next.Expires = now.Add(connection.LeaseTime)
		err := lk.Lock(ctx, stream, next, now)
		if err == nil {
			l = next
			continue
		}
		if ctx.Err() != nil {
			return // the run is stopping: not a failed renewal
		}
		var locked *connection.LockedError
		if errors.As(err, &locked) || !now.Add(connection.LeaseTime/3).Before(l.Expires) {
			cancel(&lostLockError{err})
			return
		}
		e.log.Warn("could not renew the stream lock; retrying", "stream", stream, "err", err)
	}
}

// newRunID returns a run id no other run of any host has.
func newRunID() string { return rand.Text() }
