// Package jobs runs connections as River jobs (github.com/riverqueue/river)
// on the app database: SQLite through riversqlite, PostgreSQL through
// riverpgxv5, with one code path for both.
//
// A run is a "connection_run" job whose arguments carry the connection id
// and the trigger. At most one run per connection is queued or running at
// a time (a unique job by connection id). A failed run is retried with
// backoff; a cancelled job cancels its run's context; a run whose node died
// is rescued by the River leader after RescueAfter and resumes from the
// committed state. Schedules live in the database (connection_schedules):
// every node's scheduler ticks, and claims a due connection by advancing
// its next_due in the same transaction that inserts the job, so a restart
// or a change of node neither skips nor doubles a due run.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

// RunFunc runs connection connectionID once. It must return soon after ctx
// is done (cancelled, stopped, or at the end of its time slice) and must
// commit its progress as it goes: the next attempt resumes from it.
type RunFunc func(ctx context.Context, connectionID string, trigger connection.Trigger) error

// Clock tells the time; tests inject one.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Defaults of Options.
const (
	DefaultWorkers           = 4
	DefaultMaxAttempts       = 5
	DefaultRunTimeout        = 5 * time.Minute
	DefaultSchedulerInterval = 10 * time.Second
	// rescueMargin is added to RunTimeout for the default RescueAfter.
	rescueMargin = time.Minute
)

// Options configure a Queue. The zero value of each field is its default.
type Options struct {
	// Run runs a connection; required to Start (a Queue without it can
	// only enqueue and schedule).
	Run    RunFunc
	Logger *slog.Logger
	// Clock is the time used for schedules, retries and (in tests) River's
	// own timestamps. Default: the system clock.
	Clock Clock
	// ID names this node among the clients of the database (River's
	// client id); default random.
	ID string
	// Schema is the PostgreSQL schema holding River's tables and
	// connection_schedules; empty means the connection's search_path.
	// Ignored on SQLite.
	Schema string
	// Workers is how many connections this node runs at once.
	Workers int
	// MaxAttempts is how many times a failing run is tried before it is
	// given up (discarded) until its next due time.
	MaxAttempts int
	// RetryBackoff is the wait before attempt+1 after a failed attempt;
	// default 30s doubling per attempt, at most 30m.
	RetryBackoff func(attempt int) time.Duration
	// RunTimeout is one attempt's time slice. A run still going at its end
	// has its context cancelled and continues at once as a fresh slice
	// (not counted as an attempt), from its committed state.
	RunTimeout time.Duration
	// RescueAfter is how long a job may stay "running" before the leader
	// takes its node for dead and retries it elsewhere. It must exceed
	// RunTimeout, so that a live run is never rescued; a dead node's run
	// therefore resumes after RescueAfter (plus up to River's 30s rescuer
	// interval). Default RunTimeout + 1m.
	RescueAfter time.Duration
	// NodeGone, when set, tells whether the node named id has stopped for
	// certain (a process of this host that no longer runs). At Start, a
	// run such a node left "running" is retried at once instead of after
	// RescueAfter: the only node, restarted after kill -9, resumes its run
	// at once. Nil leaves every such run to RescueAfter.
	NodeGone func(id string) bool
	// SchedulerInterval is how often this node looks for due connections.
	SchedulerInterval time.Duration
	// TimeScale, for tests only, makes schedules run TimeScale times
	// faster than they say ("every 1m" at 10 is due every 6 s) and the
	// scheduler tick as often; 0 or 1 is real time. Every node of one
	// database must use the same scale.
	TimeScale int

	// testOnly skips River's start-up jitter (tests only).
	testOnly bool
}

