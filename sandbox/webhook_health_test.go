package sandbox_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/sandbox"
)

// A webhook whose endpoint keeps failing is disabled as Outreach does it;
// an update turns it on again and clears the reason; the control endpoint
// disables one on demand.
func TestWebhookDisabledAfterFailures(t *testing.T) {
	srv := start(t, sandbox.Options{Prospects: 5, WebhookDisableAfter: 3, Clock: sandbox.NewClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))})
	tok := token(t, srv)
	recv, deliveries := receiver(t, 500)
	r := call(t, srv, tok, "POST", "/api/v2/webhooks", `{"data":{"type":"webhook","attributes":{"url":"`+recv.URL+`","secret":"s","resource":"prospect","action":"*"}}}`)
	if r.status != 201 {
		t.Fatalf("create webhook: %d %s", r.status, r.body)
	}
	hook := "/api/v2/webhooks/" + strconv.FormatInt(r.doc(t).one(t).ID, 10)
	webhook := func() (active bool, reason, since string) {
		h := call(t, srv, tok, "GET", hook, "").doc(t).one(t)
		json.Unmarshal(h.Attributes["active"], &active)
		return active, h.str("disabledReason"), h.str("disabledSince")
	}
	update := func(title string) {
		if r := call(t, srv, tok, "PATCH", "/api/v2/prospects/1", `{"data":{"type":"prospect","id":1,"attributes":{"title":"`+title+`"}}}`); r.status != 200 {
			t.Fatalf("update: %d %s", r.status, r.body)
		}
	}
	for i := range 3 {
		update("t" + strconv.Itoa(i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		active, reason, since := webhook()
		if !active {
			if reason == "" || since != "2026-03-01T00:00:00.000Z" {
				t.Errorf("disabled webhook: reason %q, since %q", reason, since)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook still active after 3 failed deliveries (%d delivered)", len(deliveries()))
		}
		time.Sleep(10 * time.Millisecond) // polling the observed state, with a deadline
	}
	n := len(deliveries())
	update("while disabled")
	r = call(t, srv, tok, "PATCH", hook, `{"data":{"type":"webhook","id":`+hook[len("/api/v2/webhooks/"):]+`,"attributes":{"active":true}}}`)
	if r.status != 200 {
		t.Fatalf("re-enable: %d %s", r.status, r.body)
	}
	if active, reason, since := webhook(); !active || reason != "" || since != "" {
		t.Errorf("after the update: active %v, reason %q, since %q; want active and both cleared", active, reason, since)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/_sandbox/webhooks/"+hook[len("/api/v2/webhooks/"):]+"/disable?reason=test", nil)
	if r := send(t, req); r.status != 200 {
		t.Fatalf("control disable: %d %s", r.status, r.body)
	}
	if active, reason, _ := webhook(); active || reason != "test" {
		t.Errorf("after the control endpoint: active %v, reason %q", active, reason)
	}
	update("disabled again")
	req, _ = http.NewRequest("POST", srv.URL+"/_sandbox/webhooks/999/disable", nil)
	if r := send(t, req); r.status != 404 {
		t.Errorf("disable an unknown webhook: %d, want 404", r.status)
	}
	srv.Sandbox.Close() // waits for deliveries in flight
	if got := len(deliveries()); got != n {
		t.Errorf("deliveries while disabled: %d, want none", got-n)
	}
}

// TestMutatorDelivers: the mutator's creates, updates and deletes are
// delivered as API writes are, each event signed.
func TestMutatorDelivers(t *testing.T) {
	srv := start(t, sandbox.Options{Prospects: 50, Seed: 3})
	tok := token(t, srv)
	recv, deliveries := receiver(t, 200)
	if r := call(t, srv, tok, "POST", "/api/v2/webhooks", `{"data":{"type":"webhook","attributes":{"url":"`+recv.URL+`","secret":"k","resource":"*","action":"*"}}}`); r.status != 201 {
		t.Fatalf("create webhook: %d %s", r.status, r.body)
	}
	srv.Mutate(100)
	srv.Sandbox.Close() // waits for deliveries in flight
	events := map[string]int{}
	for _, d := range deliveries() {
		var body struct {
			Meta struct {
				EventName string `json:"eventName"`
			} `json:"meta"`
		}
		if err := json.Unmarshal(d.body, &body); err != nil || d.header.Get("Outreach-Webhook-Signature") != sandbox.Sign("k", d.body) {
			t.Fatalf("delivery %s: %v, signature %q", d.body, err, d.header.Get("Outreach-Webhook-Signature"))
		}
		_, action, _ := strings.Cut(body.Meta.EventName, ".")
		events[action]++
	}
	if events["created"] == 0 || events["updated"] == 0 || events["destroyed"] == 0 || events["created"]+events["updated"]+events["destroyed"] != 100 {
		t.Errorf("deliveries of 100 mutations by action: %v", events)
	}
}
