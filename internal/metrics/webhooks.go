package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Webhooks are the metrics of webhook deliveries into live connections.
// Its methods are safe for concurrent use.
type Webhooks struct {
	received *prometheus.CounterVec
	applied  *prometheus.CounterVec
	rejected *prometheus.CounterVec
	lag      prometheus.Histogram
}

// The reasons a delivery is rejected.
const (
	RejectBadSignature      = "bad_signature"
	RejectUnknownConnection = "unknown_connection"
	RejectMalformed         = "malformed"
	RejectTooLarge          = "too_large"
)

// NewWebhooks registers the webhook metrics on m; call it once per
// Metrics.
func NewWebhooks(m *Metrics) *Webhooks {
	w := &Webhooks{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "webhook", Name: "deliveries_received_total",
			Help: "Webhook deliveries received for a known connection, signed or not, by connection.",
		}, []string{"connection"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "webhook", Name: "deliveries_applied_total",
			Help: "Signed webhook deliveries committed to the connection's destination, by connection, stream and outcome (written, or stale: the row was newer).",
		}, []string{"connection", "stream", "outcome"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "webhook", Name: "deliveries_rejected_total",
			Help: "Webhook deliveries refused, by reason: bad_signature, unknown_connection, malformed, too_large.",
		}, []string{"reason"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "webhook", Name: "apply_lag_seconds",
			Help:    "Time from Outreach sending a delivery (meta.deliveredAt) to its change committed in the destination.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}),
	}
	m.reg.MustRegister(w.received, w.applied, w.rejected, w.lag)
	return w
}

// Received counts a delivery for a known connection.
func (w *Webhooks) Received(connection string) { w.received.WithLabelValues(label(connection)).Inc() }

// Applied counts a committed delivery and, when known, observes its lag.
func (w *Webhooks) Applied(connection, stream, outcome string, lag time.Duration, known bool) {
	w.applied.WithLabelValues(label(connection), label(stream), label(outcome)).Inc()
	if known {
		w.lag.Observe(max(lag, 0).Seconds())
	}
}

// Rejected counts a refused delivery.
func (w *Webhooks) Rejected(reason string) { w.rejected.WithLabelValues(label(reason)).Inc() }
