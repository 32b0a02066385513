package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

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
