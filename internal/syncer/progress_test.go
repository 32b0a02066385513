package syncer_test

import (
	"context"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// TestProgressCountsFirstPageOnly checks that with Total each stream's
// first page asks for meta.count, the pages after it do not, and Progress
// carries the total; without Total nothing is counted (a connection's run
// reports progress without one).
func TestProgressCountsFirstPageOnly(t *testing.T) {
	srv, err := sandbox.Start("", sandbox.Options{Prospects: 250, MintInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	access, _, err := srv.IssueToken(1)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var counted, uncounted int
	client, err := outreach.NewClient(outreach.WithBaseURL(srv.URL+"/api/v2"), outreach.WithTokenSource(outreach.StaticToken(access)),
		outreach.WithObserver(func(e outreach.RequestEvent) {
			u, err := url.Parse(e.URL)
			if err != nil {
				t.Errorf("observed URL %q: %v", e.URL, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if u.Query().Get("count") == "true" {
				counted++
			} else {
				uncounted++
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sync.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cat, err := syncer.Discover(context.Background(), client)
	if err != nil {
		t.Fatal(err)
	}
	var prospects *connection.Stream
	for _, s := range syncer.Streams(cat) {
		if s.Name == "prospects" {
			prospects = s
		}
	}
	mu.Lock()
	counted, uncounted = 0, 0
	mu.Unlock()
	var seen []syncer.Progress
	start := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)
	res := syncer.NewEngine(client, db, nil, nil).Run(context.Background(), []*connection.Stream{prospects}, syncer.Options{
		StartDate: start, PageSize: 100, Total: true, Progress: func(p syncer.Progress) { seen = append(seen, p) }})
	if err := syncer.Failed(res); err != nil {
		t.Fatal(err)
	}
	if counted != 1 || uncounted != 2 {
		t.Errorf("requests with count=true: %d, without: %d; want 1 and 2 (3 pages of 100)", counted, uncounted)
	}
	if len(seen) != 4 {
		t.Fatalf("progress calls = %+v, want 3 pages and done", seen)
	}
	for i, p := range seen[:3] {
		if p.Total != 250 || p.Pages != i+1 || p.Done {
			t.Errorf("progress %d = %+v, want total 250 after page %d", i, p, i+1)
		}
	}
	if last := seen[3]; !last.Done || last.Records != 250 || last.Err != nil {
		t.Errorf("last progress = %+v, want done with 250 records", last)
	}

	counted, uncounted = 0, 0
	seen = nil
	res = syncer.NewEngine(client, db, nil, nil).Run(context.Background(), []*connection.Stream{prospects}, syncer.Options{
		StartDate: start, PageSize: 100, FullRefresh: true, Progress: func(p syncer.Progress) { seen = append(seen, p) }})
	if err := syncer.Failed(res); err != nil {
		t.Fatal(err)
	}
	if counted != 0 {
		t.Errorf("%d requests asked for a count without Total", counted)
	}
	if len(seen) != 4 || seen[0].Total != -1 || seen[0].Records != 100 {
		t.Errorf("progress without Total = %+v, want 3 pages and done, total -1", seen)
	}
}

// TestProgressReportsCancel checks that a cancelled run ends each started
// stream with a Done progress carrying the context's error.
func TestProgressReportsCancel(t *testing.T) {
	e := newEnv(t, sandbox.Options{Prospects: 300})
	var prospects *connection.Stream
	for _, s := range e.streams(t) {
		if s.Name == "prospects" {
			prospects = s
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var last syncer.Progress
	res := syncer.NewEngine(e.client, e.db, nil, nil).Run(ctx, []*connection.Stream{prospects}, syncer.Options{
		StartDate: time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC), PageSize: 100,
		Progress: func(p syncer.Progress) {
			if p.Pages == 1 {
				cancel() // after the first committed page
			}
			last = p
		}})
	if res[0].Err == nil || res[0].Pages != 1 {
		t.Fatalf("result = %+v, want a cancelled stream after one page", res[0])
	}
	if !last.Done || last.Err == nil || last.Records != 100 {
		t.Errorf("last progress = %+v, want done with the error and 100 records", last)
	}
}
