package load_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/actions"
	"github.com/outreach-connector/outreach-connector/internal/load"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// counting serves requests with the sandbox's handler in the process and
// counts them by method and collection.
type counting struct {
	h  http.Handler
	mu sync.Mutex
	by map[string]int
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	path := strings.TrimPrefix(r.URL.Path, "/api/v2/")
	if i := strings.IndexByte(path, '/'); i > 0 {
		path = path[:i]
	}
	c.mu.Lock()
	c.by[r.Method+" "+path]++
	c.mu.Unlock()
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)
	resp := w.Result()
	resp.Request = r
	return resp, nil
}

func (c *counting) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.by
	c.by = map[string]int{}
	return out
}

// BenchmarkEnrollAfterLoad measures the requests of `load --then
// add-to-sequence` per 1,000 loaded prospects: the enrolment of 1,000 new
// prospects by a bulk action (what Auto picks) and one by one, and the
// rerun that finds them all in the sequence. It reports requests per
// 1,000 rows for the enrolment alone (the load's own are in
// docs/benchmarks.md, "Load").
func BenchmarkEnrollAfterLoad(b *testing.B) {
	for _, mode := range []struct {
		name string
		m    actions.Mode
	}{{"bulk", actions.Auto}, {"one-by-one", actions.Single}} {
		b.Run(mode.name, func(b *testing.B) {
			var first, rerun, writes int
			for b.Loop() {
				first, rerun, writes = enrolOnce(b, mode.m)
			}
			b.ReportMetric(float64(first), "enrol-req/1000rows")
			b.ReportMetric(float64(writes), "enrol-writes/1000rows")
			b.ReportMetric(float64(rerun), "rerun-enrol-req/1000rows")
		})
	}
}

func enrolOnce(b *testing.B, mode actions.Mode) (first, rerun, writes int) {
	b.StopTimer()
	ctx := context.Background()
	sb, err := sandbox.New(sandbox.Options{Prospects: 10, RateLimit: 1000000, BatchItemsPerSecond: 1000000, MintInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	tr := &counting{h: sb, by: map[string]int{}}
	access, _, err := sb.IssueToken(1)
	if err != nil {
		b.Fatal(err)
	}
	client, err := outreach.NewClient(outreach.WithBaseURL("http://sandbox.test/api/v2"), outreach.WithTokenSource(outreach.StaticToken(access)),
		outreach.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "app.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var csv strings.Builder
	csv.WriteString("emails\n")
	for i := range 1000 {
		fmt.Fprintf(&csv, "bench%04d@enrol.example\n", i)
	}
	path := filepath.Join(dir, "rows.csv")
	if err := os.WriteFile(path, []byte(csv.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	run := func() *load.Summary {
		src, err := load.OpenSource(ctx, "csv:"+path)
		if err != nil {
			b.Fatal(err)
		}
		defer src.Close()
		sum, err := load.Run(ctx, src, client, db.Loads(), load.Options{Type: "prospect", Mode: load.Upsert, Match: []string{"emails"},
			Then: []load.Then{{Kind: load.ThenAddToSequence, Sequence: "1", Mailbox: "1"}}, ActionOptions: &actions.Options{Mode: mode},
			Requests: func() int64 {
				n := 0
				tr.mu.Lock()
				for _, v := range tr.by {
					n += v
				}
				tr.mu.Unlock()
				return int64(n)
			}})
		if err != nil {
			b.Fatal(err)
		}
		return sum
	}
	b.StartTimer()
	sum := run()
	b.StopTimer()
	a := sum.Actions[0]
	if a.Done != 1000 {
		b.Fatalf("enrolled %d of 1,000", a.Done)
	}
	counts := tr.take()
	writes = counts["POST sequenceStates"] + counts["POST batches"]
	first = a.Requests
	sum = run()
	if a := sum.Actions[0]; a.Already != 1000 {
		b.Fatalf("rerun: %d of 1,000 already enrolled", a.Already)
	}
	rerun = sum.Actions[0].Requests
	if got := tr.take(); got["POST sequenceStates"]+got["POST batches"] != 0 {
		b.Fatalf("the rerun wrote: %v", got)
	}
	b.StartTimer()
	return first, rerun, writes
}
