package sandbox_test

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/sandbox"
)

func TestRateLimit(t *testing.T) {
	srv := start(t, sandbox.Options{RateLimit: 3, RateWindow: time.Minute, MintInterval: -1})
	tok := token(t, srv)
	other := tokenFor(t, srv, 2)
	sameUserOtherToken := token(t, srv)
	now := srv.Clock().Now()
	for i, tc := range []struct {
		tok           string
		wantStatus    int
		wantRemaining string
	}{
		{tok, 200, "2, 5"}, {sameUserOtherToken, 200, "1, 4"}, {tok, 200, "0, 3"}, {tok, 429, "0, 3"}, {other, 200, "2, 5"},
	} {
		r := call(t, srv, tc.tok, "GET", "/api/v2/stages", "")
		if r.status != tc.wantStatus {
			t.Fatalf("request %d: status %d, want %d", i, r.status, tc.wantStatus)
		}
		if got := r.header.Get("X-RateLimit-Remaining"); got != tc.wantRemaining {
			t.Errorf("request %d: X-RateLimit-Remaining %q, want %q", i, got, tc.wantRemaining)
		}
		if got := r.header.Get("X-RateLimit-Limit"); got != "3" {
			t.Errorf("request %d: X-RateLimit-Limit %q, want 3", i, got)
		}
		if i == 3 {
			reset, _ := strconv.ParseInt(r.header.Get("X-RateLimit-Reset"), 10, 64)
			if want := now.Add(time.Minute).Unix(); reset != want {
				t.Errorf("X-RateLimit-Reset = %d, want %d", reset, want)
			}
			if r.header.Get("Retry-After") != "60" {
				t.Errorf("Retry-After = %q, want 60", r.header.Get("Retry-After"))
			}
			d := r.doc(t)
			if len(d.Errors) != 1 || d.Errors[0].ID != "rateLimitExceeded" || !strings.Contains(d.Errors[0].Detail, "You have exceeded your permitted rate limit of 3; please try again at") {
				t.Errorf("429 body = %s", r.body)
			}
		}
	}
	srv.Clock().Advance(time.Minute)
	if r := call(t, srv, tok, "GET", "/api/v2/stages", ""); r.status != 200 {
		t.Errorf("after the window: %d, want 200", r.status)
	}
	if got := srv.Counters().RateLimited; got != 1 {
		t.Errorf("RateLimited = %d, want 1", got)
	}
	single := start(t, sandbox.Options{SingleRateLimitValue: true})
	if r := call(t, single, token(t, single), "GET", "/api/v2/stages", ""); r.header.Get("X-RateLimit-Remaining") != "9999" {
		t.Errorf("single value: %q, want 9999", r.header.Get("X-RateLimit-Remaining"))
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults sandbox.Faults
		path   string
		check  func(t *testing.T, r response, err error)
	}{
		{"server errors", sandbox.Faults{ServerErrors: 1}, "/api/v2/stages", func(t *testing.T, r response, err error) {
			if err != nil || r.status != 500 || !strings.Contains(string(r.body), "internalServerError") {
				t.Errorf("got %d %s %v, want 500", r.status, r.body, err)
			}
		}},
		{"bad gateway on large pages", sandbox.Faults{BadGateway: 1, LargePageSize: 100}, "/api/v2/mailings?page[size]=1000", func(t *testing.T, r response, err error) {
			if err != nil || r.status != 502 {
				t.Errorf("got %d %v, want 502", r.status, err)
			}
		}},
		{"small pages pass the bad gateway fault", sandbox.Faults{BadGateway: 1, LargePageSize: 100}, "/api/v2/mailings?page[size]=100", func(t *testing.T, r response, err error) {
			if err != nil || r.status != 200 {
				t.Errorf("got %d %v, want 200", r.status, err)
			}
		}},
		{"gateway timeouts", sandbox.Faults{GatewayTimeouts: 1}, "/api/v2/stages", func(t *testing.T, r response, err error) {
			if err != nil || r.status != 504 {
				t.Errorf("got %d %v, want 504", r.status, err)
			}
		}},
		{"maintenance", sandbox.Faults{Maintenance: 1, MaintenanceSeconds: 90}, "/api/v2/stages", func(t *testing.T, r response, err error) {
			ra, perr := time.Parse(time.RFC3339, r.header.Get("Retry-After"))
			if err != nil || r.status != 503 || perr != nil || !strings.Contains(string(r.body), "scheduledServerMaintenance") {
				t.Fatalf("got %d Retry-After %q %v, want 503 with an ISO date", r.status, r.header.Get("Retry-After"), err)
			}
			if want := time.Date(2026, 3, 1, 12, 1, 30, 0, time.UTC); !ra.Equal(want) {
				t.Errorf("Retry-After = %s, want %s", ra, want)
			}
		}},
		{"connection resets", sandbox.Faults{ConnectionResets: 1}, "/api/v2/stages", func(t *testing.T, r response, err error) {
			if err == nil {
				t.Errorf("got %d, want a transport error", r.status)
			}
		}},
		{"hangs until the client gives up", sandbox.Faults{Hangs: 1}, "/api/v2/stages", func(t *testing.T, r response, err error) {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("got %d %v, want a client timeout", r.status, err)
			}
		}},
		{"latency", sandbox.Faults{LatencyMillis: 150}, "/api/v2/stages", func(t *testing.T, r response, err error) {
			if err != nil || r.status != 200 {
				t.Errorf("got %d %v, want 200", r.status, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t, sandbox.Options{Prospects: 1000})
			tok := token(t, srv)
			if err := srv.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("GET", srv.URL+tt.path, nil)
			req.Header.Set("Content-Type", "application/vnd.api+json")
			req.Header.Set("Authorization", "Bearer "+tok)
			// Only the hang needs the client to give up; the others get time
			// to answer on a loaded machine.
			client := &http.Client{Timeout: 30 * time.Second}
			if tt.faults.Hangs > 0 {
				client.Timeout = time.Second
			}
			begin := time.Now()
			resp, err := client.Do(req)
			var r response
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				r = response{status: resp.StatusCode, header: resp.Header, body: body}
			}
			tt.check(t, r, err)
			if tt.faults.LatencyMillis > 0 && time.Since(begin) < time.Duration(tt.faults.LatencyMillis)*time.Millisecond {
				t.Errorf("answered after %s, want at least %d ms", time.Since(begin), tt.faults.LatencyMillis)
			}
			if srv.Counters().FaultsInjected == 0 && tt.faults.LatencyMillis == 0 && tt.name != "small pages pass the bad gateway fault" {
				t.Error("FaultsInjected = 0")
			}
		})
	}
}

