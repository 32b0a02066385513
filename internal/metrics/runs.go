package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RunFinished counts one ended run of the connection, by outcome (such as
// "succeeded", "failed", "interrupted", "cancelled").
func (m *Metrics) RunFinished(connection, outcome string) {
	m.runs.WithLabelValues(label(connection), label(outcome)).Inc()
}

// RecordsSynced adds n records written for the connection's stream. A
// non-positive n changes nothing.
func (m *Metrics) RecordsSynced(connection, stream string, n int64) {
	if n > 0 {
		m.records.WithLabelValues(label(connection), label(stream)).Add(float64(n))
	}
}

// ForgetConnection drops the run and record series of a deleted
// connection.
func (m *Metrics) ForgetConnection(connection string) {
	l := prometheus.Labels{"connection": label(connection)}
	m.runs.DeletePartialMatch(l)
	m.records.DeletePartialMatch(l)
}

// CursorState is how far one stream of one connection has synced.
type CursorState struct {
	Connection, Stream string
	// Cursor is the updatedAt the stream has synced up to; zero when it has
	// not synced yet.
	Cursor time.Time
}

// CursorReader lists the connections' stream cursors; it is called at
// every scrape.
type CursorReader func(context.Context) ([]CursorState, error)

// SetCursorReader installs the reader behind the cursor-lag metric; until
// one is installed it is absent.
func (m *Metrics) SetCursorReader(f CursorReader) { m.cursors.read.set(f) }

// QueueReader counts the job queue's jobs by state (such as "available",
// "running", "retryable", "scheduled"); it is called at every scrape.
type QueueReader func(context.Context) (map[string]int64, error)

// SetQueueReader installs the reader behind the queue-depth metric; until
// one is installed it is absent.
func (m *Metrics) SetQueueReader(f QueueReader) { m.queue.read.set(f) }

type cursorCollector struct {
	m    *Metrics
	read readerSlot[CursorReader]
	lag  *prometheus.Desc
}

func newCursorCollector(m *Metrics) *cursorCollector {
	return &cursorCollector{m: m, lag: prometheus.NewDesc(namespace+"_cursor_lag_seconds",
		"Seconds between now and the updatedAt a connection's stream has synced up to.", []string{"connection", "stream"}, nil)}
}

func (c *cursorCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.lag }

func (c *cursorCollector) Collect(ch chan<- prometheus.Metric) {
	read := c.read.get()
	if read == nil {
		return
	}
	ctx, cancel := c.m.readContext()
	defer cancel()
	states, err := read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.lag, err)
		return
	}
	now := c.m.now()
	for _, s := range states {
		if s.Cursor.IsZero() {
			continue
		}
		// A cursor ahead of our clock (Outreach's clock runs ahead) is no lag.
		send(ch, c.lag, prometheus.GaugeValue, max(now.Sub(s.Cursor).Seconds(), 0), s.Connection, s.Stream)
	}
}

type queueCollector struct {
	m     *Metrics
	read  readerSlot[QueueReader]
	depth *prometheus.Desc
}

func newQueueCollector(m *Metrics) *queueCollector {
	return &queueCollector{m: m, depth: prometheus.NewDesc(namespace+"_job_queue_depth",
		"Jobs in the job queue, by state.", []string{"state"}, nil)}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.depth }

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	read := c.read.get()
	if read == nil {
		return
	}
	ctx, cancel := c.m.readContext()
	defer cancel()
	counts, err := read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.depth, err)
		return
	}
	for state, n := range counts {
		send(ch, c.depth, prometheus.GaugeValue, float64(n), state)
	}
}
