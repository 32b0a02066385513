package web_test

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/web"
)

type connEnv struct {
	*env
	fake   *fakeConns
	cred   *credential.Record
	client *http.Client
	csrf   string
}

// newConnEnv serves the UI with the fake connections service and a
// credential connected with scopes, signed in.
func newConnEnv(t *testing.T, scopes ...string) *connEnv {
	t.Helper()
	fake := newFakeConns()
	e := newEnv(t, func(_ *credential.Options, w *web.Options) { w.Connections = fake })
	fake.m = func() *credential.Manager { return e.manager }
	f := newFakeOutreach(t)
	if scopes == nil {
		scopes = []string{"prospects.read"}
	}
	cred, err := e.manager.Import(context.Background(), credential.NewCredential{Name: "acme", ClientID: "cid", ClientSecret: "client-secret-value",
		Environment: credential.Production, APIBaseURL: f.URL + "/api/v2", RedirectURI: e.url + "/oauth/callback", Scopes: scopes}, "refresh-0")
	if err != nil {
		t.Fatal(err)
	}
	client, csrf := signedIn(t, e)
	return &connEnv{env: e, fake: fake, cred: cred, client: client, csrf: csrf}
}

// form is a valid New connection form; edits change it.
func (ce *connEnv) form(edits map[string][]string) url.Values {
	v := url.Values{"csrf": {ce.csrf}, "credential": {ce.cred.ID}, "name": {"Acme EU"}, "direction": {"source"},
		"destination_url": {"sqlite:./outreach.db"}, "streams_mode": {"readable"}, "schedule": {"every"}, "every": {"15m"},
		"quota_share": {"0.5"}, "notify_url": {""}}
	for k, vals := range edits {
		v[k] = vals
	}
	return v
}

// create creates a connection through the form and returns its id.
func (ce *connEnv) create(t *testing.T, edits map[string][]string) string {
	t.Helper()
	resp, err := ce.client.PostForm(ce.url+"/connections", ce.form(edits))
	status, body := read(t, resp, err)
	loc := resp.Header.Get("Location")
	m := regexp.MustCompile(`^/connections/([0-9a-f]+)\?notice=created$`).FindStringSubmatch(loc)
	if status != http.StatusSeeOther || m == nil {
		t.Fatalf("create = %d to %q:\n%.2000s", status, loc, body)
	}
	return m[1]
}

func (ce *connEnv) post(t *testing.T, path string, v url.Values) (*http.Response, string) {
	t.Helper()
	if v == nil {
		v = url.Values{}
	}
	if _, ok := v["csrf"]; !ok {
		v.Set("csrf", ce.csrf)
	}
	resp, err := ce.client.PostForm(ce.url+path, v)
	_, body := read(t, resp, err)
	return resp, body
}

func (ce *connEnv) api(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, ce.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+ce.admin)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return send(t, http.DefaultClient, req)
}

// connectionRoutes are every connection route, with "ID" for the id.
var connectionRoutes = []struct{ method, path string }{
	{"GET", "/connections"}, {"GET", "/connections/new?credential=CRED"}, {"POST", "/connections"},
	{"GET", "/connections/ID"}, {"GET", "/connections/ID/edit"}, {"POST", "/connections/ID/edit"},
	{"POST", "/connections/ID/run"}, {"POST", "/connections/ID/cancel"}, {"POST", "/connections/ID/pause"},
	{"POST", "/connections/ID/resume"}, {"GET", "/connections/ID/resync"}, {"POST", "/connections/ID/resync"},
	{"GET", "/connections/ID/delete"}, {"POST", "/connections/ID/delete"},
}

var connectionAPIRoutes = []struct{ method, path string }{
	{"GET", "/api/connections"}, {"POST", "/api/connections"}, {"GET", "/api/connections/ID"},
	{"PATCH", "/api/connections/ID"}, {"DELETE", "/api/connections/ID"}, {"GET", "/api/connections/ID/runs"},
	{"POST", "/api/connections/ID/run"}, {"POST", "/api/connections/ID/resync"}, {"POST", "/api/connections/ID/pause"},
	{"POST", "/api/connections/ID/resume"}, {"POST", "/api/connections/ID/cancel"},
}

func fill(path, id, cred string) string {
	return strings.ReplaceAll(strings.ReplaceAll(path, "CRED", cred), "/ID", "/"+id)
}

