package outreach_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// inProcess is an http.RoundTripper that serves requests with a sandbox's
// handler, without a network, so tests can run in a synctest bubble where
// the sandbox clock (following the system clock) and the client's waits
// share the bubble's fake time. lose, when set, is asked after the sandbox
// answered whether to drop the answer and report a reset connection (the
// write was committed, the client cannot know).
type inProcess struct {
	h    http.Handler
	lose func(r *http.Request) bool

	mu       sync.Mutex
	requests []string // "METHOD path"
}

func (t *inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	t.mu.Lock()
	t.requests = append(t.requests, r.Method+" "+r.URL.Path)
	t.mu.Unlock()
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	if t.lose != nil && t.lose(r) {
		return nil, fmt.Errorf("read: %w", syscall.ECONNRESET)
	}
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

func (t *inProcess) count(prefix string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, r := range t.requests {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func inProcessClient(t *testing.T, opts sandbox.Options) (*sandbox.Sandbox, *inProcess, *outreach.Client) {
	t.Helper()
	if opts.Prospects == 0 {
		opts.Prospects = 1000
	}
	sb, err := sandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	access, _, err := sb.IssueToken(1)
	if err != nil {
		t.Fatal(err)
	}
	tr := &inProcess{h: sb}
	c, err := outreach.NewClient(outreach.WithBaseURL("http://outreach.test/api/v2"), outreach.WithTokenSource(outreach.StaticToken(access)),
		outreach.WithHTTPClient(&http.Client{Transport: tr}),
		outreach.WithRetryPolicy(outreach.RetryPolicy{BaseDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	return sb, tr, c
}

func seq(from, n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = from + int64(i)
	}
	return out
}

// TestRunBulkActionWaitsAndReportsItems: a 300-record owner change with
// one missing record is created, confirmed, waited for with few polls, and
// its items say which record failed and why.
func TestRunBulkActionWaitsAndReportsItems(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sb, tr, c := inProcessClient(t, sandbox.Options{BatchItemsPerSecond: 50})
		ctx := context.Background()
		ids := append(seq(101, 300), 987654)
		start := time.Now()
		var polls []int64
		b, err := c.RunBulkAction(ctx, outreach.BulkAction{Name: "prospectsAssignOwner", IDs: ids, Attributes: map[string]any{"ownerId": 4}},
			&outreach.WaitOptions{Progress: func(b *outreach.Batch) { polls = append(polls, *b.Pending) }})
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		if !b.Done() || *b.State != "finished" || *b.Total != 301 || *b.Failures != 1 {
			t.Fatalf("batch %+v", b)
		}
		// 301 items at 50 a second take about 6 s.
		if took < 6*time.Second || took > 12*time.Second {
			t.Errorf("waiting took %s, want 6 to 12 s", took)
		}
		if len(polls) > 6 || tr.count("GET /api/v2/batches/") != len(polls) {
			t.Errorf("%d polls (pending %v), want at most 6", len(polls), polls)
		}
		if tr.count("POST /api/v2/batches/actions/") != 1 || tr.count("POST /api/v2/batches/") != 2 {
			t.Errorf("requests: %v", tr.requests)
		}
		failed := map[int64]string{}
		n := 0
		for it, err := range c.BatchItems(ctx, b.ID, nil) {
			if err != nil {
				t.Fatal(err)
			}
			n++
			id, ok := it.Target()
			if !ok {
				t.Fatalf("item %d has no target: %v", it.ID, it.Data)
			}
			if !it.Succeeded() {
				failed[id] = *it.Info
			}
		}
		if n != 301 || len(failed) != 1 || !strings.Contains(failed[987654], "Could not find") {
			t.Errorf("%d items, failed %v", n, failed)
		}
		p, err := outreach.GetAs[outreach.Prospect](ctx, c, 250)
		if err != nil || p.OwnerID == nil || *p.OwnerID != 4 {
			t.Errorf("prospect 250 owner: %v %v", p, err)
		}
		_ = sb
	})
}

// TestWaitBatchBacksOffAndStopsWithTheContext: a batch that never moves
// (the sandbox clock stands still) is polled less and less often, and the
// wait ends with the context.
func TestWaitBatchBacksOffAndStopsWithTheContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, tr, c := inProcessClient(t, sandbox.Options{Clock: sandbox.NewClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))})
		b, err := c.CreateBatch(context.Background(), outreach.BulkAction{Name: "prospectsAddTags", IDs: []int64{1, 2}, Attributes: map[string]any{"tags": []string{"t"}}, SkipConfirmation: true})
		if err != nil {
			t.Fatal(err)
		}
		if b.Done() || *b.State != "processing" {
			t.Fatalf("batch %+v", b)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		_, err = c.WaitBatch(ctx, b.ID, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitBatch = %v, want the context's deadline", err)
		}
		// 1, 2, 4, 8, 16, then every 30 s: about 24 polls in 10 minutes.
		if n := tr.count("GET /api/v2/batches/"); n < 10 || n > 26 {
			t.Errorf("%d polls in 10 minutes", n)
		}
	})
}

