package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/connection/connectiontest"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
)

// TestDestinationOnly: a file opened as a destination passes the suite
// and holds no app table.
func TestDestinationOnly(t *testing.T) {
	connectiontest.RunDestination(t, func(t *testing.T) connectiontest.Harness {
		path := filepath.Join(t.TempDir(), "dest.db")
		db, err := sqlite.OpenDestination(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			db.Close()
			raw, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			var n int
			if err := raw.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name IN ('credentials', 'oauth_states', 'schema_migrations')`).Scan(&n); err != nil || n != 0 {
				t.Errorf("app tables in a destination: %d (%v)", n, err)
			}
		})
		return connectiontest.Harness{Dest: db, Namespace: namespaces(path), Rows: func(t *testing.T, s *connection.Stream) map[int64]map[string]string {
			return readRows(t, path, s.Name, s)
		}}
	})
}

func TestDestinationFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dest.db")
	db, err := sqlite.OpenDestination(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("destination file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
}
