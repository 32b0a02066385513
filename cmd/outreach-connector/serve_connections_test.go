package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestServeSandboxRunsItsConnection runs `serve --sandbox` as a user does:
// its connection "sandbox" runs at once into ./outreach.db, /metrics (for
// the admin only) counts the succeeded run, /readyz says ready, and
// SIGTERM stops it cleanly.
func TestServeSandboxRunsItsConnection(t *testing.T) {
	t.Parallel()
	bin := connectorBinary(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "serve", "--sandbox", "--addr", "127.0.0.1:0", "--db", "app.db", "--key-file", "app.key",
		"--admin-token-file", "admin", "--workers", "2")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "OUTREACH_CONNECTOR_KEYS=", "OUTREACH_CONNECTOR_ADMIN_TOKEN=", "OUTREACH_CONNECTOR_DB=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var banner syncBuffer
	var copied sync.WaitGroup
	copied.Go(func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			banner.Write([]byte(sc.Text() + "\n"))
		}
		io.Copy(io.Discard, stdout)
	})
	go func() {
		copied.Wait()
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	var base, token string
	for base == "" || token == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no banner:\n%s\n%s", banner.String(), logs.String())
		}
		time.Sleep(20 * time.Millisecond)
		if m := regexp.MustCompile(`serving on (http://\S+)`).FindStringSubmatch(banner.String()); m != nil {
			base = m[1]
		}
		if m := regexp.MustCompile(`Admin token \(shown once; kept in .*\): (\S+)`).FindStringSubmatch(banner.String()); m != nil {
			token = m[1]
		}
	}
	if !strings.Contains(banner.String(), `Connection "sandbox" syncs the sandbox`) {
		t.Errorf("banner:\n%s", banner.String())
	}
	get := func(path, bearer string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, _ := get("/metrics", ""); status != http.StatusUnauthorized {
		t.Errorf("/metrics without the admin token = %d", status)
	}
	succeeded := regexp.MustCompile(`(?m)^outreach_connector_runs_total\{connection="sandbox",outcome="succeeded"\} (\d+)$`)
	var metrics string
	for {
		status, body := get("/metrics", token)
		if status != http.StatusOK {
			t.Fatalf("/metrics = %d %s", status, body)
		}
		if m := succeeded.FindStringSubmatch(body); m != nil {
			if n, _ := strconv.Atoi(m[1]); n >= 1 {
				metrics = body
				break
			}
		}
		if strings.Contains(body, `outcome="failed"`) {
			t.Fatalf("the sandbox run failed:\n%s", logs.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("no succeeded run within the deadline:\n%s\n%s", body, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{`outreach_connector_records_synced_total{connection="sandbox",stream="prospects"}`,
		`outreach_connector_outreach_requests_total{credential="sandbox",method="GET",status="200"}`,
		`outreach_connector_credential_status{credential="sandbox",status="connected"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if status, body := get("/readyz", ""); status != http.StatusOK || body != "ready\n" {
		t.Errorf("/readyz = %d %q", status, body)
	}
	if info, err := os.Stat(filepath.Join(dir, "outreach.db")); err != nil || info.Size() == 0 {
		t.Errorf("./outreach.db: %v", err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve exited with %v:\n%s", err, logs.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not stop on SIGTERM:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "panic") || strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("logs:\n%s", logs.String())
	}
}
