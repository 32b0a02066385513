package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/web"
)

// fakeOutreach is a token endpoint and GET /api/v2 whose answers a test
// chooses.
type fakeOutreach struct {
	URL string

	mu   sync.Mutex
	mode string // "ok", "429", "503", "invalid_grant", "hang", "reset"
	n    int
	// secret is the client secret of the latest token request.
	secret string
	stop   chan struct{}
}

func newFakeOutreach(t *testing.T) *fakeOutreach {
	t.Helper()
	f := &fakeOutreach{mode: "ok", stop: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v2", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.api+json")
		fmt.Fprint(w, `{"data":{"type":"org","attributes":{"name":"Fake Org"}},"meta":{"user":{"id":7,"email":"seven@example.com"}}}`)
	})
	mux.HandleFunc("POST /oauth/revoke", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		mode := f.mode
		f.mu.Unlock()
		if mode == "503" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		f.mu.Lock()
		f.secret = r.PostForm.Get("client_secret")
		mode := f.mode
		f.n++
		n := f.n
		f.mu.Unlock()
		switch mode {
		case "429":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "42")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"error":"rate_limit_exceeded","error_description":"one token a minute"}`)
		case "503":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, "<html>maintenance</html>")
		case "invalid_grant":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant","error_description":"The refresh token is revoked"}`)
		case "hang":
			select {
			case <-r.Context().Done():
			case <-f.stop:
			}
		case "reset":
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		default:
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprintf("access-%d", n), "refresh_token": fmt.Sprintf("refresh-%d", n),
				"token_type": "bearer", "expires_in": 7200})
		}
	})
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	t.Cleanup(func() { close(f.stop); hs.Close() })
	f.URL = "http://" + ln.Addr().String()
	return f
}

func (f *fakeOutreach) lastSecret() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.secret
}

func (f *fakeOutreach) set(mode string) {
	f.mu.Lock()
	f.mode = mode
	f.mu.Unlock()
}

// connect imports a credential against the fake Outreach.
func connect(t *testing.T, e *env, f *fakeOutreach, name string) *credential.Record {
	t.Helper()
	rec, err := e.manager.Import(context.Background(), credential.NewCredential{Name: name, ClientID: "cid", ClientSecret: "client-secret-value",
		Environment: credential.Production, APIBaseURL: f.URL + "/api/v2", RedirectURI: e.url + "/oauth/callback",
		Scopes: []string{"prospects.read"}}, "refresh-0")
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// signedIn returns a client with an admin session and the session's CSRF
// token.
func signedIn(t *testing.T, e *env) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := noRedirect(jar)
	if status, _ := readForm(t, client, e.url+"/signin", url.Values{"token": {e.admin}}); status != http.StatusSeeOther {
		t.Fatalf("sign-in = %d", status)
	}
	_, page := readGet(t, client, e.url+"/credentials/new")
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token")
	}
	return client, m[1]
}

// TestUpstreamTroubleIsNeverOur500: every condition of Outreach's token
// endpoint gets a page and an API answer that say what happened, with a
// status that fits.
func TestUpstreamTroubleIsNeverOur500(t *testing.T) {
	f := newFakeOutreach(t)
	e := newEnv(t, func(c *credential.Options, _ *web.Options) {
		// The hang case ends when this client gives up.
		c.HTTPClient = &http.Client{Timeout: 300 * time.Millisecond}
	})
	client, csrf := signedIn(t, e)
	tests := []struct {
		mode       string
		status     int
		retryAfter []string
		page, code string
	}{
		// The fake asks for 42 s; 60 when the manager does not pass that on.
		{"429", http.StatusServiceUnavailable, []string{"42", "60"}, "Try again in", "upstream_rate_limited"},
		{"503", http.StatusBadGateway, []string{"120"}, "server error (503)", "upstream_error"},
		{"hang", http.StatusGatewayTimeout, []string{""}, "did not answer within the time limit", "upstream_timeout"},
		{"reset", http.StatusBadGateway, []string{""}, "connection to Outreach failed", "upstream_unreachable"},
		{"invalid_grant", http.StatusConflict, []string{""}, "authorize the credential again", "needs_reauthorization"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			f.set("ok")
			rec := connect(t, e, f, "c-"+tt.mode)
			f.set(tt.mode)

			resp, err := client.PostForm(e.url+"/credentials/"+rec.ID+"/refresh", url.Values{"csrf": {csrf}})
			status, body := read(t, resp, err)
			if status != tt.status || !strings.Contains(body, tt.page) || !slices.Contains(tt.retryAfter, resp.Header.Get("Retry-After")) {
				t.Errorf("Refresh now page = %d (Retry-After %q), want %d (%q) saying %q:\n%.2000s", status, resp.Header.Get("Retry-After"),
					tt.status, tt.retryAfter, tt.page, body)
			}
			if !strings.Contains(body, `href="/credentials/`+rec.ID+`"`) {
				t.Errorf("the page has no way back to the credential")
			}
			if tt.mode == "invalid_grant" && !strings.Contains(body, `id="authorize"`) {
				t.Errorf("the page does not offer to authorize again")
			}
			if strings.Contains(body, "client-secret-value") || strings.Contains(body, "refresh-") {
				t.Errorf("the page shows a secret")
			}

			if tt.mode == "invalid_grant" {
				return // the credential now needs re-authorization: the API says so below
			}
			req, _ := http.NewRequest("POST", e.url+"/api/credentials/"+rec.ID+"/refresh", nil)
			req.Header.Set("Authorization", "Bearer "+e.admin)
			resp, err = http.DefaultClient.Do(req)
			status, body = read(t, resp, err)
			var answer struct{ Error, Code, Message string }
			json.Unmarshal([]byte(body), &answer)
			if status != tt.status || answer.Code != tt.code || answer.Message == "" || !slices.Contains(tt.retryAfter, resp.Header.Get("Retry-After")) {
				t.Errorf("API refresh = %d %s (Retry-After %q), want %d code %s", status, body, resp.Header.Get("Retry-After"), tt.status, tt.code)
			}
		})
	}
	// A credential Outreach refused answers 409 with what to do, in the API too.
	rec, _ := e.manager.Get(context.Background(), "c-invalid_grant")
	req, _ := http.NewRequest("POST", e.url+"/api/credentials/"+rec.ID+"/refresh", nil)
	req.Header.Set("Authorization", "Bearer "+e.admin)
	resp, err := http.DefaultClient.Do(req)
	status, body := read(t, resp, err)
	if status != http.StatusConflict || !strings.Contains(body, `"code":"needs_reauthorization"`) {
		t.Errorf("API refresh of a refused credential = %d %s", status, body)
	}
	// Its page says why.
	_, page := readGet(t, client, e.url+"/credentials/"+rec.ID)
	if !strings.Contains(page, `id="reauth-reason"`) || !strings.Contains(page, "invalid_grant") {
		t.Errorf("the credential page does not give the reason it needs re-authorization:\n%.3000s", page)
	}
}
