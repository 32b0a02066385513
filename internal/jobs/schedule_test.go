package jobs

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

func every(t *testing.T, d time.Duration) connection.Schedule {
	t.Helper()
	s, err := connection.Every(d)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tickConcurrently ticks every queue several times at once and returns
// the runs they inserted in all.
func tickConcurrently(t *testing.T, qs ...*Queue) int {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for _, q := range qs {
		for range 3 {
			wg.Go(func() {
				n, err := q.Tick(context.Background())
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				total += n
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	return total
}

// dueCounts counts scheduled jobs by connection and due time.
func dueCounts(t *testing.T, q *Queue) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, j := range allJobs(t, q) {
		if j.Trigger == connection.Scheduled {
			counts[fmt.Sprintf("%s@%d", j.ConnectionID, j.DueAt.UnixMilli())]++
		}
	}
	return counts
}

// Two nodes ticking at the same moments enqueue each due run exactly once,
// and advance next_due once.
func TestScheduleExactlyOnceAcrossNodes(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		clock := &offsetClock{}
		a := db.open(t, Options{Clock: clock})
		b := db.open(t, Options{Clock: clock})
		start := clock.Now()
		const n = 10
		for i := range n {
			if err := a.Schedule(ctx, fmt.Sprintf("c%d", i), every(t, 15*time.Minute), start); err != nil {
				t.Fatal(err)
			}
		}
		if got := tickConcurrently(t, a, b); got != n {
			t.Fatalf("first round inserted %d runs, want %d", got, n)
		}
		for i := range n {
			due, ok, err := b.NextDue(ctx, fmt.Sprintf("c%d", i))
			if err != nil || !ok || !due.Equal(start.Add(15*time.Minute).Truncate(time.Millisecond)) {
				t.Fatalf("c%d next due %s %v %v, want %s", i, due, ok, err, start.Add(15*time.Minute))
			}
		}
		if got := tickConcurrently(t, a, b); got != 0 {
			t.Fatalf("ticking again before the next due time inserted %d", got)
		}
		// The runs finish (here: are cancelled), and the next due time comes.
		for _, j := range allJobs(t, a) {
			if _, err := a.Cancel(ctx, j.ID); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(15 * time.Minute)
		if got := tickConcurrently(t, a, b); got != n {
			t.Fatalf("second round inserted %d runs, want %d", got, n)
		}
		counts := dueCounts(t, a)
		if len(counts) != 2*n {
			t.Fatalf("%d distinct (connection, due) runs, want %d: %v", len(counts), 2*n, counts)
		}
		for k, c := range counts {
			if c != 1 {
				t.Errorf("%s enqueued %d times", k, c)
			}
		}
	})
}

// A due time that comes while a run of the connection is still queued or
// running is covered by that run: nothing is inserted, next_due advances.
func TestScheduleCoalescesWithActiveRun(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		clock := &offsetClock{}
		q := db.open(t, Options{Clock: clock})
		start := clock.Now()
		if err := q.Schedule(ctx, "c1", every(t, 15*time.Minute), start); err != nil {
			t.Fatal(err)
		}
		manual, err := q.Enqueue(ctx, "c1", connection.ManualRun)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := q.Tick(ctx); err != nil || got != 0 {
			t.Fatalf("tick inserted %d (%v) beside a queued run", got, err)
		}
		if due, _, _ := q.NextDue(ctx, "c1"); !due.After(start) {
			t.Fatalf("next due %s did not advance", due)
		}
		if jobs := allJobs(t, q); len(jobs) != 1 || jobs[0].ID != manual.ID {
			t.Fatalf("jobs %+v", jobs)
		}
	})
}

// A restart of the only node neither skips nor doubles a due run: the new
// node queues what came due while it was down once, and what was queued
// before the restart is not queued again.
func TestScheduleAcrossRestart(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		clock := &offsetClock{}
		start := clock.Now()
		done := make(chan string, 10)
		run := func(ctx context.Context, id string, _ connection.Trigger) error {
			done <- id
			return nil
		}
		first := db.open(t, Options{Clock: clock, Run: run, SchedulerInterval: time.Hour})
		if err := first.Schedule(ctx, "c1", every(t, 15*time.Minute), start); err != nil {
			t.Fatal(err)
		}
		events := subscribe(t, first)
		if err := first.Start(ctx); err != nil { // its scheduler ticks at once
			t.Fatal(err)
		}
		if ev := events.next(t, "c1"); ev.Kind != JobCompleted {
			t.Fatalf("event %+v", ev)
		}
		if err := first.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		first.Close()

		// Down for 40 minutes: the due times +15m and +30m pass.
		clock.Advance(40 * time.Minute)
		second := db.open(t, Options{Clock: clock, Run: run, SchedulerInterval: time.Hour})
		if err := second.Schedule(ctx, "c1", every(t, 15*time.Minute), clock.Now()); err != nil { // as at every start: unchanged, kept
			t.Fatal(err)
		}
		events = subscribe(t, second)
		if err := second.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if ev := events.next(t, "c1"); ev.Kind != JobCompleted {
			t.Fatalf("event %+v", ev)
		}
		if got, err := second.Tick(ctx); err != nil || got != 0 {
			t.Fatalf("a second tick inserted %d (%v)", got, err)
		}
		counts := dueCounts(t, second)
		want := map[string]int{
			fmt.Sprintf("c1@%d", start.UnixMilli()):                     1,
			fmt.Sprintf("c1@%d", start.Add(15*time.Minute).UnixMilli()): 1, // the missed due times, once
		}
		if fmt.Sprint(counts) != fmt.Sprint(want) {
			t.Fatalf("scheduled runs %v, want %v", counts, want)
		}
		due, _, _ := second.NextDue(ctx, "c1")
		if want := start.Add(45 * time.Minute).Truncate(time.Millisecond); !due.Equal(want) {
			t.Fatalf("next due %s, want %s (back on the grid)", due, want)
		}
		if len(done) != 2 {
			t.Fatalf("%d runs executed, want 2", len(done))
		}
	})
}

