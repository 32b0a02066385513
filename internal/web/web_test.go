package web_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
	"github.com/outreach-connector/outreach-connector/internal/sqlstore"
	"github.com/outreach-connector/outreach-connector/internal/web"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

const adminToken = "admin-token-for-tests-0123456789"

type env struct {
	url     string
	admin   string
	sandbox *sandbox.Server
	manager *credential.Manager
}

// newEnv serves the web UI on a loopback port with a sandbox whose app
// redirects to it; tweaks adjust the options before the server is built.
func newEnv(t *testing.T, tweaks ...func(*credential.Options, *web.Options)) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	sb, err := sandbox.Start("", sandbox.Options{Prospects: 20, RedirectURI: base + "/oauth/callback"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "web.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	keys, _ := credential.GenerateKeyring()
	copts := credential.Options{Store: db, Keyring: keys}
	wopts := web.Options{AdminToken: adminToken, CallbackURL: base + "/oauth/callback",
		Defaults: credential.NewCredential{APIBaseURL: sb.URL + "/api/v2"}}
	for _, tweak := range tweaks {
		tweak(&copts, &wopts)
	}
	m, err := credential.NewManager(copts)
	if err != nil {
		t.Fatal(err)
	}
	wopts.Manager = m
	srv, err := web.New(wopts)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return &env{url: base, admin: adminToken, sandbox: sb, manager: m}
}

func noRedirect(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func read(t *testing.T, resp *http.Response, err error) (int, string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func TestEveryNonPublicRouteNeedsTheAdmin(t *testing.T) {
	e := newEnv(t)
	client := noRedirect(nil)
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/", http.StatusSeeOther},
		{"GET", "/credentials", http.StatusSeeOther},
		{"GET", "/credentials/new", http.StatusSeeOther},
		{"GET", "/credentials/x", http.StatusSeeOther},
		{"POST", "/credentials", http.StatusUnauthorized},
		{"POST", "/credentials/x/authorize", http.StatusUnauthorized},
		{"POST", "/credentials/x/delete", http.StatusUnauthorized},
		{"GET", "/api/credentials", http.StatusUnauthorized},
		{"POST", "/api/credentials", http.StatusUnauthorized},
		{"DELETE", "/api/credentials/x", http.StatusUnauthorized},
		{"GET", "/healthz", http.StatusOK},
		{"GET", "/signin", http.StatusOK},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, e.url+tt.path, strings.NewReader("{}"))
		status, _ := send(t, client, req)
		if status != tt.want {
			t.Errorf("%s %s without sign-in = %d, want %d", tt.method, tt.path, status, tt.want)
		}
	}
	req, _ := http.NewRequest("GET", e.url+"/api/credentials", nil)
	req.Header.Set("Authorization", "Bearer wrong-token-wrong-token")
	if status, _ := send(t, client, req); status != http.StatusUnauthorized {
		t.Errorf("API with a wrong token = %d", status)
	}
}

func TestSignInCSRFAndOpenRedirects(t *testing.T) {
	e := newEnv(t)
	jar, _ := cookiejar.New(nil)
	client := noRedirect(jar)
	status, _ := readForm(t, client, e.url+"/signin", url.Values{"token": {"nope"}})
	if status != http.StatusUnauthorized {
		t.Errorf("wrong admin token: %d", status)
	}
	resp, err := client.PostForm(e.url+"/signin", url.Values{"token": {e.admin}, "next": {"//evil.example/x"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); loc != "/" {
		t.Errorf("sign-in with next=//evil.example redirected to %q, want /", loc)
	}
	_, page := readGet(t, client, e.url+"/credentials/new")
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token on the form")
	}
	app := e.sandbox.Apps()[0]
	form := url.Values{"name": {"c1"}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "environment": {"development"},
		"api_base_url": {e.sandbox.URL + "/api/v2"}, "redirect_uri": {e.url + "/oauth/callback"}, "scopes": {"prospects.read"}}
	if status, _ := readForm(t, client, e.url+"/credentials", form); status != http.StatusForbidden {
		t.Errorf("POST without CSRF token = %d, want 403", status)
	}
	form.Set("csrf", m[1])
	resp, err = client.PostForm(e.url+"/credentials", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/credentials/") {
		t.Fatalf("create = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, show := readGet(t, client, e.url+resp.Header.Get("Location"))
	form2 := url.Values{"name": {"ro"}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "environment": {"production"},
		"api_base_url": {e.sandbox.URL + "/api/v2"}, "redirect_uri": {e.url + "/oauth/callback"}, "scopes": {"prospects.all"},
		"preset": {"read-only"}, "csrf": {m[1]}}
	if status, _ := readForm(t, client, e.url+"/credentials", form2); status != http.StatusSeeOther {
		t.Errorf("create with the read-only preset = %d", status)
	}
	if ro, err := e.manager.Get(context.Background(), "ro"); err != nil || slices.Contains(ro.Scopes, "prospects.all") || !slices.Contains(ro.Scopes, "prospects.read") {
		t.Errorf("read-only preset scopes = %v, %v", ro.Scopes, err)
	}
	if strings.Contains(show, app.ClientSecret) || !strings.Contains(show, "Awaiting authorization") {
		t.Errorf("credential page shows the secret or lacks the status")
	}
	form.Set("name", "c1")
	if status, body := readForm(t, client, e.url+"/credentials", form); status != http.StatusConflict || strings.Contains(body, app.ClientSecret) {
		t.Errorf("duplicate name = %d; the form must not echo the secret", status)
	}
	// GET /credentials, where a reader of /credentials/ID looks for the
	// list, is the list.
	if status, list := readGet(t, client, e.url+"/credentials"); status != http.StatusOK || !strings.Contains(list, ">c1<") {
		t.Errorf("GET /credentials signed in = %d; want the list naming c1:\n%.300s", status, list)
	}
	// A callback with a forged state changes nothing and says why.
	status, body := readGet(t, client, e.url+"/oauth/callback?state=dev.forged&code=x")
	if status != http.StatusBadRequest || !strings.Contains(body, "Start again") {
		t.Errorf("forged callback = %d", status)
	}
}

func TestJSONAPI(t *testing.T) {
	e := newEnv(t)
	app := e.sandbox.Apps()[0]
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, e.url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e.admin)
		req.Header.Set("Content-Type", "application/json")
		return send(t, http.DefaultClient, req)
	}
	status, body := do("POST", "/api/credentials", `{"name":"api","client_id":"`+app.ClientID+`","client_secret":"`+app.ClientSecret+
		`","environment":"production","api_base_url":"`+e.sandbox.URL+`/api/v2"}`)
	if status != http.StatusCreated || strings.Contains(body, app.ClientSecret) || !strings.Contains(body, `"status":"awaiting_authorization"`) {
		t.Fatalf("create = %d %s", status, body)
	}
	id := regexp.MustCompile(`"id":"([0-9a-f]+)"`).FindStringSubmatch(body)[1]
	tests := []struct {
		method, path, body string
		want               int
		contains           string
	}{
		{"GET", "/api/credentials", "", 200, `"name":"api"`},
		{"GET", "/api/credentials/" + id, "", 200, `"redirect_uri":"` + e.url + `/oauth/callback"`},
		{"GET", "/api/credentials/missing", "", 404, "not found"},
		{"POST", "/api/credentials", `{"name":"api","client_id":"x","client_secret":"y"}`, 409, "exists"},
		{"POST", "/api/credentials", `{"name":"bad","scopes":["everything"]}`, 422, "client id is required"},
		{"POST", "/api/credentials", `{"name":"x","shoe":1}`, 400, "unknown field"},
		{"POST", "/api/credentials/" + id + "/refresh", "", 409, "re-authorization"},
		{"DELETE", "/api/credentials/" + id, "", 204, ""},
		{"GET", "/api/credentials/" + id, "", 404, ""},
	}
	for _, tt := range tests {
		status, body := do(tt.method, tt.path, tt.body)
		if status != tt.want || !strings.Contains(body, tt.contains) {
			t.Errorf("%s %s = %d %.200s, want %d containing %q", tt.method, tt.path, status, body, tt.want, tt.contains)
		}
	}
	_ = time.Now
}

func send(t *testing.T, c *http.Client, req *http.Request) (int, string) {
	t.Helper()
	resp, err := c.Do(req)
	return read(t, resp, err)
}

func readForm(t *testing.T, c *http.Client, u string, form url.Values) (int, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	return read(t, resp, err)
}

func readGet(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	return read(t, resp, err)
}

// Two nodes on one app database: a session signed in on one is known to
// the other, its form token included, and signing out on one ends it on
// both.
func TestSessionsSharedBetweenNodes(t *testing.T) {
	var opts *web.Options
	e := newEnv(t, func(c *credential.Options, w *web.Options) {
		w.Sessions = c.Store.(interface{ Sessions() *sqlstore.Sessions }).Sessions()
		opts = w
	})
	other, err := web.New(*opts)
	if err != nil {
		t.Fatal(err)
	}
	b := httptest.NewServer(other)
	t.Cleanup(b.Close)
	client, csrf := signedIn(t, e) // on the first node
	if status, _ := readGet(t, client, b.URL+"/credentials/new"); status != http.StatusOK {
		t.Fatalf("the other node: %d; want the signed-in page", status)
	}
	if status, _ := readForm(t, client, b.URL+"/signout", url.Values{"csrf": {csrf}}); status != http.StatusSeeOther {
		t.Fatalf("sign out on the other node with the first node's form token: %d", status)
	}
	if status, _ := readGet(t, client, e.url+"/credentials/new"); status != http.StatusSeeOther {
		t.Errorf("signed out on one node, still signed in on the other: %d", status)
	}
}
