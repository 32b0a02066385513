package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
)

// served is a running `serve` process.
type served struct {
	t            *testing.T
	cmd          *exec.Cmd
	base, token  string
	banner, logs syncBuffer
	exited       chan error
}

// startServe runs the binary's serve with args in dir and waits (bounded)
// for its banner. token is the admin token when known from an earlier
// start.
func startServe(t *testing.T, bin, dir, token string, args ...string) *served {
	t.Helper()
	s := &served{t: t, token: token, exited: make(chan error, 1)}
	s.cmd = exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--db", "app.db", "--key-file", "app.key",
		"--admin-token-file", "admin"}, args...)...)
	s.cmd.Dir = dir
	s.cmd.Env = append(os.Environ(), "OUTREACH_CONNECTOR_KEYS=", "OUTREACH_CONNECTOR_ADMIN_TOKEN=", "OUTREACH_CONNECTOR_DB=")
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = &s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.banner.Write([]byte(sc.Text() + "\n"))
		}
		io.Copy(io.Discard, stdout)
		s.exited <- s.cmd.Wait()
	}()
	t.Cleanup(func() { s.cmd.Process.Kill() })
	deadline := time.Now().Add(60 * time.Second)
	for s.base == "" || s.token == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no banner:\n%s\n%s", s.banner.String(), s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
		if m := regexp.MustCompile(`serving on (http://\S+)`).FindStringSubmatch(s.banner.String()); m != nil {
			s.base = m[1]
		}
		if m := regexp.MustCompile(`Admin token \(shown once; kept in .*\): (\S+)`).FindStringSubmatch(s.banner.String()); m != nil {
			s.token = m[1]
		}
	}
	return s
}

func (s *served) get(path, bearer string) (int, string) {
	s.t.Helper()
	req, _ := http.NewRequest("GET", s.base+path, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitSucceeded polls /metrics (bounded) until the sandbox connection has
// a succeeded run, and returns the scrape.
func (s *served) waitSucceeded() string {
	s.t.Helper()
	succeeded := regexp.MustCompile(`(?m)^outreach_connector_runs_total\{connection="sandbox",outcome="succeeded"\} (\d+)$`)
	deadline := time.Now().Add(90 * time.Second)
	for {
		status, body := s.get("/metrics", s.token)
		if status != http.StatusOK {
			s.t.Fatalf("/metrics = %d %s", status, body)
		}
		if m := succeeded.FindStringSubmatch(body); m != nil {
			if n, _ := strconv.Atoi(m[1]); n >= 1 {
				return body
			}
		}
		if strings.Contains(body, `outcome="failed"`) {
			s.t.Fatalf("the sandbox run failed:\n%s", s.logs.String())
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no succeeded run in time:\n%s\n%s", body, s.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGTERM and expects a clean exit.
func (s *served) stop() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		if err != nil {
			s.t.Fatalf("serve exited with %v:\n%s", err, s.logs.String())
		}
	case <-time.After(60 * time.Second):
		s.t.Fatalf("serve did not stop on SIGTERM:\n%s", s.logs.String())
	}
	if strings.Contains(s.logs.String(), "panic") || strings.Contains(s.logs.String(), "level=ERROR") {
		s.t.Errorf("logs:\n%s", s.logs.String())
	}
}

// TestServeSandboxRunsItsConnection runs `serve --sandbox` as a user does:
// its connection "sandbox" runs at once into ./outreach.db, /metrics (for
// the admin only) counts the succeeded run, /readyz says ready, and
// SIGTERM stops it cleanly. A second start keeps the connection and its
// history, with a fresh credential "sandbox" for its fresh sandbox.
func TestServeSandboxRunsItsConnection(t *testing.T) {
	t.Parallel()
	bin := connectorBinary(t)
	dir := t.TempDir()
	s := startServe(t, bin, dir, "", "--sandbox", "--workers", "2")
	if !strings.Contains(s.banner.String(), `Connection "sandbox" syncs the sandbox`) {
		t.Errorf("banner:\n%s", s.banner.String())
	}
	if status, _ := s.get("/metrics", ""); status != http.StatusUnauthorized {
		t.Errorf("/metrics without the admin token = %d", status)
	}
	metrics := s.waitSucceeded()
	for _, want := range []string{`outreach_connector_records_synced_total{connection="sandbox",stream="prospects"}`,
		`outreach_connector_outreach_requests_total{credential="sandbox",method="GET",status="200"}`,
		`outreach_connector_credential_status{credential="sandbox",status="connected"} 1`,
		`outreach_connector_outreach_ratelimit_quota_share{user="1"} 1`,
		`outreach_connector_cursor_lag_seconds{connection="sandbox",stream="prospects"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if status, body := s.get("/readyz", ""); status != http.StatusOK || body != "ready\n" {
		t.Errorf("/readyz = %d %q", status, body)
	}
	if info, err := os.Stat(filepath.Join(dir, "outreach.db")); err != nil || info.Size() == 0 {
		t.Errorf("./outreach.db: %v", err)
	}
	s.stop()

	again := startServe(t, bin, dir, s.token, "--sandbox")
	again.waitSucceeded()
	again.stop()

	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conns, err := db.Connections().ListConnections(ctx)
	if err != nil || len(conns) != 1 || conns[0].Name != "sandbox" || conns[0].Schedule.String() != "every 15m" || conns[0].Namespace != "sandbox" {
		t.Fatalf("connections: %+v %v", conns, err)
	}
	runs, err := db.Connections().ListRuns(ctx, conns[0].ID, 10)
	if err != nil || len(runs) != 2 || runs[0].Outcome != connection.Succeeded || runs[1].Outcome != connection.Succeeded || runs[1].Totals().Records == 0 {
		t.Fatalf("runs: %+v %v", runs, err)
	}
	// The first process's counters are the first run's record, stream by
	// stream.
	synced := regexp.MustCompile(`(?m)^outreach_connector_records_synced_total\{connection="sandbox",stream="(\w+)"\} (\d+)$`)
	counted := map[string]int64{}
	for _, m := range synced.FindAllStringSubmatch(metrics, -1) {
		counted[m[1]], _ = strconv.ParseInt(m[2], 10, 64)
	}
	for _, st := range runs[1].Streams {
		if counted[st.Stream] != st.Records {
			t.Errorf("stream %s: /metrics counted %d records, the run %d", st.Stream, counted[st.Stream], st.Records)
		}
		delete(counted, st.Stream)
	}
	if len(counted) != 0 {
		t.Errorf("/metrics counted streams the run did not: %v", counted)
	}
	keys, err := credential.LoadKeyring(filepath.Join(dir, "app.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := credential.NewManager(credential.Options{Store: db, Keyring: keys})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := m.List(ctx)
	if err != nil || len(creds) != 1 || creds[0].Name != "sandbox" || creds[0].ID != conns[0].CredentialID {
		t.Fatalf("credentials: %+v %v", creds, err)
	}
}

func TestServeRejectsBadConnectionFlags(t *testing.T) {
	dir := t.TempDir()
	loose := filepath.Join(dir, "loose")
	os.WriteFile(loose, []byte("a-secret-of-enough-length\n"), 0o644)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("tiny\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--workers", "0"}, "--workers 0"},
		{[]string{"--notify-url", "ftp://hooks.example"}, "--notify-url"},
		{[]string{"--notify-url", "https://u:p@hooks.example/x"}, "must not carry a user or password"},
		{[]string{"--notify-secret-file", loose}, "chmod 600 " + loose},
		{[]string{"--notify-secret-file", short}, "shorter than 16"},
		{[]string{"--notify-secret-file", filepath.Join(dir, "missing")}, "--notify-secret-file"},
	} {
		var out, errOut watchBuffer
		cmd := newRootCommand(&out, &errOut)
		cmd.SetArgs(append([]string{"serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(dir, "x.db"), "--key-file", filepath.Join(dir, "x.key"),
			"--admin-token-file", filepath.Join(dir, "admin")}, tc.args...))
		err := cmd.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "a-secret-of-enough-length") {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