func TestScheduleChanges(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		q := db.open(t, Options{})
		now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
		if err := q.Schedule(ctx, "c1", every(t, 15*time.Minute), now); err != nil {
			t.Fatal(err)
		}
		check := func(want time.Time, wantOK bool) {
			t.Helper()
			due, ok, err := q.NextDue(ctx, "c1")
			if err != nil || ok != wantOK || !due.Equal(want) {
				t.Fatalf("next due %s %v %v, want %s %v", due, ok, err, want, wantOK)
			}
		}
		check(now, true)
		// The same schedule again (every start does this): kept.
		if err := q.Schedule(ctx, "c1", every(t, 15*time.Minute), now.Add(5*time.Minute)); err != nil {
			t.Fatal(err)
		}
		check(now, true)
		// A new schedule: next on its own grid, not at once.
		hourly, _ := connection.CronSchedule("0 * * * *")
		if err := q.Schedule(ctx, "c1", hourly, now.Add(5*time.Minute)); err != nil {
			t.Fatal(err)
		}
		check(now.Add(time.Hour), true)
		// Manual (or paused): no longer due.
		if err := q.Schedule(ctx, "c1", connection.Schedule{}, now); err != nil {
			t.Fatal(err)
		}
		check(time.Time{}, false)
		if err := q.Unschedule(ctx, "c1"); err != nil {
			t.Fatalf("unscheduling twice: %v", err)
		}
	})
}

// A node that read a due row before another node claimed it cannot claim
// it again, even once the first run has finished (which unique jobs alone
// would not prevent).
func TestClaimIsCompareAndSwap(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		clock := &offsetClock{}
		a := db.open(t, Options{Clock: clock})
		b := db.open(t, Options{Clock: clock})
		s := every(t, 15*time.Minute)
		if err := a.Schedule(ctx, "c1", s, clock.Now()); err != nil {
			t.Fatal(err)
		}
		stale, err := b.eng.queryDue(ctx, `SELECT connection_id, schedule, next_due FROM `+b.table()+` WHERE connection_id = $1`, "c1")
		if err != nil || len(stale) != 1 {
			t.Fatalf("read: %v %v", stale, err)
		}
		if got, err := a.Tick(ctx); err != nil || got != 1 {
			t.Fatalf("tick: %d %v", got, err)
		}
		for _, j := range allJobs(t, a) {
			a.Cancel(ctx, j.ID) // the run is over
		}
		d := stale[0]
		ok, _, err := b.eng.claim(ctx, d.id, d.schedule, d.nextDue, d.nextDue+int64(15*time.Minute/time.Millisecond),
			RunArgs{ConnectionID: d.id, Trigger: connection.Scheduled, DueAt: time.UnixMilli(d.nextDue)})
		if err != nil || ok {
			t.Fatalf("stale claim: ok=%v err=%v, want refused", ok, err)
		}
		if n := len(allJobs(t, a)); n != 1 {
			t.Fatalf("%d jobs, want 1", n)
		}
	})
}

// Two working nodes with their schedulers ticking on their own: over
// several due rounds every due run of every connection executes exactly
// once, on one node or the other.
func TestScheduledRunsExecuteOnceOnTwoNodes(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		clock := &offsetClock{}
		run := func(context.Context, string, connection.Trigger) error { return nil }
		opts := Options{Clock: clock, Run: run, Workers: 2, SchedulerInterval: 20 * time.Millisecond}
		a, b := db.open(t, opts), db.open(t, opts)
		completed := make(chan Event, 100)
		for _, q := range []*Queue{a, b} {
			c, cancel := q.Subscribe()
			done := make(chan struct{})
			go func() {
				defer close(done)
				for ev := range c {
					completed <- ev
				}
			}()
			t.Cleanup(func() { cancel(); <-done })
		}
		const n, rounds = 10, 3
		start := clock.Now()
		for i := range n {
			if err := a.Schedule(ctx, fmt.Sprintf("c%d", i), every(t, time.Minute), start); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := b.Start(ctx); err != nil {
			t.Fatal(err)
		}
		executed := map[string]int{}
		for round := range rounds {
			for range n {
				ev := recv(t, completed, fmt.Sprintf("round %d", round))
				if ev.Kind != JobCompleted || ev.Job.Trigger != connection.Scheduled {
					t.Fatalf("event %+v", ev)
				}
				executed[fmt.Sprintf("%s@%d", ev.Job.ConnectionID, ev.Job.DueAt.Sub(start).Round(time.Minute)/time.Minute)]++
			}
			clock.Advance(time.Minute)
		}
		if err := a.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if err := b.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if len(executed) != n*rounds {
			t.Fatalf("%d distinct due runs executed, want %d: %v", len(executed), n*rounds, executed)
		}
		for k, c := range executed {
			if c != 1 {
				t.Errorf("%s executed %d times", k, c)
			}
		}
		select {
		case ev := <-completed:
			if ev.Job.DueAt.Sub(start).Round(time.Minute) < rounds*time.Minute {
				t.Fatalf("an extra run: %+v", ev)
			}
		default:
		}
	})
}
