package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/web"
)

// testClock is a clock a test moves by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestSignInIsRateLimited(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	e := newEnv(t, func(_ *credential.Options, w *web.Options) { w.Now = clock.Now })
	client := noRedirect(nil)
	wrong := url.Values{"token": {"wrong-token-wrong-token"}}
	counts := map[int]int{}
	for range 300 {
		status, _ := readForm(t, client, e.url+"/signin", wrong)
		counts[status]++
	}
	if counts[http.StatusUnauthorized] > 6 || counts[http.StatusTooManyRequests] < 294 {
		t.Fatalf("300 wrong tokens at one instant: %v; want at most 6 tried", counts)
	}
	// Locked out, even the right token is refused, with Retry-After.
	resp, err := client.PostForm(e.url+"/signin", url.Values{"token": {e.admin}})
	status, body := read(t, resp, err)
	if status != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "Too many wrong admin tokens") {
		t.Fatalf("during the lockout = %d, Retry-After %q", status, resp.Header.Get("Retry-After"))
	}
	wait := resp.Header.Get("Retry-After")
	d, _ := time.ParseDuration(wait + "s")
	clock.Advance(d)
	if status, _ := readForm(t, client, e.url+"/signin", url.Values{"token": {e.admin}}); status != http.StatusSeeOther {
		t.Errorf("the right token after waiting Retry-After (%s s) = %d, want 303", wait, status)
	}
}

func TestAPIWrongTokensAreRateLimited(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	e := newEnv(t, func(_ *credential.Options, w *web.Options) { w.Now = clock.Now })
	call := func(token string) *http.Response {
		req, _ := http.NewRequest("GET", e.url+"/api/credentials", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		read(t, resp, err)
		return resp
	}
	counts := map[int]int{}
	for range 300 {
		counts[call("wrong-token-wrong-token").StatusCode]++
	}
	if counts[http.StatusUnauthorized] > 6 {
		t.Fatalf("300 wrong API tokens at one instant: %v; want at most 6 tried", counts)
	}
	resp := call(e.admin)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("the right token during the lockout = %d", resp.StatusCode)
	}
	d, _ := time.ParseDuration(resp.Header.Get("Retry-After") + "s")
	clock.Advance(d)
	if resp := call(e.admin); resp.StatusCode != http.StatusOK {
		t.Errorf("the right token after Retry-After = %d", resp.StatusCode)
	}
}

func TestCookiesAreSecureBehindAnHTTPSPublicURL(t *testing.T) {
	for _, tt := range []struct {
		publicURL string
		secure    bool
	}{{"", false}, {"http://127.0.0.1:8787", false}, {"https://connector.example.com", true}} {
		e := newEnv(t, func(_ *credential.Options, w *web.Options) { w.PublicURL = tt.publicURL })
		resp, err := noRedirect(nil).PostForm(e.url+"/signin", url.Values{"token": {e.admin}})
		read(t, resp, err)
		cookies := resp.Cookies()
		if len(cookies) != 1 || cookies[0].Secure != tt.secure || !cookies[0].HttpOnly {
			t.Errorf("public URL %q: cookies %v, want Secure=%v", tt.publicURL, cookies, tt.secure)
		}
	}
	e := newEnv(t)
	if _, err := web.New(web.Options{Manager: e.manager, AdminToken: adminToken, PublicURL: "connector.example.com"}); err == nil ||
		!strings.Contains(err.Error(), "https://") {
		t.Errorf("a public URL without scheme: %v", err)
	}
}

func TestBodiesAreCapped(t *testing.T) {
	e := newEnv(t)
	client, csrf := signedIn(t, e)
	huge := strings.Repeat("N", 5<<20)
	status, body := readForm(t, client, e.url+"/credentials", url.Values{"csrf": {csrf}, "name": {huge}, "client_id": {"x"}})
	if status != http.StatusRequestEntityTooLarge || strings.Contains(body, strings.Repeat("N", 1000)) || !strings.Contains(body, "Form too large") {
		t.Errorf("a 5 MB form = %d (%d bytes back)", status, len(body))
	}
	if status, _ := readForm(t, noRedirect(nil), e.url+"/signin", url.Values{"token": {huge}}); status != http.StatusRequestEntityTooLarge {
		t.Errorf("a 5 MB sign-in = %d", status)
	}
	req, _ := http.NewRequest("POST", e.url+"/api/credentials", strings.NewReader(`{"name":"`+huge+`"}`))
	req.Header.Set("Authorization", "Bearer "+e.admin)
	if status, _ := send(t, http.DefaultClient, req); status != http.StatusRequestEntityTooLarge {
		t.Errorf("a 5 MB API body = %d", status)
	}
}

