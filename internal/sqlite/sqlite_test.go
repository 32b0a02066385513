package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/credential/credentialtest"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
	"github.com/outreach-connector/outreach-connector/internal/syncer/synctest"
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
	synctest.RunDestination(t, func(t *testing.T) synctest.Harness {
		path := filepath.Join(t.TempDir(), "dest.db")
		db, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return synctest.Harness{Dest: db, Rows: func(t *testing.T, s *syncer.Stream) map[int64]map[string]string {
			return readRows(t, path, s)
		}}
	})
}

// readRows reads a stream's live rows as text.
func readRows(t *testing.T, path string, s *syncer.Stream) map[int64]map[string]string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT * FROM "` + s.Name + `" WHERE "_deleted_at" IS NULL`)
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
			if col != nil && col.Type == syncer.ColBoolean {
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
