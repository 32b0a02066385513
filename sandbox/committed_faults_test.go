package sandbox_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/outreach-connector/outreach-connector/sandbox"
)

// TestCommittedWriteFaults: with committed_resets or committed_bad_gateway
// the write goes through and its answer is lost, so a client sees a reset
// or a 502 for a prospect that exists; the counters tell writes apart.
func TestCommittedWriteFaults(t *testing.T) {
	srv := start(t, sandbox.Options{})
	tok := token(t, srv)
	for _, tc := range []struct {
		name   string
		faults sandbox.Faults
	}{
		{"bad gateway", sandbox.Faults{CommittedBadGateway: 1}},
		{"reset", sandbox.Faults{CommittedResets: 1}},
	} {
		email := strings.ReplaceAll(tc.name, " ", "") + "@lost.example"
		if err := srv.SetFaults(tc.faults); err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", srv.URL+"/api/v2/prospects",
			strings.NewReader(`{"data":{"type":"prospect","attributes":{"emails":["`+email+`"]}}}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/vnd.api+json")
		resp, err := http.DefaultClient.Do(req)
		switch tc.name {
		case "bad gateway":
			if err != nil || resp.StatusCode != http.StatusBadGateway {
				t.Fatalf("%s: %v %v; want a 502", tc.name, resp, err)
			}
			resp.Body.Close()
		case "reset":
			if err == nil {
				resp.Body.Close()
				t.Fatalf("%s: answered %d; want the connection reset", tc.name, resp.StatusCode)
			}
		}
		srv.SetFaults(sandbox.Faults{})
		got := listAll(t, srv, tok, "/api/v2/prospects"+q("filter[emails]", email))
		if len(got) != 1 {
			t.Fatalf("%s: %d prospects with %s after the lost answer; want 1 (the write is committed)", tc.name, len(got), email)
		}
	}
	c := srv.Counters()
	if c.Creates != 2 || c.LostAnswers != 2 || c.WriteRequests != 2 {
		t.Fatalf("counters: creates %d, lost answers %d, write requests %d; want 2, 2, 2", c.Creates, c.LostAnswers, c.WriteRequests)
	}
}