func (o *Options) setDefaults() error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = systemClock{}
	}
	if o.Workers == 0 {
		o.Workers = DefaultWorkers
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.RetryBackoff == nil {
		o.RetryBackoff = DefaultRetryBackoff
	}
	if o.RunTimeout == 0 {
		o.RunTimeout = DefaultRunTimeout
	}
	if o.RescueAfter == 0 {
		o.RescueAfter = o.RunTimeout + rescueMargin
	}
	if o.TimeScale <= 0 {
		o.TimeScale = 1
	}
	if o.SchedulerInterval == 0 {
		o.SchedulerInterval = DefaultSchedulerInterval / time.Duration(o.TimeScale)
	}
	switch {
	case o.Workers < 0:
		return fmt.Errorf("jobs: workers %d is negative", o.Workers)
	case o.MaxAttempts < 0:
		return fmt.Errorf("jobs: max attempts %d is negative", o.MaxAttempts)
	case o.RunTimeout < 0:
		return fmt.Errorf("jobs: run timeout %s is negative; runs need a time slice so that a dead node's run can be rescued", o.RunTimeout)
	case o.RescueAfter <= o.RunTimeout:
		return fmt.Errorf("jobs: rescue-after (%s) must be longer than the run timeout (%s), or live runs would be taken for dead and run twice", o.RescueAfter, o.RunTimeout)
	case o.SchedulerInterval < 0:
		return fmt.Errorf("jobs: scheduler interval %s is negative", o.SchedulerInterval)
	case o.Schema != "" && !identifier.MatchString(o.Schema):
		return fmt.Errorf("jobs: schema %q is not a plain identifier (lowercase letters, digits, _)", o.Schema)
	}
	return nil
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// DefaultRetryBackoff waits 30s after the first failed attempt, doubling
// each time, at most 30 minutes.
func DefaultRetryBackoff(attempt int) time.Duration {
	d := 30 * time.Second
	for i := 1; i < attempt && d < 30*time.Minute; i++ {
		d *= 2
	}
	return min(d, 30*time.Minute)
}

// queueName is the River queue connection runs go through.
const queueName = "connections"

// RunArgs are a connection run job's arguments. Only ConnectionID takes
// part in uniqueness: one run per connection, whatever its trigger.
type RunArgs struct {
	ConnectionID string             `json:"connection_id" river:"unique"`
	Trigger      connection.Trigger `json:"trigger"`
	// DueAt is the due time a scheduled run fulfils.
	DueAt time.Time `json:"due_at,omitzero"`
}

// Kind implements river.JobArgs.
func (RunArgs) Kind() string { return "connection_run" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (RunArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue: queueName,
		UniqueOpts: river.UniqueOpts{
			ByArgs: true,
			// Every state of a job not yet finished; a completed, cancelled
			// or discarded run does not block the next one.
			ByState: activeStates,
		},
	}
}

var activeStates = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
	rivertype.JobStateRetryable, rivertype.JobStateRunning, rivertype.JobStateScheduled}

// runWorker works connection_run jobs by calling the RunFunc.
type runWorker struct {
	river.WorkerDefaults[RunArgs]
	run     RunFunc
	clock   Clock
	backoff func(int) time.Duration

	// failed holds the jobs whose attempt failed here and await NextRetry.
	// NextRetry of any other job is River's rescuer retrying the job of a
	// dead node: that run resumes at once, as its node, not the run, failed.
	mu     sync.Mutex
	failed map[int64]bool
}

func (w *runWorker) Work(ctx context.Context, job *river.Job[RunArgs]) error {
	trigger := job.Args.Trigger
	if job.Attempt > 1 {
		trigger = connection.Retry
	}
	ctx = context.WithValue(ctx, jobKey{}, Job{ID: job.ID, ConnectionID: job.Args.ConnectionID, Trigger: job.Args.Trigger,
		DueAt: job.Args.DueAt, Attempt: job.Attempt, State: string(job.State)})
	err := w.run(ctx, job.Args.ConnectionID, trigger)
	var final *noRetryError
	if errors.As(err, &final) {
		return river.JobCancel(final.err)
	}
	if err != nil && ctx.Err() != nil && errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		// The slice is over, not the run: continue at once, from the
		// committed state, without spending an attempt.
		return river.JobSnooze(0)
	}
	if err != nil {
		w.mu.Lock()
		if w.failed == nil {
			w.failed = map[int64]bool{}
		}
		w.failed[job.ID] = true
		w.mu.Unlock()
	}
	return err
}

