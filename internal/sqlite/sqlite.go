// Package sqlite is the embedded storage: a SQLite file (pure Go driver,
// no cgo) that holds credentials, and the synced streams with their state.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
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
	if err := createPrivate(path); err != nil {
		return nil, fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	sub, _ := fs.Sub(migrations, "migrations")
	st, err := sqlstore.New(ctx, db, sub, func(err error) bool { return strings.Contains(err.Error(), "UNIQUE constraint failed") })
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	return &DB{Store: st, Destination: sqldest.New(db, dialect()), db: db}, nil
}

// createPrivate creates an empty file at path with mode 0600 unless a file
// is there already.
func createPrivate(path string) error {
	if path == "" || strings.HasPrefix(path, ":memory:") {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }
