package sqlite

import (
	"context"
	"database/sql"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/sqldest"
)

// Dest is a SQLite file opened as a sync destination only.
type Dest struct {
	*sqldest.Destination
	db *sql.DB
}

// OpenDestination opens (creating if needed, 0600) the file at path as a
// sync destination in the default namespace: it holds the synced tables
// and their sync state (_sync_state, _sync_locks, _sync_owner), never the
// app's own tables (credentials, OAuth states, ...), which Open adds.
func OpenDestination(ctx context.Context, path string) (*Dest, error) {
	return OpenNamespace(ctx, path, "")
}

// OpenNamespace opens the file at path as a sync destination in namespace
// ns: its tables are those of the default namespace ("") with ns__ before
// their names (ns__prospects, ns___sync_state).
func OpenNamespace(ctx context.Context, path, ns string) (*Dest, error) {
	if ns != "" {
		if err := connection.ValidateNamespace(ns); err != nil {
			return nil, err
		}
	}
	db, err := OpenFile(ctx, path, nil)
	if err != nil {
		return nil, err
	}
	d, err := sqldest.NewIn(db, dialect(), ns, "sqlite:"+path)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Dest{Destination: d, db: db}, nil
}

// Close closes the database.
func (d *Dest) Close() error { return d.db.Close() }