func (w *runWorker) NextRetry(job *river.Job[RunArgs]) time.Time {
	w.mu.Lock()
	failedHere := w.failed[job.ID]
	delete(w.failed, job.ID)
	w.mu.Unlock()
	if !failedHere {
		return w.clock.Now() // rescued from a dead node
	}
	return w.clock.Now().Add(w.backoff(job.Attempt))
}

// NoRetry marks a run's error as final: the job is not retried (River
// cancels it). For a connection that no longer exists or a credential that
// needs re-authorization, where retrying cannot help.
func NoRetry(err error) error {
	if err == nil {
		return nil
	}
	return &noRetryError{err}
}

type noRetryError struct{ err error }

func (e *noRetryError) Error() string { return e.err.Error() }
func (e *noRetryError) Unwrap() error { return e.err }

// OutcomeOf classifies how a run given ctx by this package ended with err:
// cancelled (JobCancel), interrupted (its slice ended or its node is
// stopping; it will continue), failed, or succeeded.
func OutcomeOf(ctx context.Context, err error) connection.Outcome {
	switch {
	case err == nil:
		return connection.Succeeded
	case errors.Is(context.Cause(ctx), river.ErrJobCancelledRemotely):
		return connection.Cancelled
	case ctx.Err() != nil:
		return connection.Interrupted
	}
	return connection.Failed
}

// Job is a queued connection run.
type Job struct {
	ID           int64
	ConnectionID string
	Trigger      connection.Trigger
	// DueAt is the due time a scheduled run fulfils.
	DueAt   time.Time
	Attempt int
	// State is River's: available, scheduled, running, retryable,
	// completed, cancelled, discarded.
	State string
	// Duplicate is set by Enqueue when a run of the connection was already
	// queued or running; Job is then that run.
	Duplicate bool
}

// EventKind is what happened to a job on this node.
type EventKind string

// The events a node reports for the jobs it works.
const (
	JobCompleted   EventKind = "completed"
	JobFailed      EventKind = "failed" // State tells retryable from discarded
	JobCancelled   EventKind = "cancelled"
	JobSnoozed     EventKind = "snoozed" // a slice ended; the run continues
	JobInterrupted EventKind = "interrupted"
)

// Event reports a job finishing an attempt on this node.
type Event struct {
	Kind EventKind
	Job  Job
}

func jobFromRow(row *rivertype.JobRow) (Job, error) {
	var args RunArgs
	if err := unmarshalArgs(row.EncodedArgs, &args); err != nil {
		return Job{}, fmt.Errorf("jobs: job %d: %w", row.ID, err)
	}
	return Job{ID: row.ID, ConnectionID: args.ConnectionID, Trigger: args.Trigger, DueAt: args.DueAt, Attempt: row.Attempt, State: string(row.State)}, nil
}

// Queue runs connections on one node. Open it with OpenSQLite or
// OpenPostgres; Start works the queue and runs the scheduler; Stop stops
// both; Close releases the database.
type Queue struct {
	eng  engine
	opts Options

	mu      sync.Mutex
	stop    context.CancelFunc
	stopped chan struct{}
}

// engine is what differs by River driver (the transaction type).
type engine interface {
	start(ctx context.Context) error
	stop(ctx context.Context) error
	insert(ctx context.Context, args RunArgs) (*rivertype.JobInsertResult, error)
	cancel(ctx context.Context, jobID int64) (*rivertype.JobRow, error)
	get(ctx context.Context, jobID int64) (*rivertype.JobRow, error)
	list(ctx context.Context, states ...rivertype.JobState) ([]*rivertype.JobRow, error)
	subscribe() (<-chan *river.Event, func())
	// retryNow makes running jobs available at now, as River's rescuer
	// makes a stuck job retryable.
	retryNow(ctx context.Context, rows []*rivertype.JobRow, now time.Time) error
	// claim advances connection id's next_due from old to next and, in
	// the same transaction, inserts its scheduled run; false when another
	// node claimed it first or its schedule changed.
	claim(ctx context.Context, id, schedule string, old, next int64, args RunArgs) (bool, *rivertype.JobInsertResult, error)
	exec(ctx context.Context, q string, args ...any) (int64, error)
	queryDue(ctx context.Context, q string, args ...any) ([]dueRow, error)
	close()
}

