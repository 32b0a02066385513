package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/sqlite"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

func TestCredentialsCommands(t *testing.T) {
	srv, err := sandbox.Start("", sandbox.Options{Prospects: 10, MintInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	app := srv.Apps()[0]
	secretFile := filepath.Join(dir, "secret")
	os.WriteFile(secretFile, []byte(app.ClientSecret+"\n"), 0o600)
	_, refresh, _ := srv.IssueToken(1)
	tokenFile := filepath.Join(dir, "refresh")
	os.WriteFile(tokenFile, []byte(refresh), 0o600)
	store := []string{"--db", filepath.Join(dir, "c.db"), "--key-file", filepath.Join(dir, "c.key")}
	common := []string{"--client-id", app.ClientID, "--client-secret-file", secretFile, "--api-base-url", srv.URL + "/api/v2",
		"--redirect-uri", app.RedirectURIs[0]}
	run := func(stdin string, args ...string) (string, error) {
		out, _, err := runCommand(t, stdin, append(append([]string{"credentials"}, args...), store...)...)
		return out, err
	}
	steps := []struct {
		name    string
		args    []string
		want    string
		wantErr string
	}{
		{"add", append([]string{"add", "--name", "pending"}, common...), "awaiting authorization", ""},
		{"add twice", append([]string{"add", "--name", "pending"}, common...), "", "exists"},
		{"add without secret", []string{"add", "--name", "x", "--client-id", "y"}, "", "client secret is required: give --client-secret-file"},
		{"import", append([]string{"import", "--name", "main", "--refresh-token-file", tokenFile, "--environment", "production"}, common...), "connected as", ""},
		{"list", []string{"list"}, "main", ""},
		{"show", []string{"show", "main"}, "connected", ""},
		{"authorize", []string{"authorize", "pending"}, "/credentials/", ""},
		{"refresh", []string{"refresh", "main"}, "Refreshed main", ""},
		{"rotate-key", []string{"rotate-key"}, "re-encrypted 2 credentials", ""},
		{"refresh after rotation", []string{"refresh", "main"}, "Refreshed main", ""},
		{"revoke", []string{"revoke", "main"}, "Revoked", ""},
		{"refresh a revoked credential", []string{"refresh", "main"}, "", "re-authorization"},
		{"delete", []string{"delete", "main"}, "Deleted", ""},
		{"show a deleted credential", []string{"show", "main"}, "", "not found"},
	}
	apiCall := func() (string, error) {
		out, _, err := runCommand(t, "", append([]string{"api", "--credential", "main", "GET", "stages"}, store...)...)
		return out, err
	}
	for _, st := range steps {
		if st.name == "revoke" {
			if out, err := apiCall(); err != nil || !strings.Contains(out, `"type":"stage"`) {
				t.Errorf("api --credential main: %v %.100s", err, out)
			}
		}
		if st.name == "authorize" {
			// serve's public URL, when set, is where the UI is.
			t.Setenv(PublicURLEnv, "https://connector.example.com/")
			if out, err := run("", st.args...); err != nil || !strings.Contains(out, "https://connector.example.com/credentials/") {
				t.Errorf("authorize with %s set: %v\n%s", PublicURLEnv, err, out)
			}
			t.Setenv(PublicURLEnv, "")
		}
		out, err := run("", st.args...)
		if st.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), st.wantErr) {
				t.Errorf("%s: error %v, want %q", st.name, err, st.wantErr)
			}
			continue
		}
		if err != nil || !strings.Contains(out, st.want) {
			t.Errorf("%s: %v, output %q, want %q", st.name, err, out, st.want)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "c.db"))
	if strings.Contains(string(raw), app.ClientSecret) {
		t.Error("the database holds the client secret in plaintext")
	}
	if info, err := os.Stat(filepath.Join(dir, "c.key")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v", info.Mode().Perm(), err)
	}
}

