package sandbox

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// DefaultWebhookDisableAfter is how many failed deliveries in a row
// disable a webhook when Options.WebhookDisableAfter is 0.
const DefaultWebhookDisableAfter = 50

// The reason a webhook disabled for failures gets.
const failingReason = "The webhook endpoint failed repeatedly and was disabled"

// webhookFailed records the outcome of one delivery of a webhook: a
// delivery that got no answer after its attempts, or a non-2xx answer,
// is a failure; a 2xx answer resets the count. After the configured
// number of failures in a row the webhook is disabled the way Outreach
// does it: active false, disabledReason and disabledSince set, and no
// further deliveries until an update (which clears them) turns it on.
func (d *webhookDispatcher) webhookFailed(hookID int64, failed bool) {
	limit := d.sb.opts.WebhookDisableAfter
	if limit == 0 {
		limit = DefaultWebhookDisableAfter
	}
	d.mu.Lock()
	if d.failures == nil {
		d.failures = map[int64]int{}
	}
	if !failed {
		delete(d.failures, hookID)
		d.mu.Unlock()
		return
	}
	d.failures[hookID]++
	n := d.failures[hookID]
	d.mu.Unlock()
	if limit > 0 && n >= limit {
		if err := d.sb.DisableWebhook(hookID, failingReason); err == nil {
			d.sb.log.Info("webhook disabled after failed deliveries", "webhook", hookID, "failures", n)
		}
		d.mu.Lock()
		delete(d.failures, hookID)
		d.mu.Unlock()
	}
}

// ErrNoWebhook is the error of DisableWebhook for an id that is no webhook.
var ErrNoWebhook = errors.New("sandbox: no such webhook")

// DisableWebhook disables webhook id as Outreach does after failing
// deliveries: active false, disabledReason reason, disabledSince now. It
// delivers nothing until updated (PATCH active true), which clears both.
func (s *Sandbox) DisableWebhook(id int64, reason string) error {
	res, ok := s.cat.ByType("webhook")
	if !ok {
		return ErrNoWebhook
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	old, ok := s.store.get("webhook", id)
	if !ok {
		return ErrNoWebhook
	}
	rec := old.clone()
	setAttr(res, rec, "active", false)
	setAttr(res, rec, "disabledReason", reason)
	setAttr(res, rec, "disabledSince", ts(s.clock.Now().Truncate(time.Second)))
	s.store.put("webhook", rec)
	return nil
}

// clearDisabled resets what a disable set, as any update of a webhook
// does at Outreach. The caller holds the write lock.
func (s *Sandbox) clearDisabled(res resourceAttrs, rec *record) {
	for _, name := range []string{"disabledReason", "disabledSince", "disabledUntil"} {
		if i := res.AttributeIndex(name); i >= 0 {
			rec.attrs[i] = nil
		}
	}
}

// resourceAttrs is the part of a catalog resource clearDisabled needs.
type resourceAttrs interface{ AttributeIndex(string) int }

// handleDisableWebhook serves POST /_sandbox/webhooks/{id}/disable.
func (s *Sandbox) handleDisableWebhook(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		controlError(w, http.StatusBadRequest, "the webhook id must be an integer")
		return
	}
	reason := r.URL.Query().Get("reason")
	if reason == "" {
		reason = failingReason
	}
	if err := s.DisableWebhook(id, reason); err != nil {
		controlError(w, http.StatusNotFound, fmt.Sprintf("no webhook %d", id))
		return
	}
	writeJSONType(w, http.StatusOK, "application/json", map[string]any{"id": id, "active": false, "disabledReason": reason})
}