func TestStaticServesFilesNotListings(t *testing.T) {
	e := newEnv(t)
	for path, want := range map[string]int{"/static/": 404, "/static": 404, "/static/style.css": 200, "/static/scopes.js": 200,
		"/static/nope.css": 404} {
		if status, _ := readGet(t, noRedirect(nil), e.url+path); status != want {
			t.Errorf("GET %s = %d, want %d", path, status, want)
		}
	}
}

var titleRE = regexp.MustCompile(`<title>([^<]*)</title>`)

func TestEveryPageHasATitle(t *testing.T) {
	e := newEnv(t)
	app := e.sandbox.Apps()[0]
	rec, err := e.manager.Create(context.Background(), credential.NewCredential{Name: "titled", ClientID: app.ClientID, ClientSecret: app.ClientSecret,
		APIBaseURL: e.sandbox.URL + "/api/v2", RedirectURI: e.url + "/oauth/callback"})
	if err != nil {
		t.Fatal(err)
	}
	_, signin := readGet(t, noRedirect(nil), e.url+"/signin")
	client, _ := signedIn(t, e)
	pages := map[string]string{"/signin": signin}
	for _, p := range []string{"/", "/credentials/new", "/credentials/" + rec.ID, "/credentials/" + rec.ID + "/delete",
		"/credentials/" + rec.ID + "/revoke", "/credentials/" + rec.ID + "/edit", "/credentials/missing", "/oauth/callback?state=x"} {
		_, pages[p] = readGet(t, client, e.url+p)
	}
	for p, body := range pages {
		m := titleRE.FindStringSubmatch(body)
		if m == nil || !strings.HasSuffix(m[1], " · outreach-connector") || strings.HasPrefix(m[1], " ·") || strings.HasPrefix(m[1], "·") {
			t.Errorf("%s: title %q", p, m)
		}
	}
}

func TestDeleteAndDisconnectAskFirst(t *testing.T) {
	e := newEnv(t)
	f := newFakeOutreach(t)
	rec := connect(t, e, f, "careful")
	client, csrf := signedIn(t, e)
	for _, action := range []string{"revoke", "delete"} {
		resp, err := client.PostForm(e.url+"/credentials/"+rec.ID+"/"+action, url.Values{"csrf": {csrf}})
		read(t, resp, err)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/credentials/"+rec.ID+"/"+action {
			t.Errorf("%s without confirmation = %d to %q, want the confirmation page", action, resp.StatusCode, resp.Header.Get("Location"))
		}
		got, err := e.manager.Get(context.Background(), rec.ID)
		if err != nil || got.Status != credential.StatusConnected {
			t.Fatalf("%s without confirmation changed the credential: %v %v", action, got, err)
		}
		status, page := readGet(t, client, e.url+"/credentials/"+rec.ID+"/"+action)
		if status != 200 || !strings.Contains(page, `name="confirm" value="yes"`) || !strings.Contains(page, "careful") {
			t.Errorf("confirmation page of %s = %d:\n%.1500s", action, status, page)
		}
	}
	if status, _ := readForm(t, client, e.url+"/credentials/"+rec.ID+"/revoke", url.Values{"csrf": {csrf}, "confirm": {"yes"}}); status != http.StatusSeeOther {
		t.Errorf("confirmed disconnect = %d", status)
	}
	if got, _ := e.manager.Get(context.Background(), rec.ID); got.Status != credential.StatusRevoked {
		t.Errorf("after a confirmed disconnect: %s", got.Status)
	}
	if status, _ := readForm(t, client, e.url+"/credentials/"+rec.ID+"/delete", url.Values{"csrf": {csrf}, "confirm": {"yes"}}); status != http.StatusSeeOther {
		t.Errorf("confirmed delete = %d", status)
	}
	if _, err := e.manager.Get(context.Background(), rec.ID); err == nil {
		t.Errorf("the credential survived a confirmed delete")
	}
}