func TestConnectionRoutesNeedTheAdminAndCSRF(t *testing.T) {
	ce := newConnEnv(t)
	id := ce.create(t, nil)
	anon := noRedirect(nil)
	for _, rt := range connectionRoutes {
		req, _ := http.NewRequest(rt.method, ce.url+fill(rt.path, id, ce.cred.ID), strings.NewReader(url.Values{"confirm": {"yes"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := anon.Do(req)
		status, _ := read(t, resp, err)
		want := http.StatusUnauthorized
		if rt.method == "GET" {
			want = http.StatusSeeOther
		}
		if status != want || (want == http.StatusSeeOther && !strings.HasPrefix(resp.Header.Get("Location"), "/signin")) {
			t.Errorf("%s %s without sign-in = %d to %q, want %d", rt.method, rt.path, status, resp.Header.Get("Location"), want)
		}
		if rt.method == "POST" {
			// Signed in, but without the CSRF token.
			resp, _ := ce.post(t, fill(rt.path, id, ce.cred.ID), url.Values{"csrf": {"0000"}, "confirm": {"yes"}, "credential": {ce.cred.ID}})
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s without the CSRF token = %d, want 403", rt.method, rt.path, resp.StatusCode)
			}
		}
	}
	for i, rt := range connectionAPIRoutes {
		// A wrong token counts against the address (rate limited after a
		// few): one is enough to check.
		tokens := []string{""}
		if i == 0 {
			tokens = append(tokens, "wrong-token-wrong-token")
		}
		for _, token := range tokens {
			req, _ := http.NewRequest(rt.method, ce.url+fill(rt.path, id, ce.cred.ID), strings.NewReader("{}"))
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			if status, _ := send(t, anon, req); status != http.StatusUnauthorized {
				t.Errorf("%s %s with token %q = %d, want 401", rt.method, rt.path, token, status)
			}
		}
	}
	if calls := ce.fake.called(); !slices.Equal(calls, []string{"create Acme EU"}) {
		t.Errorf("requests without the admin or the CSRF token reached the service: %q", calls)
	}
}

func TestUnknownConnectionIs404(t *testing.T) {
	ce := newConnEnv(t)
	for _, rt := range connectionRoutes {
		if !strings.Contains(rt.path, "/ID") {
			continue
		}
		var status int
		var body string
		if rt.method == "GET" {
			status, body = readGet(t, ce.client, ce.url+fill(rt.path, "missing", ""))
		} else {
			resp, b := ce.post(t, fill(rt.path, "missing", ""), url.Values{"confirm": {"yes"}, "name": {"x"}})
			status, body = resp.StatusCode, b
		}
		if status != http.StatusNotFound || !strings.Contains(body, "No such connection") {
			t.Errorf("%s %s of an unknown connection = %d:\n%.300s", rt.method, rt.path, status, body)
		}
	}
	for _, rt := range connectionAPIRoutes {
		if !strings.Contains(rt.path, "/ID") {
			continue
		}
		body := ""
		if rt.method == "PATCH" {
			body = `{"name":"x"}`
		}
		if status, resp := ce.api(t, rt.method, fill(rt.path, "missing", ""), body); status != http.StatusNotFound || !strings.Contains(resp, `"code":"not_found"`) {
			t.Errorf("%s %s of an unknown connection = %d %s", rt.method, rt.path, status, resp)
		}
	}
	// A credential that does not exist has no New connection form.
	if status, _ := readGet(t, ce.client, ce.url+"/connections/new?credential=missing"); status != http.StatusNotFound {
		t.Errorf("New connection of an unknown credential = %d", status)
	}
}

func TestConnectionsOffWithoutAService(t *testing.T) {
	e := newEnv(t)
	f := newFakeOutreach(t)
	rec := connect(t, e, f, "plain")
	client, csrf := signedIn(t, e)
	for _, rt := range connectionRoutes {
		var status int
		if rt.method == "GET" {
			status, _ = readGet(t, client, e.url+fill(rt.path, "x", rec.ID))
		} else {
			status, _ = readForm(t, client, e.url+fill(rt.path, "x", rec.ID), url.Values{"csrf": {csrf}})
		}
		if status != http.StatusNotFound {
			t.Errorf("%s %s without a connections service = %d, want 404", rt.method, rt.path, status)
		}
	}
	for _, rt := range connectionAPIRoutes {
		req, _ := http.NewRequest(rt.method, e.url+fill(rt.path, "x", rec.ID), strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+e.admin)
		if status, _ := send(t, http.DefaultClient, req); status != http.StatusNotFound {
			t.Errorf("%s %s without a connections service = %d, want 404", rt.method, rt.path, status)
		}
	}
	_, page := readGet(t, client, e.url+"/credentials/"+rec.ID)
	if strings.Contains(page, "New connection") || strings.Contains(page, `href="/connections"`) {
		t.Error("without a connections service the credential page offers connections")
	}
}

// The Connections page's New connection asks for a credential: the
// connected ones lead to the form, the others to their page.
func TestNewConnectionChoosesACredential(t *testing.T) {
	ce := newConnEnv(t, "prospects.read")
	_, list := readGet(t, ce.client, ce.url+"/connections")
	if !strings.Contains(list, `href="/connections/new" id="new-connection"`) {
		t.Fatalf("the Connections page has no New connection:\n%.2000s", list)
	}
	status, page := readGet(t, ce.client, ce.url+"/connections/new")
	if status != http.StatusOK || !strings.Contains(page, `href="/connections/new?credential=`+ce.cred.ID+`">`+ce.cred.Name+`</a>`) {
		t.Fatalf("choose a credential = %d:\n%.3000s", status, page)
	}
	pending, err := ce.manager.Create(context.Background(), credential.NewCredential{Name: "pending", ClientID: "c", ClientSecret: "s",
		RedirectURI: "http://127.0.0.1/cb", APIBaseURL: "http://127.0.0.1/api/v2"})
	if err != nil {
		t.Fatal(err)
	}
	_, page = readGet(t, ce.client, ce.url+"/connections/new")
	if strings.Contains(page, `/connections/new?credential=`+pending.ID) || !strings.Contains(page, `href="/credentials/`+pending.ID+`"`) {
		t.Errorf("a credential awaiting authorization is offered for a connection:\n%.3000s", page)
	}
}

func TestNewConnectionFormFromACredential(t *testing.T) {
	ce := newConnEnv(t, "prospects.read", "accounts.all")
	_, page := readGet(t, ce.client, ce.url+"/credentials/"+ce.cred.ID)
	link := `href="/connections/new?credential=` + ce.cred.ID + `"`
	if !strings.Contains(page, link) {
		t.Fatalf("a connected credential's page has no New connection link:\n%.3000s", page)
	}
	status, form := readGet(t, ce.client, ce.url+"/connections/new?credential="+ce.cred.ID)
	if status != http.StatusOK {
		t.Fatalf("New connection form = %d", status)
	}
	for _, want := range []string{
		`value="sqlite:./outreach.db"`, // the default destination
		`value="destination" id="direction-destination" >`, `id="source_url"`, `id="load_match"`,
		`value="readable" id="streams-readable" checked`,
		// Streams the credential reads are ticked; accounts through accounts.all.
		`value="prospects" data-read="prospects.read" data-all="prospects.all" data-readable="true" checked`,
		`value="accounts" data-read="accounts.read" data-all="accounts.all" data-readable="true" checked`,
		// Others are offered, unticked and marked.
		`title="acme lacks calls.read"><input type="checkbox" name="streams" value="calls"`,
		// Needed against held: the read scopes, both held.
		`<li class="held" data-scope="accounts.read">`, `<li class="held" data-scope="prospects.read">`, "2 needed, all held",
		`placeholder="acme"`, `value="every" id="schedule-every" checked`, `name="every" value="15m"`,
	} {
		if !strings.Contains(form, want) {
			t.Errorf("the New connection form lacks %s", want)
		}
	}
	if strings.Contains(form, `value="calls" data-read="calls.read" data-all="calls.all" data-readable="false" checked`) {
		t.Error("a stream the credential cannot read is ticked by default")
	}
	// Ticking a stream the credential cannot read shows its scope missing
	// (here alongside a mistake, so the form comes back).
	resp, body := ce.post(t, "/connections", ce.form(map[string][]string{"streams_mode": {"ticked"}, "streams": {"prospects", "calls"}, "every": {"5s"}}))
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, want := range []string{`<li class="missing" data-scope="calls.read">`, `<li class="held" data-scope="prospects.read">`,
		"1 missing", `href="/credentials/` + ce.cred.ID + `/edit"`, `value="calls" data-read="calls.read" data-all="calls.all" data-readable="false" checked`} {
		if !strings.Contains(body, want) {
			t.Errorf("with calls ticked the form lacks %s", want)
		}
	}
}

func TestNewConnectionBadInputKeepsWhatWasTyped(t *testing.T) {
	ce := newConnEnv(t)
	tests := []struct {
		name  string
		edits map[string][]string
		says  []string
		keeps []string
	}{
		{"everything wrong", map[string][]string{"name": {" Acme "}, "destination_url": {"mysql://db/x"}, "every": {"5s"}, "quota_share": {"2"},
			"namespace": {"Bad NS"}, "notify_url": {"ftp://hooks.example/x"}},
			[]string{"starts or ends with a space", "Destination scheme &#34;mysql&#34; is unknown", "Interval 5s is too short",
				"Quota share 2 is out of range", "Namespace &#34;Bad NS&#34; is not usable", "Notify URL must be an absolute http"},
			[]string{`value=" Acme "`, `value="mysql://db/x"`, `value="5s"`, `value="2"`, `value="Bad NS"`, `value="ftp://hooks.example/x"`}},
		{"no stream ticked", map[string][]string{"streams_mode": {"ticked"}}, []string{"No stream is ticked"}, []string{`value="ticked" id="streams-ticked" checked`}},
		{"bad cron", map[string][]string{"schedule": {"cron"}, "cron": {"61 * * * *"}}, []string{"Cron expression &#34;61 * * * *&#34;"},
			[]string{`name="cron" value="61 * * * *"`, `value="cron" id="schedule-cron" checked`}},
		{"empty interval", map[string][]string{"every": {""}}, []string{"none is typed"}, nil},
		{"bad date", map[string][]string{"start_date": {"yesterday"}}, []string{"Start date &#34;yesterday&#34; is not a date"}, []string{`value="yesterday"`}},
		{"unreadable stream", map[string][]string{"streams_mode": {"ticked"}, "streams": {"prospects", "calls"}},
			[]string{"acme cannot read calls needs calls.read or calls.all", "Edit the credential"}, []string{`data-scope="calls.read"`}},
		{"destination direction without a source", map[string][]string{"direction": {"destination"}, "load_type": {"prospect"}},
			[]string{"A destination connection needs a source", "Name the match attributes"}, []string{`value="prospect"`, `value="destination" id="direction-destination" checked`}},
		{"destination source with a password", map[string][]string{"direction": {"destination"}, "source_url": {"postgres://u:hunter2@127.0.0.1/wh?query=SELECT 1"},
			"load_type": {"prospect"}, "load_match": {"emails"}}, []string{"carries a password"}, nil},
		{"postgres without database", map[string][]string{"destination_url": {"postgres://u:hunter2@127.0.0.1:5432"}}, []string{"names no database"}, nil},
	}
	for _, tt := range tests {
		resp, body := ce.post(t, "/connections", ce.form(tt.edits))
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="problems"`) {
			t.Errorf("%s: status %d", tt.name, resp.StatusCode)
			continue
		}
		for _, want := range append(tt.says, tt.keeps...) {
			if !strings.Contains(body, want) {
				t.Errorf("%s: the page lacks %s", tt.name, want)
			}
		}
		if strings.Contains(body, "hunter2") && !strings.Contains(body, `value="postgres://u:hunter2@`) {
			t.Errorf("%s: the password shows outside the field it was typed in", tt.name)
		}
	}
	if calls := ce.fake.called(); len(calls) != 0 {
		t.Errorf("bad forms reached the service: %q", calls)
	}
	// Clashes come back from the service, with the form.
	ce.create(t, nil)
	resp, body := ce.post(t, "/connections", ce.form(nil))
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "A connection with this name exists already") || !strings.Contains(body, `value="Acme EU"`) {
		t.Errorf("a taken name = %d:\n%.500s", resp.StatusCode, body)
	}
	resp, body = ce.post(t, "/connections", ce.form(map[string][]string{"name": {"Other"}, "namespace": {"acme_eu"}}))
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "choose another namespace") || !strings.Contains(body, `value="acme_eu"`) {
		t.Errorf("a taken namespace = %d:\n%.500s", resp.StatusCode, body)
	}
}

