package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/connection/connectiontest"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/credential/credentialtest"
	"github.com/outreach-connector/outreach-connector/internal/postgres"
	"github.com/outreach-connector/outreach-connector/internal/postgres/pgtest"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
	"github.com/outreach-connector/outreach-connector/internal/sqlstore"
)

// appDB is the app database as cmd opens it: credentials and connections.
type appDB interface {
	credential.Store
	Connections() *sqlstore.Connections
	ConnectionsSealedBy(keys *credential.Keyring) *sqlstore.Connections
	DB() *sql.DB
	CredentialConnections(ctx context.Context, id string) ([]string, error)
	SealedKeyIDs(ctx context.Context) ([]string, error)
}

// backends open a fresh app database per test on SQLite and PostgreSQL.
var backends = []struct {
	name string
	open func(t *testing.T) appDB
}{
	{"sqlite", func(t *testing.T) appDB {
		db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "app.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}},
	{"postgres", func(t *testing.T) appDB {
		db, err := postgres.Open(context.Background(), pgtest.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}},
}

// withCredentials is the connection store with the credentials that the
// conformance suite's connections name created on demand: connections
// reference an existing credential (a foreign key).
type withCredentials struct {
	*sqlstore.Connections
	creds credential.Store
}

func (w withCredentials) ensure(ctx context.Context, id string) error {
	if _, err := w.creds.GetCredential(ctx, id); !errors.Is(err, credential.ErrNotFound) {
		return err
	}
	r := credentialtest.NewRecord(id)
	r.ID = id
	return w.creds.CreateCredential(ctx, r)
}

func (w withCredentials) CreateConnection(ctx context.Context, c *connection.Connection) error {
	if err := w.ensure(ctx, c.CredentialID); err != nil {
		return err
	}
	return w.Connections.CreateConnection(ctx, c)
}

func (w withCredentials) UpdateConnection(ctx context.Context, c *connection.Connection) error {
	if err := w.ensure(ctx, c.CredentialID); err != nil {
		return err
	}
	return w.Connections.UpdateConnection(ctx, c)
}

func TestConnectionStore(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			connectiontest.RunStore(t, func(t *testing.T) connection.Store {
				db := b.open(t)
				return withCredentials{db.Connections(), db}
			})
		})
	}
}

// newConn returns a connection of credential cred, created in db.
func newConn(t *testing.T, db appDB, name string) *connection.Connection {
	t.Helper()
	c := connectiontest.NewConnection(name)
	if err := (withCredentials{db.Connections(), db}).ensure(context.Background(), c.CredentialID); err != nil {
		t.Fatal(err)
	}
	return c
}

// Two creates into one namespace of one destination at the same moment:
// exactly one wins, the other gets ErrNamespaceTaken.
func TestConcurrentNamespaceClash(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			db := b.open(t)
			s := db.ConnectionsSealedBy(testKeys(t))
			ctx := context.Background()
			for round := range 10 {
				ns := fmt.Sprintf("ns%d", round)
				var conns [2]*connection.Connection
				for i := range conns {
					conns[i] = newConn(t, db, fmt.Sprintf("r%d-%d", round, i))
					conns[i].Namespace = ns
				}
				// The URLs differ in spacing and in the password only.
				conns[0].DestinationURL = "postgres://u:one@DB.example:5432/warehouse?sslmode=disable"
				conns[1].DestinationURL = " postgresql://u:two@db.example:5432/warehouse?sslmode=disable "
				var errs [2]error
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range conns {
					wg.Go(func() {
						<-start
						errs[i] = s.CreateConnection(ctx, conns[i])
					})
				}
				close(start)
				wg.Wait()
				won := 0
				for i, err := range errs {
					switch {
					case err == nil:
						won++
					case !errors.Is(err, connection.ErrNamespaceTaken):
						t.Errorf("round %d, create %d: %v, want nil or ErrNamespaceTaken", round, i, err)
					}
				}
				if won != 1 {
					t.Fatalf("round %d: %d creates won (errors %v), want exactly 1", round, won, errs)
				}
			}
			list, err := s.ListConnections(ctx)
			if err != nil || len(list) != 10 {
				t.Fatalf("ListConnections = %d, %v; want 10", len(list), err)
			}
		})
	}
}

