package sqlstore

import (
	"context"
	"fmt"

	"github.com/outreach-connector/outreach-connector/internal/load"
)

var _ load.ActionJournal = (*Loads)(nil)

// Actions returns the action entries of load id (table load_actions).
func (j *Loads) Actions(ctx context.Context, id string) ([]load.ActionEntry, error) {
	rs, err := j.db.QueryContext(ctx, `SELECT action, record_id, status, detail FROM load_actions WHERE load_id = $1 ORDER BY action, record_id`, id)
	if err != nil {
		return nil, fmt.Errorf("read load actions: %w", err)
	}
	defer rs.Close()
	var out []load.ActionEntry
	for rs.Next() {
		var e load.ActionEntry
		var status string
		if err := rs.Scan(&e.Action, &e.RecordID, &status, &e.Detail); err != nil {
			return nil, err
		}
		e.Status = load.ActionStatus(status)
		out = append(out, e)
	}
	return out, rs.Err()
}

// RecordActions inserts or replaces action entries of load id in one
// transaction and renews holder's lease; load.ErrLeaseLost when holder
// lost the load.
func (j *Loads) RecordActions(ctx context.Context, id, holder string, entries ...load.ActionEntry) error {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := j.now().UnixMilli()
	res, err := tx.ExecContext(ctx, `UPDATE loads SET heartbeat_at = $3 WHERE id = $1 AND holder = $2`, id, holder, now)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return load.ErrLeaseLost
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO load_actions (load_id, action, record_id, status, detail, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (load_id, action, record_id) DO UPDATE SET status = excluded.status, detail = excluded.detail, updated_at = excluded.updated_at`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, e := range entries {
		if _, err := stmt.ExecContext(ctx, id, e.Action, e.RecordID, string(e.Status), e.Detail, now); err != nil {
			return fmt.Errorf("record action %s on %d of load %s: %w", e.Action, e.RecordID, id, err)
		}
	}
	return tx.Commit()
}
