package jobs

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/connection/connectiontest"
)

// Every run is recorded: trigger, attempt, start, end, outcome, error,
// stats and log; a run of a deleted connection is not retried.
func TestRecordedRuns(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		store := connectiontest.NewMemStore()
		c := connectiontest.NewConnection("acme")
		if err := store.CreateConnection(ctx, c); err != nil {
			t.Fatal(err)
		}
		clock := &offsetClock{}
		failures := 1
		run := Recorded(store, clock, nil, func(ctx context.Context, r *connection.Run) error {
			st := r.Stream("prospects")
			st.Records, st.Pages, st.Requests = 42, 1, 1
			r.AddLog("prospects: 42 records")
			if failures > 0 {
				failures--
				return errors.New("upstream 503")
			}
			return nil
		})
		q := db.open(t, Options{Clock: clock, Run: run, RetryBackoff: func(int) time.Duration { return 0 }})
		events := subscribe(t, q)
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Enqueue(ctx, c.ID, connection.ManualRun); err != nil {
			t.Fatal(err)
		}
		if ev := events.next(t, c.ID); ev.Kind != JobFailed {
			t.Fatalf("event %+v", ev)
		}
		if ev := events.next(t, c.ID); ev.Kind != JobCompleted {
			t.Fatalf("event %+v", ev)
		}
		runs, err := store.ListRuns(ctx, c.ID, 10)
		if err != nil || len(runs) != 2 {
			t.Fatalf("runs %v %v", runs, err)
		}
		ok, failed := runs[0], runs[1] // newest first
		if failed.Trigger != connection.ManualRun || failed.Attempt != 1 || failed.Outcome != connection.Failed || failed.Error != "upstream 503" {
			t.Errorf("first run %+v", failed)
		}
		if ok.Trigger != connection.Retry || ok.Attempt != 2 || ok.Outcome != connection.Succeeded || ok.Error != "" {
			t.Errorf("second run %+v", ok)
		}
		for _, r := range runs {
			if r.EndedAt.Before(r.StartedAt) || r.EndedAt.IsZero() || r.Totals().Records != 42 || len(r.Log) != 1 {
				t.Errorf("run record %+v", r)
			}
		}

		if err := store.DeleteConnection(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Enqueue(ctx, c.ID, connection.ManualRun); err != nil {
			t.Fatal(err)
		}
		if ev := events.next(t, c.ID); ev.Kind != JobCancelled || ev.Job.Attempt != 1 {
			t.Fatalf("a run of a deleted connection: %+v, want cancelled without retry", ev)
		}
	})
}

// A node that dies between a scheduled run's success and River marking its
// job complete leaves the job to be rescued: the rescued attempt finds the
// due time already fulfilled and completes without running it again. A
// run for another due time, or a failed one for the same, runs.
func TestRecordedSkipsADueTimeThatAlreadySucceeded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := connectiontest.NewMemStore()
	c := connectiontest.NewConnection("acme")
	if err := store.CreateConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	due := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	syncs := 0
	fail := true
	run := Recorded(store, &offsetClock{}, nil, func(context.Context, *connection.Run) error {
		syncs++
		if fail {
			return errors.New("upstream 503")
		}
		return nil
	})
	attempt := func(due time.Time, n int) error {
		return run(context.WithValue(ctx, jobKey{}, Job{ID: 7, ConnectionID: c.ID, Trigger: connection.Scheduled, DueAt: due, Attempt: n}), c.ID, connection.Scheduled)
	}
	if err := attempt(due, 1); err == nil || syncs != 1 {
		t.Fatalf("a failing first attempt: %v, %d syncs", err, syncs)
	}
	fail = false
	if err := attempt(due, 2); err != nil || syncs != 2 {
		t.Fatalf("the retry after a failure must run: %v, %d syncs", err, syncs)
	}
	if err := attempt(due, 3); err != nil || syncs != 2 {
		t.Fatalf("the same due time again after success: %v, %d syncs; want no sync", err, syncs)
	}
	if err := attempt(due.Add(15*time.Minute), 1); err != nil || syncs != 3 {
		t.Fatalf("the next due time: %v, %d syncs; want a sync", err, syncs)
	}
	runs, err := store.ListRuns(ctx, c.ID, 10)
	if err != nil || len(runs) != 3 {
		t.Fatalf("%d runs recorded (%v); want 3, none for the skipped attempt", len(runs), err)
	}
	if !runs[0].DueAt.Equal(due.Add(15*time.Minute)) || !runs[1].DueAt.Equal(due) {
		t.Errorf("due times recorded: %v, %v", runs[0].DueAt, runs[1].DueAt)
	}
}

// A run whose node was killed stays recorded as running until the next
// attempt of the connection starts: that attempt marks it interrupted.
func TestRecordedClosesARunItsNodeLeftRunning(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := connectiontest.NewMemStore()
	c := connectiontest.NewConnection("acme")
	if err := store.CreateConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	clock := &offsetClock{}
	dead := &connection.Run{ID: connection.NewID(), ConnectionID: c.ID, Trigger: connection.ManualRun, Attempt: 1, StartedAt: clock.Now()}
	if err := store.StartRun(ctx, dead); err != nil {
		t.Fatal(err)
	}
	run := Recorded(store, clock, nil, func(context.Context, *connection.Run) error { return nil })
	if err := run(context.WithValue(ctx, jobKey{}, Job{ID: 7, ConnectionID: c.ID, Trigger: connection.ManualRun, Attempt: 2}), c.ID, connection.ManualRun); err != nil {
		t.Fatal(err)
	}
	runs, err := store.ListRuns(ctx, c.ID, 10)
	if err != nil || len(runs) != 2 {
		t.Fatalf("%d runs (%v), want 2", len(runs), err)
	}
	byID := map[string]*connection.Run{runs[0].ID: runs[0], runs[1].ID: runs[1]}
	old := byID[dead.ID]
	if old == nil || old.Outcome != connection.Interrupted || old.EndedAt.IsZero() || !strings.Contains(old.Error, "attempt 2") {
		t.Errorf("the dead run after the next attempt: %+v; want interrupted, ended, naming attempt 2", old)
	}
	for _, r := range runs {
		if r.ID != dead.ID && r.Outcome != connection.Succeeded {
			t.Errorf("the new attempt: %q, want succeeded", r.Outcome)
		}
	}
}

// A stopped or cancelled run's record says why in words, not the
// context's error; a failed run keeps its error.
func TestOutcomeErrorSaysWhy(t *testing.T) {
	sliced, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	stopped, stop := context.WithCancel(context.Background())
	stop()
	failed := errors.New("upstream 503")
	for _, c := range []struct {
		ctx  context.Context
		err  error
		want string
	}{
		{sliced, context.DeadlineExceeded, "time slice ended"},
		{stopped, context.Canceled, "its node was stopped"},
		{context.Background(), failed, "upstream 503"},
	} {
		outcome := OutcomeOf(c.ctx, c.err)
		if got := outcomeError(c.ctx, outcome, c.err); got == nil || !strings.Contains(got.Error(), c.want) {
			t.Errorf("%s of %v: %v; want it to say %q", outcome, c.err, got, c.want)
		}
	}
	if got := outcomeError(context.Background(), connection.Cancelled, errors.New("JobCancelError")); !strings.Contains(got.Error(), "cancelled") ||
		strings.Contains(got.Error(), "JobCancelError") {
		t.Errorf("cancelled: %v", got)
	}
}
