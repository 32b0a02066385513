package postgres_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/connection/connectiontest"
	"github.com/outreach-connector/outreach-connector/internal/postgres"
	"github.com/outreach-connector/outreach-connector/internal/postgres/pgtest"
)

// TestDestinationOnly: a database opened as a destination passes the
// suite and holds no app table.
func TestDestinationOnly(t *testing.T) {
	connectiontest.RunDestination(t, func(t *testing.T) connectiontest.Harness {
		dsn := pgtest.DSN(t)
		db, err := postgres.OpenDestination(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			db.Close()
			raw, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			var n int
			if err := raw.QueryRow(`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()
				AND table_name IN ('credentials', 'oauth_states', 'schema_migrations')`).Scan(&n); err != nil || n != 0 {
				t.Errorf("app tables in a destination: %d (%v)", n, err)
			}
		})
		return connectiontest.Harness{Dest: db, Namespace: namespaces(dsn), Rows: func(t *testing.T, s *connection.Stream) map[int64]map[string]string {
			return readRows(t, dsn, `"`+s.Name+`"`, s)
		}}
	})
}
