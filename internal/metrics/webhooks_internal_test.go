package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestWebhookMetrics lints the webhook metrics and checks what each call
// counts.
func TestWebhookMetrics(t *testing.T) {
	m := New()
	w := NewWebhooks(m)
	w.Received("acme")
	w.Received("acme")
	w.Applied("acme", "prospects", "written", 30*time.Millisecond, true)
	w.Applied("acme", "prospects", "stale", 0, false)
	w.Rejected(RejectBadSignature)
	problems, err := testutil.GatherAndLint(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	want := `
# HELP outreach_connector_webhook_deliveries_received_total Webhook deliveries received for a known connection, signed or not, by connection.
# TYPE outreach_connector_webhook_deliveries_received_total counter
outreach_connector_webhook_deliveries_received_total{connection="acme"} 2
# HELP outreach_connector_webhook_deliveries_rejected_total Webhook deliveries refused, by reason: bad_signature, unknown_connection, malformed, too_large.
# TYPE outreach_connector_webhook_deliveries_rejected_total counter
outreach_connector_webhook_deliveries_rejected_total{reason="bad_signature"} 1
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "outreach_connector_webhook_deliveries_received_total",
		"outreach_connector_webhook_deliveries_rejected_total"); err != nil {
		t.Error(err)
	}
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "outreach_connector_webhook_apply_lag_seconds" {
			if h := f.GetMetric()[0].GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() != 0.03 {
				t.Errorf("lag: %d samples, sum %v; want the one known lag, 0.03", h.GetSampleCount(), h.GetSampleSum())
			}
		}
	}
	if got := testutil.ToFloat64(w.applied.WithLabelValues("acme", "prospects", "stale")); got != 1 {
		t.Errorf("stale applied: %v", got)
	}
}
