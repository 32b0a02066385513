package syncer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
)

func streamOf(t *testing.T, name string) *connection.Stream {
	t.Helper()
	for _, s := range syncer.Streams(catalog.Default()) {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no stream %s", name)
	return nil
}

// A webhook's secret and cleanup token are never synced: neither as a
// column nor in the extras of a record (pushed or listed).
func TestWebhookSecretsAreNotSynced(t *testing.T) {
	s := streamOf(t, "webhooks")
	for _, name := range []string{"secret", "cleanupToken"} {
		if _, ok := s.Column(name); ok {
			t.Errorf("the webhooks stream has a column %s", name)
		}
	}
	d, err := syncer.ParseDelivery([]byte(`{"data":{"type":"webhook","id":3,"attributes":{"url":"https://x","secret":"hush","cleanupToken":"tok"}},
		"meta":{"eventName":"webhook.created","deliveredAt":"2026-03-01T10:00:00.000+00:00"}}`))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := d.Event(s, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range ev.Record.Values {
		if str, ok := v.(string); ok && (strings.Contains(str, "hush") || strings.Contains(str, "tok")) {
			t.Errorf("a secret in the record: %v", ev.Record.Values)
		}
	}
}

// Deliveries as Outreach sends them: flattened relationships, changed
// attributes only on updates, member actions as updates, destroyed with
// its time; and what is not a delivery.
func TestDeliveryEvents(t *testing.T) {
	s := streamOf(t, "prospects")
	col := func(name string) int {
		for i, c := range s.Columns {
			if c.Name == name {
				return i
			}
		}
		t.Fatalf("no column %s", name)
		return -1
	}
	d, err := syncer.ParseDelivery([]byte(`{"data":{"type":"prospect","id":42,"attributes":{"title":"CEO","updatedAt":"2026-03-01T10:00:00.000Z"},
		"relationships":{"owner":{"type":"owner","id":23},"account":{"data":{"type":"account","id":7}},"stage":null}},
		"meta":{"deliveredAt":"2026-03-01T10:00:00.900-08:00","eventName":"prospect.updated","jobId":"x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := d.Event(s, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if ev.Kind != connection.Updated || ev.Record.ID != 42 || ev.At != "2026-03-01T18:00:00.900Z" {
		t.Errorf("event: %s %d at %s", ev.Kind, ev.Record.ID, ev.At)
	}
	want := map[string]any{"title": "CEO", "updatedAt": "2026-03-01T10:00:00.000Z", "ownerId": int64(23), "accountId": int64(7), "stageId": nil}
	for name, v := range want {
		i := col(name)
		if !ev.Set[i] || ev.Record.Values[i] != v {
			t.Errorf("%s: set %v, value %v; want %v", name, ev.Set[i], ev.Record.Values[i], v)
		}
	}
	if ev.Set[col("firstName")] || ev.Set[col(connection.ExtrasColumn)] {
		t.Error("an update sets columns it did not carry")
	}
	for body, kind := range map[string]connection.EventKind{
		`{"data":{"type":"task","id":1,"attributes":{}},"meta":{"eventName":"task.completed"}}`: connection.Updated,
		`{"data":{"type":"task","id":1,"attributes":{}},"meta":{"eventName":"task.destroyed"}}`: connection.Destroyed,
		`{"data":{"type":"task","id":1.0,"attributes":{}},"meta":{"eventName":"task.created"}}`: connection.Created,
	} {
		d, err := syncer.ParseDelivery([]byte(body))
		if err != nil || d.Kind() != kind {
			t.Errorf("%s: %v, %v", body, d, err)
		}
	}
	for _, bad := range []string{`nope`, `{"meta":{"eventName":"task.created"}}`, `{"data":{"type":"task","id":0},"meta":{"eventName":"task.created"}}`,
		`{"data":{"type":"task","id":1},"meta":{"eventName":"prospect.created"}}`, `{"data":{"type":"task","id":1},"meta":{}}`} {
		if _, err := syncer.ParseDelivery([]byte(bad)); err == nil {
			t.Errorf("%s: parsed", bad)
		}
	}
}
