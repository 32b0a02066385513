package outreach_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// scriptedServer serves a collection of n records by offset cursors and
// answers request number i (from 0) with status[i] when the script has one
// (200 otherwise). It records the page[size] of every request.
type scriptedServer struct {
	n      int
	status map[int]int
	// failAbove, when set, answers 502 to every page larger than it.
	failAbove int
	// next, when set, replaces the links.next of the page at offset.
	next func(base string, offset, size int) string

	mu    sync.Mutex
	sizes []int
	urls  []string
}

func (s *scriptedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	i := len(s.sizes)
	q := r.URL.Query()
	size, _ := strconv.Atoi(q.Get("page[size]"))
	s.sizes = append(s.sizes, size)
	s.urls = append(s.urls, r.URL.String())
	status := s.status[i]
	if s.failAbove > 0 && size > s.failAbove {
		status = 502
	}
	s.mu.Unlock()
	if status != 0 && status != 200 {
		w.Header().Set("Content-Type", "application/vnd.api+json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"errors":[{"id":"internalServerError","title":"Internal Server Error","detail":"scripted %d"}]}`, status)
		return
	}
	offset, _ := strconv.Atoi(q.Get("page[after]"))
	var b strings.Builder
	b.WriteString(`{"data":[`)
	end := min(offset+size, s.n)
	for id := offset + 1; id <= end; id++ {
		if id > offset+1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"prospect","id":%d,"attributes":{"firstName":"P%d"}}`, id, id)
	}
	b.WriteString(`]`)
	if q.Get("count") == "true" {
		fmt.Fprintf(&b, `,"meta":{"count":%d}`, s.n)
	}
	base := "http://" + r.Host + r.URL.Path
	next := ""
	if end < s.n {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("page[after]", strconv.Itoa(end))
		next = base + "?" + nq.Encode()
	}
	if s.next != nil {
		next = s.next(base, offset, size)
	}
	if next != "" {
		fmt.Fprintf(&b, `,"links":{"next":%q}`, next)
	}
	b.WriteString(`}`)
	w.Header().Set("Content-Type", "application/vnd.api+json")
	w.Write([]byte(b.String()))
}

func (s *scriptedServer) requests() (sizes []int, urls []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.sizes...), append([]string(nil), s.urls...)
}

func scriptedClient(t *testing.T, s *scriptedServer) *outreach.Client {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := outreach.NewClient(outreach.WithBaseURL(srv.URL+"/api/v2"), outreach.WithTokenSource(outreach.StaticToken("t")),
		outreach.WithRetryPolicy(outreach.RetryPolicy{BaseDelay: time.Microsecond, MaxDelay: time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRepeatedNextLinkStops(t *testing.T) {
	tests := []struct {
		name string
		next func(base string, offset, size int) string
	}{
		{"next is the page itself", func(base string, offset, size int) string {
			if offset == 0 {
				return base + "?page[size]=" + strconv.Itoa(size) + "&page[after]=" + strconv.Itoa(size)
			}
			return base + "?page[size]=" + strconv.Itoa(size) + "&page[after]=" + strconv.Itoa(offset)
		}},
		{"next goes back two pages", func(base string, offset, size int) string {
			if offset >= 2*size {
				return base + "?page[size]=" + strconv.Itoa(size) + "&page[after]=" + strconv.Itoa(offset-size)
			}
			return base + "?page[size]=" + strconv.Itoa(size) + "&page[after]=" + strconv.Itoa(offset+size)
		}},
		{"next is the first page without a cursor", func(base string, offset, size int) string {
			return base + "?page[size]=" + strconv.Itoa(size) + "&count=false"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scriptedServer{n: 1000, next: tt.next}
			c := scriptedClient(t, s)
			pages := 0
			var err error
			for _, e := range c.Pages(context.Background(), "prospects", &outreach.ListOptions{PageSize: 10}) {
				if e != nil {
					err = e
					break
				}
				pages++
				if pages > 50 {
					t.Fatal("the iterator follows a looping links.next")
				}
			}
			if err == nil || !strings.Contains(err.Error(), "prospects") || !strings.Contains(err.Error(), "already read") || !strings.Contains(err.Error(), "/api/v2/prospects?") {
				t.Errorf("error = %v; want one naming the path and the repeated URL", err)
			}
			if _, urls := s.requests(); len(urls) != pages {
				t.Errorf("%d requests for %d pages; the repeated page must not be fetched", len(urls), pages)
			}
		})
	}
}

func TestPageSizeRetriesThenHalvesThenGrowsBack(t *testing.T) {
	// Request 0 fails once (retried at 200), request 2 and 3 fail (halved
	// to 100), then four pages at 100 succeed and the size grows to 200.
	s := &scriptedServer{n: 2000, status: map[int]int{0: 500, 2: 502, 3: 500}}
	c := scriptedClient(t, s)
	var pageSizes []int
	total := 0
	for page, err := range c.Pages(context.Background(), "prospects", &outreach.ListOptions{PageSize: 200}) {
		if err != nil {
			t.Fatal(err)
		}
		pageSizes = append(pageSizes, page.PageSize)
		total += len(page.Resources)
	}
	sizes, _ := s.requests()
	want := []int{200, 200, 200, 200, 100, 100, 100, 100, 200}
	if total != 2000 || len(sizes) < len(want) || fmt.Sprint(sizes[:len(want)]) != fmt.Sprint(want) {
		t.Errorf("requested sizes %v (%d records), want them to start %v", sizes, total, want)
	}
	for _, sz := range sizes[len(want):] {
		if sz != 200 {
			t.Errorf("requested sizes %v: all after the recovery should be 200", sizes)
			break
		}
	}
	if last := pageSizes[len(pageSizes)-1]; last != 200 {
		t.Errorf("the last page was fetched at %d; the iterator should have settled back at 200", last)
	}
}

// TestAlwaysHeavyPagesCostFewFailures: when pages above a size always
// fail, growing back into that size is tried after ever longer runs of
// good pages, so the failures stay few.
func TestAlwaysHeavyPagesCostFewFailures(t *testing.T) {
	s := &scriptedServer{n: 10000, failAbove: 100}
	c := scriptedClient(t, s)
	pages := 0
	for _, err := range c.Pages(context.Background(), "prospects", &outreach.ListOptions{PageSize: 200}) {
		if err != nil {
			t.Fatal(err)
		}
		pages++
	}
	sizes, _ := s.requests()
	failed := 0
	for _, sz := range sizes {
		if sz > 100 {
			failed++
		}
	}
	// 100 pages of 100; growth is tried after 4, 8, 16, 32 and 64 good
	// pages (two failures each), plus the two at the start.
	if pages != 100 || failed > 12 {
		t.Errorf("%d pages with %d failed requests (sizes %v); want 100 pages and at most 12 failures", pages, failed, sizes)
	}
}

func TestMaxPageSizeLetsAnIterationGrowPastItsStart(t *testing.T) {
	s := &scriptedServer{n: 3000}
	c := scriptedClient(t, s)
	for _, err := range c.Pages(context.Background(), "prospects", &outreach.ListOptions{PageSize: 100, MaxPageSize: 400}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	sizes, _ := s.requests()
	want := []int{100, 100, 100, 100, 200, 200, 200, 200, 400}
	if len(sizes) < len(want) || fmt.Sprint(sizes[:len(want)]) != fmt.Sprint(want) {
		t.Errorf("requested sizes %v, want them to start %v", sizes, want)
	}
	for _, bad := range []outreach.ListOptions{{PageSize: 100, MaxPageSize: 50}, {PageSize: 100, MaxPageSize: 5000}} {
		for _, err := range c.Pages(context.Background(), "prospects", &bad) {
			if err == nil || !strings.Contains(err.Error(), "max page size") {
				t.Errorf("%+v: error %v, want one about the max page size", bad, err)
			}
			break
		}
	}
}

// TestPageSizeRecoversUnderServerErrors is the measurement: with
// 15 % of requests answered 500, 5,000 prospects at 200 a page take about
// 25 pages, not thousands. Three fixed seeds (each injecting 5 to 7 faults) place the faults differently.
func TestPageSizeRecoversUnderServerErrors(t *testing.T) {
	for _, seed := range []int64{1, 4, 6} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			t.Parallel()
			srv := startSandbox(t, sandbox.Options{Prospects: 5000, Seed: seed, MintInterval: -1, Faults: sandbox.Faults{ServerErrors: 0.15}})
			var mu sync.Mutex
			requests := 0
			c := newClient(t, srv, nil, outreach.WithObserver(func(outreach.RequestEvent) { mu.Lock(); requests++; mu.Unlock() }))
			pages, total := 0, 0
			opts := &outreach.ListOptions{PageSize: 200, Fields: map[string][]string{"prospect": {"firstName"}}}
			for page, err := range c.Pages(context.Background(), "prospects", opts) {
				if err != nil {
					t.Fatal(err)
				}
				pages++
				total += len(page.Resources)
			}
			mu.Lock()
			defer mu.Unlock()
			faults := srv.Counters().FaultsInjected
			t.Logf("%d pages, %d requests, %d faults", pages, requests, faults)
			if total != 5000 || pages > 40 || requests > 60 {
				t.Errorf("%d prospects in %d pages and %d requests; want 5000 in at most 40 pages and 60 requests", total, pages, requests)
			}
			if faults < 3 {
				t.Errorf("%d faults injected; the test proves little", faults)
			}
		})
	}
}

func TestCountOnTheFirstPageOnly(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Prospects: 100, MintInterval: -1})
	var mu sync.Mutex
	var urls []string
	c := newClient(t, srv, nil, outreach.WithObserver(func(ev outreach.RequestEvent) { mu.Lock(); urls = append(urls, ev.URL); mu.Unlock() }))
	var counts []string
	for page, err := range c.Pages(context.Background(), "prospects", &outreach.ListOptions{PageSize: 30, Count: true}) {
		if err != nil {
			t.Fatal(err)
		}
		if page.Count == nil {
			counts = append(counts, "nil")
		} else {
			counts = append(counts, strconv.Itoa(*page.Count))
		}
	}
	if fmt.Sprint(counts) != "[100 nil nil nil]" {
		t.Errorf("Page.Count per page = %v, want [100 nil nil nil]", counts)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, u := range urls {
		if strings.Contains(u, "count=true") != (i == 0) {
			t.Errorf("request %d asked %s; only the first should ask for a count", i, u)
		}
	}
}