// Start works the queue on this node and starts its scheduler. ctx bounds
// start-up only; Stop ends both.
func (q *Queue) Start(ctx context.Context) error {
	if q.opts.Run == nil {
		return errors.New("jobs: Start needs Options.Run")
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stop != nil {
		return errors.New("jobs: already started")
	}
	if q.opts.NodeGone != nil {
		if n, err := q.retryRunsOfGoneNodes(ctx); err != nil {
			q.opts.Logger.Warn("jobs: could not look for runs of stopped nodes; River's rescuer retries them after rescue-after", "error", err)
		} else if n > 0 {
			q.opts.Logger.Info("jobs: retrying now the runs a stopped node left running", "runs", n)
		}
	}
	// River stops when the context given to its Start ends; this node
	// stops on Stop instead.
	if err := q.eng.start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("jobs: start: %w", err)
	}
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	q.stop, q.stopped = cancel, make(chan struct{})
	go q.scheduleLoop(loopCtx, q.stopped)
	return nil
}

// retryRunsOfGoneNodes makes the runs that nodes gone for certain
// (Options.NodeGone) left running available again now, as River's
// rescuer would after RescueAfter; it returns how many. A run at its last
// attempt is left to the rescuer, which discards it.
func (q *Queue) retryRunsOfGoneNodes(ctx context.Context) (int, error) {
	rows, err := q.eng.list(ctx, rivertype.JobStateRunning)
	if err != nil {
		return 0, err
	}
	var gone []*rivertype.JobRow
	for _, row := range rows {
		n := len(row.AttemptedBy)
		if n == 0 || row.AttemptedBy[n-1] == q.opts.ID || row.Attempt >= row.MaxAttempts {
			continue
		}
		if q.opts.NodeGone(row.AttemptedBy[n-1]) {
			gone = append(gone, row)
		}
	}
	if len(gone) == 0 {
		return 0, nil
	}
	return len(gone), q.eng.retryNow(ctx, gone, q.opts.Clock.Now())
}

// Stop stops the scheduler and the workers: running runs have their
// context cancelled and are put back in the queue for the next node (not
// counted as an attempt). It waits for them, bounded by ctx.
func (q *Queue) Stop(ctx context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stop == nil {
		return nil
	}
	q.stop()
	<-q.stopped
	q.stop = nil
	return q.eng.stop(ctx)
}

// Close releases the database pool; call it after Stop.
func (q *Queue) Close() { q.eng.close() }

// Enqueue queues a run of connection id now, unless one is already queued
// or running: then Job is that one, with Duplicate set.
func (q *Queue) Enqueue(ctx context.Context, id string, trigger connection.Trigger) (Job, error) {
	if id == "" || !trigger.Valid() {
		return Job{}, fmt.Errorf("jobs: enqueue needs a connection id and a trigger (got %q, %q)", id, trigger)
	}
	res, err := q.eng.insert(ctx, RunArgs{ConnectionID: id, Trigger: trigger})
	if err != nil {
		return Job{}, fmt.Errorf("jobs: enqueue %s: %w", id, err)
	}
	j, err := jobFromRow(res.Job)
	j.Duplicate = res.UniqueSkippedAsDuplicate
	return j, err
}

// Get returns job id.
func (q *Queue) Get(ctx context.Context, jobID int64) (Job, error) {
	row, err := q.eng.get(ctx, jobID)
	if err != nil {
		return Job{}, fmt.Errorf("jobs: job %d: %w", jobID, err)
	}
	return jobFromRow(row)
}

