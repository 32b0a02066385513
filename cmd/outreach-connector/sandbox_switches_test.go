package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// runSandbox starts the sandbox command with args and returns its base URL
// once the banner is out; the command stops when the test ends.
func runSandbox(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	cmd := newRootCommand(pw, io.Discard)
	cmd.SetArgs(append([]string{"sandbox", "--addr", "127.0.0.1:0", "--scale", "20"}, args...))
	done := make(chan error, 1)
	go func() {
		done <- cmd.ExecuteContext(ctx)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sandbox command: %v", err)
		}
	})
	sc := bufio.NewScanner(pr)
	var base string
	for sc.Scan() {
		if m := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
		}
		if strings.Contains(sc.Text(), "Press Ctrl+C") {
			break
		}
	}
	go io.Copy(io.Discard, pr) // keep the command's writes flowing
	if base == "" {
		t.Fatal("the sandbox command printed no base URL")
	}
	return base
}

func sandboxRequest(t *testing.T, method, url, contentType, tok string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func sandboxToken(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Post(base+"/_sandbox/tokens", "application/json", strings.NewReader(`{"user":1}`))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`"access_token":"([^"]+)"`).FindStringSubmatch(string(raw))
	if m == nil {
		t.Fatalf("no token: %s", raw)
	}
	return m[1]
}

func TestSandboxCommandSwitches(t *testing.T) {
	lenient := runSandbox(t)
	tok := sandboxToken(t, lenient)
	if status, body := sandboxRequest(t, "GET", lenient+"/api/v2/prospects/1", "", tok); status != 200 {
		t.Errorf("default: GET without Content-Type = %d %.200s, want 200", status, body)
	}
	if status, _ := sandboxRequest(t, "GET", lenient+"/api/v2/events?sort=-updatedAt", "", tok); status != 200 {
		t.Errorf("default: events sorted by -updatedAt = %d, want 200", status)
	}
	sandboxRequest(t, "POST", lenient+"/_sandbox/clock/advance?by=8d", "", "")
	if status, _ := sandboxRequest(t, "GET", lenient+"/api/v2/prospects/1", "", sandboxToken(t, lenient)); status != 200 {
		t.Errorf("default: a token minted after a week = %d, want 200", status)
	}

	strict := runSandbox(t, "--strict-media-type", "--strict-sort", "--expire-development-grants")
	tok = sandboxToken(t, strict)
	if status, _ := sandboxRequest(t, "GET", strict+"/api/v2/prospects/1", "", tok); status != 415 {
		t.Errorf("--strict-media-type: GET without Content-Type = %d, want 415", status)
	}
	if status, _ := sandboxRequest(t, "GET", strict+"/api/v2/events?sort=-updatedAt", "application/vnd.api+json", tok); status != 400 {
		t.Errorf("--strict-sort: events sorted by -updatedAt = %d, want 400", status)
	}
	sandboxRequest(t, "POST", strict+"/_sandbox/clock/advance?by=7d", "", "")
	if status, body := sandboxRequest(t, "GET", strict+"/api/v2/prospects/1", "application/vnd.api+json", tok); status != 401 || !strings.Contains(body, "development app") {
		t.Errorf("--expire-development-grants: a week later %d %.200s, want 401 naming the development grant", status, body)
	}

	prod := runSandbox(t, "--expire-development-grants", "--production-app")
	tok = sandboxToken(t, prod)
	sandboxRequest(t, "POST", prod+"/_sandbox/clock/advance?by=7d", "", "")
	if status, body := sandboxRequest(t, "GET", prod+"/api/v2/prospects/1", "", tok); status != 401 || strings.Contains(body, "development app") {
		t.Errorf("--production-app: a week later %d %.200s, want the access token expired, not the grant", status, body)
	}
}
