package actions_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"

	"github.com/outreach-connector/outreach-connector/internal/actions"
	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// inProcess serves the client's requests with the sandbox's handler, so a
// synctest bubble's fake time drives both the sandbox clock (batches
// progress) and the client's waits; it counts requests by method and path.
type inProcess struct {
	h        http.Handler
	lose     func(r *http.Request) bool // drop this answer after the sandbox acted on the request
	mu       sync.Mutex
	requests []string
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

func (t *inProcess) reset() {
	t.mu.Lock()
	t.requests = nil
	t.mu.Unlock()
}

func setup(t *testing.T, prospects int64) (*sandbox.Sandbox, *inProcess, *outreach.Client) {
	t.Helper()
	sb, err := sandbox.New(sandbox.Options{Prospects: prospects})
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
		outreach.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatal(err)
	}
	return sb, tr, c
}

func ids(from, n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = from + int64(i)
	}
	return out
}

type fixture struct {
	seqName, mailbox string
	seqID            int64
	enrolled         int64 // a prospect already in the sequence
}

func fixtures(t *testing.T, c *outreach.Client) fixture {
	t.Helper()
	ctx := context.Background()
	st, err := outreach.GetAs[outreach.SequenceState](ctx, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	seq, err := outreach.GetAs[outreach.Sequence](ctx, c, *st.SequenceID)
	if err != nil {
		t.Fatal(err)
	}
	box, err := outreach.GetAs[outreach.Mailbox](ctx, c, 2)
	if err != nil {
		t.Fatal(err)
	}
	return fixture{seqName: *seq.Name, mailbox: *box.Email, seqID: seq.ID, enrolled: *st.ProspectID}
}

func check(t *testing.T, label string, in []int64, out []actions.Outcome, want func(id int64) (actions.Result, string)) {
	t.Helper()
	if len(out) != len(in) {
		t.Fatalf("%s: %d outcomes for %d ids", label, len(out), len(in))
	}
	for i, o := range out {
		if o.ID != in[i] {
			t.Fatalf("%s: outcome %d is for %d, want %d (same order as the ids)", label, i, o.ID, in[i])
		}
		r, reason := want(o.ID)
		if o.Result != r || !strings.Contains(o.Reason, reason) {
			t.Errorf("%s: id %d: %s %q, want %s with %q", label, o.ID, o.Result, o.Reason, r, reason)
		}
	}
}

// TestEnrollSingleAndBulk: three prospects go one POST each; fifty go as
// one bulk action; both report the already-enrolled prospect as Already,
// a missing prospect as Failed with Outreach's reason, the rest Done, and
// the sequence and mailbox are found by name and email.
func TestEnrollSingleAndBulk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, tr, c := setup(t, 1000)
		f := fixtures(t, c)
		ctx := context.Background()
		for _, tc := range []struct {
			label       string
			ids         []int64
			posts, bulk int
		}{
			{"single", []int64{f.enrolled, 801, 987654}, 3, 0},
			{"bulk", append(append([]int64{f.enrolled}, ids(802, 48)...), 987654), 0, 1},
		} {
			tr.reset()
			out, err := actions.Enroll(ctx, c, f.seqName, f.mailbox, tc.ids, nil)
			if err != nil {
				t.Fatalf("%s: %v", tc.label, err)
			}
			check(t, tc.label, tc.ids, out, func(id int64) (actions.Result, string) {
				switch id {
				case f.enrolled:
					return actions.Already, ""
				case 987654:
					return actions.Failed, "Could not find 'prospect'"
				}
				return actions.Done, ""
			})
			if n, b := tr.count("POST /api/v2/sequenceStates"), tr.count("POST /api/v2/batches/actions/prospectsAddToSequence"); n != tc.posts || b != tc.bulk {
				t.Errorf("%s: %d POST /sequenceStates and %d bulk actions, want %d and %d", tc.label, n, b, tc.posts, tc.bulk)
			}
		}
		// Every prospect is in the sequence once.
		for _, id := range append(ids(801, 49), f.enrolled) {
			n := 0
			for _, err := range c.List(ctx, "sequenceStates", &outreach.ListOptions{Filters: []outreach.Filter{outreach.RelIn("prospect", id), outreach.RelIn("sequence", f.seqID)}}) {
				if err != nil {
					t.Fatal(err)
				}
				n++
			}
			if n != 1 {
				t.Errorf("prospect %d is in the sequence %d times", id, n)
			}
		}
	})
}

// TestEnrollWithoutMailbox: Outreach's mailbox rule fails every prospect,
// one by one and in bulk, with its reason.
func TestEnrollWithoutMailbox(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, _, c := setup(t, 1000)
		f := fixtures(t, c)
		for _, n := range []int64{2, 20} {
			in := ids(850, n)
			out, err := actions.Enroll(context.Background(), c, fmt.Sprint(f.seqID), "", in, nil)
			if err != nil {
				t.Fatal(err)
			}
			check(t, fmt.Sprintf("%d without mailbox", n), in, out, func(int64) (actions.Result, string) {
				return actions.Failed, "Mailbox is required"
			})
		}
		if _, err := actions.Enroll(context.Background(), c, "No Such Sequence", f.mailbox, []int64{1}, nil); err == nil || !strings.Contains(err.Error(), "No Such Sequence") {
			t.Errorf("unknown sequence name: %v", err)
		}
	})
}