func TestUnsortedPagesKeepTheSameRecords(t *testing.T) {
	srv := start(t, sandbox.Options{Prospects: 100})
	tok := token(t, srv)
	ids := func() []int64 {
		var out []int64
		for _, r := range call(t, srv, tok, "GET", "/api/v2/prospects?page[size]=50&sort=updatedAt", "").doc(t).list(t) {
			out = append(out, r.ID)
		}
		return out
	}
	sorted := ids()
	srv.SetFaults(sandbox.Faults{UnsortedPages: 1})
	shuffled := ids()
	same, inOrder := len(sorted) == len(shuffled), true
	set := map[int64]bool{}
	for _, id := range sorted {
		set[id] = true
	}
	for i, id := range shuffled {
		same = same && set[id]
		inOrder = inOrder && sorted[i] == id
	}
	if !same || inOrder {
		t.Errorf("unsorted page: same records %v, still in order %v; want the same records out of order", same, inOrder)
	}
}

func TestFaultsControlAPI(t *testing.T) {
	srv := start(t, sandbox.Options{})
	put := func(body string) response {
		req, _ := http.NewRequest("PUT", srv.URL+"/_sandbox/faults", strings.NewReader(body))
		return send(t, req)
	}
	if r := put(`{"server_errors": 1.5}`); r.status != 400 {
		t.Errorf("rate above 1: %d, want 400", r.status)
	}
	if r := put(`{"server_erors": 0.5}`); r.status != 400 {
		t.Errorf("misspelt fault: %d, want 400", r.status)
	}
	if r := put(`{"server_errors": 1}`); r.status != 200 {
		t.Fatalf("set faults: %d %s", r.status, r.body)
	}
	if r := call(t, srv, token(t, srv), "GET", "/api/v2/stages", ""); r.status != 500 {
		t.Errorf("after PUT faults: %d, want 500", r.status)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/_sandbox/clock/advance?by=15d", nil)
	before := srv.Clock().Now()
	if r := send(t, req); r.status != 200 || !srv.Clock().Now().Equal(before.Add(15*24*time.Hour)) {
		t.Errorf("advance 15d: %d, clock %s (was %s)", r.status, srv.Clock().Now(), before)
	}
	req, _ = http.NewRequest("GET", srv.URL+"/_sandbox/counters", nil)
	var c sandbox.Counters
	if r := send(t, req); r.status != 200 || json.Unmarshal(r.body, &c) != nil || c.FaultsInjected != 1 {
		t.Errorf("counters: %d %s", r.status, r.body)
	}
}

type delivery struct {
	header http.Header
	body   []byte
}

func receiver(t *testing.T, status int) (*httptest.Server, func() []delivery) {
	var mu sync.Mutex
	var got []delivery
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, delivery{r.Header.Clone(), b})
		mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(ts.Close)
	return ts, func() []delivery {
		mu.Lock()
		defer mu.Unlock()
		return append([]delivery(nil), got...)
	}
}

