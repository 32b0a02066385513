package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/credential/credentialtest"
	"github.com/outreach-connector/outreach-connector/internal/postgres"
)

// testDSN opens a fresh schema in the test database for one test, or
// skips when PostgreSQL is unreachable (CI sets
// OUTREACH_TEST_POSTGRES_REQUIRED so it fails instead).
func testDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv("OUTREACH_TEST_POSTGRES")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	admin, err := sql.Open("pgx", base)
	if err == nil {
		err = admin.Ping()
	}
	if err != nil {
		if os.Getenv("OUTREACH_TEST_POSTGRES_REQUIRED") != "" {
			t.Fatalf("PostgreSQL at %s is required and unreachable: %v", base, err)
		}
		t.Skipf("PostgreSQL at %s is unreachable (%v); set OUTREACH_TEST_POSTGRES to run these tests", base, err)
	}
	schema := fmt.Sprintf("t_%s", credential.NewID()[:12])
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		admin.Close()
	})
	return base + "&search_path=" + schema
}

func TestCredentialStore(t *testing.T) {
	credentialtest.RunStore(t, func(t *testing.T) credential.Store {
		db, err := postgres.Open(context.Background(), testDSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}
