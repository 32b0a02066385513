package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// proxyMetrics are the authenticating proxy's (internal/proxy): requests
// answered, our own 429s, and how long Outreach took.
type proxyMetrics struct {
	requests *prometheus.CounterVec
	limited  *prometheus.CounterVec
	upstream *prometheus.HistogramVec
}

func newProxyMetrics() *proxyMetrics {
	return &proxyMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "proxy", Name: "requests_total",
			Help: "Requests the proxy answered, by credential (\"unknown\" before one is resolved) and status code.",
		}, []string{"credential", "status"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "proxy", Name: "rate_limited_total",
			Help: "429 answers of the proxy's own: requests held back because the Outreach user's budget was spent, by credential.",
		}, []string{"credential"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "proxy", Name: "upstream_seconds",
			Help:    "Time from sending a proxied request to Outreach to its answer's headers, every attempt, by credential.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"credential"}),
	}
}

func (p *proxyMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{p.requests, p.limited, p.upstream}
}

// ProxyRequest counts a request the proxy answered.
func (m *Metrics) ProxyRequest(credential string, status int) {
	m.proxy.requests.WithLabelValues(label(credential), strconv.Itoa(status)).Inc()
}

// ProxyRateLimited counts a 429 of the proxy's own.
func (m *Metrics) ProxyRateLimited(credential string) {
	m.proxy.limited.WithLabelValues(label(credential)).Inc()
}

// ProxyUpstream records how long Outreach took to answer a proxied request.
func (m *Metrics) ProxyUpstream(credential string, d time.Duration) {
	m.proxy.upstream.WithLabelValues(label(credential)).Observe(d.Seconds())
}
