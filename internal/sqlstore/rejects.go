package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/load"
)

// MaxRejectsKept bounds the rejected rows kept for one run.
const MaxRejectsKept = 10000

// LoadJournal returns the load journal on the connections' database: the
// journal of destination connections' runs (a *Loads, which records
// actions too).
func (s *Connections) LoadJournal() load.Journal {
	return &Loads{db: s.db, isUnique: s.isUnique, now: time.Now}
}

// DeleteLoad removes load id and its journal (rows and actions), in one
// transaction; no error when there is none.
func (s *Connections) DeleteLoad(ctx context.Context, id string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, table := range []string{"load_actions", "load_rows"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE load_id = $1`, id); err != nil {
			return fmt.Errorf("delete load %s: %w", id, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM loads WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete load %s: %w", id, err)
	}
	return tx.Commit()
}

// SaveRejects replaces the rejected rows kept for run runID of connection
// connectionID (at most MaxRejectsKept, by line), and drops those of runs
// no longer in the history, in one transaction.
func (s *Connections) SaveRejects(ctx context.Context, connectionID, runID string, rejects []load.Rejection) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM connection_rejects WHERE run_id = $1 OR (connection_id = $2 AND run_id NOT IN
		(SELECT id FROM connection_runs WHERE connection_id = $2))`, runID, connectionID); err != nil {
		return fmt.Errorf("rejects of run %s: %w", runID, err)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO connection_rejects (run_id, connection_id, line, column_name, reason, error_id, pointer, row_values)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (run_id, line) DO NOTHING`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for i, r := range rejects {
		if i == MaxRejectsKept {
			break
		}
		row, err := json.Marshal(r.Row)
		if err != nil {
			return err
		}
		if _, err := stmt.ExecContext(ctx, runID, connectionID, r.Line, r.Column, r.Reason, r.ErrorID, r.Pointer, string(row)); err != nil {
			return fmt.Errorf("reject of line %d, run %s: %w", r.Line, runID, err)
		}
	}
	return tx.Commit()
}

// Rejects returns the rejected rows kept for run runID of connection
// connectionID, by line, at most limit.
func (s *Connections) Rejects(ctx context.Context, connectionID, runID string, limit int) ([]load.Rejection, error) {
	rs, err := s.db.QueryContext(ctx, `SELECT line, column_name, reason, error_id, pointer, row_values FROM connection_rejects
		WHERE connection_id = $1 AND run_id = $2 ORDER BY line LIMIT $3`, connectionID, runID, limit)
	if err != nil {
		return nil, fmt.Errorf("read rejects: %w", err)
	}
	defer rs.Close()
	var out []load.Rejection
	for rs.Next() {
		var r load.Rejection
		var row string
		if err := rs.Scan(&r.Line, &r.Column, &r.Reason, &r.ErrorID, &r.Pointer, &row); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(row), &r.Row); err != nil {
			return nil, fmt.Errorf("reject of line %d: %w", r.Line, err)
		}
		out = append(out, r)
	}
	return out, rs.Err()
}
