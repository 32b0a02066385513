package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSandboxCommandPrintsHowToConnectAndServes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	cmd := newRootCommand(&out, &errOut)
	cmd.SetArgs([]string{"sandbox", "--addr", "127.0.0.1:0", "--scale", "50", "--rate-limit", "5", "--rate-window", "1m"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "Press Ctrl+C") {
		if time.Now().After(deadline) {
			t.Fatalf("no start banner; stdout %q stderr %q", out.String(), errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	banner := out.String()
	for _, want := range []string{"API base URL", "Client id", "Client secret", "Redirect URI", "Sign in as", "50 prospects", "rate limit 5 per 1m0s"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	base := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(banner)[1]
	resp, err := http.Post(base+"/_sandbox/tokens", "application/json", strings.NewReader(`{"user":1}`))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tok := regexp.MustCompile(`"access_token":"([^"]+)"`).FindStringSubmatch(string(raw))[1]
	req, _ := http.NewRequest("GET", base+"/api/v2/prospects?page[size]=2", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/vnd.api+json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"type":"prospect"`) {
		t.Errorf("GET prospects: %d %.200s", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("command returned %v after interrupt, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("command did not stop")
	}
}

func TestSandboxCommandRejectsBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"sandbox", "--scale", "huge"}, "--scale"},
		{[]string{"sandbox", "--faults", `{"server_errors":2}`, "--addr", "127.0.0.1:0"}, "between 0 and 1"},
		{[]string{"sandbox", "--faults", `{"nope":1}`}, "--faults"},
		{[]string{"sandbox", "--log-level", "loud"}, "--log-level"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			cmd := newRootCommand(&out, &errOut)
			cmd.SetArgs(tt.args)
			err := cmd.Execute()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}
