package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/connection/connectiontest"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
)

func TestApplier(t *testing.T) {
	for _, ns := range []string{"", "live"} {
		t.Run("namespace="+ns, func(t *testing.T) {
			connectiontest.RunApplier(t, func(t *testing.T) connectiontest.Harness {
				path := filepath.Join(t.TempDir(), "dest.db")
				db, err := sqlite.OpenNamespace(context.Background(), path, ns)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				table := "widgets"
				if ns != "" {
					table = ns + "__widgets"
				}
				return connectiontest.Harness{Dest: db, InNamespace: ns, Rows: func(t *testing.T, s *connection.Stream) map[int64]map[string]string {
					return readRows(t, path, table, s)
				}}
			})
		})
	}
}
