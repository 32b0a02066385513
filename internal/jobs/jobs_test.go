package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

var _ connection.Scheduler = (*Queue)(nil)

func TestOptionsValidation(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{RunTimeout: time.Minute, RescueAfter: time.Minute}, "must be longer than the run timeout"},
		{Options{RunTimeout: -time.Second}, "run timeout -1s is negative"},
		{Options{Schema: "Bad;Schema"}, "not a plain identifier"},
		{Options{Workers: -1}, "workers -1"},
	} {
		_, err := OpenSQLite(context.Background(), t.TempDir()+"/x.db", tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.opts, err, tc.want)
		}
	}
	o := Options{RunTimeout: 3 * time.Minute}
	if err := o.setDefaults(); err != nil || o.RescueAfter != 4*time.Minute || o.MaxAttempts != DefaultMaxAttempts {
		t.Fatalf("defaults: %+v %v", o, err)
	}
}

func TestSQLiteFileIsPrivate(t *testing.T) {
	db := testDB{name: "sqlite", target: filepath.Join(t.TempDir(), "new.db")}
	db.open(t, Options{})
	for _, suffix := range []string{"", "-wal"} {
		st, err := os.Stat(db.target + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if mode := st.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %o, want 600", filepath.Base(db.target+suffix), mode)
		}
	}
}

func TestDefaultRetryBackoff(t *testing.T) {
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute}
	for i, w := range want {
		if got := DefaultRetryBackoff(i + 1); got != w {
			t.Errorf("attempt %d: %s, want %s", i+1, got, w)
		}
	}
	if got := DefaultRetryBackoff(40); got != 30*time.Minute {
		t.Errorf("attempt 40: %s", got)
	}
}

// At most one run of a connection is queued or running; a finished run
// does not block the next.
func TestUniqueRunPerConnection(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		started := make(chan string, 10)
		release := make(chan struct{})
		q := db.open(t, Options{Run: func(ctx context.Context, id string, _ connection.Trigger) error {
			started <- id
			<-release
			return nil
		}})
		first, err := q.Enqueue(ctx, "c1", connection.ManualRun)
		if err != nil || first.Duplicate {
			t.Fatalf("first enqueue: %+v %v", first, err)
		}
		again, err := q.Enqueue(ctx, "c1", connection.Scheduled)
		if err != nil || !again.Duplicate || again.ID != first.ID {
			t.Fatalf("second enqueue of a queued connection: %+v %v, want duplicate of %d", again, err, first.ID)
		}
		other, err := q.Enqueue(ctx, "c2", connection.ManualRun)
		if err != nil || other.Duplicate {
			t.Fatalf("another connection: %+v %v", other, err)
		}
		events := subscribe(t, q)
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{recv(t, started, "first run"): true, recv(t, started, "second run"): true}
		if !got["c1"] || !got["c2"] {
			t.Fatalf("started %v", got)
		}
		running, err := q.Enqueue(ctx, "c1", connection.ManualRun)
		if err != nil || !running.Duplicate || running.ID != first.ID || running.State != "running" {
			t.Fatalf("enqueue of a running connection: %+v %v", running, err)
		}
		if j, ok, err := q.Active(ctx, "c1"); err != nil || !ok || j.ID != first.ID {
			t.Fatalf("Active: %+v %v %v", j, ok, err)
		}
		close(release)
		if ev := events.next(t, "c1"); ev.Kind != JobCompleted {
			t.Fatalf("event %+v", ev)
		}
		after, err := q.Enqueue(ctx, "c1", connection.ManualRun)
		if err != nil || after.Duplicate || after.ID == first.ID {
			t.Fatalf("enqueue after completion: %+v %v", after, err)
		}
		if ev := events.next(t, "c1"); ev.Kind != JobCompleted || ev.Job.ID != after.ID {
			t.Fatalf("event %+v", ev)
		}
		if _, err := q.Enqueue(ctx, "", connection.ManualRun); err == nil {
			t.Fatal("enqueue without an id")
		}
	})
}

