package outreach_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

func forwardClient(t *testing.T, srv *sandbox.Server, opts ...outreach.Option) *outreach.Client {
	t.Helper()
	access, _, err := srv.IssueToken(1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := outreach.NewClient(append([]outreach.Option{outreach.WithBaseURL(srv.URL + "/api/v2"), outreach.WithTokenSource(outreach.StaticToken(access)),
		outreach.WithRetryPolicy(outreach.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Forward passes a write's body and answer through as they are, adds the
// JSON:API media type, and sends a POST once even on a 500; a GET marked
// Retry is sent again on 500s and the last answer comes back.
func TestForward(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{})
	c := forwardClient(t, srv)
	body := `{"data":{"type":"prospect","attributes":{"firstName":"Ada"}}}`
	resp, err := c.Forward(t.Context(), &outreach.ForwardRequest{Method: "POST", Path: "prospects", Body: strings.NewReader(body), ContentLength: int64(len(body))})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(got), `"firstName":"Ada"`) {
		t.Fatalf("create: %d %s", resp.StatusCode, got)
	}
	srv.SetFaults(sandbox.Faults{ServerErrors: 1})
	before := srv.Counters().FaultsInjected
	resp, err = c.Forward(t.Context(), &outreach.ForwardRequest{Method: "POST", Path: "prospects", Body: strings.NewReader(body), ContentLength: int64(len(body)),
		GetBody: func() (io.Reader, error) { return strings.NewReader(body), nil }})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 || srv.Counters().FaultsInjected-before != 1 {
		t.Fatalf("POST on a 500: %d, sent %d times; want once", resp.StatusCode, srv.Counters().FaultsInjected-before)
	}
	before = srv.Counters().FaultsInjected
	resp, err = c.Forward(t.Context(), &outreach.ForwardRequest{Method: "GET", Path: "prospects/1", Retry: true})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 || srv.Counters().FaultsInjected-before != 3 {
		t.Fatalf("GET on 500s: %d, sent %d times; want 3", resp.StatusCode, srv.Counters().FaultsInjected-before)
	}
}

// Forward refuses to send anywhere but the API's origin.
func TestForwardStaysOnTheOrigin(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{})
	c := forwardClient(t, srv)
	if _, err := c.Forward(t.Context(), &outreach.ForwardRequest{Method: "GET", Path: "http://example.com/api/v2/prospects"}); err == nil ||
		!strings.Contains(err.Error(), "not the API's origin") {
		t.Fatalf("another origin: %v", err)
	}
}

// Under WithMaxWait, a request that would wait for a spent window longer
// than allowed fails at once with a RateLimitError, and Outreach (the
// sandbox) sees no request and sends no 429.
func TestWithMaxWaitRefusesInsteadOfWaiting(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{RateLimit: 2})
	c := forwardClient(t, srv)
	for range 2 {
		if _, err := c.Do(t.Context(), "GET", "prospects/1", nil); err != nil {
			t.Fatal(err)
		}
	}
	before := srv.Counters()
	ctx := outreach.WithMaxWait(t.Context(), time.Second) // the window resets in an hour
	_, err := c.Forward(ctx, &outreach.ForwardRequest{Method: "GET", Path: "prospects/1", Retry: true})
	var rl *outreach.RateLimitError
	if !errors.As(err, &rl) || rl.Reason != "quota" || rl.Reset.Before(time.Now().Add(30*time.Minute)) {
		t.Fatalf("err %v; want a quota RateLimitError with the window's reset", err)
	}
	after := srv.Counters()
	if after.Requests != before.Requests || after.RateLimited != 0 {
		t.Fatalf("the sandbox saw %d more requests and sent %d 429s", after.Requests-before.Requests, after.RateLimited)
	}
}
