package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"
)

// txDB is the little SQL the scheduler needs, over one driver's pool and
// transaction type.
type txDB[TTx any] interface {
	begin(ctx context.Context) (TTx, error)
	commit(ctx context.Context, tx TTx) error
	rollback(ctx context.Context, tx TTx)
	execTx(ctx context.Context, tx TTx, q string, args ...any) (int64, error)
	exec(ctx context.Context, q string, args ...any) (int64, error)
	queryDue(ctx context.Context, q string, args ...any) ([]dueRow, error)
	close()
}

// riverEngine is the one implementation of engine, for either driver.
type riverEngine[TTx any] struct {
	client *river.Client[TTx]
	db     txDB[TTx]
	table  string
	schema string // River's schema ("" the default)
}

func (e *riverEngine[TTx]) start(ctx context.Context) error { return e.client.Start(ctx) }

func (e *riverEngine[TTx]) stop(ctx context.Context) error {
	// StopAndCancel: a run is cancelled and goes back to the queue at
	// once (River marks it interrupted), rather than holding up a deploy.
	return e.client.StopAndCancel(ctx)
}

func (e *riverEngine[TTx]) insert(ctx context.Context, args RunArgs) (*rivertype.JobInsertResult, error) {
	return e.client.Insert(ctx, args, nil)
}

func (e *riverEngine[TTx]) cancel(ctx context.Context, jobID int64) (*rivertype.JobRow, error) {
	return e.client.JobCancel(ctx, jobID)
}

func (e *riverEngine[TTx]) get(ctx context.Context, jobID int64) (*rivertype.JobRow, error) {
	return e.client.JobGet(ctx, jobID)
}

func (e *riverEngine[TTx]) list(ctx context.Context, states ...rivertype.JobState) ([]*rivertype.JobRow, error) {
	res, err := e.client.JobList(ctx, river.NewJobListParams().Kinds(RunArgs{}.Kind()).States(states...).First(10000))
	if err != nil {
		return nil, err
	}
	return res.Jobs, nil
}

func (e *riverEngine[TTx]) retryNow(ctx context.Context, rows []*rivertype.JobRow, now time.Time) error {
	p := &riverdriver.JobRescueManyParams{Schema: e.schema, StuckHorizon: now}
	for _, row := range rows {
		why, err := json.Marshal(rivertype.AttemptError{At: now.UTC(), Attempt: max(row.Attempt, 0),
			Error: "its node stopped (the process is gone); retried at once by the node that found it"})
		if err != nil {
			return err
		}
		p.ID = append(p.ID, row.ID)
		p.Error = append(p.Error, why)
		p.FinalizedAt = append(p.FinalizedAt, nil)
		p.ScheduledAt = append(p.ScheduledAt, now.UTC())
		p.State = append(p.State, string(rivertype.JobStateAvailable))
	}
	_, err := e.client.Driver().GetExecutor().JobRescueMany(ctx, p)
	return err
}

func (e *riverEngine[TTx]) subscribe() (<-chan *river.Event, func()) {
	return e.client.Subscribe(subscribedKinds...)
}

func (e *riverEngine[TTx]) claim(ctx context.Context, id, schedule string, old, next int64, args RunArgs) (bool, *rivertype.JobInsertResult, error) {
	tx, err := e.db.begin(ctx)
	if err != nil {
		return false, nil, err
	}
	defer e.db.rollback(ctx, tx)
	n, err := e.db.execTx(ctx, tx, fmt.Sprintf(claimSQL, e.table), next, id, old, schedule)
	if err != nil || n == 0 {
		return false, nil, err
	}
	res, err := e.client.InsertTx(ctx, tx, args, nil)
	if err != nil {
		return false, nil, err
	}
	if err := e.db.commit(ctx, tx); err != nil {
		return false, nil, err
	}
	return true, res, nil
}

func (e *riverEngine[TTx]) exec(ctx context.Context, q string, args ...any) (int64, error) {
	return e.db.exec(ctx, q, args...)
}

func (e *riverEngine[TTx]) queryDue(ctx context.Context, q string, args ...any) ([]dueRow, error) {
	return e.db.queryDue(ctx, q, args...)
}

func (e *riverEngine[TTx]) close() { e.db.close() }