// A failed run is retried, with the retry trigger; once its attempts are
// spent it is discarded and the connection can run again.
func TestRetryAfterFailure(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		calls := make(chan call, 10)
		q := db.open(t, Options{
			MaxAttempts:  2,
			RetryBackoff: func(int) time.Duration { return 0 },
			Run: func(ctx context.Context, id string, trigger connection.Trigger) error {
				calls <- call{id, trigger}
				if id == "flaky" && trigger == connection.Retry {
					return nil
				}
				if id == "gone" {
					return fmt.Errorf("run: %w", NoRetry(errors.New("connection gone was deleted")))
				}
				return errors.New("upstream said 503")
			}})
		events := subscribe(t, q)
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"flaky", "broken", "gone"} {
			if _, err := q.Enqueue(ctx, id, connection.ManualRun); err != nil {
				t.Fatal(err)
			}
		}
		if ev := events.next(t, "gone"); ev.Kind != JobCancelled || ev.Job.Attempt != 1 {
			t.Fatalf("a NoRetry error: %+v, want the job cancelled after one attempt", ev)
		}
		for _, id := range []string{"flaky", "broken"} {
			ev := events.next(t, id)
			if ev.Kind != JobFailed || ev.Job.Attempt != 1 || ev.Job.State == "discarded" {
				t.Fatalf("%s first attempt: %+v", id, ev)
			}
		}
		if ev := events.next(t, "flaky"); ev.Kind != JobCompleted || ev.Job.Attempt != 2 {
			t.Fatalf("flaky second attempt: %+v", ev)
		}
		if ev := events.next(t, "broken"); ev.Kind != JobFailed || ev.Job.State != "discarded" {
			t.Fatalf("broken second attempt: %+v", ev)
		}
		seen := map[call]int{}
		for range 5 {
			seen[recv(t, calls, "a call")]++
		}
		want := map[call]int{{"gone", connection.ManualRun}: 1, {"flaky", connection.ManualRun}: 1, {"flaky", connection.Retry}: 1, {"broken", connection.ManualRun}: 1, {"broken", connection.Retry}: 1}
		if fmt.Sprint(seen) != fmt.Sprint(want) {
			t.Fatalf("calls %v, want %v", seen, want)
		}
		j, err := q.Enqueue(ctx, "broken", connection.ManualRun)
		if err != nil || j.Duplicate {
			t.Fatalf("a discarded run blocks the next: %+v %v", j, err)
		}
	})
}

// Cancelling a running job, from another node, cancels the run's context;
// the run is not retried. Cancelling a queued job means it never runs.
func TestCancel(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		started := make(chan string, 1)
		outcomes := make(chan connection.Outcome, 1)
		worker := db.open(t, Options{Workers: 1, Run: func(ctx context.Context, id string, _ connection.Trigger) error {
			started <- id
			<-ctx.Done()
			outcomes <- OutcomeOf(ctx, ctx.Err())
			return ctx.Err()
		}})
		other := db.open(t, Options{}) // a second node that only enqueues and cancels
		events := subscribe(t, worker)
		if err := worker.Start(ctx); err != nil {
			t.Fatal(err)
		}
		j, err := other.Enqueue(ctx, "c1", connection.ManualRun)
		if err != nil {
			t.Fatal(err)
		}
		recv(t, started, "the run")
		// With one worker busy, c2 stays queued.
		queued, err := other.Enqueue(ctx, "c2", connection.ManualRun)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := other.Cancel(ctx, queued.ID); err != nil || c.State != "cancelled" {
			t.Fatalf("cancel queued: %+v %v", c, err)
		}
		if _, err := other.Cancel(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, outcomes, "the run's context cancelled"); got != connection.Cancelled {
			t.Fatalf("outcome %q", got)
		}
		if ev := events.next(t, "c1"); ev.Kind != JobCancelled {
			t.Fatalf("event %+v", ev)
		}
		final, err := other.Get(ctx, j.ID)
		if err != nil || final.State != "cancelled" || final.Attempt != 1 {
			t.Fatalf("after cancel: %+v %v", final, err)
		}
		if _, ok, _ := other.Active(ctx, "c2"); ok {
			t.Fatal("the cancelled queued run is still active")
		}
		select {
		case id := <-started:
			t.Fatalf("%s ran after cancellation", id)
		default:
		}
	})
}

