package destinations_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/destinations"
	"github.com/outreach-connector/outreach-connector/internal/postgres/pgtest"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// org is one Outreach org: a sandbox of its own seed, and a client of it.
type org struct {
	srv     *sandbox.Server
	client  *outreach.Client
	owner   connection.Owner
	streams []*connection.Stream
}

func newOrg(t *testing.T, seed int64, owner connection.Owner) *org {
	t.Helper()
	srv, err := sandbox.Start("", sandbox.Options{Seed: seed, Prospects: 100, MintInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	access, _, err := srv.IssueToken(1)
	if err != nil {
		t.Fatal(err)
	}
	client, err := outreach.NewClient(outreach.WithBaseURL(srv.URL+"/api/v2"), outreach.WithTokenSource(outreach.StaticToken(access)))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := syncer.Discover(context.Background(), client)
	if err != nil {
		t.Fatal(err)
	}
	// A dozen streams of every replication: incremental on updatedAt,
	// createdAt and timestamp, and full refresh.
	var streams []*connection.Stream
	for _, s := range syncer.Streams(cat) {
		switch s.Name {
		case "prospects", "accounts", "sequences", "sequence_states", "mailings", "users", "opportunities", "events", "prospect_notes",
			"audit_logs", "duties", "webhooks":
			streams = append(streams, s)
		}
	}
	if len(streams) != 12 {
		t.Fatalf("%d of the test's 12 streams in the catalog", len(streams))
	}
	return &org{srv: srv, client: client, owner: owner, streams: streams}
}

// sync runs a whole sync of the org into namespace ns of the destination
// at url, as the org's owner, and returns the failure, if any.
func (o *org) sync(t *testing.T, url, ns string) error {
	t.Helper()
	dst, closeDst, err := destinations.Open(context.Background(), url, ns, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer closeDst()
	results := syncer.NewEngine(o.client, dst, nil, nil).Run(context.Background(), o.streams,
		syncer.Options{StartDate: time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC), Owner: o.owner})
	return syncer.Failed(results)
}

// inspect returns what namespace ns of the destination at url holds.
func inspect(t *testing.T, url, ns string) []connection.StreamInfo {
	t.Helper()
	dst, closeDst, err := destinations.Open(context.Background(), url, ns, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer closeDst()
	info, err := dst.(connection.Inspector).Inspect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// storage is a kind of database that holds several namespaces.
type storage struct {
	// shared is the one database both orgs sync into; reference a fresh
	// one for a single-org sync of the default layout.
	shared, reference func(t *testing.T) string
	// open opens the database at url for reading; query selects every
	// row of a stream's table in namespace ns, in id order.
	open  func(t *testing.T, url string) *sql.DB
	query func(ns string, s *connection.Stream) string
}

// reader reads the tables of the databases of a test, each opened once.
type reader struct {
	kind storage
	dbs  map[string]*sql.DB
}

// rows reads every row of a stream's table in namespace ns of the
// database at url, every column, in id order.
func (r *reader) rows(t *testing.T, url, ns string, s *connection.Stream) []string {
	t.Helper()
	db, ok := r.dbs[url]
	if !ok {
		db = r.kind.open(t, url)
		t.Cleanup(func() { db.Close() })
		r.dbs[url] = db
	}
	return readRows(t, db, r.kind.query(ns, s))
}

// TestTwoOrgsOneDatabase is issue 9's test: two connections of two
// Outreach orgs (two sandboxes of different seeds) sync into one SQLite
// file and one PostgreSQL database, each in its own namespace. Each
// namespace ends equal, row for row and column for column, to a sync of
// its org alone into a database of its own; neither sync moves the other's
// cursors; and a run of one org into the other's namespace is refused
// before it reads or writes anything. (The sandbox names every org
// "Sandbox Org", so the owners here are named by the test.)
func TestTwoOrgsOneDatabase(t *testing.T) {
	kinds := map[string]storage{
		"SQLite": {
			shared: func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "shared.db") },
			reference: func(t *testing.T) string {
				return "sqlite:" + filepath.Join(t.TempDir(), "reference.db")
			},
			open: func(t *testing.T, url string) *sql.DB {
				return open(t, "sqlite", "file:"+strings.TrimPrefix(url, "sqlite:")+"?mode=ro")
			},
			query: func(ns string, s *connection.Stream) string {
				table := s.Name
				if ns != "" {
					table = ns + "__" + s.Name
				}
				return `SELECT * FROM "` + table + `" ORDER BY id`
			},
		},
		"PostgreSQL": {
			shared:    func(t *testing.T) string { return pgtest.Database(t) },
			reference: func(t *testing.T) string { return pgtest.DSN(t) },
			open:      func(t *testing.T, url string) *sql.DB { return open(t, "pgx", url) },
			query: func(ns string, s *connection.Stream) string {
				table := `"` + s.Name + `"`
				if ns != "" {
					table = `"` + ns + `".` + table
				}
				return `SELECT * FROM ` + table + ` ORDER BY id`
			},
		},
	}
	for name, kind := range kinds {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := newOrg(t, 3, connection.Owner{Org: "Org A", CredentialID: "cred-a", Credential: "a"})
			b := newOrg(t, 4, connection.Owner{Org: "Org B", CredentialID: "cred-b", Credential: "b"})
			shared := kind.shared(t)
			r := &reader{kind: kind, dbs: map[string]*sql.DB{}}

			// Org A syncs into namespace org_a; its cursors are what org B's
			// sync must leave alone.
			if err := a.sync(t, shared, "org_a"); err != nil {
				t.Fatalf("org A: %v", err)
			}
			cursorsA := inspect(t, shared, "org_a")
			if len(cursorsA) != len(a.streams) || !slices.ContainsFunc(cursorsA, func(si connection.StreamInfo) bool { return si.Stream == "prospects" && si.Cursor != "" }) {
				t.Fatalf("org A's namespace after its sync: %+v", cursorsA)
			}
			if err := b.sync(t, shared, "org_b"); err != nil {
				t.Fatalf("org B: %v", err)
			}
			if got := inspect(t, shared, "org_a"); !slices.Equal(got, cursorsA) {
				t.Errorf("org B's sync changed org A's namespace:\n%+v\nwas\n%+v", got, cursorsA)
			}

			// A clash: org B into org A's namespace is refused, and touches
			// nothing, not even Outreach.
			requests := b.srv.Counters().Requests
			err := b.sync(t, shared, "org_a")
			var owned *connection.OwnedError
			if !errors.As(err, &owned) || !strings.Contains(err.Error(), "namespace org_a of ") ||
				!strings.Contains(err.Error(), "holds org Org A (credential a); choose another namespace") {
				t.Errorf("org B into org A's namespace: %v; want it refused naming org A", err)
			}
			if n := b.srv.Counters().Requests - requests; n != 0 {
				t.Errorf("the refused run sent %d requests", n)
			}
			if got := inspect(t, shared, "org_a"); !slices.Equal(got, cursorsA) {
				t.Errorf("the refused run changed org A's namespace")
			}

			// Each namespace is its org, row for row.
			compared := 0
			differ := false
			for _, o := range []struct {
				org *org
				ns  string
			}{{a, "org_a"}, {b, "org_b"}} {
				ref := kind.reference(t)
				if err := o.org.sync(t, ref, ""); err != nil {
					t.Fatalf("reference sync: %v", err)
				}
				for _, s := range o.org.streams {
					got, want := r.rows(t, shared, o.ns, s), r.rows(t, ref, "", s)
					compared += len(want)
					if !slices.Equal(got, want) {
						t.Errorf("%s %s: %d rows, %d in a sync of the org alone; first difference: %s", o.ns, s.Name, len(got), len(want),
							firstDifference(got, want))
					}
				}
			}
			for _, s := range a.streams {
				if s.Name == "prospects" {
					differ = !slices.Equal(r.rows(t, shared, "org_a", s), r.rows(t, shared, "org_b", s))
				}
			}
			if compared < 500 || !differ {
				t.Errorf("%d rows compared, the orgs' prospects differ: %v; the test proves little", compared, differ)
			}
		})
	}
}

func open(t *testing.T, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// readRows runs query and returns each row as col=value;... text.
func readRows(t *testing.T, db *sql.DB, query string) []string {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for i, v := range vals {
			if raw, ok := v.([]byte); ok {
				v = string(raw)
			}
			fmt.Fprintf(&b, "%s=%#v;", cols[i], v)
		}
		out = append(out, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func firstDifference(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("row %d: %.300s\nwant %.300s", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("the first %d rows agree", min(len(got), len(want)))
}
