package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/load"
)

// Loads is the journal of write-back loads (load.Journal) on the same
// database as the credentials (tables loads and load_rows).
type Loads struct {
	db       *sql.DB
	isUnique func(error) bool
	now      func() time.Time
}

// Loads returns the load journal on s's database.
func (s *Store) Loads() *Loads { return &Loads{db: s.db, isUnique: s.isUnique, now: time.Now} }

var _ load.Journal = (*Loads)(nil)

// Begin starts load l or resumes it (see load.Journal).
func (j *Loads) Begin(ctx context.Context, l load.LoadInfo) (bool, []load.Entry, error) {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return false, nil, err
	}
	defer tx.Rollback()
	now := j.now()
	var status, holder string
	var heartbeat int64
	err = tx.QueryRowContext(ctx, `SELECT status, holder, heartbeat_at FROM loads WHERE id = $1`, l.ID).Scan(&status, &holder, &heartbeat)
	resumed := false
	match := strings.Join(l.Match, ",")
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO loads (id, type, mode, match_attrs, source, status, runs, started_at, holder, heartbeat_at)
			VALUES ($1, $2, $3, $4, $5, 'running', 1, $6, $7, $6)`, l.ID, l.Type, string(l.Mode), match, l.Source, now.UnixMilli(), l.Holder); err != nil {
			if j.isUnique != nil && j.isUnique(err) {
				return false, nil, &load.BusyError{ID: l.ID, Holder: "another process", Heartbeat: now}
			}
			return false, nil, fmt.Errorf("start load %s: %w", l.ID, err)
		}
	case err != nil:
		return false, nil, fmt.Errorf("read load %s: %w", l.ID, err)
	case status == "running" && holder != "" && holder != l.Holder && now.Sub(time.UnixMilli(heartbeat)) < load.LeaseTTL &&
		(l.HolderGone == nil || !l.HolderGone(holder)):
		return false, nil, &load.BusyError{ID: l.ID, Holder: holder, Heartbeat: time.UnixMilli(heartbeat)}
	case status == "finished":
		if _, err := tx.ExecContext(ctx, `DELETE FROM load_rows WHERE load_id = $1`, l.ID); err != nil {
			return false, nil, err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM load_actions WHERE load_id = $1`, l.ID); err != nil {
			return false, nil, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE loads SET status = 'running', runs = 1, summary = '', started_at = $2, finished_at = 0,
			type = $3, mode = $4, match_attrs = $5, source = $6, holder = $7, heartbeat_at = $2 WHERE id = $1`,
			l.ID, now.UnixMilli(), l.Type, string(l.Mode), match, l.Source, l.Holder); err != nil {
			return false, nil, err
		}
	default:
		resumed = true
		// Taking the load over only if it is still as read: two processes
		// resuming at once cannot both win.
		res, err := tx.ExecContext(ctx, `UPDATE loads SET runs = runs + 1, holder = $2, heartbeat_at = $3
			WHERE id = $1 AND holder = $4 AND heartbeat_at = $5`, l.ID, l.Holder, now.UnixMilli(), holder, heartbeat)
		if err != nil {
			return false, nil, err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return false, nil, &load.BusyError{ID: l.ID, Holder: "another process", Heartbeat: now}
		}
	}
	var rows []load.Entry
	if resumed {
		rows, err = readEntries(ctx, tx, l.ID)
		if err != nil {
			return false, nil, err
		}
	}
	return resumed, rows, tx.Commit()
}

func readEntries(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, id string) ([]load.Entry, error) {
	rs, err := q.QueryContext(ctx, `SELECT row_key, line, action, status, outreach_id, detail, attempts FROM load_rows WHERE load_id = $1 ORDER BY line`, id)
	if err != nil {
		return nil, fmt.Errorf("read load rows: %w", err)
	}
	defer rs.Close()
	var out []load.Entry
	for rs.Next() {
		var e load.Entry
		var action, status string
		if err := rs.Scan(&e.Key, &e.Line, &action, &status, &e.OutreachID, &e.Detail, &e.Attempts); err != nil {
			return nil, err
		}
		e.Action, e.Status = load.Action(action), load.Status(status)
		out = append(out, e)
	}
	return out, rs.Err()
}

// Record inserts or replaces entries of load id in one transaction and
// renews holder's lease; load.ErrLeaseLost when holder lost the load.
func (j *Loads) Record(ctx context.Context, id, holder string, entries ...load.Entry) error {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE loads SET heartbeat_at = $3 WHERE id = $1 AND holder = $2`, id, holder, j.now().UnixMilli())
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return load.ErrLeaseLost
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO load_rows (load_id, row_key, line, action, status, outreach_id, detail, attempts, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (load_id, row_key) DO UPDATE SET line = excluded.line, action = excluded.action, status = excluded.status,
			outreach_id = excluded.outreach_id, detail = excluded.detail, attempts = excluded.attempts, updated_at = excluded.updated_at`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	now := j.now().UnixMilli()
	for _, e := range entries {
		if _, err := stmt.ExecContext(ctx, id, e.Key, e.Line, string(e.Action), string(e.Status), e.OutreachID, e.Detail, e.Attempts, now); err != nil {
			return fmt.Errorf("record row %d of load %s: %w", e.Line, id, err)
		}
	}
	return tx.Commit()
}

// Finish marks load id finished with its summary and releases it.
func (j *Loads) Finish(ctx context.Context, id, holder, summary string) error {
	res, err := j.db.ExecContext(ctx, `UPDATE loads SET status = 'finished', summary = $3, finished_at = $4, holder = ''
		WHERE id = $1 AND holder = $2`, id, holder, summary, j.now().UnixMilli())
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return load.ErrLeaseLost
	}
	return nil
}

// LoadRecord is a load as the journal keeps it.
type LoadRecord struct {
	ID, Type, Mode, Match, Source, Status, Summary string
	Runs                                           int
	StartedAt, FinishedAt                          time.Time
}

// Get returns load id, and its rows.
func (j *Loads) Get(ctx context.Context, id string) (*LoadRecord, []load.Entry, error) {
	var l LoadRecord
	var started, finished int64
	err := j.db.QueryRowContext(ctx, `SELECT id, type, mode, match_attrs, source, status, summary, runs, started_at, finished_at FROM loads WHERE id = $1`, id).
		Scan(&l.ID, &l.Type, &l.Mode, &l.Match, &l.Source, &l.Status, &l.Summary, &l.Runs, &started, &finished)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, fmt.Errorf("no load %s", id)
	}
	if err != nil {
		return nil, nil, err
	}
	l.StartedAt = time.UnixMilli(started)
	if finished > 0 {
		l.FinishedAt = time.UnixMilli(finished)
	}
	rows, err := readEntries(ctx, j.db, id)
	return &l, rows, err
}
