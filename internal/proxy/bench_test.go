//go:build unix

package proxy_test

import (
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// benchClient is one HTTP client for both paths, so that both pool their
// connections alike.
func benchClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	return &http.Client{Transport: t}
}

// get sends GET url with the header and reads the answer whole.
func get(b *testing.B, c *http.Client, url, header, value string) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set(header, value)
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
}

// paths returns the direct URL (the sandbox, with the access token) and the
// proxied one (with an API key) of the same record.
func benchPaths(b *testing.B, e *env) (direct, proxied, token, key string) {
	tok, err := e.m.Token(b.Context(), e.sales.ID)
	if err != nil {
		b.Fatal(err)
	}
	return e.upstream.URL + "/api/v2/prospects/1", e.srv.URL + "/proxy/sales/prospects/1", "Bearer " + tok, "Bearer " + e.key("bench", e.sales.ID)
}

func percentile(d []time.Duration, p float64) time.Duration {
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// BenchmarkProxyLatency measures, side by side in one run, one GET of a
// prospect straight from the sandbox and the same GET through the proxy,
// alternating, one at a time: the proxy's added latency is the difference
// of the percentiles. The sandbox answers without added latency, so the
// difference is the proxy's own work (authentication, the credential's
// token, the rate limiter, a second HTTP hop on loopback, the access log).
func BenchmarkProxyLatency(b *testing.B) {
	e := newEnv(b, envOptions{rateLimit: 1 << 30, quiet: true})
	direct, proxied, tok, key := benchPaths(b, e)
	c := benchClient()
	for range 200 { // warm the connections, the limiter and SQLite's cache
		get(b, c, direct, "Authorization", tok)
		get(b, c, proxied, "Authorization", key)
	}
	dd := make([]time.Duration, 0, b.N)
	pd := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		get(b, c, direct, "Authorization", tok)
		mid := time.Now()
		get(b, c, proxied, "Authorization", key)
		pd = append(pd, time.Since(mid))
		dd = append(dd, mid.Sub(start))
	}
	b.StopTimer()
	d50, d99 := percentile(dd, .50), percentile(dd, .99)
	p50, p99 := percentile(pd, .50), percentile(pd, .99)
	b.ReportMetric(float64(d50.Microseconds()), "direct-p50-µs")
	b.ReportMetric(float64(d99.Microseconds()), "direct-p99-µs")
	b.ReportMetric(float64(p50.Microseconds()), "proxy-p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "proxy-p99-µs")
	b.ReportMetric(float64((p50 - d50).Microseconds()), "added-p50-µs")
	b.ReportMetric(float64((p99 - d99).Microseconds()), "added-p99-µs")
}

// BenchmarkProxyThroughput measures requests per second with 32 callers at
// once, straight to the sandbox and through the proxy, in alternating
// rounds of b.N requests each, with the sandbox answering after 100 ms and
// 20 ms (an API's latency: Outreach's is usually 100 ms or more) and without
// delay (then the proxy's CPU competes with the sandbox's and the callers'
// on the same cores, and the extra hop is what is measured).
func BenchmarkProxyThroughput(b *testing.B) {
	for _, lat := range []time.Duration{100 * time.Millisecond, 20 * time.Millisecond, 0} {
		b.Run("upstream="+lat.String(), func(b *testing.B) {
			e := newEnv(b, envOptions{rateLimit: 1 << 30, quiet: true, latency: lat})
			direct, proxied, tok, key := benchPaths(b, e)
			c := benchClient()
			const callers = 32
			var cpu [2]time.Duration // process CPU time: direct, proxied
			round := func(url, value string) time.Duration {
				before := cpuTime()
				defer func() {
					i := 0
					if url == proxied {
						i = 1
					}
					cpu[i] += cpuTime() - before
				}()
				var left atomic.Int64
				left.Store(int64(b.N))
				var wg sync.WaitGroup
				start := time.Now()
				for range callers {
					wg.Go(func() {
						for left.Add(-1) >= 0 {
							get(b, c, url, "Authorization", value)
						}
					})
				}
				wg.Wait()
				return time.Since(start)
			}
			round(direct, tok) // warm up
			round(proxied, key)
			cpu = [2]time.Duration{}
			b.ResetTimer()
			var dt, pt time.Duration
			for range 3 {
				dt += round(direct, tok)
				pt += round(proxied, key)
			}
			b.StopTimer()
			dr := float64(3*b.N) / dt.Seconds()
			pr := float64(3*b.N) / pt.Seconds()
			b.ReportMetric(dr, "direct-req/s")
			b.ReportMetric(pr, "proxy-req/s")
			b.ReportMetric(100*pr/dr, "proxy-%-of-direct")
			// CPU of this process (callers, proxy and sandbox alike) per
			// request: what the extra hop costs when the cores are the limit.
			b.ReportMetric(float64(cpu[0].Microseconds())/float64(3*b.N), "direct-cpu-µs/req")
			b.ReportMetric(float64(cpu[1].Microseconds())/float64(3*b.N), "proxy-cpu-µs/req")
		})
	}
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