func TestConnectionLifecycle(t *testing.T) {
	ce := newConnEnv(t)
	id := ce.create(t, map[string][]string{"streams_mode": {"ticked"}, "streams": {"prospects"}})
	page := func() string {
		t.Helper()
		status, body := readGet(t, ce.client, ce.url+"/connections/"+id)
		if status != http.StatusOK {
			t.Fatalf("connection page = %d", status)
		}
		return html.UnescapeString(body)
	}
	p := page()
	if strings.Contains(p, `http-equiv="refresh"`) {
		t.Error("an idle connection's page reloads itself")
	}
	for _, want := range []string{"Acme EU", "sqlite:./outreach.db", "acme_eu", "every 15m", "No runs yet", `id="run-now"`, `id="pause"`,
		"0.5 of the Outreach user"} {
		if !strings.Contains(p, want) {
			t.Errorf("the new connection's page lacks %q", want)
		}
	}
	expect := func(resp *http.Response, loc string) {
		t.Helper()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != loc {
			t.Errorf("= %d to %q, want %q", resp.StatusCode, resp.Header.Get("Location"), loc)
		}
	}
	resp, _ := ce.post(t, "/connections/"+id+"/run", nil)
	expect(resp, "/connections/"+id+"?notice=queued")
	p = page()
	if _, after := readGet(t, ce.client, ce.url+"/connections/"+id+"?notice=queued"); !strings.Contains(after, "The run has ended") {
		t.Error("after a run that ended the page says it is queued")
	}
	if !strings.Contains(p, `<td class="num records">7</td>`) || !strings.Contains(p, "Succeeded") || !strings.Contains(p, "prospects: 7 records") {
		t.Errorf("after Run now the history lacks the run:\n%s", p)
	}
	// Streams with cursor and rows.
	if !strings.Contains(p, `<td class="num">7</td>`) || !strings.Contains(p, "2026-03-01T11:55:00Z") || !strings.Contains(p, `id="resync-prospects"`) {
		t.Errorf("the streams table lacks the stream's cursor and rows")
	}
	// By name, too.
	resp, _ = ce.post(t, "/connections/Acme%20EU/pause", nil)
	expect(resp, "/connections/"+id+"?notice=paused")
	if p = page(); !strings.Contains(p, `id="resume"`) || !strings.Contains(p, "Paused") {
		t.Error("after Pause the page offers no Resume")
	}
	resp, _ = ce.post(t, "/connections/"+id+"/resume", nil)
	expect(resp, "/connections/"+id+"?notice=resumed")
	// Cancel: only a queued or running run.
	if resp, body := ce.post(t, "/connections/"+id+"/cancel", nil); resp.StatusCode != http.StatusConflict || !strings.Contains(body, "no run queued or running") {
		t.Errorf("cancel with no run = %d", resp.StatusCode)
	}
	ce.fake.setState("queued")
	if p := page(); !strings.Contains(p, `id="cancel-run"`) || !strings.Contains(p, `<meta http-equiv="refresh" content="5">`) {
		t.Error("a queued run offers no Cancel, or the page does not follow it")
	}
	resp, _ = ce.post(t, "/connections/"+id+"/cancel", nil)
	expect(resp, "/connections/"+id+"?notice=cancelled")
	// Re-sync waits for a running run.
	ce.fake.setState("running")
	if resp, body := ce.post(t, "/connections/"+id+"/resync", url.Values{"confirm": {"yes"}}); resp.StatusCode != http.StatusConflict ||
		!strings.Contains(body, "Wait for the run to end") {
		t.Errorf("re-sync while running = %d", resp.StatusCode)
	}
	ce.fake.setState("")

	// Re-sync asks first.
	resp, _ = ce.post(t, "/connections/"+id+"/resync", url.Values{"stream": {"prospects"}})
	expect(resp, "/connections/"+id+"/resync")
	status, confirm := readGet(t, ce.client, ce.url+"/connections/"+id+"/resync?stream=prospects")
	if status != http.StatusOK || !strings.Contains(confirm, `name="stream" value="prospects"`) || !strings.Contains(confirm, `name="confirm" value="yes"`) {
		t.Errorf("re-sync confirmation = %d", status)
	}
	if status, _ := readGet(t, ce.client, ce.url+"/connections/"+id+"/resync?stream=calls"); status != http.StatusUnprocessableEntity {
		t.Errorf("re-sync of a stream the connection does not sync = %d, want 422", status)
	}
	resp, _ = ce.post(t, "/connections/"+id+"/resync", url.Values{"stream": {"prospects"}, "confirm": {"yes"}})
	expect(resp, "/connections/"+id+"?notice=resync")
	resp, _ = ce.post(t, "/connections/"+id+"/resync", url.Values{"confirm": {"yes"}})
	expect(resp, "/connections/"+id+"?notice=resync")

	// Delete asks first, and offers keeping or dropping the data.
	resp, _ = ce.post(t, "/connections/"+id+"/delete", nil)
	expect(resp, "/connections/"+id+"/delete")
	status, confirm = readGet(t, ce.client, ce.url+"/connections/"+id+"/delete")
	if status != http.StatusOK || !strings.Contains(confirm, `id="confirm"`) || !strings.Contains(confirm, `name="drop_data" value="yes"`) {
		t.Errorf("delete confirmation = %d", status)
	}
	resp, _ = ce.post(t, "/connections/"+id+"/delete", url.Values{"confirm": {"yes"}, "drop_data": {"yes"}})
	expect(resp, "/connections?notice=deleted_data")
	want := []string{"create Acme EU", "run Acme EU", "pause Acme EU", "resume Acme EU", "cancel Acme EU",
		"resync Acme EU [prospects]", "resync Acme EU []", "delete Acme EU drop=true"}
	if calls := ce.fake.called(); !slices.Equal(calls, want) {
		t.Errorf("calls = %q\nwant    %q", calls, want)
	}
	if status, list := readGet(t, ce.client, ce.url+"/connections?notice=deleted_data"); status != 200 || strings.Contains(list, "Acme EU") ||
		!strings.Contains(list, "The connection and its data were deleted.") {
		t.Errorf("list after delete = %d", status)
	}
}

