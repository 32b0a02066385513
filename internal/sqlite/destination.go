package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	gosync "sync"
	"time"

	syncer "github.com/outreach-connector/outreach-connector/internal/syncer"
)

// The sync destination: a table per stream (typed columns, id primary key,
// an index on the cursor field), and _sync_state / _sync_locks tables. It
// shares the database file with the credentials.

const syncTables = `
CREATE TABLE IF NOT EXISTS _sync_state (stream TEXT PRIMARY KEY, cursor TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS _sync_locks (stream TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at INTEGER NOT NULL)`

type destination struct {
	once  gosync.Once
	err   error
	mu    gosync.Mutex
	upser map[string]string // stream → upsert statement
}

func quote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

func sqlType(t syncer.ColumnType) string {
	switch t {
	case syncer.ColInteger, syncer.ColBoolean:
		return "INTEGER"
	case syncer.ColNumber:
		return "REAL"
	}
	return "TEXT"
}

func (d *DB) syncSetup(ctx context.Context) error {
	d.dest.once.Do(func() {
		for _, stmt := range strings.Split(syncTables, ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := d.db.ExecContext(ctx, stmt); err != nil {
				d.dest.err = err
				return
			}
		}
	})
	return d.dest.err
}

// Prepare implements sync.Destination.
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
	if _, err := d.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+quote(s.Name)+` (`+strings.Join(cols, ", ")+`)`); err != nil {
		return err
	}
	existing := map[string]bool{}
	rows, err := d.db.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, s.Name)
	if err != nil {
		return err
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		existing[n] = true
	}
	rows.Close()
	for _, c := range s.Columns {
		if !existing[c.Name] {
			if _, err := d.db.ExecContext(ctx, `ALTER TABLE `+quote(s.Name)+` ADD COLUMN `+quote(c.Name)+` `+sqlType(c.Type)); err != nil {
				return fmt.Errorf("add column %s: %w", c.Name, err)
			}
		}
	}
	if s.CursorField != "" {
		if _, err := d.db.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS `+quote(s.Name+"_by_"+s.CursorField)+` ON `+quote(s.Name)+` (`+quote(s.CursorField)+`)`); err != nil {
			return err
		}
	}
	var names, sets []string
	for _, c := range s.Columns {
		names = append(names, quote(c.Name))
		if c.Name != "id" {
			sets = append(sets, quote(c.Name)+" = excluded."+quote(c.Name))
		}
	}
	stmt := `INSERT INTO ` + quote(s.Name) + ` (` + strings.Join(names, ", ") + `) VALUES (` +
		strings.TrimSuffix(strings.Repeat("?, ", len(names)), ", ") + `) ON CONFLICT (id) DO UPDATE SET ` + strings.Join(sets, ", ")
	d.dest.mu.Lock()
	if d.dest.upser == nil {
		d.dest.upser = map[string]string{}
	}
	d.dest.upser[s.Name] = stmt
	d.dest.mu.Unlock()
	return nil
}

// State implements sync.Destination.
func (d *DB) State(ctx context.Context, stream string) (syncer.State, error) {
	if err := d.syncSetup(ctx); err != nil {
		return syncer.State{}, err
	}
	var st syncer.State
	err := d.db.QueryRowContext(ctx, `SELECT cursor FROM _sync_state WHERE stream = ?`, stream).Scan(&st.Cursor)
	if errors.Is(err, sql.ErrNoRows) {
		return syncer.State{}, nil
	}
	return st, err
}

// Write implements sync.Destination: the records and the state in one
// transaction.
func (d *DB) Write(ctx context.Context, s *syncer.Stream, recs []syncer.Record, st syncer.State) error {
	d.dest.mu.Lock()
	stmt, ok := d.dest.upser[s.Name]
	d.dest.mu.Unlock()
	if !ok {
		return fmt.Errorf("sqlite: stream %s was not prepared", s.Name)
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if len(recs) > 0 {
		ps, err := tx.PrepareContext(ctx, stmt)
		if err != nil {
			return err
		}
		defer ps.Close()
		for _, r := range recs {
			if _, err := ps.ExecContext(ctx, r.Values...); err != nil {
				return fmt.Errorf("upsert %s %d: %w", s.Name, r.ID, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO _sync_state (stream, cursor, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (stream) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at`,
		s.Name, st.Cursor, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	return tx.Commit()
}

// Lock implements sync.Destination.
func (d *DB) Lock(ctx context.Context, stream, owner string, ttl time.Duration) error {
	if err := d.syncSetup(ctx); err != nil {
		return err
	}
	now := time.Now()
	rows, err := d.db.QueryContext(ctx, `INSERT INTO _sync_locks (stream, owner, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (stream) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		WHERE _sync_locks.expires_at <= ? OR _sync_locks.owner = excluded.owner RETURNING owner`,
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

// Unlock implements sync.Destination.
func (d *DB) Unlock(ctx context.Context, stream, owner string) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM _sync_locks WHERE stream = ? AND owner = ?`, stream, owner)
	return err
}

var _ syncer.Destination = (*DB)(nil)

// MarkDeleted implements sync.Destination.
func (d *DB) MarkDeleted(ctx context.Context, s *syncer.Stream, live []int64, at string) (int, error) {
	conn, err := d.db.Conn(ctx) // the temporary table belongs to one connection
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS _live (id INTEGER PRIMARY KEY)`); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM _live`); err != nil {
		return 0, err
	}
	ps, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO _live (id) VALUES (?)`)
	if err != nil {
		return 0, err
	}
	for _, id := range live {
		if _, err := ps.ExecContext(ctx, id); err != nil {
			ps.Close()
			return 0, err
		}
	}
	ps.Close()
	res, err := tx.ExecContext(ctx, `UPDATE `+quote(s.Name)+` SET `+quote(syncer.DeletedColumn)+` = ? WHERE `+quote(syncer.DeletedColumn)+
		` IS NULL AND id NOT IN (SELECT id FROM _live)`, at)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), tx.Commit()
}
