package sandbox_test

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"testing"

	"github.com/outreach-connector/outreach-connector/sandbox"
)

// BenchmarkServeProspectPages measures the sandbox serving 1000-record
// prospect pages over loopback HTTP, following links.next like a sync
// does. Run with -cpu=1 to get records per second on one core (the client
// shares that core, so the figure is conservative).
func BenchmarkServeProspectPages(b *testing.B) {
	for _, tc := range []struct {
		name, query string
	}{
		{"by id", "/api/v2/prospects?page[size]=1000"},
		{"incremental by updatedAt", "/api/v2/prospects?page[size]=1000&sort=updatedAt&newFilterSyntax=true&filter[updatedAt][gte]=2019-01-01T00:00:00Z"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv := start(b, sandbox.Options{Prospects: 100_000, RateLimit: 1 << 30})
			tok := token(b, srv)
			client := &http.Client{}
			next := srv.URL + tc.query
			var bytes, records int64
			b.ResetTimer()
			for b.Loop() {
				req, _ := http.NewRequest("GET", next, nil)
				req.Header.Set("Content-Type", "application/vnd.api+json")
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("status %d: %v", resp.StatusCode, err)
				}
				bytes += int64(len(body))
				records += 1000
				next = nextLink(body)
				if next == "" {
					next = srv.URL + tc.query
				}
			}
			b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(bytes)/b.Elapsed().Seconds()/1e6, "MB/s")
			b.ReportMetric(float64(bytes)/float64(records), "bytes/record")
		})
	}
}

// nextLink finds links.next at the end of a collection document without
// decoding the whole page.
func nextLink(body []byte) string {
	const key = `"next":"`
	for i := len(body) - len(key); i >= 0 && i > len(body)-4096; i-- {
		if string(body[i:i+len(key)]) == key {
			rest := body[i+len(key):]
			for j, c := range rest {
				if c == '"' {
					return string(rest[:j])
				}
			}
		}
	}
	return ""
}

// BenchmarkLargeOrgMemory reports the heap a sandbox holds for orgs of
// growing size after a sync-like workload: a page by id, a page by
// updatedAt (which builds the updatedAt index), a relationship filter that
// scans, and 1,000 mutations. Seeded records are generated on read, so
// the heap grows with the index (16 bytes a record), not the records.
func BenchmarkLargeOrgMemory(b *testing.B) {
	for _, n := range []int64{10_000, 1_000_000, 10_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				srv := start(b, sandbox.Options{Prospects: n, RateLimit: 1 << 30})
				tok := token(b, srv)
				for _, path := range []string{
					"/api/v2/prospects?page[size]=1000",
					"/api/v2/prospects?page[size]=1000&sort=updatedAt",
					"/api/v2/mailings?page[size]=100&filter[prospect][id]=7",
				} {
					if r := call(b, srv, tok, "GET", path, ""); r.status != 200 {
						b.Fatalf("%s: %d", path, r.status)
					}
				}
				srv.Mutate(1000)
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
				srv.Close()
			}
		})
	}
}