func TestConnectionsListShowsStatusRunsAndLag(t *testing.T) {
	ce := newConnEnv(t, "prospects.read", "accounts.read")
	id := ce.create(t, nil)
	ce.create(t, map[string][]string{"name": {"Manual one"}, "schedule": {"manual"}})
	ce.post(t, "/connections/"+id+"/run", nil)
	_, list := readGet(t, ce.client, ce.url+"/connections")
	for _, want := range []string{"Acme EU", "Manual one", "Idle", "Succeeded", `<td class="num">14</td>`, "manual", "never",
		"2026-03-01 12:15 UTC"} {
		if !strings.Contains(list, want) {
			t.Errorf("the list lacks %q", want)
		}
	}
	// Lag: the fake's cursor is 5 minutes before its clock; the server's
	// clock is real, so only check it is a duration.
	if !regexp.MustCompile(`<td class="num">(\d+[smhd]|\d+h\d\dm)</td></tr>`).MatchString(list) {
		t.Errorf("the list shows no cursor lag:\n%s", list)
	}
	// A failing run shows.
	ce.fake.mu.Lock()
	ce.fake.failRuns = "Outreach answered 500"
	ce.fake.mu.Unlock()
	ce.post(t, "/connections/"+id+"/run", nil)
	_, list = readGet(t, ce.client, ce.url+"/connections")
	if !strings.Contains(list, "Failing") || !strings.Contains(list, "Failed") {
		t.Errorf("the list does not show the failure")
	}
	_, p := readGet(t, ce.client, ce.url+"/connections/"+id)
	if !strings.Contains(p, `id="failing"`) || !strings.Contains(p, "Outreach answered 500") {
		t.Errorf("the connection page does not show the failure")
	}
	// The destination cannot be read: the page still shows, and says so.
	ce.fake.mu.Lock()
	ce.fake.streamsErr = context.DeadlineExceeded
	ce.fake.mu.Unlock()
	if status, p := readGet(t, ce.client, ce.url+"/connections/"+id); status != 200 || !strings.Contains(p, `id="streams-error"`) {
		t.Errorf("with an unreadable destination the page = %d", status)
	}
	// The credential's page lists its connections.
	if _, p := readGet(t, ce.client, ce.url+"/credentials/"+ce.cred.ID); !strings.Contains(p, `href="/connections/`+id+`"`) {
		t.Errorf("the credential's page does not list its connection")
	}
}

