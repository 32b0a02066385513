package sandbox

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
)

// webhookActions are the resource and action pairs Outreach delivers.
var webhookActions = map[string][]string{
	"*":                       {"*", "created", "updated", "destroyed"},
	"account":                 {"*", "created", "updated", "destroyed"},
	"call":                    {"*", "created", "updated", "destroyed"},
	"emailAddress":            {"*", "created", "updated", "destroyed"},
	"import":                  {"*", "created", "finished"},
	"kaiaRecording":           {"*", "created"},
	"mailing":                 {"*", "created", "updated", "destroyed", "bounced", "delivered", "opened", "replied"},
	"opportunity":             {"*", "created", "updated", "destroyed"},
	"opportunityProspectRole": {"*", "created", "updated", "destroyed"},
	"prospect":                {"*", "created", "updated", "destroyed"},
	"sequence":                {"*", "created", "updated", "destroyed"},
	"sequenceState":           {"*", "created", "updated", "destroyed", "advanced", "finished"},
	"task":                    {"*", "created", "updated", "destroyed", "completed"},
	"user":                    {"*", "created", "updated"},
}

// webhookDispatcher delivers events to the org's webhooks the way Outreach
// does: one POST per event, signed with the webhook's secret, with
// relationships flattened to {"type": <relationship name>, "id": N}; a
// non-2xx answer counts as delivered, and only network failures are tried
// again (four attempts, one second apart).
//
// Deliveries of one webhook about one record go out in the order of the
// events, each after the previous one was answered (or given up): a
// record's "updated" never overtakes its "created". Deliveries about
// different records run concurrently.
type webhookDispatcher struct {
	sb     *Sandbox
	client *http.Client
	wg     sync.WaitGroup

	mu sync.Mutex
	// queues holds the deliveries waiting behind the one in flight, per
	// webhook and record; a key is present while its worker runs.
	queues map[deliveryKey][]delivery
	// failures counts each webhook's failed deliveries in a row
	// (webhook_health.go).
	failures map[int64]int
}

type deliveryKey struct {
	hook int64
	typ  string
	id   int64
}

type delivery struct {
	url, secret string
	body        []byte
}

func newWebhookDispatcher(sb *Sandbox, client *http.Client) *webhookDispatcher {
	return &webhookDispatcher{sb: sb, client: client, queues: map[deliveryKey][]delivery{}}
}

// enqueue adds a delivery behind the earlier ones of the same webhook and
// record, starting a worker for them when none runs. The caller holds the
// store's write lock, so events are enqueued in the order they happen.
func (d *webhookDispatcher) enqueue(key deliveryKey, dl delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	q, running := d.queues[key]
	d.queues[key] = append(q, dl)
	if !running {
		d.wg.Add(1)
		go d.drain(key)
	}
}

// drain delivers the queue of key in order and ends when it is empty.
func (d *webhookDispatcher) drain(key deliveryKey) {
	defer d.wg.Done()
	for {
		d.mu.Lock()
		q := d.queues[key]
		if len(q) == 0 {
			delete(d.queues, key)
			d.mu.Unlock()
			return
		}
		next := q[0]
		d.queues[key] = q[1:]
		d.mu.Unlock()
		d.deliver(key.hook, next.url, next.secret, next.body)
	}
}

func (d *webhookDispatcher) wait() { d.wg.Wait() }

// dispatch delivers an event about cur (prev is the version before an
// update or action; for "destroyed" cur is the last known version).
// changed names the attributes and relationships that changed. Webhooks
// with payloadVersion 2 also get the previous values in beforeUpdate. The
// caller holds the store's write lock.
func (d *webhookDispatcher) dispatch(res *catalog.Resource, cur, prev *record, event string, changed map[string]bool) {
	st := d.sb.store
	hooks := st.cols["webhook"]
	if hooks == nil || (len(hooks.overlay) == 0 && hooks.seeded == 0) {
		return
	}
	if !containsAction(webhookActions[res.Type], event) {
		return
	}
	wres := hooks.res
	var targets []*record
	for id := int64(1); id < hooks.nextID; id++ {
		h, ok := st.get("webhook", id)
		if !ok {
			continue
		}
		active, _ := attr(wres, h, "active").(bool)
		resource, _ := attr(wres, h, "resource").(string)
		action, _ := attr(wres, h, "action").(string)
		if active && (resource == "*" || resource == res.Type) && (action == "*" || action == event) {
			targets = append(targets, h)
		}
	}
	if len(targets) == 0 {
		return
	}
	now := d.sb.clock.Now()
	var v1, v2 []byte
	for _, h := range targets {
		u, _ := attr(wres, h, "url").(string)
		secret, _ := attr(wres, h, "secret").(string)
		body := v1
		if version, _ := attr(wres, h, "payloadVersion").(int64); version == 2 && prev != nil {
			if v2 == nil {
				v2 = d.payload(res, cur, prev, event, changed, now)
			}
			body = v2
		} else if v1 == nil {
			v1 = d.payload(res, cur, nil, event, changed, now)
			body = v1
		}
		d.enqueue(deliveryKey{hook: h.id, typ: res.Type, id: cur.id}, delivery{url: u, secret: secret, body: body})
	}
}

