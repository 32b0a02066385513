package jobs

import (
	"context"
	"fmt"
)

// Depth counts the queue's unfinished jobs by state (available,
// scheduled, running, retryable, pending), for the queue-depth metric.
func (q *Queue) Depth(ctx context.Context) (map[string]int64, error) {
	rows, err := q.eng.list(ctx, activeStates...)
	if err != nil {
		return nil, fmt.Errorf("jobs: list: %w", err)
	}
	out := map[string]int64{}
	for _, row := range rows {
		out[string(row.State)]++
	}
	return out, nil
}