func TestConnectionPasswordIsNeverShown(t *testing.T) {
	ce := newConnEnv(t)
	id := ce.create(t, map[string][]string{"destination_url": {"postgres://etl:s3cretpw@127.0.0.1:5432/warehouse"}})
	for _, path := range []string{"/connections", "/connections/" + id, "/connections/" + id + "/edit", "/connections/" + id + "/delete",
		"/credentials/" + ce.cred.ID} {
		if _, body := readGet(t, ce.client, ce.url+path); strings.Contains(body, "s3cretpw") || !strings.Contains(body, "xxxxx") {
			t.Errorf("%s shows the destination password, or no destination", path)
		}
	}
	for _, path := range []string{"/api/connections", "/api/connections/" + id} {
		if _, body := ce.api(t, "GET", path, ""); strings.Contains(body, "s3cretpw") {
			t.Errorf("%s shows the destination password", path)
		}
	}
	// Saving the edit form unchanged keeps the stored URL.
	resp, _ := ce.post(t, "/connections/"+id+"/edit", ce.form(map[string][]string{"destination_url": {"postgres://etl:xxxxx@127.0.0.1:5432/warehouse"},
		"every": {"30m"}}))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit = %d", resp.StatusCode)
	}
	st, _ := ce.fake.Get(context.Background(), id)
	if st.Connection.DestinationURL != "postgres://etl:s3cretpw@127.0.0.1:5432/warehouse" || st.Connection.Schedule.String() != "every 30m" {
		t.Errorf("after saving the edit form: %s, %s", st.Connection.DestinationURL, st.Connection.Schedule)
	}
}

