package destinations_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/connection/connectiontest"
	"github.com/outreach-connector/outreach-connector/internal/destinations"
	"github.com/outreach-connector/outreach-connector/internal/postgres/pgtest"
)

// TestOpenEachKind opens every kind of destination in a namespace and
// checks where its data goes.
func TestOpenEachKind(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := connectiontest.TestStream("widgets")
	write := func(t *testing.T, url, ns string) connection.Destination {
		t.Helper()
		var out bytes.Buffer
		dst, closeDst, err := destinations.Open(ctx, url, ns, &out)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := closeDst(); err != nil {
				t.Error(err)
			}
		})
		if err := dst.Prepare(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := dst.Write(ctx, s, nil, connection.State{Cursor: "c-" + ns}); err != nil {
			t.Fatal(err)
		}
		return dst
	}
	t.Run("sqlite", func(t *testing.T) {
		url := "sqlite:" + filepath.Join(dir, "x.db")
		write(t, url, "")
		write(t, url, "sales")
		if st, _ := write(t, url, "sales").State(ctx, "widgets"); st.Cursor != "c-sales" {
			t.Errorf("sales state = %q", st.Cursor)
		}
		if n := countRows(t, "sqlite", "file:"+filepath.Join(dir, "x.db"), `sqlite_master WHERE name IN ('widgets', 'sales__widgets', 'sales___sync_state')`); n != 3 {
			t.Errorf("%d of the tables widgets, sales__widgets, sales___sync_state", n)
		}
	})
	t.Run("jsonl", func(t *testing.T) {
		url := "jsonl:" + filepath.Join(dir, "out")
		write(t, url, "")
		write(t, url, "sales")
		for _, f := range []string{"out/widgets.jsonl", "out/_state.json", "out/sales/widgets.jsonl", "out/sales/_state.json"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.Database(t)
		write(t, url, "")
		write(t, url, "sales")
		if n := countRows(t, "pgx", url, `information_schema.tables WHERE table_name = 'widgets' AND table_schema IN ('public', 'sales')`); n != 2 {
			t.Errorf("%d widgets tables in schemas public and sales, want 2", n)
		}
	})
	t.Run("singer ignores the namespace", func(t *testing.T) {
		var out bytes.Buffer
		dst, closeDst, err := destinations.Open(ctx, "singer", "sales", &out)
		if err != nil {
			t.Fatal(err)
		}
		defer closeDst()
		if err := dst.Prepare(ctx, s); err != nil || !strings.Contains(out.String(), `"SCHEMA"`) {
			t.Errorf("singer: %v, %q", err, out.String())
		}
	})
}

func countRows(t *testing.T, driver, dsn, from string) int {
	t.Helper()
	db := open(t, driver, dsn)
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM ` + from).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCheck: every bad URL or namespace is refused before anything is
// opened, saying what to use, and no message shows a password.
func TestCheck(t *testing.T) {
	for _, tt := range []struct{ url, ns, want string }{
		{"ftp://u:hunter2@x/y", "", "use sqlite:PATH, postgres://HOST/DB, jsonl:DIR or singer"},
		{"mysql://u:hunter2@x/y", "", "use sqlite:PATH"},
		{"outreach.db", "", "use sqlite:PATH"},
		{"sqlite:", "", "needs a file path"},
		{"jsonl:", "", "needs a directory"},
		{"postgres://u:hunter2@127.0.0.1:1", "", "names no database"},
		{"sqlite:x.db", "Sales", "lowercase letters"},
		{"sqlite:x.db", "pg_x", "reserved"},
		{"singer", "Bad-NS", "lowercase letters"},
	} {
		err := destinations.Check(tt.url, tt.ns)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Check(%q, %q) = %v; want %q", tt.url, tt.ns, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") || strings.HasPrefix(err.Error(), "connection:") {
			t.Errorf("Check(%q, %q) = %v: a password, or the domain's prefix", tt.url, tt.ns, err)
		}
		if _, _, err := destinations.Open(context.Background(), tt.url, tt.ns, nil); err == nil {
			t.Errorf("Open(%q, %q) accepted what Check refuses", tt.url, tt.ns)
		}
	}
	for _, url := range []string{"sqlite:x.db", "sqlite://x.db", "jsonl:out", "postgres://h/db", "postgresql://u@h:5432/db", "singer"} {
		if err := destinations.Check(url, "sales"); err != nil {
			t.Errorf("Check(%q) = %v", url, err)
		}
	}
}

// TestEarlierLayoutIsTheDefaultNamespace: a destination an earlier version
// wrote (no owner, no namespaces) is the default namespace as it was: its
// rows and cursors stay, its first owner claims it, and a namespace beside
// it starts empty.
func TestEarlierLayoutIsTheDefaultNamespace(t *testing.T) {
	ctx := context.Background()
	for name, url := range map[string]func(t *testing.T) (url, driver, dsn string){
		"sqlite": func(t *testing.T) (string, string, string) {
			path := filepath.Join(t.TempDir(), "old.db")
			return "sqlite:" + path, "sqlite", "file:" + path
		},
		"postgres": func(t *testing.T) (string, string, string) {
			dsn := pgtest.Database(t)
			return dsn, "pgx", dsn
		},
	} {
		t.Run(name, func(t *testing.T) {
			url, driver, dsn := url(t)
			db := open(t, driver, dsn)
			for _, stmt := range []string{
				`CREATE TABLE _sync_state (stream TEXT PRIMARY KEY, cursor TEXT NOT NULL, updated_at TEXT NOT NULL)`,
				`CREATE TABLE _sync_locks (stream TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at BIGINT NOT NULL)`,
				`CREATE TABLE widgets (id BIGINT PRIMARY KEY, name TEXT, "_deleted_at" TEXT)`,
				`INSERT INTO widgets (id, name) VALUES (1, 'old'), (2, 'older')`,
				`INSERT INTO _sync_state VALUES ('widgets', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00Z')`,
			} {
				if _, err := db.Exec(stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			db.Close()
			dst, closeDst, err := destinations.Open(ctx, url, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer closeDst()
			if st, err := dst.State(ctx, "widgets"); err != nil || st.Cursor != "2026-01-01T00:00:00.000Z" {
				t.Errorf("the earlier cursor: %+v, %v", st, err)
			}
			if err := connection.Claim(ctx, dst, connection.Owner{Org: "Acme", CredentialID: "c1"}); err != nil {
				t.Fatal(err)
			}
			info, err := dst.(connection.Inspector).Inspect(ctx)
			if want := []connection.StreamInfo{{Stream: "widgets", Cursor: "2026-01-01T00:00:00.000Z", Rows: 2}}; err != nil || !slices.Equal(info, want) {
				t.Errorf("Inspect = %+v, %v; want %+v", info, err, want)
			}
			ns, closeNS, err := destinations.Open(ctx, url, "sales", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer closeNS()
			if st, err := ns.State(ctx, "widgets"); err != nil || st.Cursor != "" {
				t.Errorf("namespace sales beside the earlier layout: %+v, %v", st, err)
			}
		})
	}
}