// TestBulkPollingRespectsTheRateLimit: with 4 requests per 10 s, polling a
// slow batch waits for the window instead of drawing 429s.
func TestBulkPollingRespectsTheRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sb, _, c := inProcessClient(t, sandbox.Options{BatchItemsPerSecond: 2, RateLimit: 4, RateWindow: 10 * time.Second})
		b, err := c.RunBulkAction(context.Background(), outreach.BulkAction{Name: "prospectsAddTags", IDs: seq(1, 60), Attributes: map[string]any{"tags": []string{"t"}}},
			&outreach.WaitOptions{First: 100 * time.Millisecond, Max: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if !b.Done() || *b.Failures != 0 {
			t.Fatalf("batch %+v", b)
		}
		if n := sb.Counters().RateLimited; n != 0 {
			t.Errorf("%d answers were 429; the client's limiter should have waited", n)
		}
	})
}

// TestBulkActionRefusesToActOnEverything: no ids and no filter would act
// on every record; the client refuses unless All says so.
func TestBulkActionRefusesToActOnEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, tr, c := inProcessClient(t, sandbox.Options{})
		_, err := c.CreateBatch(context.Background(), outreach.BulkAction{Name: "prospectsDestroyAll"})
		if err == nil || !strings.Contains(err.Error(), "every record") || len(tr.requests) != 0 {
			t.Fatalf("err %v, %d requests", err, len(tr.requests))
		}
		b, err := c.CreateBatch(context.Background(), outreach.BulkAction{Name: "prospectsAddTags", Filters: []outreach.Filter{outreach.In("id", 5, 6, 7)}, Attributes: map[string]any{"tags": []string{"f"}}})
		if err != nil || *b.Total != 3 {
			t.Fatalf("filtered batch: %+v %v", b, err)
		}
	})
}

// TestEnrollProspects: one POST per prospect; "already in the sequence" is
// an outcome, not an error; a missing mailbox fails every prospect with
// Outreach's reason; an answer lost after the state was created is looked
// up, not sent again.
func TestEnrollProspects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sb, tr, c := inProcessClient(t, sandbox.Options{})
		ctx := context.Background()
		st, err := outreach.GetAs[outreach.SequenceState](ctx, c, 1)
		if err != nil {
			t.Fatal(err)
		}
		enrolled, sequence := *st.ProspectID, *st.SequenceID
		fresh := []int64{901, 902, 903}
		lost := 0
		tr.lose = func(r *http.Request) bool {
			if r.Method == "POST" && r.URL.Path == "/api/v2/sequenceStates" && lost == 0 && tr.count("POST /api/v2/sequenceStates") == 2 {
				lost++ // the second POST (prospect 901) is committed, its answer lost
				return true
			}
			return false
		}
		out, err := c.EnrollProspects(ctx, sequence, 3, append([]int64{enrolled}, append(fresh, 987654)...))
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 5 {
			t.Fatalf("outcomes %+v", out)
		}
		if out[0].Result != outreach.AlreadyEnrolled || out[0].Err != nil {
			t.Errorf("already enrolled prospect: %+v", out[0])
		}
		for _, o := range out[1:4] {
			if o.Result != outreach.Enrolled || o.SequenceStateID == 0 {
				t.Errorf("prospect %d: %+v", o.ProspectID, o)
			}
			n := 0
			for _, err := range c.List(ctx, "sequenceStates", &outreach.ListOptions{Filters: []outreach.Filter{outreach.RelIn("prospect", o.ProspectID)}}) {
				if err != nil {
					t.Fatal(err)
				}
				n++
			}
			if n != 1 {
				t.Errorf("prospect %d has %d sequence states, want 1", o.ProspectID, n)
			}
		}
		if o := out[4]; o.Result != outreach.EnrollFailed || o.Err == nil || !strings.Contains(o.Err.Error(), "Could not find 'prospect'") {
			t.Errorf("missing prospect: %+v", o)
		}
		if lost != 1 || tr.count("POST /api/v2/sequenceStates") != 5 {
			t.Errorf("lost %d answers, %d POSTs; want 1 and 5 (the lost one looked up, not resent)", lost, tr.count("POST /api/v2/sequenceStates"))
		}

		out, err = c.EnrollProspects(ctx, sequence, 0, []int64{904, 905})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out {
			if o.Result != outreach.EnrollFailed || !strings.Contains(o.Err.Error(), "Mailbox is required") {
				t.Errorf("without a mailbox, prospect %d: %+v", o.ProspectID, o)
			}
		}
		_ = sb
	})
}
