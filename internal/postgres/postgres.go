// Package postgres is the PostgreSQL storage (pgx): credentials, and the
// synced streams with their state, shared by several processes and machines.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/sqldest"
	"github.com/outreach-connector/outreach-connector/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is an open PostgreSQL database.
type DB struct {
	*sqlstore.Store
	*sqldest.Destination
	db *sql.DB
}

// migrationLock is the advisory lock key held while the app's migrations
// are applied ("oc" "app"; the job queue's is another).
const migrationLock = "122470998831216" // 0x6f6300617070

// Open connects with a URL such as postgres://user@127.0.0.1:5432/db and
// applies the migrations.
func Open(ctx context.Context, dsn string) (*DB, error) {
	db, err := connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	sub, _ := fs.Sub(migrations, "migrations")
	st, err := sqlstore.New(ctx, db, sub, sqlstore.Dialect{
		IsUnique:        isUnique,
		BeginMigrations: []string{"BEGIN", "SELECT pg_advisory_xact_lock(" + migrationLock + ")"},
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return &DB{Store: st, Destination: sqldest.New(db, dialect()), db: db}, nil
}

// Dest is a PostgreSQL database opened as a sync destination only.
type Dest struct {
	*sqldest.Destination
	db *sql.DB
}

// OpenDestination connects to dsn as a sync destination in the default
// namespace: the database holds the synced tables and their sync state,
// never the app's own tables (credentials, OAuth states, ...).
func OpenDestination(ctx context.Context, dsn string) (*Dest, error) {
	return OpenNamespace(ctx, dsn, "")
}

// OpenNamespace connects to dsn as a sync destination in namespace ns: the
// schema ns (created on first use) holds its synced tables, sync state,
// locks and owner; "" is the default namespace, the current schema.
func OpenNamespace(ctx context.Context, dsn, ns string) (*Dest, error) {
	if ns != "" {
		if err := connection.ValidateNamespace(ns); err != nil {
			return nil, err
		}
	}
	db, err := connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	d, err := sqldest.NewIn(db, dialect(), ns, connection.RedactedURL(dsn))
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Dest{Destination: d, db: db}, nil
}

// Close closes the connection pool.
func (d *Dest) Close() error { return d.db.Close() }

// MaxOpenConns bounds each pool this package opens.
const MaxOpenConns = 10

func connect(ctx context.Context, dsn string) (*sql.DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	// A bounded pool: one process never takes more than its share of the
	// server's connections (100 by default), however many goroutines
	// call it at once; callers beyond it wait for a free connection.
	db.SetMaxOpenConns(MaxOpenConns)
	db.SetMaxIdleConns(MaxOpenConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	return db, nil
}

func isUnique(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23505"
}

// Close closes the connection pool.
func (d *DB) Close() error { return d.db.Close() }
