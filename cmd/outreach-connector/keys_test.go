package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/proxy"
)

// TestKeysAndProxyThroughServe runs the binary as a user does: serve
// --sandbox, then keys create for its credential (the key shown once), a
// call through /proxy/ with the key, the call counted in /metrics and the
// key's last use in keys list --json, keys revoke, and the revoked key
// refused.
func TestKeysAndProxyThroughServe(t *testing.T) {
	t.Parallel()
	bin := connectorBinary(t)
	dir := t.TempDir()
	s := startServe(t, bin, dir, "", "--sandbox")
	defer s.stop()
	store := []string{"--db", filepath.Join(dir, "app.db"), "--key-file", filepath.Join(dir, "app.key")}
	keys := func(args ...string) (string, string, int) {
		return runBinary(t, bin, "", append(append([]string{"keys"}, args...), store...)...)
	}
	if _, errOut, code := keys("create", "svc"); code == 0 || !strings.Contains(errOut, "--credentials is required") {
		t.Fatalf("create without --credentials: exit %d, %q", code, errOut)
	}
	if _, errOut, code := keys("create", "svc", "--credentials", "nope"); code == 0 || !strings.Contains(errOut, `no credential is named "nope"`) {
		t.Fatalf("create for an unknown credential: exit %d, %q", code, errOut)
	}
	out, errOut, code := keys("create", "svc", "--credentials", "sandbox")
	if code != 0 {
		t.Fatalf("keys create: %d %s", code, errOut)
	}
	m := regexp.MustCompile(`Key \(shown once; only its hash is kept\): (ock_\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no key in %q", out)
	}
	key := m[1]
	if status, body := s.get("/proxy/sandbox/prospects?page[size]=2", ""); status != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d %s", status, body)
	}
	if status, body := s.get("/proxy/sandbox/prospects?page[size]=2", key); status != http.StatusOK || !strings.Contains(body, `"type":"prospect"`) {
		t.Fatalf("with the key: %d %s", status, body)
	}
	if _, metrics := s.get("/metrics", s.token); !strings.Contains(metrics, `outreach_connector_proxy_requests_total{credential="sandbox",status="200"} 1`) ||
		!strings.Contains(metrics, `outreach_connector_proxy_upstream_seconds_count{credential="sandbox"} 1`) {
		t.Fatalf("metrics lack the proxied call:\n%s", metrics)
	}
	out, errOut, code = keys("list", "--json")
	if code != 0 {
		t.Fatalf("keys list: %s", errOut)
	}
	var listed []keyJSON
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 1 || listed[0].LastUsed == nil ||
		listed[0].Credentials[0] != "sandbox" || strings.Contains(out, key) {
		t.Fatalf("keys list --json: %v %s", err, out)
	}
	if out, _, _ := keys("list"); !strings.Contains(out, "svc") || !strings.Contains(out, "active") || strings.Contains(out, key) {
		t.Fatalf("keys list: %s", out)
	}
	// A signed-in admin's session may call the proxy without a key.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.PostForm(s.base+"/signin", url.Values{"token": {s.token}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = browser.Get(s.base + "/proxy/sandbox/prospects/1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"type":"prospect"`) {
		t.Fatalf("signed-in session: %d %s", resp.StatusCode, body)
	}
	if _, errOut, code := keys("revoke", "svc"); code != 0 {
		t.Fatalf("revoke: %s", errOut)
	}
	// serve trusts what it read of a key for proxy.DefaultCacheFor: the
	// revocation by this other process takes effect within it.
	deadline := time.Now().Add(proxy.DefaultCacheFor + 10*time.Second)
	for {
		status, body := s.get("/proxy/sandbox/prospects?page[size]=2", key)
		if status == http.StatusUnauthorized {
			break
		}
		if status != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("revoked key: %d %s", status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(s.logs.String(), key) {
		t.Fatal("serve logged the key")
	}
}

// keys create prints the proxy URL a caller uses: --public-url, else
// OUTREACH_CONNECTOR_PUBLIC_URL (as serve reads them), else serve's
// default address.
func TestKeysCreatePrintsTheProxyURL(t *testing.T) {
	t.Setenv("OUTREACH_CONNECTOR_KEYS", "")
	t.Setenv(PublicURLEnv, "")
	dir := t.TempDir()
	store := []string{"--db", filepath.Join(dir, "c.db"), "--key-file", filepath.Join(dir, "c.key")}
	if _, _, err := runCommand(t, "s3cret\n", append([]string{"credentials", "add", "--name", "sales team", "--client-id", "id",
		"--client-secret-file", "-"}, store...)...); err != nil {
		t.Fatal(err)
	}
	create := func(name string, args ...string) (string, error) {
		out, _, err := runCommand(t, "", append(append([]string{"keys", "create", name, "--credentials", "sales team"}, args...), store...)...)
		return out, err
	}
	if out, err := create("a"); err != nil || !strings.Contains(out, "Proxy: http://127.0.0.1:8787/proxy/sales%20team/\n") {
		t.Errorf("without a public URL: %v\n%s", err, out)
	}
	if out, err := create("b", "--public-url", "https://connector.example.com/"); err != nil ||
		!strings.Contains(out, "Proxy: https://connector.example.com/proxy/sales%20team/\n") ||
		!strings.Contains(out, " https://connector.example.com/proxy/sales%20team/prospects\n") {
		t.Errorf("--public-url: %v\n%s", err, out)
	}
	t.Setenv(PublicURLEnv, "https://env.example.com")
	if out, err := create("c"); err != nil || !strings.Contains(out, "Proxy: https://env.example.com/proxy/sales%20team/\n") {
		t.Errorf("%s: %v\n%s", PublicURLEnv, err, out)
	}
	if _, err := create("d", "--public-url", "connector.example.com"); err == nil || !strings.Contains(err.Error(), "--public-url") {
		t.Errorf("a public URL without scheme: %v", err)
	}
	if out, _, _ := runCommand(t, "", append([]string{"keys", "list"}, store...)...); strings.Contains(out, "\nd ") {
		t.Errorf("a refused create made a key:\n%s", out)
	}
}
