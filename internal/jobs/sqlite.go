package jobs

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/outreach-connector/outreach-connector/internal/sqlite"
)

// OpenSQLite opens the queue in the SQLite file at path (the app database),
// creating River's tables and connection_schedules when missing. It keeps
// its own pool of one connection (SQLite has one writer; River's SQLite
// driver asks for it), whose transactions take the write lock at BEGIN so
// that processes sharing the file queue one after another.
func OpenSQLite(ctx context.Context, path string, opts Options) (*Queue, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	opts.Schema = "" // SQLite has no schemas to choose
	// Transactions take the write lock at BEGIN.
	db, err := sqlite.OpenFile(ctx, path, url.Values{"_txlock": {"immediate"}})
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	db.SetMaxOpenConns(1)
	fail := func(err error) (*Queue, error) {
		db.Close()
		return nil, fmt.Errorf("jobs: %s: %w", path, err)
	}
	driver := riversqlite.New(db)
	if err := migrateSQLite(ctx, db, driver, &opts); err != nil {
		return fail(err)
	}
	client, err := river.NewClient(driver, riverConfig(&opts))
	if err != nil {
		return fail(err)
	}
	eng := &riverEngine[*sql.Tx]{client: client, db: sqlDB{db}, table: "connection_schedules"}
	return &Queue{eng: eng, opts: opts}, nil
}

func migrateSQLite(ctx context.Context, db *sql.DB, driver *riversqlite.Driver, opts *Options) error {
	m, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: opts.Logger})
	if err != nil {
		return err
	}
	ddl, err := migrations.ReadFile("migrations/sqlite/001_connection_schedules.sql")
	if err != nil {
		return err
	}
	// One transaction that holds the write lock from its BEGIN (the pool's
	// _txlock=immediate): processes opening a new file at once migrate one
	// after another, each reading the versions applied inside its lock.
	// (River's MigrateTx is deprecated because some PostgreSQL migrations
	// cannot share a transaction; SQLite's can.)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if _, err := m.MigrateTx(ctx, tx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	if _, err := tx.ExecContext(ctx, string(ddl)); err != nil {
		return fmt.Errorf("connection_schedules: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// sqlDB is txDB on database/sql.
type sqlDB struct{ db *sql.DB }

func (d sqlDB) begin(ctx context.Context) (*sql.Tx, error) { return d.db.BeginTx(ctx, nil) }
func (d sqlDB) commit(_ context.Context, tx *sql.Tx) error { return tx.Commit() }
func (d sqlDB) rollback(_ context.Context, tx *sql.Tx)     { tx.Rollback() }
func (d sqlDB) close()                                     { d.db.Close() }
func (d sqlDB) exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := d.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (d sqlDB) execTx(ctx context.Context, tx *sql.Tx, q string, args ...any) (int64, error) {
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (d sqlDB) queryDue(ctx context.Context, q string, args ...any) ([]dueRow, error) {
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []dueRow
	for rows.Next() {
		var r dueRow
		if err := rows.Scan(&r.id, &r.schedule, &r.nextDue); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