var requestRE = regexp.MustCompile(`name="request" value="([^"]+)"`)

// consent runs the authorize flow over HTTP to the sandbox's consent page
// and answers it with decision; it returns the callback's answer.
func consent(t *testing.T, e *env, client *http.Client, csrf, id, decision string) (*http.Response, string) {
	t.Helper()
	resp, err := client.PostForm(e.url+"/credentials/"+id+"/authorize", url.Values{"csrf": {csrf}})
	read(t, resp, err)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("authorize = %d", resp.StatusCode)
	}
	resp, err = client.Get(resp.Header.Get("Location"))
	_, signin := read(t, resp, err)
	callback := resp.Header.Get("Location") // when the user consented to these scopes before
	if callback == "" {
		m := requestRE.FindStringSubmatch(signin)
		if m == nil {
			t.Fatalf("no sandbox sign-in form: %.500s", signin)
		}
		email, password := e.sandbox.SignInUser()
		readForm(t, client, e.sandbox.URL+"/oauth/sign_in", url.Values{"request": {m[1]}, "email": {email}, "password": {password}})
		resp, err = client.PostForm(e.sandbox.URL+"/oauth/consent", url.Values{"request": {m[1]}, "decision": {decision}})
		read(t, resp, err)
		callback = resp.Header.Get("Location")
	}
	if !strings.HasPrefix(callback, e.url+"/oauth/callback") {
		t.Fatalf("consent answered %d to %q", resp.StatusCode, callback)
	}
	resp, err = client.Get(callback)
	_, body := read(t, resp, err)
	return resp, body
}

func TestDenyPageNamesTheCredentialAndTheNextStep(t *testing.T) {
	e := newEnv(t)
	app := e.sandbox.Apps()[0]
	rec, err := e.manager.Create(context.Background(), credential.NewCredential{Name: "denied one", ClientID: app.ClientID,
		ClientSecret: app.ClientSecret, APIBaseURL: e.sandbox.URL + "/api/v2", RedirectURI: e.url + "/oauth/callback"})
	if err != nil {
		t.Fatal(err)
	}
	client, csrf := signedIn(t, e)
	resp, body := consent(t, e, client, csrf, rec.ID, "deny")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "denied one") || !strings.Contains(body, "Authorization denied") ||
		!strings.Contains(body, `id="authorize"`) || !strings.Contains(body, `href="/credentials/`+rec.ID+`"`) || !strings.Contains(body, "Accept") {
		t.Errorf("deny page = %d:\n%.3000s", resp.StatusCode, body)
	}
	// The credential page shows the failed attempt, not a fresh credential.
	_, page := readGet(t, client, e.url+"/credentials/"+rec.ID)
	if !strings.Contains(page, `id="failed-authorization"`) || !strings.Contains(page, "Deny was clicked") {
		t.Errorf("the credential page does not show the failed authorization:\n%.3000s", page)
	}
	// A successful authorization clears it.
	resp, _ = consent(t, e, client, csrf, rec.ID, "accept")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("accept: %d", resp.StatusCode)
	}
	_, page = readGet(t, client, e.url+"/credentials/"+rec.ID)
	if strings.Contains(page, `id="failed-authorization"`) || !strings.Contains(page, "Connected") {
		t.Errorf("after a successful authorization the page still shows the failure")
	}
}

func TestCredentialPageWarnsAboutDevelopmentApps(t *testing.T) {
	e := newEnv(t)
	client, _ := signedIn(t, e)
	for _, env := range []credential.Environment{credential.Development, credential.Production} {
		rec, err := e.manager.Create(context.Background(), credential.NewCredential{Name: string(env), ClientID: "c", ClientSecret: "s",
			Environment: env, APIBaseURL: e.sandbox.URL + "/api/v2", RedirectURI: e.url + "/oauth/callback"})
		if err != nil {
			t.Fatal(err)
		}
		_, page := readGet(t, client, e.url+"/credentials/"+rec.ID)
		warned := strings.Contains(page, `id="dev-note"`) && strings.Contains(page, "every week") && strings.Contains(page, "first ten")
		if warned != (env == credential.Development) {
			t.Errorf("%s credential: development warning shown = %v", env, warned)
		}
	}
}

