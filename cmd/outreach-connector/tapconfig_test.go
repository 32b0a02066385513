package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/outreach-connector/outreach-connector/sandbox"
)

// TestTapRefusesANonTokenRefreshToken runs the binary with configs whose
// refresh_token cannot be a token (what `jq -r` writes when a mint failed,
// JSON pasted whole, spaces): each is refused as a bad config naming the
// field, and Outreach is never called. credentials import --tap-config
// refuses them the same way.
func TestTapRefusesANonTokenRefreshToken(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	outreachSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
	}))
	defer outreachSrv.Close()
	bin := binary(t)
	for _, tok := range []string{"null", "", " ", `{"error":"minted less than a minute ago"}`, "abc def"} {
		dir := t.TempDir()
		config := filepath.Join(dir, "config.json")
		os.WriteFile(config, []byte(`{"client_id":"id","client_secret":"s","redirect_uri":"http://127.0.0.1:8787/oauth/callback",
			"start_date":"2024-01-01T00:00:00Z","api_base_url":"`+outreachSrv.URL+`/api/v2","refresh_token":`+jsonString(tok)+`}`), 0o600)
		store := []string{"--db", filepath.Join(dir, "c.db"), "--key-file", filepath.Join(dir, "c.key")}
		_, stderr, code := runBinary(t, bin, "", append([]string{"tap", "--config", config}, store...)...)
		if code != 1 || !strings.Contains(stderr, "refresh_token") || !strings.Contains(stderr, config) {
			t.Errorf("tap with refresh_token %q: exit %d, want 1 and an error naming refresh_token in %s:\n%s", tok, code, config, stderr)
		}
		if strings.Contains(stderr, "expired") || strings.Contains(stderr, "revoked") {
			t.Errorf("tap with refresh_token %q blames the grant:\n%s", tok, stderr)
		}
		_, stderr, code = runBinary(t, bin, "", append([]string{"credentials", "import", "--name", "t", "--tap-config", config}, store...)...)
		if code != 1 || !strings.Contains(stderr, "refresh_token") {
			t.Errorf("credentials import with refresh_token %q: exit %d:\n%s", tok, code, stderr)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("Outreach was called %d times for configs that hold no token", n)
	}
}

func jsonString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// TestCredentialsImportHonoursTheTapConfigsAPIBaseURL imports a tap
// config pointing at a sandbox with api_base_url: the credential talks to
// it (as the tap would), and --api-base-url overrides the file.
func TestCredentialsImportHonoursTheTapConfigsAPIBaseURL(t *testing.T) {
	t.Parallel()
	srv, err := sandbox.Start("", sandbox.Options{Prospects: 5, MintInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	app := srv.Apps()[0]
	dir := t.TempDir()
	store := []string{"--db", filepath.Join(dir, "c.db"), "--key-file", filepath.Join(dir, "c.key")}
	_, refresh, err := srv.IssueToken(1)
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "config.json")
	os.WriteFile(config, []byte(`{"client_id":"`+app.ClientID+`","client_secret":"`+app.ClientSecret+`","redirect_uri":"`+app.RedirectURIs[0]+
		`","refresh_token":"`+refresh+`","start_date":"2024-01-01T00:00:00Z","api_base_url":"`+srv.URL+`/api/v2"}`), 0o600)
	out, _, err := runCommand(t, "", append([]string{"credentials", "import", "--name", "sb", "--tap-config", config}, store...)...)
	if err != nil || !strings.Contains(out, "connected") {
		t.Fatalf("import of a sandbox tap config: %v\n%s", err, out)
	}
	out, _, err = runCommand(t, "", append([]string{"credentials", "show", "sb"}, store...)...)
	if err != nil || !strings.Contains(out, srv.URL+"/api/v2") {
		t.Errorf("credential does not point at the config's api_base_url %s: %v\n%s", srv.URL, err, out)
	}

	// The flag wins over the file.
	_, refresh, _ = srv.IssueToken(1)
	os.WriteFile(config, []byte(`{"client_id":"`+app.ClientID+`","client_secret":"`+app.ClientSecret+`","redirect_uri":"`+app.RedirectURIs[0]+
		`","refresh_token":"`+refresh+`","api_base_url":"http://127.0.0.1:1/api/v2"}`), 0o600)
	if out, _, err := runCommand(t, "", append([]string{"credentials", "import", "--name", "sb2", "--tap-config", config,
		"--api-base-url", srv.URL + "/api/v2"}, store...)...); err != nil {
		t.Errorf("import with --api-base-url over the file's: %v\n%s", err, out)
	}
}

// TestCredentialsErrorsNameTheProblem: adding a taken name names it, and
// a key file readable by others gives its mode as 0644.
func TestCredentialsErrorsNameTheProblem(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := []string{"--db", filepath.Join(dir, "c.db"), "--key-file", filepath.Join(dir, "c.key")}
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("s"), 0o600)
	add := append([]string{"credentials", "add", "--name", "main", "--client-id", "a", "--client-secret-file", secret}, store...)
	if _, _, err := runCommand(t, "", add...); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCommand(t, "", add...); err == nil || !strings.Contains(err.Error(), `"main" exists`) {
		t.Errorf("second add of main: %v; want the name in the message", err)
	}
	os.Chmod(filepath.Join(dir, "c.key"), 0o644)
	if _, _, err := runCommand(t, "", append([]string{"credentials", "list"}, store...)...); err == nil || !strings.Contains(err.Error(), "mode 0644") {
		t.Errorf("key file of mode 0644: %v", err)
	}
}