func TestNamespaceKey(t *testing.T) {
	same := [][2]string{
		{"postgres://u:a@h/db", "postgres://u:b@h/db"},
		{"postgres://u@h/db?password=a&sslmode=disable", "postgresql://u@H/db?sslmode=disable&password=b"},
		{" sqlite:./outreach.db", "sqlite:outreach.db"},
		{"SQLITE://data/../outreach.db", "sqlite:outreach.db"},
		{"jsonl:./out/", "jsonl:out"},
	}
	for _, p := range same {
		if a, b := sqlstore.NamespaceKey(p[0], "ns"), sqlstore.NamespaceKey(p[1], "ns"); a != b {
			t.Errorf("%q and %q: keys %q and %q differ", p[0], p[1], a, b)
		}
	}
	differ := [][2]string{
		{"postgres://u@h/db", "postgres://v@h/db"},
		{"postgres://u@h/db", "postgres://u@h/other"},
		{"postgres://u@h:5432/db", "postgres://u@h:5433/db"},
		{"sqlite:a.db", "sqlite:b.db"},
		{"sqlite:out", "jsonl:out"},
	}
	for _, p := range differ {
		if a, b := sqlstore.NamespaceKey(p[0], "ns"), sqlstore.NamespaceKey(p[1], "ns"); a == b {
			t.Errorf("%q and %q share the key %q", p[0], p[1], a)
		}
	}
	if sqlstore.NamespaceKey("sqlite:a.db", "x") == sqlstore.NamespaceKey("sqlite:a.db", "y") {
		t.Error("namespaces x and y share a key")
	}
	if k := sqlstore.NamespaceKey("postgres://u:hunter2@h/db?password=hunter2", "ns"); strings.Contains(k, "hunter2") {
		t.Errorf("key %q holds the password", k)
	}
}

// A credential that connections use is not deleted; the error names them.
func TestCredentialInUse(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db := b.open(t)
			s := db.Connections()
			cred := credentialtest.NewRecord("shared")
			if err := db.CreateCredential(ctx, cred); err != nil {
				t.Fatal(err)
			}
			if err := db.AddEvent(ctx, credential.Event{CredentialID: cred.ID, At: time.Now(), Kind: "created", Message: "kept"}); err != nil {
				t.Fatal(err)
			}
			var conns []*connection.Connection
			for _, name := range []string{"zeta", "Acme EU"} {
				c := connectiontest.NewConnection(name)
				c.CredentialID = cred.ID
				if err := s.CreateConnection(ctx, c); err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c)
			}
			if names, err := db.CredentialConnections(ctx, cred.ID); err != nil || strings.Join(names, ",") != "Acme EU,zeta" {
				t.Errorf("CredentialConnections = %q, %v", names, err)
			}
			err := db.DeleteCredential(ctx, cred.ID)
			if !errors.Is(err, credential.ErrInUse) || !strings.Contains(err.Error(), `"Acme EU", "zeta"`) {
				t.Fatalf("DeleteCredential with connections: %v, want ErrInUse naming both", err)
			}
			if _, err := db.GetCredential(ctx, cred.ID); err != nil {
				t.Fatalf("the credential is gone after a refused delete: %v", err)
			}
			if events, err := db.ListEvents(ctx, cred.ID, 10); err != nil || len(events) != 1 {
				t.Errorf("events after a refused delete: %v, %v; want the one kept", events, err)
			}
			for _, c := range conns {
				if err := s.DeleteConnection(ctx, c.ID); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.DeleteCredential(ctx, cred.ID); err != nil {
				t.Fatalf("DeleteCredential without connections: %v", err)
			}
		})
	}
}

