package outreach_test

import (
	"encoding/json"
	"errors"
	"fmt"
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

// A DELETE whose answer is lost after Outreach did it (a reset, a 502) is
// sent again, and Outreach answers the repeat 404: whether the lost attempt
// deleted the record or it was never there cannot be told, so the 404 comes
// back saying an attempt's answer was lost (the error of Delete, the
// X-Earlier-Attempt-Lost header of Forward). A DELETE of a record that was
// never there, with no attempt lost, is a plain 404.
func TestDeleteWhoseAnswerWasLost(t *testing.T) {
	for _, f := range []struct {
		name   string
		faults sandbox.Faults
	}{{"reset", sandbox.Faults{CommittedResets: 1}}, {"bad gateway", sandbox.Faults{CommittedBadGateway: 1}}} {
		t.Run(f.name, func(t *testing.T) {
			srv := startSandbox(t, sandbox.Options{})
			c := forwardClient(t, srv)
			ctx := t.Context()
			create := func() int64 {
				r, err := c.Create(ctx, "prospects", &outreach.Resource{Type: "prospect", Attributes: map[string]json.RawMessage{"firstName": json.RawMessage(`"Ada"`)}})
				if err != nil {
					t.Fatal(err)
				}
				return r.ID
			}
			a, b := create(), create()
			srv.SetFaults(f.faults)
			defer srv.SetFaults(sandbox.Faults{})
			if err := c.Delete(ctx, "prospects", a); !errors.Is(err, outreach.ErrNotFound) || !strings.Contains(err.Error(), "answer was lost") {
				t.Errorf("Delete: %v, want not found, saying an attempt's answer was lost", err)
			}
			resp, err := c.Forward(ctx, &outreach.ForwardRequest{Method: "DELETE", Path: fmt.Sprint("prospects/", b), Retry: true})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound || resp.Header.Get(outreach.HeaderEarlierAttemptLost) != "true" || len(got) == 0 {
				t.Errorf("Forward: %d %v %q; want Outreach's 404 with %s", resp.StatusCode, resp.Header, got, outreach.HeaderEarlierAttemptLost)
			}
			if lost := srv.Counters().LostAnswers; lost != 2 {
				t.Errorf("answers lost: %d, want 2", lost)
			}
			for _, id := range []int64{a, b} {
				if _, _, err := c.Get(ctx, "prospects", id, nil); !errors.Is(err, outreach.ErrNotFound) {
					t.Errorf("prospect %d after its delete: %v", id, err)
				}
			}
			srv.SetFaults(sandbox.Faults{})
			if err := c.Delete(ctx, "prospects", 999999); !errors.Is(err, outreach.ErrNotFound) || strings.Contains(err.Error(), "lost") {
				t.Errorf("Delete of a record never there: %v, want a plain ErrNotFound", err)
			}
			resp, err = c.Forward(ctx, &outreach.ForwardRequest{Method: "DELETE", Path: "prospects/999999", Retry: true})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound || resp.Header.Get(outreach.HeaderEarlierAttemptLost) != "" {
				t.Errorf("Forward of a record never there: %d %v", resp.StatusCode, resp.Header)
			}
		})
	}
}
