package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/connection/connectiontest"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/credential/credentialtest"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
)

func TestCredentialStore(t *testing.T) {
	credentialtest.RunStore(t, func(t *testing.T) credential.Store {
		db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "test.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

func TestReopenKeepsDataAndSkipsMigrations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "test.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	r := credentialtest.NewRecord("kept")
	if err := db.CreateCredential(ctx, r); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	if got, err := db.GetCredentialByName(ctx, "kept"); err != nil || got.ID != r.ID {
		t.Errorf("after reopen: %v, %v", got, err)
	}
}

func TestSyncDestination(t *testing.T) {
	connectiontest.RunDestination(t, func(t *testing.T) connectiontest.Harness {
		path := filepath.Join(t.TempDir(), "dest.db")
		db, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return connectiontest.Harness{Dest: db, Namespace: namespaces(path), Rows: func(t *testing.T, s *connection.Stream) map[int64]map[string]string {
			return readRows(t, path, s.Name, s)
		}}
	})
}

// namespaces opens namespaces of the file at path for the suite; their
// tables are the default namespace's with NS__ before the name.
func namespaces(path string) func(t *testing.T, ns string) connectiontest.Harness {
	return func(t *testing.T, ns string) connectiontest.Harness {
		db, err := sqlite.OpenNamespace(context.Background(), path, ns)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return connectiontest.Harness{Dest: db, InNamespace: ns, Namespace: namespaces(path), Rows: func(t *testing.T, s *connection.Stream) map[int64]map[string]string {
			return readRows(t, path, ns+"__"+s.Name, s)
		}}
	}
}

// readRows reads a stream's live rows as text.
func readRows(t *testing.T, path, table string, s *connection.Stream) map[int64]map[string]string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT * FROM "` + table + `" WHERE "_deleted_at" IS NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	out := map[int64]map[string]string{}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := map[string]string{}
		var id int64
		for i, c := range cols {
			if vals[i] == nil {
				continue
			}
			col, _ := s.Column(c)
			v := fmt.Sprint(vals[i])
			if col != nil && col.Type == connection.ColBoolean {
				v = fmt.Sprint(vals[i] == int64(1))
			}
			if b, ok := vals[i].([]byte); ok {
				v = string(b)
			}
			row[c] = v
			if c == "id" {
				id = vals[i].(int64)
			}
		}
		out[id] = row
	}
	return out
}

// A database whose _sync_locks an earlier version made (owner
// "host/pid/nanoseconds", a 30-minute expiry) gets the lease columns, and
// its locks are judged by their process: a dead one's stream is free at
// once, a live one's is not.
func TestLocksOfAnEarlierVersion(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	dead := exec.Command(os.Args[0], "-test.run=^$")
	dead.Env = []string{"GORACE=atexit_sleep_ms=0"}
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	expires := time.Now().Add(29 * time.Minute).UnixMilli()
	for _, stmt := range []string{
		`CREATE TABLE _sync_locks (stream TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at BIGINT NOT NULL)`,
		fmt.Sprintf(`INSERT INTO _sync_locks VALUES ('prospects', '%s/%d/1764000000000000000', %d)`, host, dead.ProcessState.Pid(), expires),
		fmt.Sprintf(`INSERT INTO _sync_locks VALUES ('accounts', '%s/%d/1764000000000000000', %d)`, host, os.Getpid(), expires),
	} {
		if _, err := old.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	l := connection.Lease{Host: host, PID: os.Getpid(), RunID: "new", Acquired: now, Expires: now.Add(connection.LeaseTime)}
	if err := db.Lock(ctx, "prospects", l, now); err != nil {
		t.Errorf("the old lock of an ended process holds its stream: %v", err)
	}
	var locked *connection.LockedError
	if err := db.Lock(ctx, "accounts", l, now); !errors.As(err, &locked) || locked.Holder.PID != os.Getpid() || locked.Holder.Host != host {
		t.Errorf("the old lock of a live process: %v; want a LockedError naming it", err)
	}
}

// Processes starting at once on a new file (serve and a command, two nodes)
// all open it: SQLite answers the second switch to WAL busy without waiting,
// and two may find the same migration unapplied.
func TestConcurrentOpensOfANewFile(t *testing.T) {
	for i := range 20 {
		path := filepath.Join(t.TempDir(), fmt.Sprint("new", i, ".db"))
		connectiontest.OpenAtOnce(t, 4, func() (io.Closer, error) { return sqlite.Open(context.Background(), path) })
	}
}
