package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

type jobKey struct{}

// JobFromContext returns the job a RunFunc's context belongs to.
func JobFromContext(ctx context.Context) (Job, bool) {
	j, ok := ctx.Value(jobKey{}).(Job)
	return j, ok
}

// SyncFunc does the work of one run, filling run's per-stream stats and
// log as it goes.
type SyncFunc func(ctx context.Context, run *connection.Run) error

// Recorded makes a RunFunc that records every run in store: started
// (trigger, attempt, start) before sync is called, finished (end, outcome,
// error, stats, log) after. A run of a connection the store no longer has
// is not retried (NoRetry) and leaves no record.
// dueDone reports whether a run of connection id for the due time due
// already succeeded (never for a zero due time).
func dueDone(ctx context.Context, store connection.Store, id string, due time.Time) (bool, error) {
	if due.IsZero() {
		return false, nil
	}
	runs, err := store.ListRuns(ctx, id, dueLookBack)
	if err != nil {
		return false, fmt.Errorf("read the runs of connection %s: %w", id, err)
	}
	for _, r := range runs {
		if r.Outcome == connection.Succeeded && r.DueAt.Equal(due) {
			return true, nil
		}
	}
	return false, nil
}

// dueLookBack is how many recent runs dueDone reads: a duplicate follows
// the run it repeats closely.
const dueLookBack = 20

func Recorded(store connection.Store, clock Clock, logger *slog.Logger, sync SyncFunc) RunFunc {
	if clock == nil {
		clock = systemClock{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, id string, trigger connection.Trigger) error {
		run := &connection.Run{ID: connection.NewID(), ConnectionID: id, Trigger: trigger, Attempt: 1, StartedAt: clock.Now()}
		if j, ok := JobFromContext(ctx); ok {
			run.Attempt, run.DueAt = j.Attempt, j.DueAt
		}
		if _, err := store.GetConnection(ctx, id); err != nil {
			if errors.Is(err, connection.ErrNotFound) {
				return NoRetry(fmt.Errorf("connection %s no longer exists", id))
			}
			return err
		}
		if done, err := dueDone(ctx, store, id, run.DueAt); err != nil {
			return err
		} else if done {
			// A node died after the run succeeded and before its job was
			// marked complete: the due time is fulfilled; do not run it again.
			logger.Info("jobs: this due time already ran; completing without running", "connection", id, "due", run.DueAt)
			return nil
		}
		if err := closeDeadRuns(ctx, store, clock, run); err != nil {
			return err
		}
		if err := store.StartRun(ctx, run); err != nil {
			return fmt.Errorf("record run start: %w", err)
		}
		err := sync(ctx, run)
		outcome := OutcomeOf(ctx, err)
		run.Finish(clock.Now(), outcome, outcomeError(ctx, outcome, err))
		// The run's context may be over (cancelled, stopped): the record
		// is written regardless.
		if ferr := store.FinishRun(context.WithoutCancel(ctx), run); ferr != nil {
			logger.Error("jobs: could not record the end of a run", "connection", id, "run", run.ID, "error", ferr)
		}
		return err
	}
}

// outcomeError is what a run's record says of how it ended: for a run
// stopped or cancelled, why in words (its streams' errors are only the
// context's), else the sync's error.
func outcomeError(ctx context.Context, outcome connection.Outcome, err error) error {
	switch {
	case outcome == connection.Cancelled:
		return errors.New("cancelled; what it committed stays")
	case outcome == connection.Interrupted && errors.Is(context.Cause(ctx), context.DeadlineExceeded):
		return errors.New("its time slice ended; the run goes on as a new slice from what it committed")
	case outcome == connection.Interrupted:
		return errors.New("stopped before it ended (its node was stopped); the next run resumes from what it committed")
	}
	return err
}

// deadRunsChecked is how many of a connection's newest runs closeDeadRuns
// looks at.
const deadRunsChecked = 20

// closeDeadRuns marks interrupted the connection's runs still recorded as
// running when next starts: a connection runs one job at a time, so such a
// run's node stopped (killed, crashed) before recording its end, and next
// resumes from the state that run committed.
func closeDeadRuns(ctx context.Context, store connection.Store, clock Clock, next *connection.Run) error {
	runs, err := store.ListRuns(ctx, next.ConnectionID, deadRunsChecked)
	if err != nil {
		return fmt.Errorf("read run history: %w", err)
	}
	for _, r := range runs {
		if r.Outcome != connection.Running {
			continue
		}
		r.Finish(clock.Now(), connection.Interrupted, fmt.Errorf(
			"its node stopped before the run ended (killed or crashed); a later attempt (%s, attempt %d) resumed from what it had committed",
			next.Trigger, next.Attempt))
		if err := store.FinishRun(ctx, r); err != nil && !errors.Is(err, connection.ErrNotFound) {
			return fmt.Errorf("record an interrupted run: %w", err)
		}
	}
	return nil
}