func TestEditConnection(t *testing.T) {
	ce := newConnEnv(t, "prospects.read", "accounts.read")
	id := ce.create(t, map[string][]string{"schedule": {"cron"}, "cron": {"*/30 * * * *"}, "notify_url": {"https://hooks.example.com/x"}})
	status, form := readGet(t, ce.client, ce.url+"/connections/"+id+"/edit")
	for _, want := range []string{`value="Acme EU"`, `value="cron" id="schedule-cron" checked`, `name="cron" value="*/30 * * * *"`,
		`value="https://hooks.example.com/x"`, `value="0.5"`, "<code>acme_eu</code>", `action="/connections/` + id + `/edit"`} {
		if status != 200 || !strings.Contains(form, want) {
			t.Errorf("edit form = %d, lacks %s", status, want)
		}
	}
	resp, body := ce.post(t, "/connections/"+id+"/edit", ce.form(map[string][]string{"schedule": {"cron"}, "cron": {"bad"}, "name": {"Renamed"}}))
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `value="Renamed"`) || !strings.Contains(body, `name="cron" value="bad"`) {
		t.Errorf("a bad edit = %d", resp.StatusCode)
	}
	resp, _ = ce.post(t, "/connections/"+id+"/edit", ce.form(map[string][]string{"name": {"Renamed"}, "streams_mode": {"ticked"},
		"streams": {"accounts"}, "schedule": {"manual"}}))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/connections/"+id+"?notice=updated" {
		t.Fatalf("edit = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	st, _ := ce.fake.Get(context.Background(), id)
	if c := st.Connection; c.Name != "Renamed" || !slices.Equal(c.Streams, []string{"accounts"}) || !c.Schedule.IsManual() || c.Namespace != "acme_eu" {
		t.Errorf("after the edit: %+v", c)
	}
}

