package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

// dueRow is a connection whose next run is due.
type dueRow struct {
	id       string
	schedule string
	nextDue  int64 // Unix milliseconds
}

// dueBatch bounds the connections one tick queues; the next tick takes
// the rest.
const dueBatch = 500

func ms(t time.Time) int64 { return t.UnixMilli() }

// Schedule makes connection id due by s (connection.Scheduler). A new
// entry is first due at s.First(now); an unchanged schedule keeps its due
// time (so calling Schedule at every start is harmless); a changed one is
// next due at s.Next(now, now). A manual schedule removes the entry.
func (q *Queue) Schedule(ctx context.Context, id string, s connection.Schedule, now time.Time) error {
	if s.IsManual() {
		return q.Unschedule(ctx, id)
	}
	now = q.scaled(now)
	text := s.String()
	if _, err := q.eng.exec(ctx, `UPDATE `+q.table()+` SET schedule = $1, next_due = $2 WHERE connection_id = $3 AND schedule <> $1`,
		text, ms(s.Next(now, now)), id); err != nil {
		return fmt.Errorf("jobs: schedule %s: %w", id, err)
	}
	if _, err := q.eng.exec(ctx, `INSERT INTO `+q.table()+` (connection_id, schedule, next_due) VALUES ($1, $2, $3) ON CONFLICT (connection_id) DO NOTHING`,
		id, text, ms(s.First(now))); err != nil {
		return fmt.Errorf("jobs: schedule %s: %w", id, err)
	}
	return nil
}

// Unschedule removes connection id from the schedule (paused, manual or
// deleted); a queued run is left alone (see Cancel).
func (q *Queue) Unschedule(ctx context.Context, id string) error {
	if _, err := q.eng.exec(ctx, `DELETE FROM `+q.table()+` WHERE connection_id = $1`, id); err != nil {
		return fmt.Errorf("jobs: unschedule %s: %w", id, err)
	}
	return nil
}

// NextDue returns when connection id is next due; false when it is not
// scheduled.
func (q *Queue) NextDue(ctx context.Context, id string) (time.Time, bool, error) {
	rows, err := q.eng.queryDue(ctx, `SELECT connection_id, schedule, next_due FROM `+q.table()+` WHERE connection_id = $1`, id)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("jobs: next due of %s: %w", id, err)
	}
	if len(rows) == 0 {
		return time.Time{}, false, nil
	}
	return q.unscaled(time.UnixMilli(rows[0].nextDue).UTC()), true, nil
}

// Tick queues a run for every connection due at the clock's now and
// advances its next_due, each in one transaction with the job's insert.
// Every node may tick at any time: a connection is claimed by the one
// transaction that moves its next_due from the value read, so a due time
// yields exactly one enqueue attempt. When the connection already has a
// run queued or running, that run stands for this due time (coalesced).
// Tick returns how many runs it inserted.
func (q *Queue) Tick(ctx context.Context) (int, error) {
	now := q.scaled(q.opts.Clock.Now())
	due, err := q.eng.queryDue(ctx, `SELECT connection_id, schedule, next_due FROM `+q.table()+` WHERE next_due <= $1 ORDER BY next_due LIMIT `+fmt.Sprint(dueBatch), ms(now))
	if err != nil {
		return 0, fmt.Errorf("jobs: scheduler: %w", err)
	}
	inserted := 0
	for _, d := range due {
		s, err := connection.ParseSchedule(d.schedule)
		if err != nil || s.IsManual() {
			q.opts.Logger.Error("jobs: unreadable schedule; unscheduling", "connection", d.id, "error", err)
			q.Unschedule(ctx, d.id)
			continue
		}
		last := time.UnixMilli(d.nextDue).UTC()
		next := s.Next(last, now)
		ok, res, err := q.eng.claim(ctx, d.id, d.schedule, d.nextDue, ms(next),
			RunArgs{ConnectionID: d.id, Trigger: connection.Scheduled, DueAt: q.unscaled(last)})
		switch {
		case err != nil:
			return inserted, fmt.Errorf("jobs: scheduler: queue %s: %w", d.id, err)
		case !ok:
			continue // another node took it
		case res.UniqueSkippedAsDuplicate:
			q.opts.Logger.Info("jobs: a run is already queued or running; it covers this due time", "connection", d.id, "due", q.unscaled(last), "job", res.Job.ID)
		default:
			inserted++
			q.opts.Logger.Debug("jobs: queued scheduled run", "connection", d.id, "due", q.unscaled(last), "next", q.unscaled(next), "job", res.Job.ID)
		}
	}
	return inserted, nil
}

// scheduleLoop ticks every SchedulerInterval until ctx ends.
func (q *Queue) scheduleLoop(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(q.opts.SchedulerInterval)
	defer t.Stop()
	for {
		if _, err := q.Tick(ctx); err != nil && ctx.Err() == nil {
			q.opts.Logger.Error("jobs: scheduler tick failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// scaled and unscaled convert between real time and the schedules' time,
// which runs TimeScale times faster (tests).
func (q *Queue) scaled(t time.Time) time.Time {
	if q.opts.TimeScale <= 1 {
		return t
	}
	return time.UnixMilli(t.UnixMilli() * int64(q.opts.TimeScale)).UTC()
}

func (q *Queue) unscaled(t time.Time) time.Time {
	if q.opts.TimeScale <= 1 {
		return t
	}
	return time.UnixMilli(t.UnixMilli() / int64(q.opts.TimeScale)).UTC()
}

// table is connection_schedules, qualified by the schema when set.
func (q *Queue) table() string {
	if q.opts.Schema != "" {
		return q.opts.Schema + ".connection_schedules"
	}
	return "connection_schedules"
}

// claimSQL advances a due connection's next_due if no one else has.
const claimSQL = `UPDATE %s SET next_due = $1 WHERE connection_id = $2 AND next_due = $3 AND schedule = $4`
