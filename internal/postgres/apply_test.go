package postgres_test

import (
	"context"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/connection/connectiontest"
	"github.com/outreach-connector/outreach-connector/internal/postgres"
	"github.com/outreach-connector/outreach-connector/internal/postgres/pgtest"
)

func TestApplier(t *testing.T) {
	for _, ns := range []string{"", "live"} {
		t.Run("namespace="+ns, func(t *testing.T) {
			connectiontest.RunApplier(t, func(t *testing.T) connectiontest.Harness {
				dsn := pgtest.DSN(t)
				if ns != "" {
					dsn = pgtest.Database(t)
				}
				db, err := postgres.OpenNamespace(context.Background(), dsn, ns)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				table := `"widgets"`
				if ns != "" {
					table = ns + `."widgets"`
				}
				return connectiontest.Harness{Dest: db, InNamespace: ns, Rows: func(t *testing.T, s *connection.Stream) map[int64]map[string]string {
					return readRows(t, dsn, table, s)
				}}
			})
		})
	}
}
