// Package pgtest gives tests a throw-away PostgreSQL schema.
package pgtest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// DSN creates a fresh schema in the test database (OUTREACH_TEST_POSTGRES,
// default postgres://postgres@127.0.0.1:5432/test) and returns a URL that
// uses it; the schema is dropped when the test ends. When PostgreSQL is
// unreachable the test is skipped, or fails if
// OUTREACH_TEST_POSTGRES_REQUIRED is set (as in CI).
func DSN(t testing.TB) string {
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
		t.Skipf("PostgreSQL at %s is unreachable (%v); set OUTREACH_TEST_POSTGRES to run this test", base, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		admin.Close()
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

// Database creates a fresh database on the test server and returns a URL
// that uses it; the database is dropped when the test ends. For tests of
// namespaces, which are schemas: what they create stays apart from every
// other test's. It skips or fails as DSN does.
func Database(t testing.TB) string {
	t.Helper()
	base := DSN(t) // the reachability check; its schema goes unused
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Del("search_path")
	u.RawQuery = q.Encode()
	admin, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "t_" + hex.EncodeToString(b)
	if _, err := admin.Exec(`CREATE DATABASE ` + name); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
		admin.Close()
	})
	u.Path = "/" + name
	return u.String()
}