// Active returns the queued or running run of connection id, if any.
func (q *Queue) Active(ctx context.Context, id string) (Job, bool, error) {
	rows, err := q.eng.list(ctx, activeStates...)
	if err != nil {
		return Job{}, false, fmt.Errorf("jobs: list: %w", err)
	}
	for _, row := range rows {
		j, err := jobFromRow(row)
		if err == nil && j.ConnectionID == id {
			return j, true, nil
		}
	}
	return Job{}, false, nil
}

// Cancel cancels job id: a queued job never runs; a running job's context
// is cancelled on whichever node runs it, and it is not retried.
func (q *Queue) Cancel(ctx context.Context, jobID int64) (Job, error) {
	row, err := q.eng.cancel(ctx, jobID)
	if err != nil {
		return Job{}, fmt.Errorf("jobs: cancel %d: %w", jobID, err)
	}
	return jobFromRow(row)
}

// Subscribe reports the jobs this node finishes, until cancel (which
// waits for the forwarding goroutine). Events are dropped, not queued,
// while the receiver is not reading and River's buffer is full.
func (q *Queue) Subscribe() (<-chan Event, func()) {
	if q.opts.Run == nil {
		out := make(chan Event)
		close(out)
		return out, func() {}
	}
	in, cancelRiver := q.eng.subscribe()
	out := make(chan Event)
	done := make(chan struct{})
	quit := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		for ev := range in {
			if ev.Job == nil {
				continue
			}
			j, err := jobFromRow(ev.Job)
			if err != nil {
				continue
			}
			select {
			case out <- Event{Kind: eventKinds[ev.Kind], Job: j}:
			case <-quit:
				return
			}
		}
	}()
	var once sync.Once
	return out, func() {
		once.Do(func() {
			close(quit)
			cancelRiver()
			<-done
		})
	}
}

var eventKinds = map[river.EventKind]EventKind{
	river.EventKindJobCompleted:   JobCompleted,
	river.EventKindJobFailed:      JobFailed,
	river.EventKindJobCancelled:   JobCancelled,
	river.EventKindJobSnoozed:     JobSnoozed,
	river.EventKindJobInterrupted: JobInterrupted,
}

var subscribedKinds = []river.EventKind{river.EventKindJobCompleted, river.EventKindJobFailed,
	river.EventKindJobCancelled, river.EventKindJobSnoozed, river.EventKindJobInterrupted}

// riverConfig is the River configuration both drivers share.
func riverConfig(o *Options) *river.Config {
	workers := river.NewWorkers()
	cfg := &river.Config{
		ID:                   o.ID,
		Logger:               o.Logger,
		JobTimeout:           o.RunTimeout,
		MaxAttempts:          o.MaxAttempts,
		RescueStuckJobsAfter: o.RescueAfter,
		Schema:               o.Schema,
		TestOnly:             o.testOnly,
		Workers:              workers,
	}
	if _, ok := o.Clock.(systemClock); !ok {
		cfg.Test.Time = timeGenerator{o.Clock}
	}
	if o.Run != nil {
		river.AddWorker(workers, &runWorker{run: o.Run, clock: o.Clock, backoff: o.RetryBackoff})
		cfg.Queues = map[string]river.QueueConfig{queueName: {MaxWorkers: max(o.Workers, 1)}}
	} else {
		// An insert-only queue: it never works jobs, so the worker is
		// registered only to let inserts pass River's kind check.
		river.AddWorker(workers, &runWorker{run: func(context.Context, string, connection.Trigger) error {
			return errors.New("jobs: this node does not run connections")
		}, clock: o.Clock, backoff: o.RetryBackoff})
	}
	return cfg
}

// timeGenerator gives River an injected clock (tests).
type timeGenerator struct{ c Clock }

func (g timeGenerator) Now() time.Time { return g.c.Now() }
func (g timeGenerator) NowOrNil() *time.Time {
	t := g.c.Now().UTC()
	return &t
}

func unmarshalArgs(b []byte, args *RunArgs) error { return json.Unmarshal(b, args) }