func TestConnectionsAPI(t *testing.T) {
	ce := newConnEnv(t, "prospects.read", "accounts.read")
	status, body := ce.api(t, "POST", "/api/connections", `{"name":"api","credential":"acme","streams":["prospects"],"schedule":"15m","quota_share":0.25}`)
	if status != http.StatusCreated {
		t.Fatalf("create = %d %s", status, body)
	}
	var created struct {
		ID, Namespace, Schedule, DestinationURL string `json:"-"`
	}
	var m map[string]any
	json.Unmarshal([]byte(body), &m)
	created.ID, _ = m["id"].(string)
	if m["namespace"] != "api" || m["schedule"] != "every 15m" || m["destination_url"] != web.DefaultDestination || m["credential_name"] != "acme" {
		t.Errorf("created: %s", body)
	}
	id := created.ID
	tests := []struct {
		method, path, body string
		want               int
		contains           string
	}{
		{"GET", "/api/connections", "", 200, `"name":"api"`},
		{"GET", "/api/connections/" + id, "", 200, `"state":"idle"`},
		{"GET", "/api/connections/api/runs", "", 200, `"runs":[]`},
		{"POST", "/api/connections/api/run", "", 202, `"trigger":"manual"`},
		{"GET", "/api/connections/" + id + "/runs?limit=5", "", 200, `"records":7`},
		{"GET", "/api/connections/" + id + "/runs?limit=0", "", 422, "limit must be"},
		{"GET", "/api/connections/" + id, "", 200, `"stream_states":[{"stream":"prospects","cursor":"2026-03-01T11:55:00Z","rows":7}]`},
		{"POST", "/api/connections/" + id + "/resync", `{"streams":["prospects"]}`, 202, `"job"`},
		{"POST", "/api/connections/" + id + "/resync", "", 202, `"job"`},
		{"POST", "/api/connections/" + id + "/pause", "", 200, `"paused":true`},
		{"POST", "/api/connections/" + id + "/resume", "", 200, `"paused":false`},
		{"POST", "/api/connections/" + id + "/cancel", "", 409, `"code":"conflict"`},
		{"POST", "/api/connections", `{"name":"calls","credential":"acme","streams":["calls","nope"]}`, 422, "acme cannot read calls needs calls.read or calls.all"},
		{"PATCH", "/api/connections/" + id, `{"streams":["calls"]}`, 422, "cannot read calls"},
		{"PATCH", "/api/connections/" + id, `{"schedule":"cron 0 * * * *","quota_share":0.5}`, 200, `"schedule":"cron 0 * * * *"`},
		{"PATCH", "/api/connections/" + id, `{"schedule":"every 5s","quota_share":3}`, 422, "too short"},
		{"PATCH", "/api/connections/" + id, `{"shoe":1}`, 400, "unknown field"},
		{"POST", "/api/connections", `{"name":"api","credential":"acme"}`, 409, `"code":"name_taken"`},
		{"POST", "/api/connections", `{"name":"","destination_url":"ftp://x","schedule":"often"}`, 422, "credential is required"},
		{"POST", "/api/connections", `{"name":"x","credential":"nobody"}`, 404, "not_found"},
		{"POST", "/api/connections", `{"name":"w","credential":"acme","direction":"destination"}`, 422, "needs a source"},
		{"STATE", "queued", "", 0, ""},
		{"POST", "/api/connections/" + id + "/cancel", "", 200, `"name":"api"`},
		{"STATE", "running", "", 0, ""},
		{"POST", "/api/connections/" + id + "/resync", "", 409, "wait for the run to end"},
		{"STATE", "", "", 0, ""},
		{"DELETE", "/api/connections/" + id + "?drop_data=true", "", 204, ""},
		{"GET", "/api/connections/" + id, "", 404, "not_found"},
	}
	for _, tt := range tests {
		if tt.method == "STATE" {
			ce.fake.setState(tt.path)
			continue
		}
		status, body := ce.api(t, tt.method, tt.path, tt.body)
		if status != tt.want || !strings.Contains(body, tt.contains) {
			t.Errorf("%s %s %s = %d %.300s, want %d containing %q", tt.method, tt.path, tt.body, status, body, tt.want, tt.contains)
		}
	}
	want := []string{"create api", "run api", "resync api [prospects]", "resync api []", "pause api", "resume api",
		"update api", "cancel api", "delete api drop=true"}
	if calls := ce.fake.called(); !slices.Equal(calls, want) {
		t.Errorf("calls = %q\nwant    %q", calls, want)
	}
}