func TestWebhooks(t *testing.T) {
	srv := start(t, sandbox.Options{Prospects: 20})
	tok := token(t, srv)
	recv, deliveries := receiver(t, 500) // a failing receiver is not retried
	const secret = "whsec-test"
	r := call(t, srv, tok, "POST", "/api/v2/webhooks", `{"data":{"type":"webhook","attributes":{"url":"`+recv.URL+`/hook","secret":"`+secret+`","resource":"prospect","action":"*"}}}`)
	if r.status != 201 {
		t.Fatalf("create webhook: %d %s", r.status, r.body)
	}
	hookID := r.doc(t).one(t).ID
	recv2, deliveries2 := receiver(t, 200)
	if r := call(t, srv, tok, "POST", "/api/v2/webhooks", `{"data":{"type":"webhook","attributes":{"url":"`+recv2.URL+`","resource":"prospect","action":"updated","payloadVersion":2}}}`); r.status != 201 {
		t.Fatalf("create v2 webhook: %d %s", r.status, r.body)
	}
	bad := call(t, srv, tok, "POST", "/api/v2/webhooks", `{"data":{"type":"webhook","attributes":{"url":"http://example.com/x","resource":"prospect","action":"*"}}}`)
	if bad.status != 422 {
		t.Errorf("plain-http webhook to a public host: %d, want 422", bad.status)
	}
	bad = call(t, srv, tok, "POST", "/api/v2/webhooks", `{"data":{"type":"webhook","attributes":{"url":"`+recv.URL+`","resource":"stage","action":"created"}}}`)
	if bad.status != 422 {
		t.Errorf("unsupported resource: %d, want 422", bad.status)
	}
	created := call(t, srv, tok, "POST", "/api/v2/prospects", `{"data":{"type":"prospect","attributes":{"firstName":"Grace"},"relationships":{"owner":{"data":{"type":"user","id":2}}}}}`).doc(t).one(t)
	srv.Clock().Advance(time.Second)
	call(t, srv, tok, "PATCH", "/api/v2/prospects/"+strconv.FormatInt(created.ID, 10), `{"data":{"type":"prospect","id":`+strconv.FormatInt(created.ID, 10)+`,"attributes":{"lastName":"Hopper"}}}`)
	call(t, srv, tok, "DELETE", "/api/v2/prospects/"+strconv.FormatInt(created.ID, 10), "")
	call(t, srv, tok, "POST", "/api/v2/accounts", `{"data":{"type":"account","attributes":{"name":"Not delivered"}}}`)
	srv.Sandbox.Close() // waits for deliveries in flight
	got := deliveries()
	if len(got) != 3 {
		t.Fatalf("deliveries = %d, want 3 (created, updated, destroyed; none retried, none for accounts)", len(got))
	}
	wantEvents := []string{"prospect.created", "prospect.updated", "prospect.destroyed"}
	events := map[string]map[string]any{}
	for _, d := range got {
		if sig := d.header.Get("Outreach-Webhook-Signature"); sig != sandbox.Sign(secret, d.body) {
			t.Errorf("signature %q does not match the body", sig)
		}
		if d.header.Get("Content-Type") != "application/vnd.api+json" || d.header.Get("Outreach-Webhook-Id") != strconv.FormatInt(hookID, 10) || d.header.Get("Outreach-Webhook-Event-Id") == "" {
			t.Errorf("headers = %v", d.header)
		}
		var body struct {
			Data struct {
				Attributes    map[string]any            `json:"attributes"`
				Relationships map[string]map[string]any `json:"relationships"`
			} `json:"data"`
			Meta struct {
				EventName   string `json:"eventName"`
				DeliveredAt string `json:"deliveredAt"`
			} `json:"meta"`
		}
		if err := json.Unmarshal(d.body, &body); err != nil {
			t.Fatal(err)
		}
		events[body.Meta.EventName] = body.Data.Attributes
		if _, err := time.Parse("2006-01-02T15:04:05.000-07:00", body.Meta.DeliveredAt); err != nil {
			t.Errorf("deliveredAt %q: %v", body.Meta.DeliveredAt, err)
		}
		if body.Meta.EventName == "prospect.created" {
			owner := body.Data.Relationships["owner"]
			if owner["type"] != "owner" || owner["id"] != float64(2) {
				t.Errorf("flattened owner = %v, want {type: owner, id: 2}", owner)
			}
		}
	}
	for _, e := range wantEvents {
		if _, ok := events[e]; !ok {
			t.Errorf("no %s delivery", e)
		}
	}
	if upd := events["prospect.updated"]; len(upd) != 3 || upd["lastName"] != "Hopper" {
		t.Errorf("update delivery attributes = %v, want lastName, name and updatedAt only", upd)
	}
	v2 := deliveries2()
	if len(v2) != 1 {
		t.Fatalf("v2 deliveries = %d, want 1 (updates only)", len(v2))
	}
	var body struct {
		BeforeUpdate struct {
			Attributes map[string]any `json:"attributes"`
		} `json:"beforeUpdate"`
	}
	json.Unmarshal(v2[0].body, &body)
	if before := body.BeforeUpdate.Attributes; len(before) != 3 || before["lastName"] != nil || before["name"] != "Grace" {
		t.Errorf("beforeUpdate attributes = %v, want the previous lastName (null), name and updatedAt", before)
	}
	if v2[0].header.Get("Outreach-Webhook-Signature") != "" {
		t.Error("a webhook without a secret got a signature header")
	}
	if del := events["prospect.destroyed"]; del["firstName"] != "Grace" || del["lastName"] != "Hopper" {
		t.Errorf("destroy delivery attributes = %v, want the last known values", del)
	}
}

