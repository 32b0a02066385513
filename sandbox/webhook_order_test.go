package sandbox_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/outreach-connector/outreach-connector/sandbox"
)

// recordingTransport receives webhook deliveries in memory: it notes each
// one as it arrives and can hold the answer to a record's "created".
type recordingTransport struct {
	mu      sync.Mutex
	arrived []string // "prospect.created 201", in arrival order
	inHold  map[int64]bool
	hold    map[int64]chan struct{} // record id → released when closed
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	raw, _ := io.ReadAll(req.Body)
	var body struct {
		Data struct {
			ID int64 `json:"id"`
		} `json:"data"`
		Meta struct {
			EventName string `json:"eventName"`
		} `json:"meta"`
	}
	json.Unmarshal(raw, &body)
	rt.mu.Lock()
	rt.arrived = append(rt.arrived, fmt.Sprintf("%s %d", body.Meta.EventName, body.Data.ID))
	wait := rt.hold[body.Data.ID]
	if wait != nil && strings.HasSuffix(body.Meta.EventName, ".created") {
		rt.inHold[body.Data.ID] = true
	} else {
		wait = nil
	}
	rt.mu.Unlock()
	if wait != nil {
		<-wait
	}
	return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}, Request: req}, nil
}

func (rt *recordingTransport) events() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]string(nil), rt.arrived...)
}

// serve sends one API request to the sandbox in memory.
func serve(t *testing.T, sb *sandbox.Sandbox, tok, method, path, body string) response {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/vnd.api+json")
	}
	w := httptest.NewRecorder()
	sb.ServeHTTP(w, req)
	return response{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
}

func TestWebhookDeliveriesOfARecordStayInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &recordingTransport{inHold: map[int64]bool{}, hold: map[int64]chan struct{}{}}
		sb, err := sandbox.New(sandbox.Options{Prospects: 20, Clock: sandbox.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)),
			MintInterval: -1, WebhookClient: &http.Client{Transport: rt}})
		if err != nil {
			t.Fatal(err)
		}
		defer sb.Close()
		tok, _, err := sb.IssueToken(1)
		if err != nil {
			t.Fatal(err)
		}
		if r := serve(t, sb, tok, "POST", "/api/v2/webhooks", `{"data":{"type":"webhook","attributes":{"url":"https://hooks.example/in","resource":"prospect"}}}`); r.status != 201 {
			t.Fatalf("create webhook: %d %s", r.status, r.body)
		}

		// The receiver holds the answer to the "created" of the next
		// prospect; its "updated" must wait for that answer.
		const next = 21
		release := make(chan struct{})
		var once sync.Once
		releaseOnce := func() { once.Do(func() { close(release) }) }
		defer releaseOnce() // before Close, so a failed check does not hang it
		rt.mu.Lock()
		rt.hold[next] = release
		rt.mu.Unlock()
		p := serve(t, sb, tok, "POST", "/api/v2/prospects", `{"data":{"type":"prospect","attributes":{"firstName":"Held"}}}`).doc(t).one(t)
		if p.ID != next {
			t.Fatalf("created prospect %d, want %d", p.ID, next)
		}
		serve(t, sb, tok, "PATCH", fmt.Sprintf("/api/v2/prospects/%d", next), fmt.Sprintf(`{"data":{"type":"prospect","id":%d,"attributes":{"title":"CTO"}}}`, next))
		synctest.Wait() // every delivery goroutine has sent or is waiting
		if got := rt.events(); len(got) != 1 || got[0] != fmt.Sprintf("prospect.created %d", next) {
			t.Fatalf("while the created delivery is unanswered the receiver got %v, want only the created", got)
		}
		releaseOnce()
		synctest.Wait()
		if got := rt.events(); len(got) != 2 || got[1] != fmt.Sprintf("prospect.updated %d", next) {
			t.Fatalf("after the answer the receiver got %v, want created then updated", got)
		}

		// Many clients change many records at once: every record's
		// deliveries arrive created, updated, updated, destroyed.
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 5 {
					r := serve(t, sb, tok, "POST", "/api/v2/prospects", `{"data":{"type":"prospect","attributes":{"firstName":"Busy"}}}`)
					id := r.doc(t).one(t).ID
					for _, title := range []string{"VP", "CEO"} {
						serve(t, sb, tok, "PATCH", fmt.Sprintf("/api/v2/prospects/%d", id), fmt.Sprintf(`{"data":{"type":"prospect","id":%d,"attributes":{"title":%q}}}`, id, title))
					}
					serve(t, sb, tok, "DELETE", fmt.Sprintf("/api/v2/prospects/%d", id), "")
				}
			})
		}
		wg.Wait()
		sb.Close()
		byRecord := map[string][]string{}
		for _, e := range rt.events()[2:] {
			name, id, _ := strings.Cut(e, " ")
			byRecord[id] = append(byRecord[id], strings.TrimPrefix(name, "prospect."))
		}
		if len(byRecord) != 40 {
			t.Fatalf("deliveries for %d records, want 40", len(byRecord))
		}
		for id, got := range byRecord {
			if strings.Join(got, ",") != "created,updated,updated,destroyed" {
				t.Errorf("prospect %s: deliveries %v, want created, updated, updated, destroyed", id, got)
			}
		}
	})
}