func TestConnectionPagesHaveTitles(t *testing.T) {
	ce := newConnEnv(t)
	id := ce.create(t, nil)
	for _, p := range []string{"/connections", "/connections/new?credential=" + ce.cred.ID, "/connections/" + id, "/connections/" + id + "/edit",
		"/connections/" + id + "/delete", "/connections/" + id + "/resync", "/connections/missing", "/connections/new"} {
		_, body := readGet(t, ce.client, ce.url+p)
		m := titleRE.FindStringSubmatch(body)
		if m == nil || !strings.HasSuffix(m[1], " · outreach-connector") || strings.HasPrefix(m[1], " ·") {
			t.Errorf("%s: title %q", p, m)
		}
	}
}

// An API body that is not one JSON object of the fields named is refused
// with what to send instead, naming no Go type; nothing is created.
func TestAPIBodyMustBeOneObject(t *testing.T) {
	ce := newConnEnv(t)
	good := `{"name":"acme-api","credential":"` + ce.cred.ID + `","destination_url":"sqlite:./x.db"}`
	for _, c := range []struct{ body, want string }{
		{good + `{}`, "nothing after it"},
		{good + ` x`, "nothing after it"},
		{`[]`, "send a JSON object, not array"},
		{`"x"`, "send a JSON object, not string"},
		{`{"name":7}`, "field name: send a string, not number"},
		{`{"nope":1}`, `unknown field \"nope\"`},
	} {
		status, resp := ce.api(t, "POST", "/api/connections", c.body)
		if status != http.StatusBadRequest || !strings.Contains(resp, c.want) || strings.Contains(resp, "struct") || strings.Contains(resp, "Go ") {
			t.Errorf("POST /api/connections %s: %d %s; want 400 saying %q", c.body, status, resp, c.want)
		}
	}
	if status, resp := ce.api(t, "GET", "/api/connections", ""); status != http.StatusOK || strings.Contains(resp, "acme-api") {
		t.Errorf("a refused body created a connection: %d %s", status, resp)
	}
}
