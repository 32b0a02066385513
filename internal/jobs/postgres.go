package jobs

import (
	"context"
	"embed"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed migrations
var migrations embed.FS

// migrateLockKey serialises migrations across nodes (pg_advisory_lock).
const migrateLockKey = 0x6f6375_6a6f6273 // "ocu" "jobs"

// OpenPostgres opens the queue on PostgreSQL at dsn with a pgx pool,
// creating River's tables and connection_schedules (in opts.Schema, or
// the search_path) when missing. Nodes opening at once migrate one at a
// time under an advisory lock.
func OpenPostgres(ctx context.Context, dsn string, opts Options) (*Queue, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("jobs: postgres: %w", err)
	}
	fail := func(err error) (*Queue, error) {
		pool.Close()
		return nil, fmt.Errorf("jobs: postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		return fail(err)
	}
	driver := riverpgxv5.New(pool)
	q := &Queue{opts: opts}
	if err := migratePostgres(ctx, pool, driver, &opts, q.table()); err != nil {
		return fail(err)
	}
	client, err := river.NewClient(driver, riverConfig(&opts))
	if err != nil {
		return fail(err)
	}
	q.eng = &riverEngine[pgx.Tx]{client: client, db: pgDB{pool}, table: q.table(), schema: opts.Schema}
	return q, nil
}

func migratePostgres(ctx context.Context, pool *pgxpool.Pool, driver *riverpgxv5.Driver, opts *Options, table string) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrateLockKey)); err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrateLockKey))
	m, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: opts.Logger, Schema: opts.Schema})
	if err != nil {
		return err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	ddl, err := migrations.ReadFile("migrations/postgres/001_connection_schedules.sql")
	if err != nil {
		return err
	}
	prefix := ""
	if opts.Schema != "" {
		prefix = opts.Schema + "."
	}
	if _, err := conn.Exec(ctx, strings.ReplaceAll(string(ddl), "/*schema*/", prefix)); err != nil {
		return fmt.Errorf("%s: %w", table, err)
	}
	return nil
}

// pgDB is txDB on a pgx pool.
type pgDB struct{ pool *pgxpool.Pool }

func (d pgDB) begin(ctx context.Context) (pgx.Tx, error)   { return d.pool.Begin(ctx) }
func (d pgDB) commit(ctx context.Context, tx pgx.Tx) error { return tx.Commit(ctx) }
func (d pgDB) rollback(ctx context.Context, tx pgx.Tx)     { tx.Rollback(context.WithoutCancel(ctx)) }
func (d pgDB) close()                                      { d.pool.Close() }
func (d pgDB) exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := d.pool.Exec(ctx, q, args...)
	return tag.RowsAffected(), err
}

func (d pgDB) execTx(ctx context.Context, tx pgx.Tx, q string, args ...any) (int64, error) {
	tag, err := tx.Exec(ctx, q, args...)
	return tag.RowsAffected(), err
}

func (d pgDB) queryDue(ctx context.Context, q string, args ...any) ([]dueRow, error) {
	rows, err := d.pool.Query(ctx, q, args...)
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
