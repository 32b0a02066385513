// Package sqlite is the embedded storage: a SQLite file (pure Go driver,
// no cgo) that holds credentials, and the synced streams with their state.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"strings"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/outreach-connector/outreach-connector/internal/sqldest"
	"github.com/outreach-connector/outreach-connector/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is an open SQLite database.
type DB struct {
	*sqlstore.Store
	*sqldest.Destination
	db *sql.DB
}

// Open opens (creating if needed) the database file at path and applies
// the migrations. WAL mode and a busy timeout let several processes share
// the file. A new file is readable and writable by the user only (0600),
// whatever the umask; SQLite gives its -wal and -shm files the same mode.
func Open(ctx context.Context, path string) (*DB, error) {
	db, err := OpenFile(ctx, path, nil)
	if err != nil {
		return nil, err
	}
	sub, _ := fs.Sub(migrations, "migrations")
	st, err := sqlstore.New(ctx, db, sub, sqlstore.Dialect{
		IsUnique:        func(err error) bool { return strings.Contains(err.Error(), "UNIQUE constraint failed") },
		BeginMigrations: []string{"BEGIN IMMEDIATE"}, // the write lock, waited for
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	return &DB{Store: st, Destination: sqldest.New(db, dialect()), db: db}, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }
