package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// spentSandbox starts a sandbox whose user 1 has spent its rate-limit
// window, and imports a credential of that user into dir; it returns the
// store flags.
func spentSandbox(t *testing.T, dir string) []string {
	t.Helper()
	srv, err := sandbox.Start("", sandbox.Options{Prospects: 30, MintInterval: -1, RateLimit: 150, RateWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	access, _, err := srv.IssueToken(1)
	if err != nil {
		t.Fatal(err)
	}
	for spent := false; !spent; {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v2/prospects?page[size]=1", nil)
		req.Header.Set("Authorization", "Bearer "+access)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		spent = resp.StatusCode == http.StatusTooManyRequests
	}
	return importDefaultScopes(t, srv, dir)
}

var rateWaitLine = regexp.MustCompile(`waiting for Outreach's rate-limit window until \d\d:\d\d:\d\d \(0 requests left of 150\)`)

// TestSyncSaysItWaitsForTheRateLimitAndStops starts a sync whose user
// has spent the rate-limit window: it must say once that it waits and
// until when, on a terminal and off one, and an interrupt during that
// wait (in discovery) must end with the interrupted summary, the resume
// hint and exit 130, not a bare "context canceled".
func TestSyncSaysItWaitsForTheRateLimitAndStops(t *testing.T) {
	t.Parallel()
	t.Run("terminal", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		store := spentSandbox(t, dir)
		tm := startTerminal(t, dir, append([]string{"sync", "--credential", "default", "--streams", "prospects"}, store...)...)
		if !tm.waitFor(rateWaitLine, time.Minute) {
			t.Fatalf("no line saying the sync waits for the rate limit; output:\n%s", tm.output())
		}
		if _, err := tm.master.Write([]byte{3}); err != nil {
			t.Fatal(err)
		}
		code := tm.wait(30 * time.Second)
		checkInterrupted(t, code, tm.output())
		if n := len(rateWaitLine.FindAllString(tm.output(), -1)); n != 1 {
			t.Errorf("%d wait lines, want 1:\n%s", n, tm.output())
		}
	})
	t.Run("pipe", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		store := spentSandbox(t, dir)
		cmd := command(t, dir, append([]string{"sync", "--credential", "default", "--streams", "prospects"}, store...)...)
		var stdout bytes.Buffer
		stderr := &watchBuffer{}
		cmd.Stdout, cmd.Stderr = &stdout, stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-stderr.when("waiting for Outreach's rate-limit window until"):
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no log line saying the sync waits; stderr:\n%s", stderr.String())
		}
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		checkInterrupted(t, cmd.ProcessState.ExitCode(), stdout.String()+stderr.String())
		if !strings.Contains(stderr.String(), "level=INFO") || !rateWaitLine.MatchString(stderr.String()) {
			t.Errorf("want the wait as an info log line; stderr:\n%s", stderr.String())
		}
	})
}

func checkInterrupted(t *testing.T, code int, out string) {
	t.Helper()
	if code != 128+int(syscall.SIGINT) {
		t.Errorf("exit status %d, want 130", code)
	}
	if !strings.Contains(out, "Interrupted") || !strings.Contains(out, "next run resumes") {
		t.Errorf("want the interrupted summary and the resume hint; output:\n%s", out)
	}
	if strings.Contains(out, "Error:") || strings.Contains(out, "context canceled") {
		t.Errorf("an interruption reported as an error:\n%s", out)
	}
}

// TestSyncLogsAHungRequest has a client whose first attempt hangs past
// its attempt timeout: sync's observer logs one warn line saying it is
// retried, and nothing for the answered retry.
func TestSyncLogsAHungRequest(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Content-Type", "application/vnd.api+json")
		w.Write([]byte(`{"data":[]}`))
	}))
	defer srv.Close()
	defer close(release)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	c, err := outreach.NewClient(outreach.WithBaseURL(srv.URL+"/api/v2"), outreach.WithTokenSource(outreach.StaticToken("t")),
		outreach.WithAttemptTimeout(50*time.Millisecond), outreach.WithObserver(logHungRequests(log)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(t.Context(), http.MethodGet, "prospects", nil); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "the request is retried") {
		t.Errorf("want one warn line saying the hung request is retried:\n%s", logs.String())
	}
}