func TestMutationsMoveUpdatedAt(t *testing.T) {
	srv := start(t, sandbox.Options{Prospects: 200})
	srv.Clock().Advance(24 * time.Hour)
	tok := token(t, srv)
	mark := srv.Clock().Now().Format(time.RFC3339)
	srv.Mutate(200)
	if got := srv.Counters().Mutations; got != 200 {
		t.Fatalf("Mutations = %d, want 200", got)
	}
	changed := 0
	for _, res := range []string{"prospects", "accounts", "opportunities", "tasks", "calls"} {
		changed += len(listAll(t, srv, tok, "/api/v2/"+res+"?page[size]=1000&filter[updatedAt]="+mark+"..inf"))
	}
	if changed < 100 {
		t.Errorf("records updated since the mark = %d, want most of the 170 or so creates and updates", changed)
	}
	srv.SetMutationRate(200)
	time.Sleep(100 * time.Millisecond)
	srv.SetMutationRate(0)
	if got := srv.Counters().Mutations; got <= 200 {
		t.Errorf("background mutations: counter %d, want more than 200", got)
	}
}

// Closing the sandbox ends the requests the hangs fault holds open: the
// server shuts down without cutting them after its grace period.
func TestCloseEndsHungRequests(t *testing.T) {
	srv, err := sandbox.Start("", sandbox.Options{Prospects: 10})
	if err != nil {
		t.Fatal(err)
	}
	tok := token(t, srv)
	if err := srv.SetFaults(sandbox.Faults{Hangs: 1}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v2/stages", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	for srv.Counters().FaultsInjected == 0 {
		runtime.Gosched() // until the request is held
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v; want the held request ended at once", err)
	}
	if err := <-done; err == nil {
		t.Fatal("the held request got an answer; want its connection reset")
	}
}