// A connection must name an existing credential.
func TestMissingCredential(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db := b.open(t)
			c := connectiontest.NewConnection("orphan")
			if err := db.Connections().CreateConnection(ctx, c); !errors.Is(err, credential.ErrNotFound) {
				t.Errorf("create with a missing credential: %v, want credential.ErrNotFound", err)
			}
			c = newConn(t, db, "ok")
			if err := db.Connections().CreateConnection(ctx, c); err != nil {
				t.Fatal(err)
			}
			c.CredentialID = "missing"
			if err := db.Connections().UpdateConnection(ctx, c); !errors.Is(err, credential.ErrNotFound) {
				t.Errorf("update to a missing credential: %v, want credential.ErrNotFound", err)
			}
			r := &connection.Run{ID: connection.NewID(), ConnectionID: "missing", Trigger: connection.ManualRun, Attempt: 1, StartedAt: time.Now()}
			if err := db.Connections().StartRun(ctx, r); !errors.Is(err, connection.ErrNotFound) {
				t.Errorf("run of a missing connection: %v, want ErrNotFound", err)
			}
			r.ConnectionID = c.ID
			if err := db.Connections().FinishRun(ctx, r); !errors.Is(err, connection.ErrNotFound) {
				t.Errorf("finish a run never started: %v, want ErrNotFound", err)
			}
		})
	}
}

// FinishRun keeps the newest MaxRunsKept runs of the connection and
// leaves other connections' runs alone.
func TestRunHistoryIsPruned(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db := b.open(t)
			s := db.Connections()
			a, other := newConn(t, db, "a"), newConn(t, db, "other")
			for _, c := range []*connection.Connection{a, other} {
				if err := s.CreateConnection(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			otherRun := &connection.Run{ID: connection.NewID(), ConnectionID: other.ID, Trigger: connection.Scheduled, Attempt: 1, StartedAt: base}
			if err := s.StartRun(ctx, otherRun); err != nil {
				t.Fatal(err)
			}
			const n = sqlstore.MaxRunsKept + 5
			for i := range n {
				r := &connection.Run{ID: fmt.Sprintf("run%03d", i), ConnectionID: a.ID, Trigger: connection.Scheduled, Attempt: 1,
					StartedAt: base.Add(time.Duration(i) * time.Minute)}
				if err := s.StartRun(ctx, r); err != nil {
					t.Fatal(err)
				}
				r.Finish(r.StartedAt.Add(time.Second), connection.Succeeded, nil)
				if err := s.FinishRun(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			runs, err := s.ListRuns(ctx, a.ID, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(runs) != sqlstore.MaxRunsKept || runs[0].ID != fmt.Sprintf("run%03d", n-1) || runs[len(runs)-1].ID != "run005" {
				t.Fatalf("kept %d runs, %s to %s; want %d, run%03d to run005", len(runs), runs[0].ID, runs[len(runs)-1].ID,
					sqlstore.MaxRunsKept, n-1)
			}
			if runs, err := s.ListRuns(ctx, other.ID, 10); err != nil || len(runs) != 1 {
				t.Errorf("the other connection's runs: %d, %v", len(runs), err)
			}
		})
	}
}

// An app database made before connections existed (only 001 applied, a
// credential in it) gains the connection tables when opened, its data kept.
func TestUpgradeAddsConnectionTables(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	old, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile("../sqlite/migrations/001_credentials.sql")
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.New(ctx, old, fstest.MapFS{"001_credentials.sql": {Data: body}},
		sqlstore.Dialect{IsUnique: func(err error) bool { return strings.Contains(err.Error(), "UNIQUE") }})
	if err != nil {
		t.Fatal(err)
	}
	cred := credentialtest.NewRecord("before")
	if err := st.CreateCredential(ctx, cred); err != nil {
		t.Fatal(err)
	}
	old.Close()

	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := connectiontest.NewConnection("after")
	c.CredentialID = cred.ID
	if err := db.Connections().CreateConnection(ctx, c); err != nil {
		t.Fatalf("create a connection after the upgrade: %v", err)
	}
	if got, err := db.GetCredentialByName(ctx, "before"); err != nil || got.ID != cred.ID {
		t.Fatalf("the credential after the upgrade: %v, %v", got, err)
	}
}