// TestApply: owner by email, tags and fields; records that already hold
// the value are Already and cost no write; the rest go one by one or in
// bulk by cost; per-record refusals (a duplicate email) are Failed with
// Outreach's reason in both ways.
func TestApply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, tr, c := setup(t, 1000)
		ctx := context.Background()
		user, err := outreach.GetAs[outreach.User](ctx, c, 4)
		if err != nil {
			t.Fatal(err)
		}
		// Five prospects already owned by user 4.
		if _, err := actions.Apply(ctx, c, "prospect", ids(301, 5), actions.Change{Owner: "4"}, &actions.Options{Mode: actions.Single}); err != nil {
			t.Fatal(err)
		}
		owned := map[int64]bool{}
		for _, id := range ids(301, 20) {
			p, err := outreach.GetAs[outreach.Prospect](ctx, c, id)
			if err != nil {
				t.Fatal(err)
			}
			owned[id] = *p.OwnerID == 4
		}
		tr.reset()
		in := append(ids(301, 20), 987654)
		out, err := actions.Apply(ctx, c, "prospect", in, actions.Change{Owner: *user.Email}, nil)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "owner", in, out, func(id int64) (actions.Result, string) {
			switch {
			case id == 987654:
				return actions.Failed, "Could not find"
			case owned[id]:
				return actions.Already, ""
			}
			return actions.Done, ""
		})
		if tr.count("POST /api/v2/batches/actions/prospectsAssignOwner") != 1 || tr.count("PATCH") != 0 {
			t.Errorf("15 owner changes: requests %v", tr.requests)
		}
		for _, id := range ids(306, 15) {
			if p, err := outreach.GetAs[outreach.Prospect](ctx, c, id); err != nil || *p.OwnerID != 4 {
				t.Errorf("prospect %d owner: %v", id, err)
			}
		}

		tr.reset()
		out, err = actions.Apply(ctx, c, "account", []int64{1, 2}, actions.Change{AddTags: []string{"tier-1"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "tags", []int64{1, 2}, out, func(int64) (actions.Result, string) { return actions.Done, "" })
		if tr.count("PATCH /api/v2/accounts/") != 2 || tr.count("POST") != 0 {
			t.Errorf("2 tag changes: requests %v", tr.requests)
		}
		out, _ = actions.Apply(ctx, c, "account", []int64{1, 2}, actions.Change{AddTags: []string{"tier-1"}}, nil)
		check(t, "tags again", []int64{1, 2}, out, func(int64) (actions.Result, string) { return actions.Already, "" })

		for _, mode := range []actions.Mode{actions.Single, actions.Bulk} {
			in := ids(400+int64(mode)*20, 8)
			email := fmt.Sprintf("shared-%d@example.com", mode)
			out, err := actions.Apply(ctx, c, "prospect", in, actions.Change{Fields: map[string]any{"emails": []string{email}}}, &actions.Options{Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			check(t, fmt.Sprintf("duplicate emails, mode %d", mode), in, out, func(id int64) (actions.Result, string) {
				if id == in[0] {
					return actions.Done, ""
				}
				return actions.Failed, "email hash has already been taken"
			})
		}
	})
}

// TestRequestCounts measures the requests of enrolling 10, 100 and 1,000
// prospects one by one and in bulk, and checks Auto picks the cheaper.
func TestRequestCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, tr, c := setup(t, 8000)
		f := fixtures(t, c)
		next := int64(4001) // seeded sequence states cover prospects 1..4000
		for _, n := range []int64{10, 100, 1000} {
			counts := map[actions.Mode]int{}
			for _, mode := range []actions.Mode{actions.Single, actions.Bulk, actions.Auto} {
				in := ids(next, n)
				next += n
				tr.reset()
				out, err := actions.Enroll(context.Background(), c, fmt.Sprint(f.seqID), "2", in, &actions.Options{Mode: mode})
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range out {
					if o.Result != actions.Done {
						t.Fatalf("n=%d mode %d: %+v", n, mode, o)
					}
				}
				counts[mode] = len(tr.requests)
			}
			t.Logf("enrol %4d prospects: one by one %4d requests, bulk %2d requests, auto %4d", n, counts[actions.Single], counts[actions.Bulk], counts[actions.Auto])
			if counts[actions.Single] != int(n) || counts[actions.Bulk] >= counts[actions.Single] || counts[actions.Auto] != min(counts[actions.Single], counts[actions.Bulk]) {
				t.Errorf("n=%d: counts %v", n, counts)
			}
		}
	})
}

// TestBulkAnswerLost: the answer to the bulk action is lost after Outreach
// created the batch; the action runs again, and every prospect ends in
// the sequence once (those the lost batch enrolled are Already).
func TestBulkAnswerLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sb, tr, c := setup(t, 1000)
		f := fixtures(t, c)
		lost := 0
		tr.lose = func(r *http.Request) bool {
			if r.Method == "POST" && strings.HasPrefix(r.URL.Path, "/api/v2/batches/actions/") && lost == 0 {
				lost++
				return true
			}
			return false
		}
		in := ids(700, 30)
		out, err := actions.Enroll(context.Background(), c, fmt.Sprint(f.seqID), "2", in, nil)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "after a lost answer", in, out, func(int64) (actions.Result, string) { return actions.Already, "" })
		if n := tr.count("POST /api/v2/batches/actions/"); n != 2 || lost != 1 {
			t.Errorf("%d bulk requests, %d lost", n, lost)
		}
		for _, id := range in {
			n := 0
			for _, err := range c.List(context.Background(), "sequenceStates", &outreach.ListOptions{Filters: []outreach.Filter{outreach.RelIn("prospect", id), outreach.RelIn("sequence", f.seqID)}}) {
				if err != nil {
					t.Fatal(err)
				}
				n++
			}
			if n != 1 {
				t.Errorf("prospect %d is in the sequence %d times", id, n)
			}
		}
		_ = sb
	})
}
