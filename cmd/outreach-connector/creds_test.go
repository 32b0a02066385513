package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/sandbox"
)

// connectorBinary builds the command into a temporary directory, so a
// test can run it as a user does and see its exit status.
func connectorBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "outreach-connector")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runBinary runs the built command with args and returns stdout, stderr
// and the exit code.
func runBinary(t *testing.T, bin, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "OUTREACH_CONNECTOR_KEYS=", "OUTREACH_CLIENT_SECRET=", "OUTREACH_REFRESH_TOKEN=")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return out.String(), errOut.String(), exit.ExitCode()
	case err != nil:
		t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errOut.String(), 0
}

// TestTapSurvivesARateLimitedTokenEndpoint runs the tap binary within a
// minute of minting its refresh token, twice: each run must fail clearly
// with a non-zero exit, keep nothing, and above all not revoke the token,
// so that the run a minute later works with the same config.
func TestTapSurvivesARateLimitedTokenEndpoint(t *testing.T) {
	t.Parallel() // most of its time is building the binary
	bin := connectorBinary(t)
	srv, err := sandbox.Start("", sandbox.Options{Prospects: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	app := srv.Apps()[0]
	_, refresh, err := srv.IssueToken(1) // just minted: the token endpoint answers 429 for a minute
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{"client_id": app.ClientID, "client_secret": app.ClientSecret, "redirect_uri": app.RedirectURIs[0],
		"refresh_token": refresh, "start_date": "2015-01-01T00:00:00Z", "api_base_url": srv.URL + "/api/v2"})
	config := filepath.Join(dir, "config.json")
	os.WriteFile(config, raw, 0o600)
	catalogPath := filepath.Join(dir, "catalog.json")
	os.WriteFile(catalogPath, []byte(`{"streams":[{"tap_stream_id":"stages","stream":"stages","metadata":[{"breadcrumb":[],"metadata":{"selected":true}}]}]}`), 0o600)
	args := []string{"tap", "--config", config, "--catalog", catalogPath, "--log-level", "warn",
		"--db", filepath.Join(dir, "tap.db"), "--key-file", filepath.Join(dir, "tap.key")}

	for run := 1; run <= 2; run++ {
		out, errOut, code := runBinary(t, bin, "", args...)
		if code == 0 || !strings.Contains(errOut, "429") || !strings.Contains(errOut, "try again in") || !strings.Contains(errOut, "run the tap again") {
			t.Fatalf("run %d within the minute: exit %d, stderr %q; want a non-zero exit saying to try again", run, code, errOut)
		}
		if strings.Contains(out, `"type":"RECORD"`) || strings.Contains(errOut, refresh) {
			t.Fatalf("run %d: records emitted, or the token printed", run)
		}
	}
	srv.Clock().Advance(61 * time.Second)
	out, errOut, code := runBinary(t, bin, "", args...)
	if code != 0 {
		t.Fatalf("run a minute later: exit %d, stderr %q; the config's refresh token must still work", code, errOut)
	}
	if records, _ := checkSinger(t, out); records["stages"] == 0 {
		t.Errorf("run a minute later read no stages: %q", out)
	}
}

// TestTapRefusesAnUnreadableState: a state the tap cannot use is an error
// naming the file and what is wrong, before any token is used.
func TestTapRefusesAnUnreadableState(t *testing.T) {
	srv, err := sandbox.Start("", sandbox.Options{Prospects: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	app := srv.Apps()[0]
	raw, _ := json.Marshal(map[string]any{"client_id": app.ClientID, "client_secret": app.ClientSecret, "redirect_uri": app.RedirectURIs[0],
		"refresh_token": "unused", "start_date": "2015-01-01T00:00:00Z", "api_base_url": srv.URL + "/api/v2"})
	config := filepath.Join(dir, "config.json")
	os.WriteFile(config, raw, 0o600)
	tests := []struct{ name, state, want string }{
		{"empty", "", "the file is empty"},
		{"truncated", `{"bookmarks": {"prospects": {"updatedAt": "2024-`, "not a JSON object"},
		{"an array", `[1, 2]`, "not a JSON object"},
		{"meltano export", `{"singer_state": {"bookmarks": {}}}`, "pass the value of singer_state"},
		{"no bookmarks", `{"prospects": "2024-01-01T00:00:00Z"}`, `no "bookmarks" (its keys: prospects)`},
		{"bookmarks not an object", `{"bookmarks": "2024"}`, `"bookmarks" is not an object`},
		{"a number", `{"bookmarks": {"prospects": {"updatedAt": 1700000000}}}`, "prospects.updatedAt = 1.7e+09 is not an RFC 3339 timestamp"},
		{"not a time", `{"bookmarks": {"accounts": {"updatedAt": "yesterday"}}}`, "accounts.updatedAt = yesterday is not an RFC 3339"},
		{"flat not a time", `{"bookmarks": {"accounts": "soon"}}`, `the bookmark of accounts, "soon"`},
		{"empty bookmark", `{"bookmarks": {"accounts": {}}}`, "the bookmark of accounts is {}"},
	}
	before := srv.Counters().TokenRequests
	for _, tt := range tests {
		path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".json")
		os.WriteFile(path, []byte(tt.state), 0o600)
		_, _, err := runCommand(t, "", "tap", "--config", config, "--state", path, "--db", filepath.Join(dir, "t.db"), "--key-file", filepath.Join(dir, "t.key"))
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want an error naming %s and saying %q", tt.name, err, path, tt.want)
		}
	}
	if srv.Counters().TokenRequests != before {
		t.Error("the tap used the token endpoint before refusing the state")
	}
	for _, ok := range []string{`{}`, `{"bookmarks": {}, "currently_syncing": null}`, `{"bookmarks": {"prospects": {"updatedAt": "2024-01-01T00:00:00.000Z"}, "accounts": "2024-01-01T00:00:00Z"}}`} {
		path := filepath.Join(dir, "ok.json")
		os.WriteFile(path, []byte(ok), 0o600)
		if _, err := readTapState(path); err != nil {
			t.Errorf("state %s refused: %v", ok, err)
		}
	}
}

// TestCredentialsRevokeFailureExitsNonZero: when Outreach cannot be
// reached the revoke says what failed, exits non-zero and keeps the
// tokens; --local-only forgets them anyway.
func TestCredentialsRevokeFailureExitsNonZero(t *testing.T) {
	t.Parallel() // most of its time is building the binary
	bin := connectorBinary(t)
	srv, err := sandbox.Start("", sandbox.Options{Prospects: 5, MintInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	app := srv.Apps()[0]
	_, refresh, _ := srv.IssueToken(1)
	store := []string{"--db", filepath.Join(dir, "c.db"), "--key-file", filepath.Join(dir, "c.key")}
	run := func(stdin string, args ...string) (string, string, int) {
		return runBinary(t, bin, stdin, append(append([]string{"credentials"}, args...), store...)...)
	}
	os.WriteFile(filepath.Join(dir, "secret"), []byte(app.ClientSecret), 0o600)
	if out, errOut, code := run(refresh, "import", "--name", "main", "--refresh-token-file", "-", "--client-id", app.ClientID,
		"--client-secret-file", filepath.Join(dir, "secret"), "--api-base-url", srv.URL+"/api/v2", "--redirect-uri", app.RedirectURIs[0]); code != 0 {
		t.Fatalf("import: exit %d %q %q", code, out, errOut)
	}
	srv.Close() // Outreach is unreachable
	out, errOut, code := run("", "revoke", "main")
	if code == 0 || strings.Contains(out, "Revoked") || !strings.Contains(errOut, "did not revoke") || !strings.Contains(errOut, "unreachable") ||
		!strings.Contains(errOut, "--local-only") {
		t.Fatalf("revoke with Outreach unreachable: exit %d, stdout %q, stderr %q; want a non-zero exit saying what failed", code, out, errOut)
	}
	if out, _, _ := run("", "show", "main"); !strings.Contains(out, "connected") {
		t.Errorf("after the failed revoke: %q; want the credential still connected", out)
	}
	if out, _, code := run("", "delete", "main"); code == 0 || strings.Contains(out, "Deleted") {
		t.Errorf("delete with Outreach unreachable: exit %d %q; want a failure", code, out)
	}
	if out, errOut, code := run("", "revoke", "main", "--local-only"); code != 0 || !strings.Contains(out, "without revoking") {
		t.Fatalf("revoke --local-only: exit %d %q %q", code, out, errOut)
	}
	if out, _, _ := run("", "show", "main"); !strings.Contains(out, "revoked") {
		t.Errorf("after revoke --local-only: %q; want revoked", out)
	}
	if out, errOut, code := run("", "delete", "main", "--local-only"); code != 0 || !strings.Contains(out, "Removed main") {
		t.Errorf("delete --local-only: exit %d %q %q", code, out, errOut)
	}
}

func TestCredentialsEditAndJSON(t *testing.T) {
	srv, err := sandbox.Start("", sandbox.Options{Prospects: 5, MintInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	app := srv.Apps()[0]
	_, refresh, _ := srv.IssueToken(1)
	store := []string{"--db", filepath.Join(dir, "c.db"), "--key-file", filepath.Join(dir, "c.key")}
	run := func(stdin string, args ...string) (string, error) {
		out, _, err := runCommand(t, stdin, append(append([]string{"credentials"}, args...), store...)...)
		return out, err
	}
	secretFile := filepath.Join(dir, "secret")
	os.WriteFile(secretFile, []byte(app.ClientSecret+"\n"), 0o600)
	common := []string{"--client-id", app.ClientID, "--client-secret-file", secretFile, "--api-base-url", srv.URL + "/api/v2",
		"--redirect-uri", app.RedirectURIs[0], "--scopes", "prospects.all"}
	for try := 1; try <= 2; try++ { // a failed import keeps nothing: the retry is not blocked by the name
		_, err := run("not-a-token", append([]string{"import", "--name", "main", "--refresh-token-file", "-"}, common...)...)
		if err == nil || strings.Contains(err.Error(), "exists") || !strings.Contains(err.Error(), "does not work") ||
			!strings.Contains(err.Error(), "Nothing was saved") {
			t.Fatalf("import %d of a bad token: %v", try, err)
		}
	}
	if _, err := run(refresh, append([]string{"import", "--name", "main", "--refresh-token-file", "-"}, common...)...); err != nil {
		t.Fatal(err)
	}
	if _, err := run("", append([]string{"add", "--name", "other"}, common...)...); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		stdin   string
		args    []string
		want    string
		wantErr string
	}{
		{"nothing to change", "", []string{"edit", "main"}, "", "nothing to change"},
		{"a taken name", "", []string{"edit", "main", "--name", "other"}, "", `a credential named "other" exists`},
		{"two secrets", "x", []string{"edit", "main", "--client-secret-stdin", "--client-secret-file", secretFile}, "", "once"},
		{"rename", "", []string{"edit", "main", "--name", "prod", "--description", "production"}, "Updated prod", ""},
		{"secret from stdin", app.ClientSecret + "\n", []string{"edit", "prod", "--client-secret-stdin"}, "status connected", ""},
		{"refresh with it", "", []string{"refresh", "prod"}, "Refreshed prod", ""},
		{"fewer scopes", "", []string{"edit", "prod", "--scopes", "prospects.read"}, "status connected", ""},
		{"more scopes", "", []string{"edit", "prod", "--scopes", "prospects.read, users.read"}, "need a new authorization", ""},
	}
	for _, st := range steps {
		out, err := run(st.stdin, st.args...)
		if st.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), st.wantErr) {
				t.Errorf("%s: %v, want %q", st.name, err, st.wantErr)
			}
			continue
		}
		if err != nil || !strings.Contains(out, st.want) {
			t.Errorf("%s: %v, %q; want %q", st.name, err, out, st.want)
		}
	}
	if _, _, err := runCommand(t, "", "credentials", "edit", "prod", "--client-secret", "s3cret"); err == nil {
		t.Error("edit took a secret as a flag value")
	}

	out, err := run("", "list", "--json")
	var list struct {
		Credentials []map[string]any `json:"credentials"`
	}
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.Credentials) != 2 {
		t.Fatalf("list --json: %v %q", err, out)
	}
	prod := list.Credentials[1]
	if prod["name"] != "prod" || prod["status"] != "needs_reauthorization" || prod["description"] != "production" ||
		!strings.Contains(prod["last_error"].(string), "users.read") || prod["outreach_user_id"] != "1" {
		t.Errorf("list --json entry = %v", prod)
	}
	out, err = run("", "show", "prod", "--json")
	var shown map[string]any
	if err != nil || json.Unmarshal([]byte(out), &shown) != nil {
		t.Fatalf("show --json: %v %q", err, out)
	}
	events, _ := shown["events"].([]any)
	if shown["id"] != prod["id"] || len(events) == 0 || !strings.Contains(out, `"kind": "updated"`) {
		t.Errorf("show --json = %s; want the credential and its events", out)
	}
	for _, text := range []string{out, fmtJSON(list)} {
		if strings.Contains(text, app.ClientSecret) || strings.Contains(text, refresh) || strings.Contains(text, "client_secret") ||
			strings.Contains(text, "token\":") {
			t.Errorf("JSON output holds a secret: %s", text)
		}
	}

	help, _, err := runCommand(t, "", "credentials", "authorize", "--help")
	if err != nil || !strings.Contains(help, "--ui-url string") || strings.Contains(help, "--ui-url serve") {
		t.Errorf("authorize --help: %v\n%s", err, help)
	}
}

func fmtJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestTapWithACredential follows docs/credentials.md, "Getting a refresh
// token for tap": a refresh token from the sandbox's /_sandbox/tokens
// imported as a credential, then `tap --credential` with a config.json
// that holds only start_date.
func TestTapWithACredential(t *testing.T) {
	srv, err := sandbox.Start("", sandbox.Options{Prospects: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	app := srv.Apps()[0]
	resp, err := http.Post(srv.URL+"/_sandbox/tokens", "application/json", strings.NewReader(`{"user":1}`))
	if err != nil {
		t.Fatal(err)
	}
	var minted struct {
		RefreshToken string `json:"refresh_token"`
	}
	json.NewDecoder(resp.Body).Decode(&minted)
	resp.Body.Close()
	srv.Clock().Advance(time.Minute) // Outreach mints one token a minute: the import's refresh waits for it
	os.WriteFile(filepath.Join(dir, "secret"), []byte(app.ClientSecret), 0o600)
	store := []string{"--db", filepath.Join(dir, "c.db"), "--key-file", filepath.Join(dir, "c.key")}
	if _, _, err := runCommand(t, minted.RefreshToken, append([]string{"credentials", "import", "--name", "tap", "--refresh-token-file", "-",
		"--client-id", app.ClientID, "--client-secret-file", filepath.Join(dir, "secret"), "--api-base-url", srv.URL + "/api/v2",
		"--redirect-uri", app.RedirectURIs[0], "--scopes", "stages.read"}, store...)...); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "config.json")
	os.WriteFile(config, []byte(`{"start_date": "2015-01-01T00:00:00Z"}`), 0o600)
	catalogPath := filepath.Join(dir, "catalog.json")
	os.WriteFile(catalogPath, []byte(`{"streams":[{"tap_stream_id":"stages","stream":"stages","metadata":[{"breadcrumb":[],"metadata":{"selected":true}}]}]}`), 0o600)
	out, _, err := runCommand(t, "", append([]string{"tap", "--config", config, "--credential", "tap", "--catalog", catalogPath, "--log-level", "warn"}, store...)...)
	if err != nil {
		t.Fatalf("tap --credential: %v", err)
	}
	if records, _ := checkSinger(t, out); records["stages"] == 0 {
		t.Errorf("tap --credential read no stages")
	}
	if _, _, err := runCommand(t, "", append([]string{"tap", "--config", config}, store...)...); err == nil || !strings.Contains(err.Error(), "refresh_token") {
		t.Errorf("tap without --credential and without a refresh_token: %v", err)
	}
	if _, _, err := runCommand(t, "", append([]string{"credentials", "revoke", "tap", "--local-only"}, store...)...); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCommand(t, "", append([]string{"tap", "--config", config, "--credential", "tap"}, store...)...)
	if err == nil || !strings.Contains(err.Error(), "is revoked") || !strings.Contains(err.Error(), "credentials authorize tap") {
		t.Errorf("tap --credential with a revoked credential: %v; want what to do", err)
	}
}
