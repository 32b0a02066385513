package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/connection/connectiontest"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/credential/credentialtest"
	"github.com/outreach-connector/outreach-connector/internal/postgres"
	"github.com/outreach-connector/outreach-connector/internal/postgres/pgtest"
)

func TestCredentialStore(t *testing.T) {
	credentialtest.RunStore(t, func(t *testing.T) credential.Store {
		db, err := postgres.Open(context.Background(), pgtest.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

func TestSyncDestination(t *testing.T) {
	connectiontest.RunDestination(t, func(t *testing.T) connectiontest.Harness {
		dsn := pgtest.DSN(t)
		db, err := postgres.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return connectiontest.Harness{Dest: db, Namespace: namespaces(dsn), Rows: func(t *testing.T, s *connection.Stream) map[int64]map[string]string {
			return readRows(t, dsn, `"`+s.Name+`"`, s)
		}}
	})
}

// namespaces opens namespaces of the database of dsn for the suite. A
// namespace is a schema, and tests share the database: the namespace ns is
// ns_<the test's schema>, dropped when the test ends.
func namespaces(dsn string) func(t *testing.T, ns string) connectiontest.Harness {
	return func(t *testing.T, ns string) connectiontest.Harness {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		ns += "_" + u.Query().Get("search_path")
		db, err := postgres.OpenNamespace(context.Background(), dsn, ns)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			db.Close()
			if raw, err := sql.Open("pgx", dsn); err == nil {
				raw.Exec(`DROP SCHEMA IF EXISTS ` + ns + ` CASCADE`)
				raw.Close()
			}
		})
		return connectiontest.Harness{Dest: db, InNamespace: ns, Namespace: namespaces(dsn), Rows: func(t *testing.T, s *connection.Stream) map[int64]map[string]string {
			return readRows(t, dsn, `"`+ns+`"."`+s.Name+`"`, s)
		}}
	}
}

// readRows reads a stream's live rows as text (jsonb normalized by the
// suite, timestamps in RFC 3339).
func readRows(t *testing.T, dsn, table string, s *connection.Stream) map[int64]map[string]string {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var cols []string
	for _, c := range s.Columns {
		expr := `"` + c.Name + `"::text`
		if c.Type == connection.ColTimestamp {
			expr = `to_char("` + c.Name + `" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`
		}
		cols = append(cols, expr)
	}
	rows, err := db.Query(`SELECT ` + strings.Join(cols, ", ") + ` FROM ` + table + ` WHERE "_deleted_at" IS NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]map[string]string{}
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := map[string]string{}
		var id int64
		for i, c := range s.Columns {
			if !vals[i].Valid {
				continue
			}
			row[c.Name] = vals[i].String
			if c.Name == "id" {
				fmt.Sscan(vals[i].String, &id)
			}
		}
		out[id] = row
	}
	return out
}

// Nodes starting at once on a new database all open it: two may find the
// same migration unapplied.
func TestConcurrentOpensOfANewDatabase(t *testing.T) {
	for range 5 {
		dsn := pgtest.DSN(t)
		connectiontest.OpenAtOnce(t, 4, func() (io.Closer, error) { return postgres.Open(context.Background(), dsn) })
	}
}