func containsAction(actions []string, event string) bool {
	for _, a := range actions {
		if a == event {
			return true
		}
	}
	return false
}

// payload renders a delivery body; with prev it adds beforeUpdate, the
// previous values of what changed (payloadVersion 2).
func (d *webhookDispatcher) payload(res *catalog.Resource, rec, prev *record, event string, changed map[string]bool, now time.Time) []byte {
	b := []byte(`{"data":`)
	b = appendWebhookResource(b, res, rec, event, changed)
	if prev != nil {
		b = append(b, `,"beforeUpdate":`...)
		b = appendWebhookResource(b, res, prev, "updated", changed)
	}
	b = append(b, `,"meta":{"deliveredAt":`...)
	b = appendString(b, now.Format("2006-01-02T15:04:05.000-07:00"))
	b = append(b, `,"eventName":`...)
	b = appendString(b, res.Type+"."+event)
	b = append(b, `,"jobId":`...)
	b = appendString(b, uuid())
	return append(b, "}}"...)
}

// appendWebhookResource renders a record as Outreach's deliveries do: on
// updates only what changed, and relationships flattened to
// {"type": <relationship name>, "id": N}.
func appendWebhookResource(b []byte, res *catalog.Resource, rec *record, event string, changed map[string]bool) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, res.Type)
	b = append(b, `,"id":`...)
	b = strconv.AppendInt(b, rec.id, 10)
	b = append(b, `,"attributes":{`...)
	first := true
	for i := range res.Attributes {
		a := &res.Attributes[i]
		v := rec.attrs[i]
		if a.WriteOnly || (event == "updated" && !changed[a.Name]) || (event != "updated" && event != "destroyed" && v == nil && !changed[a.Name]) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, a.Name)
		b = append(b, ':')
		b = appendValue(b, v)
	}
	b = append(b, `},"relationships":{`...)
	first = true
	for i := range res.Relationships {
		rel := &res.Relationships[i]
		if rel.ToMany || rec.rels[i].id == 0 || (event == "updated" && !changed[rel.Name]) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, rel.Name)
		b = append(b, `:{"type":`...)
		b = appendString(b, rel.Name) // Outreach's quirk: the relationship name, not the target type
		b = append(b, `,"id":`...)
		b = strconv.AppendInt(b, rec.rels[i].id, 10)
		b = append(b, '}')
	}
	return append(b, "}}"...)
}

func uuid() string {
	b := []byte(randomToken(16))
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

// Sign returns the Outreach-Webhook-Signature of body: lowercase hex
// HMAC-SHA256 of the raw body keyed with the webhook's secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

func (d *webhookDispatcher) deliver(hookID int64, target, secret string, body []byte) {
	eventID := uuid()
	for attempt := 1; attempt <= 4; attempt++ {
		req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", mediaType)
		req.Header.Set("User-Agent", "Ruby")
		req.Header.Set("Accept", "*/*")
		req.Header.Set("Outreach-Org-Id", "e4bf9dea-0000-4000-a000-5a4db0c0ffee")
		req.Header.Set("Outreach-Webhook-Id", strconv.FormatInt(hookID, 10))
		req.Header.Set("Outreach-Webhook-Event-Id", eventID)
		if secret != "" {
			req.Header.Set("Outreach-Webhook-Signature", Sign(secret, body))
		}
		d.sb.stats.webhookDeliveries.Add(1)
		resp, err := d.client.Do(req)
		if err == nil {
			resp.Body.Close()
			// Any HTTP answer counts as delivered (not retried); a non-2xx
			// one still counts towards disabling the webhook.
			d.webhookFailed(hookID, resp.StatusCode < 200 || resp.StatusCode > 299)
			return
		}
		d.sb.log.Debug("webhook delivery failed", "webhook", hookID, "attempt", attempt, "err", err)
		time.Sleep(time.Second)
	}
	d.webhookFailed(hookID, true)
}
