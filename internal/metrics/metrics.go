// Package metrics exposes the connector's metrics in the Prometheus format.
//
// A Metrics owns its own registry: nothing is registered with the
// client library's default registry, and two Metrics never share a series.
// Counters are fed by the code that does the work (an outreach.Client
// observer, the run that ends); values that are a state of the world
// (token expiry, cursor lag, queue depth) are read at scrape time from
// functions the caller installs, so a scrape shows them as they are.
//
// Wiring, in cmd/:
//
//	m := metrics.New(metrics.WithLogger(logger))
//	client, _ := outreach.NewClient(..., outreach.WithObserver(m.ObserveRequests(cred.Name, cred.OutreachUserID)))
//	m.SetTokenReader(...); m.SetCursorReader(...); m.SetQueueReader(...)
//	mux.Handle("GET /metrics", m.Handler())
//
// docs/metrics.md lists every metric.
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every metric of the connector.
const namespace = "outreach_connector"

// DefaultReadTimeout bounds one call of a reader installed with
// SetTokenReader, SetCursorReader or SetQueueReader during a scrape.
const DefaultReadTimeout = 10 * time.Second

// Metrics holds the connector's metrics and the registry that exposes them.
// Its methods are safe for concurrent use.
type Metrics struct {
	reg         *prometheus.Registry
	handler     http.Handler
	now         func() time.Time
	log         *slog.Logger
	readTimeout time.Duration

	requests *prometheus.CounterVec
	rate     *rateLimits

	runs    *prometheus.CounterVec
	records *prometheus.CounterVec

	tokens  *tokenCollector
	cursors *cursorCollector
	queue   *queueCollector
	// Proxy and webhook metrics will be registered here too, beside these.
	proxy *proxyMetrics
}

// Option configures a Metrics.
type Option func(*Metrics)

// WithClock sets what tells the time for values computed at scrape time
// (token expiry, refresh-token age, cursor lag). Default time.Now.
func WithClock(now func() time.Time) Option {
	return func(m *Metrics) {
		if now != nil {
			m.now = now
		}
	}
}

// WithLogger sets where scrape errors (a reader that failed) are logged.
// Default: discarded.
func WithLogger(l *slog.Logger) Option {
	return func(m *Metrics) {
		if l != nil {
			m.log = l
		}
	}
}

// WithReadTimeout bounds each call of an installed reader during a scrape.
// Default DefaultReadTimeout.
func WithReadTimeout(d time.Duration) Option {
	return func(m *Metrics) {
		if d > 0 {
			m.readTimeout = d
		}
	}
}

// New returns a Metrics with its own registry, holding the connector's
// metrics and the Go runtime and process metrics.
func New(opts ...Option) *Metrics {
	m := &Metrics{
		reg:         prometheus.NewRegistry(),
		now:         time.Now,
		log:         slog.New(slog.DiscardHandler),
		readTimeout: DefaultReadTimeout,
	}
	for _, o := range opts {
		o(m)
	}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "outreach", Name: "requests_total",
		Help: "HTTP exchanges with the Outreach API, every attempt counted, by credential, method and status (the code, or \"error\" when no answer came).",
	}, []string{"credential", "method", "status"})
	m.rate = newRateLimits()
	m.runs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "runs_total",
		Help: "Runs of a connection that ended, by connection and outcome.",
	}, []string{"connection", "outcome"})
	m.records = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "records_synced_total",
		Help: "Records written to a connection's destination, by connection and stream.",
	}, []string{"connection", "stream"})
	m.tokens = newTokenCollector(m)
	m.cursors = newCursorCollector(m)
	m.queue = newQueueCollector(m)

	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.rate, m.runs, m.records, m.tokens, m.cursors, m.queue,
	)
	m.proxy = newProxyMetrics()
	m.reg.MustRegister(m.proxy.collectors()...)
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      printLogger{m.log},
		ErrorHandling: promhttp.ContinueOnError, // a failed reader costs its own metrics, not the scrape
		Registry:      m.reg,                    // counts scrape errors in promhttp_metric_handler_errors_total
	})
	return m
}

// Handler serves the metrics in the Prometheus text (or OpenMetrics)
// format, for GET /metrics.
func (m *Metrics) Handler() http.Handler { return m.handler }

// readContext is the context of one reader call during a scrape.
func (m *Metrics) readContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), m.readTimeout)
}

// label makes s usable as a label value (valid UTF-8), so that an odd name
// can never make recording a metric fail.
func label(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// printLogger adapts slog to promhttp's error log.
type printLogger struct{ log *slog.Logger }

func (p printLogger) Println(v ...any) {
	p.log.Warn("metrics: scrape", "err", strings.TrimSpace(fmt.Sprintln(v...)))
}

// readerSlot holds a reader installed after New; nil until then.
type readerSlot[F any] struct {
	mu sync.Mutex
	f  F
}

func (s *readerSlot[F]) set(f F) {
	s.mu.Lock()
	s.f = f
	s.mu.Unlock()
}

func (s *readerSlot[F]) get() F {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f
}

// send sends a constant metric, or the error that prevented it.
func send(ch chan<- prometheus.Metric, desc *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	for i := range labels {
		labels[i] = label(labels[i])
	}
	mt, err := prometheus.NewConstMetric(desc, t, v, labels...)
	if err != nil {
		mt = prometheus.NewInvalidMetric(desc, err)
	}
	ch <- mt
}