// A run still going at the end of its slice continues at once, without
// spending an attempt.
func TestRunSliceContinues(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		outcomes := make(chan connection.Outcome, 2)
		var mu sync.Mutex
		n := 0
		q := db.open(t, Options{RunTimeout: 300 * time.Millisecond, RescueAfter: time.Minute,
			Run: func(ctx context.Context, id string, trigger connection.Trigger) error {
				mu.Lock()
				n++
				first := n == 1
				mu.Unlock()
				if !first {
					outcomes <- OutcomeOf(ctx, nil)
					return nil
				}
				<-ctx.Done() // a long run: its slice ends
				outcomes <- OutcomeOf(ctx, ctx.Err())
				return ctx.Err()
			}})
		events := subscribe(t, q)
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Enqueue(ctx, "long", connection.ManualRun); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, outcomes, "first slice"); got != connection.Interrupted {
			t.Fatalf("first slice outcome %q", got)
		}
		if ev := events.next(t, "long"); ev.Kind != JobSnoozed {
			t.Fatalf("event %+v", ev)
		}
		if got := recv(t, outcomes, "second slice"); got != connection.Succeeded {
			t.Fatalf("second slice outcome %q", got)
		}
		if ev := events.next(t, "long"); ev.Kind != JobCompleted || ev.Job.Attempt != 1 {
			t.Fatalf("event %+v", ev)
		}
	})
}

// Stopping a node puts its running run back in the queue (interrupted,
// no attempt spent); another node finishes it.
func TestStopHandsRunOver(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		started := make(chan struct{}, 1)
		outcomes := make(chan connection.Outcome, 1)
		a := db.open(t, Options{Run: func(ctx context.Context, id string, _ connection.Trigger) error {
			started <- struct{}{}
			<-ctx.Done()
			outcomes <- OutcomeOf(ctx, ctx.Err())
			return ctx.Err()
		}})
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
		j, err := a.Enqueue(ctx, "c1", connection.ManualRun)
		if err != nil {
			t.Fatal(err)
		}
		recv(t, started, "the run on node a")
		if err := a.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, outcomes, "interruption"); got != connection.Interrupted {
			t.Fatalf("outcome %q", got)
		}
		if got, err := a.Get(ctx, j.ID); err != nil || got.State != "available" {
			t.Fatalf("after stop: %+v %v", got, err)
		}
		triggers := make(chan connection.Trigger, 1)
		b := db.open(t, Options{Run: func(ctx context.Context, id string, trigger connection.Trigger) error {
			triggers <- trigger
			return nil
		}})
		events := subscribe(t, b)
		if err := b.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if ev := events.next(t, "c1"); ev.Kind != JobCompleted || ev.Job.ID != j.ID || ev.Job.Attempt != 1 {
			t.Fatalf("event %+v", ev)
		}
		if got := recv(t, triggers, "the run on node b"); got != connection.ManualRun {
			t.Fatalf("trigger %q", got)
		}
	})
}

// The context given to Start bounds start-up only: cancelling it later
// does not stop the node.
func TestStartContextBoundsStartOnly(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, db testDB) {
		q := db.open(t, Options{Run: func(context.Context, string, connection.Trigger) error { return nil }})
		events := subscribe(t, q)
		startCtx, cancel := context.WithCancel(context.Background())
		if err := q.Start(startCtx); err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := q.Enqueue(context.Background(), "c1", connection.ManualRun); err != nil {
			t.Fatal(err)
		}
		if ev := events.next(t, "c1"); ev.Kind != JobCompleted {
			t.Fatalf("event %+v", ev)
		}
	})
}

// Nodes starting at once on a new database all open it: one migrates, the
// others find the work done.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, db testDB) {
		if db.name == "sqlite" {
			db.target = filepath.Join(t.TempDir(), "new.db") // not the migrated template
		}
		const nodes = 3
		type opened struct {
			q   *Queue
			err error
		}
		results := make(chan opened, nodes)
		var wg sync.WaitGroup
		for range nodes {
			wg.Go(func() {
				opts := Options{testOnly: true}
				var o opened
				if db.name == "sqlite" {
					o.q, o.err = OpenSQLite(context.Background(), db.target, opts)
				} else {
					opts.Schema = db.schema
					o.q, o.err = OpenPostgres(context.Background(), db.target, opts)
				}
				results <- o
			})
		}
		wg.Wait()
		close(results)
		n := 0
		for o := range results {
			if o.err != nil {
				t.Error(o.err)
				continue
			}
			defer o.q.Close()
			if _, err := o.q.Enqueue(context.Background(), fmt.Sprint("c", n), connection.ManualRun); err != nil {
				t.Error(err)
			}
			n++
		}
		if n != nodes {
			t.Fatalf("%d of %d nodes opened", n, nodes)
		}
	})
}
