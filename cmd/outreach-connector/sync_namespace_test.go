package main

import (
	"context"
	"database/sql"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/destinations"
)

// TestSyncNamespace: the default namespace of a destination belongs to the
// org that first synced into it; a sync of another org into it is refused
// before anything is written and names the owner; --namespace puts the sync
// beside it; a bad namespace is refused before anything runs.
func TestSyncNamespace(t *testing.T) {
	t.Chdir(t.TempDir())
	ctx := context.Background()
	// Another org owns the default namespace of outreach.db.
	dst, closeDst, err := destinations.Open(ctx, "sqlite:outreach.db", "", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := connection.Claim(ctx, dst, connection.Owner{Org: "Globex", CredentialID: "x1", Credential: "globex"}); err != nil {
		t.Fatal(err)
	}
	closeDst()

	sync := []string{"sync", "--sandbox", "--sandbox-prospects", "5", "--streams", "prospects", "--log-level", "warn"}
	out, _, err := runCommand(t, "", sync...)
	want := "the default namespace of sqlite:outreach.db holds org Globex (credential globex); choose another namespace with --namespace"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("sync into another org's namespace: %v; want %q", err, want)
	}
	if n := countRows(t, "outreach.db", "prospects"); n != 0 || strings.Contains(out, "records in") {
		t.Errorf("the refused sync wrote %d prospects:\n%s", n, out)
	}

	out, _, err = runCommand(t, "", append(sync, "--namespace", "sandbox")...)
	if err != nil || !strings.Contains(out, "into sqlite:outreach.db (namespace sandbox)") {
		t.Fatalf("sync --namespace sandbox: %v\n%s", err, out)
	}
	if n := countRows(t, "outreach.db", "sandbox__prospects"); n != 5 {
		t.Errorf("%d rows in sandbox__prospects, want 5", n)
	}
	// The namespace's owner is the credential's org, learned from Outreach:
	// the next --sandbox run, with a new credential, is the same org.
	db, err := sql.Open("sqlite", "file:outreach.db?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var org, cred string
	if err := db.QueryRow(`SELECT org, credential FROM sandbox___sync_owner`).Scan(&org, &cred); err != nil || org != "Sandbox Org (seed 1, 5 prospects)" || cred != "sandbox" {
		t.Errorf("owner of namespace sandbox: %q %q, %v", org, cred, err)
	}
	if out, _, err := runCommand(t, "", append(sync, "--namespace", "sandbox")...); err != nil {
		t.Errorf("a second sandbox run into its namespace: %v\n%s", err, out)
	}
	// A sandbox of another size is other data (much of it older than the
	// cursors): refused, not taken in part.
	bigger := append(slices.Clone(sync), "--namespace", "sandbox", "--sandbox-prospects", "6")
	if _, _, err := runCommand(t, "", bigger...); err == nil || !strings.Contains(err.Error(), "another --seed or --sandbox-prospects is other data") {
		t.Errorf("a sandbox of another size into the namespace: %v", err)
	}

	if _, _, err := runCommand(t, "", append(sync, "--namespace", "Bad-NS")...); err == nil || !strings.Contains(err.Error(), `--namespace: namespace "Bad-NS" is not usable`) {
		t.Errorf("--namespace Bad-NS: %v", err)
	}
}
