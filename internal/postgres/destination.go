package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/syncer"
)

// The sync destination: a table per stream with typed columns (bigint,
// double precision, boolean, timestamptz, date, jsonb, text), id primary
// key, an index on the cursor field, and _sync_state / _sync_locks. Pages
// are upserted with multi-row INSERT ... ON CONFLICT statements, and the
// state in the same transaction.

const syncTables = `
CREATE TABLE IF NOT EXISTS _sync_state (stream TEXT PRIMARY KEY, cursor TEXT NOT NULL, updated_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS _sync_locks (stream TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at BIGINT NOT NULL)`

type destination struct {
	once sync.Once
	err  error
}

func quote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

func sqlType(t syncer.ColumnType) string {
	switch t {
	case syncer.ColInteger:
		return "BIGINT"
	case syncer.ColNumber:
		return "DOUBLE PRECISION"
	case syncer.ColBoolean:
		return "BOOLEAN"
	case syncer.ColTimestamp:
		return "TIMESTAMPTZ"
	case syncer.ColDate:
		return "DATE"
	case syncer.ColJSON:
		return "JSONB"
	}
	return "TEXT"
}

func (d *DB) syncSetup(ctx context.Context) error {
	d.dest.once.Do(func() {
		for _, stmt := range strings.Split(syncTables, ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := d.db.ExecContext(ctx, stmt); err != nil && !isUnique(err) {
				d.dest.err = err
				return
			}
		}
	})
	return d.dest.err
}

// Prepare implements syncer.Destination.
func (d *DB) Prepare(ctx context.Context, s *syncer.Stream) error {
	if err := d.syncSetup(ctx); err != nil {
		return err
	}
	var cols []string
	for _, c := range s.Columns {
		def := quote(c.Name) + " " + sqlType(c.Type)
		if c.Name == "id" {
			def += " PRIMARY KEY"
		}
		cols = append(cols, def)
	}
	if _, err := d.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+quote(s.Name)+` (`+strings.Join(cols, ", ")+`)`); err != nil && !isUnique(err) {
		return err
	}
	for _, c := range s.Columns {
		if _, err := d.db.ExecContext(ctx, `ALTER TABLE `+quote(s.Name)+` ADD COLUMN IF NOT EXISTS `+quote(c.Name)+` `+sqlType(c.Type)); err != nil {
			return fmt.Errorf("add column %s: %w", c.Name, err)
		}
	}
	if s.CursorField != "" {
		if _, err := d.db.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS `+quote(s.Name+"_by_"+s.CursorField)+` ON `+quote(s.Name)+` (`+quote(s.CursorField)+`)`); err != nil && !isUnique(err) {
			return err
		}
	}
	return nil
}

// State implements syncer.Destination.
func (d *DB) State(ctx context.Context, stream string) (syncer.State, error) {
	if err := d.syncSetup(ctx); err != nil {
		return syncer.State{}, err
	}
	var st syncer.State
	err := d.db.QueryRowContext(ctx, `SELECT cursor FROM _sync_state WHERE stream = $1`, stream).Scan(&st.Cursor)
	if errors.Is(err, sql.ErrNoRows) {
		return syncer.State{}, nil
	}
	return st, err
}

// maxParams is PostgreSQL's limit of bind parameters in one statement.
const maxParams = 65535

// Write implements syncer.Destination: the page in multi-row upserts and
// the state, in one transaction.
func (d *DB) Write(ctx context.Context, s *syncer.Stream, recs []syncer.Record, st syncer.State) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ncol := len(s.Columns)
	perStmt := max(maxParams/ncol, 1)
	var names, sets []string
	for _, c := range s.Columns {
		names = append(names, quote(c.Name))
		if c.Name != "id" {
			sets = append(sets, quote(c.Name)+" = excluded."+quote(c.Name))
		}
	}
	head := `INSERT INTO ` + quote(s.Name) + ` (` + strings.Join(names, ", ") + `) VALUES `
	tail := ` ON CONFLICT (id) DO UPDATE SET ` + strings.Join(sets, ", ")
	for start := 0; start < len(recs); start += perStmt {
		batch := recs[start:min(start+perStmt, len(recs))]
		var b strings.Builder
		b.WriteString(head)
		args := make([]any, 0, len(batch)*ncol)
		n := 1
		for i, r := range batch {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('(')
			for j := range s.Columns {
				if j > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "$%d", n)
				n++
			}
			b.WriteByte(')')
			args = append(args, r.Values...)
		}
		b.WriteString(tail)
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("upsert into %s: %w", s.Name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO _sync_state (stream, cursor, updated_at) VALUES ($1, $2, now())
		ON CONFLICT (stream) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at`, s.Name, st.Cursor); err != nil {
		return err
	}
	return tx.Commit()
}

// Lock implements syncer.Destination.
func (d *DB) Lock(ctx context.Context, stream, owner string, ttl time.Duration) error {
	if err := d.syncSetup(ctx); err != nil {
		return err
	}
	now := time.Now()
	rows, err := d.db.QueryContext(ctx, `INSERT INTO _sync_locks (stream, owner, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (stream) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		WHERE _sync_locks.expires_at <= $4 OR _sync_locks.owner = excluded.owner RETURNING owner`,
		stream, owner, now.Add(ttl).UnixMilli(), now.UnixMilli())
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		return fmt.Errorf("another sync of stream %s is running into this database; wait for it to finish", stream)
	}
	return rows.Err()
}

// Unlock implements syncer.Destination.
func (d *DB) Unlock(ctx context.Context, stream, owner string) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM _sync_locks WHERE stream = $1 AND owner = $2`, stream, owner)
	return err
}

// MarkDeleted implements syncer.Destination.
func (d *DB) MarkDeleted(ctx context.Context, s *syncer.Stream, live []int64, at string) (int, error) {
	if live == nil {
		live = []int64{}
	}
	res, err := d.db.ExecContext(ctx, `UPDATE `+quote(s.Name)+` SET `+quote(syncer.DeletedColumn)+` = $1 WHERE `+
		quote(syncer.DeletedColumn)+` IS NULL AND NOT (id = ANY($2))`, at, live)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

var _ syncer.Destination = (*DB)(nil)