// readable counts the listable collections scopes can read, by the rule
// that a read needs <path>.read or <path>.all.
func readable(scopes []string) (n, total int) {
	for _, r := range catalog.Default().Resources() {
		if !r.Ops.List || r.Custom {
			continue
		}
		total++
		if slices.Contains(scopes, r.Path+".read") || slices.Contains(scopes, r.Path+".all") {
			n++
		}
	}
	return n, total
}

func TestScopeFormSaysWhatStreamsItReads(t *testing.T) {
	e := newEnv(t)
	client, csrf := signedIn(t, e)
	_, form := readGet(t, client, e.url+"/credentials/new")
	n, total := readable(credential.DefaultScopes())
	if n == total || !strings.Contains(form, `<strong id="coverage-count">`+itoa(n)+`</strong> of `+itoa(total)+` streams`) {
		t.Errorf("the form does not say the defaults read %d of %d streams", n, total)
	}
	for _, preset := range []string{`value="sync"`, `value="defaults"`, `value="ticked"`} {
		if !strings.Contains(form, preset) {
			t.Errorf("the form lacks the preset %s", preset)
		}
	}
	app := e.sandbox.Apps()[0]
	status, _ := readForm(t, client, e.url+"/credentials", url.Values{"csrf": {csrf}, "name": {"syncer"}, "client_id": {app.ClientID},
		"client_secret": {app.ClientSecret}, "environment": {"production"}, "api_base_url": {e.sandbox.URL + "/api/v2"},
		"redirect_uri": {e.url + "/oauth/callback"}, "scopes": {"prospects.all"}, "preset": {"sync"}})
	if status != http.StatusSeeOther {
		t.Fatalf("create with the sync preset = %d", status)
	}
	rec, _ := e.manager.Get(context.Background(), "syncer")
	if n, total := readable(rec.Scopes); n != total {
		t.Errorf("the sync preset reads %d of %d streams: %v", n, total, rec.Scopes)
	}
	for _, s := range rec.Scopes {
		if !strings.HasSuffix(s, ".read") {
			t.Errorf("the sync preset asks for %s, more than reading", s)
		}
	}
	_, page := readGet(t, client, e.url+"/credentials/"+rec.ID)
	if !strings.Contains(page, itoa(total)+" of "+itoa(total)) {
		t.Errorf("the credential page does not say it reads every stream")
	}
}

// TestReauthorizingWithinAMinuteSaysWait: Outreach mints one token a
// minute per user and app, so authorizing again at once gets a 429 at the
// code exchange; the page says to wait, with Retry-After, not a 400 or 500.
func TestReauthorizingWithinAMinuteSaysWait(t *testing.T) {
	e := newEnv(t)
	app := e.sandbox.Apps()[0]
	rec, err := e.manager.Create(context.Background(), credential.NewCredential{Name: "twice", ClientID: app.ClientID,
		ClientSecret: app.ClientSecret, APIBaseURL: e.sandbox.URL + "/api/v2", RedirectURI: e.url + "/oauth/callback"})
	if err != nil {
		t.Fatal(err)
	}
	client, csrf := signedIn(t, e)
	if resp, _ := consent(t, e, client, csrf, rec.ID, "accept"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first authorization: %d", resp.StatusCode)
	}
	resp, body := consent(t, e, client, csrf, rec.ID, "accept")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(body, "twice") || !strings.Contains(body, "Try again in") {
		t.Errorf("re-authorizing at once = %d (Retry-After %q):\n%.2000s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	_, page := readGet(t, client, e.url+"/credentials/"+rec.ID)
	if !strings.Contains(page, `id="failed-authorization"`) || !strings.Contains(page, "429") {
		t.Errorf("the credential page does not show the failed authorization")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