func TestServeCommand(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // serve --sandbox syncs its connection into ./outreach.db
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	cmd := newRootCommand(&out, &errOut)
	cmd.SetArgs([]string{"serve", "--sandbox", "--addr", "127.0.0.1:0", "--db", filepath.Join(dir, "s.db"),
		"--key-file", filepath.Join(dir, "s.key"), "--admin-token-file", filepath.Join(dir, "admin")})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "Admin token") {
		if time.Now().After(deadline) {
			t.Fatalf("no banner: %q %q", out.String(), errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	banner := out.String()
	token := regexp.MustCompile(`Admin token \(shown once; kept in .*\): (\S+)`).FindStringSubmatch(banner)
	if token == nil || !strings.Contains(banner, "Outreach sandbox on") {
		t.Fatalf("banner = %q", banner)
	}
	saved, _ := os.ReadFile(filepath.Join(dir, "admin"))
	if strings.TrimSpace(string(saved)) != token[1] {
		t.Error("the admin token file does not hold the printed token")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve returned %v", err)
	}
}

// An app database holding sealed secrets whose key file is gone: every
// command refuses, naming the key file, and none makes a new key file
// (a new key could never open the secrets, and would hide the loss).
func TestMissingKeyFileIsRefused(t *testing.T) {
	t.Setenv("OUTREACH_CONNECTOR_KEYS", "")
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "c.key")
	store := []string{"--db", filepath.Join(dir, "c.db"), "--key-file", keyFile}
	if _, _, err := runCommand(t, "s3cret\n", append([]string{"credentials", "add", "--name", "main", "--client-id", "id",
		"--client-secret-file", "-"}, store...)...); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"credentials", "list"}, {"credentials", "rotate-key"}, {"connections", "list"}} {
		_, _, err := runCommand(t, "", append(args, store...)...)
		if err == nil || !strings.Contains(err.Error(), keyFile) || !strings.Contains(err.Error(), "--key-file") {
			t.Errorf("%v without its key file: %v; want an error naming %s and --key-file", args, err, keyFile)
		}
		if _, err := os.Stat(keyFile); err == nil {
			t.Fatalf("%v made a new key file", args)
		}
	}
}

// An unknown --credential says which credentials the app database
// holds, or how to add one when it holds none.
func TestUnknownCredentialNamesTheCredentials(t *testing.T) {
	t.Setenv("OUTREACH_CONNECTOR_KEYS", "")
	dir := t.TempDir()
	store := []string{"--db", filepath.Join(dir, "c.db"), "--key-file", filepath.Join(dir, "c.key")}
	commands := [][]string{
		{"sync", "--credential", "nope", "--to", "jsonl:" + dir},
		{"api", "--credential", "nope", "GET", "stages"},
		{"tap", "--credential", "nope", "--config", filepath.Join(dir, "config.json")},
		{"load", "prospect", "--credential", "nope", "--from", "csv:" + filepath.Join(dir, "people.csv"), "--mode", "create"},
	}
	os.WriteFile(filepath.Join(dir, "people.csv"), []byte("emails\na@example.com\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"start_date": "2024-01-01T00:00:00Z"}`), 0o600)
	// No app database yet: the commands that need a credential say where
	// they looked and how to add one, and make nothing.
	for _, args := range commands[:2] {
		_, _, err := runCommand(t, "", append(args, store...)...)
		if err == nil || !strings.Contains(err.Error(), "no app database at "+filepath.Join(dir, "c.db")) || !strings.Contains(err.Error(), "credentials add") {
			t.Errorf("%v without an app database: %v; want where it looked and how to add one", args[0], err)
		}
		if _, err := os.Stat(filepath.Join(dir, "c.db")); err == nil {
			t.Fatalf("%v made an app database", args[0])
		}
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, args := range commands {
		_, _, err := runCommand(t, "", append(args, store...)...)
		if err == nil || !strings.Contains(err.Error(), "--credential nope") || !strings.Contains(err.Error(), "holds no credential") ||
			!strings.Contains(err.Error(), "credentials add") {
			t.Errorf("%v in an app database without credentials: %v; want how to add one", args[0], err)
		}
	}
	for _, name := range []string{"sales", "support"} {
		if _, _, err := runCommand(t, "s3cret\n", append([]string{"credentials", "add", "--name", name, "--client-id", "id",
			"--client-secret-file", "-"}, store...)...); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range commands {
		_, _, err := runCommand(t, "", append(args, store...)...)
		if err == nil || !strings.Contains(err.Error(), "--credential nope") || !strings.Contains(err.Error(), "holds: sales, support") {
			t.Errorf("%v: %v; want the credentials there are", args[0], err)
		}
	}
	for _, sub := range []string{"show", "authorize", "refresh", "revoke", "delete"} {
		_, _, err := runCommand(t, "", append([]string{"credentials", sub, "nope"}, store...)...)
		if err == nil || !strings.Contains(err.Error(), "credential nope: credential: not found") || !strings.Contains(err.Error(), "holds: sales, support") {
			t.Errorf("credentials %s nope: %v; want the credentials there are", sub, err)
		}
	}
}
