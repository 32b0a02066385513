package sandbox_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/sandbox"
)

// browser walks the authorize flow like a person: it follows the sign-in
// and consent forms and stops at the redirect to the app.
type browser struct {
	t      *testing.T
	srv    *sandbox.Server
	client *http.Client
}

func newBrowser(t *testing.T, srv *sandbox.Server) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, srv: srv, client: &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), srv.URL) {
			return nil
		}
		return http.ErrUseLastResponse // the app's redirect URI: stop here
	}}}
}

var requestField = regexp.MustCompile(`name="request" value="([^"]+)"`)

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) get(u string) (*http.Response, string) {
	req, _ := http.NewRequest("GET", u, nil)
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) (*http.Response, string) {
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func authorizeURL(srv *sandbox.Server, extra url.Values) string {
	app := srv.Apps()[0]
	v := url.Values{"client_id": {app.ClientID}, "redirect_uri": {app.RedirectURIs[0]}, "response_type": {"code"},
		"scope": {"prospects.all accounts.read"}, "state": {"st-123"}}
	for k, x := range extra {
		v[k] = x
	}
	return srv.URL + "/oauth/authorize?" + v.Encode()
}

// authorize signs in as user 1 and answers the consent page; it returns
// the redirect the app receives.
func (b *browser) authorize(extra url.Values, decision string) *url.URL {
	b.t.Helper()
	return b.answer(authorizeURL(b.srv, extra), decision)
}

// authorizeApp authorizes app for scopes, accepting the consent page when
// it is shown (a user who already consented goes straight back).
func (b *browser) authorizeApp(app sandbox.App, scopes string) *url.URL {
	b.t.Helper()
	v := url.Values{"client_id": {app.ClientID}, "redirect_uri": {app.RedirectURIs[0]}, "response_type": {"code"},
		"scope": {scopes}, "state": {"st-app"}}
	return b.answer(b.srv.URL+"/oauth/authorize?"+v.Encode(), "accept")
}

// answer opens an authorize URL, signs in when asked, and answers the
// consent page with decision when it is shown.
func (b *browser) answer(authorize, decision string) *url.URL {
	b.t.Helper()
	resp, body := b.get(authorize)
	if resp.StatusCode == http.StatusFound {
		return b.location(resp)
	}
	if resp.StatusCode != 200 {
		b.t.Fatalf("authorize page: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(body, `id="sign-in"`) {
		m := requestField.FindStringSubmatch(body)
		email, password := b.srv.SignInUser()
		resp, body = b.post(b.srv.URL+"/oauth/sign_in", url.Values{"request": {m[1]}, "email": {email}, "password": {password}})
		if resp.StatusCode == http.StatusFound {
			return b.location(resp)
		}
		if resp.StatusCode != 200 || !strings.Contains(body, `id="accept"`) {
			b.t.Fatalf("after sign-in: %d %s", resp.StatusCode, body)
		}
	}
	m := requestField.FindStringSubmatch(body)
	resp, body = b.post(b.srv.URL+"/oauth/consent", url.Values{"request": {m[1]}, "decision": {decision}})
	if resp.StatusCode != http.StatusFound {
		b.t.Fatalf("consent answer: %d %s", resp.StatusCode, body)
	}
	return b.location(resp)
}

func (b *browser) location(resp *http.Response) *url.URL {
	b.t.Helper()
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		b.t.Fatal(err)
	}
	return u
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	CreatedAt    int64  `json:"created_at"`
	Error        string `json:"error"`
}

func postToken(t *testing.T, srv *sandbox.Server, params url.Values, asJSON bool) (int, tokenResponse) {
	t.Helper()
	var req *http.Request
	if asJSON {
		m := map[string]string{}
		for k := range params {
			m[k] = params.Get(k)
		}
		raw, _ := json.Marshal(m)
		req, _ = http.NewRequest("POST", srv.URL+"/oauth/token", strings.NewReader(string(raw)))
		req.Header.Set("Content-Type", "application/json")
	} else {
		req, _ = http.NewRequest("POST", srv.URL+"/oauth/token", strings.NewReader(params.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	r := send(t, req)
	var tr tokenResponse
	if err := json.Unmarshal(r.body, &tr); err != nil {
		t.Fatalf("token response %d %s: %v", r.status, r.body, err)
	}
	return r.status, tr
}

func codeParams(srv *sandbox.Server, code string) url.Values {
	app := srv.Apps()[0]
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {app.ClientID},
		"client_secret": {app.ClientSecret}, "redirect_uri": {app.RedirectURIs[0]}}
}

func refreshParams(srv *sandbox.Server, rt string) url.Values {
	app := srv.Apps()[0]
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}}
}

func TestAuthorizeAcceptExchangeAndIntrospect(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		t.Run(map[bool]string{false: "form", true: "json"}[asJSON], func(t *testing.T) {
			srv := start(t, sandbox.Options{})
			b := newBrowser(t, srv)
			got := b.authorize(nil, "accept")
			if got.Query().Get("state") != "st-123" || got.Query().Get("code") == "" {
				t.Fatalf("redirect = %s, want code and state=st-123", got)
			}
			if want := srv.Apps()[0].RedirectURIs[0]; !strings.HasPrefix(got.String(), want+"?") {
				t.Errorf("redirect = %s, want it to start with %s", got, want)
			}
			status, tok := postToken(t, srv, codeParams(srv, got.Query().Get("code")), asJSON)
			if status != 200 {
				t.Fatalf("token exchange: %d %+v", status, tok)
			}
			if tok.TokenType != "bearer" || tok.ExpiresIn != 7200 || tok.Scope != "prospects.all accounts.read" || tok.RefreshToken == "" || tok.CreatedAt != srv.Clock().Now().Unix() {
				t.Errorf("token = %+v, want bearer, 7200 s, the requested scopes and created_at now", tok)
			}
			r := call(t, srv, tok.AccessToken, "GET", "/api/v2", "")
			var info struct {
				Meta struct {
					Scopes []string `json:"scopes"`
					User   struct {
						ID    int64  `json:"id"`
						Email string `json:"email"`
					} `json:"user"`
					Token struct {
						ExpiresAt string `json:"expiresAt"`
					} `json:"token"`
				} `json:"meta"`
			}
			json.Unmarshal(r.body, &info)
			email, _ := srv.SignInUser()
			if r.status != 200 || info.Meta.User.ID != 1 || info.Meta.User.Email != email || len(info.Meta.Scopes) != 2 || info.Meta.Token.ExpiresAt == "" {
				t.Errorf("GET /api/v2 = %d %s, want user 1 (%s), 2 scopes and an expiry", r.status, r.body, email)
			}
		})
	}
}

func TestAuthorizeRejections(t *testing.T) {
	srv := start(t, sandbox.Options{})
	app := srv.Apps()[0]
	tests := []struct {
		name         string
		extra        url.Values
		wantStatus   int    // page status when the sandbox must not redirect
		wantRedirErr string // error= on the redirect otherwise
	}{
		{"unknown client", url.Values{"client_id": {"nope"}}, 400, ""},
		{"unregistered redirect uri", url.Values{"redirect_uri": {"http://evil.example/cb"}}, 400, ""},
		{"redirect uri prefix only", url.Values{"redirect_uri": {app.RedirectURIs[0] + "/more"}}, 400, ""},
		{"unknown scope", url.Values{"scope": {"prospects.all nonsense.read"}}, 0, "invalid_scope"},
		{"token response type", url.Values{"response_type": {"token"}}, 0, "unsupported_response_type"},
		{"plain pkce", url.Values{"code_challenge": {"abc"}, "code_challenge_method": {"plain"}}, 0, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBrowser(t, srv)
			resp, body := b.get(authorizeURL(srv, tt.extra))
			if tt.wantStatus != 0 {
				if resp.StatusCode != tt.wantStatus || resp.Header.Get("Location") != "" {
					t.Errorf("status = %d location %q, want %d without redirect (%s)", resp.StatusCode, resp.Header.Get("Location"), tt.wantStatus, body)
				}
				return
			}
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || loc.Query().Get("error") != tt.wantRedirErr || loc.Query().Get("state") != "st-123" {
				t.Errorf("got %d to %s, want a redirect with error=%s and the state", resp.StatusCode, loc, tt.wantRedirErr)
			}
		})
	}
}

func TestDenyAndWrongPassword(t *testing.T) {
	srv := start(t, sandbox.Options{})
	b := newBrowser(t, srv)
	_, body := b.get(authorizeURL(srv, nil))
	m := requestField.FindStringSubmatch(body)
	email, _ := srv.SignInUser()
	resp, body := b.post(srv.URL+"/oauth/sign_in", url.Values{"request": {m[1]}, "email": {email}, "password": {"wrong"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Invalid email or password") {
		t.Errorf("wrong password: %d, want 401 with a message", resp.StatusCode)
	}
	got := b.authorize(nil, "deny")
	if got.Query().Get("error") != "access_denied" || got.Query().Get("state") != "st-123" || got.Query().Get("code") != "" {
		t.Errorf("deny redirect = %s, want error=access_denied with the state and no code", got)
	}
}

func TestCodeRules(t *testing.T) {
	srv := start(t, sandbox.Options{MintInterval: -1})
	app := srv.Apps()[0]
	tests := []struct {
		name   string
		modify func(v url.Values)
		want   string
		status int
	}{
		{"wrong redirect uri", func(v url.Values) { v.Set("redirect_uri", app.RedirectURIs[0]+"x") }, "invalid_grant", 400},
		{"wrong secret", func(v url.Values) { v.Set("client_secret", "x") }, "invalid_client", 401},
		{"unknown grant", func(v url.Values) { v.Set("grant_type", "password") }, "unsupported_grant_type", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := newBrowser(t, srv).authorize(nil, "accept").Query().Get("code")
			p := codeParams(srv, code)
			tt.modify(p)
			status, tok := postToken(t, srv, p, false)
			if status != tt.status || tok.Error != tt.want {
				t.Errorf("got %d %q, want %d %q", status, tok.Error, tt.status, tt.want)
			}
		})
	}
	t.Run("secret sent without url-encoding", func(t *testing.T) {
		code := newBrowser(t, srv).authorize(nil, "accept").Query().Get("code")
		raw := "grant_type=authorization_code&code=" + code + "&client_id=" + app.ClientID + "&client_secret=" + app.ClientSecret +
			"&redirect_uri=" + url.QueryEscape(app.RedirectURIs[0])
		req, _ := http.NewRequest("POST", srv.URL+"/oauth/token", strings.NewReader(raw))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if r := send(t, req); r.status != 401 && r.status != 400 {
			t.Errorf("unencoded secret %q: %d %s, want a failure", app.ClientSecret, r.status, r.body)
		}
	})
	t.Run("code is single use and replay revokes", func(t *testing.T) {
		code := newBrowser(t, srv).authorize(nil, "accept").Query().Get("code")
		status, first := postToken(t, srv, codeParams(srv, code), false)
		if status != 200 {
			t.Fatalf("first exchange: %d", status)
		}
		if status, tok := postToken(t, srv, codeParams(srv, code), false); status != 400 || tok.Error != "invalid_grant" {
			t.Errorf("replay: %d %q, want 400 invalid_grant", status, tok.Error)
		}
		if r := call(t, srv, first.AccessToken, "GET", "/api/v2", ""); r.status != 401 {
			t.Errorf("token from a replayed code: %d, want 401", r.status)
		}
	})
	t.Run("code expires after ten minutes", func(t *testing.T) {
		code := newBrowser(t, srv).authorize(nil, "accept").Query().Get("code")
		srv.Clock().Advance(11 * time.Minute)
		if status, tok := postToken(t, srv, codeParams(srv, code), false); status != 400 || tok.Error != "invalid_grant" {
			t.Errorf("expired code: %d %q, want 400 invalid_grant", status, tok.Error)
		}
	})
	t.Run("pkce", func(t *testing.T) {
		verifier := "a-long-enough-code-verifier-of-at-least-43-characters-xyz"
		sum := sha256.Sum256([]byte(verifier))
		challenge := base64.RawURLEncoding.EncodeToString(sum[:])
		for _, tc := range []struct {
			verifier string
			want     int
		}{{"wrong-verifier", 400}, {verifier, 200}} {
			code := newBrowser(t, srv).authorize(url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}}, "accept").Query().Get("code")
			p := codeParams(srv, code)
			p.Set("code_verifier", tc.verifier)
			if status, tok := postToken(t, srv, p, false); status != tc.want {
				t.Errorf("verifier %q: %d %+v, want %d", tc.verifier, status, tok, tc.want)
			}
		}
	})
}

func TestRefreshRotationExpiryAndThrottle(t *testing.T) {
	tests := []struct {
		name        string
		keepRotated bool
		wantOldOK   bool
	}{
		{"rotation revokes the old token", false, false},
		{"old token kept when switched", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t, sandbox.Options{KeepRotatedRefreshTokens: tt.keepRotated})
			_, rt, err := srv.IssueToken(1)
			if err != nil {
				t.Fatal(err)
			}
			if status, tok := postToken(t, srv, refreshParams(srv, rt), false); status != 429 {
				t.Fatalf("refresh within the minute: %d %+v, want 429", status, tok)
			}
			srv.Clock().Advance(61 * time.Second)
			status, tok := postToken(t, srv, refreshParams(srv, rt), false)
			if status != 200 || tok.RefreshToken == "" || tok.RefreshToken == rt {
				t.Fatalf("refresh: %d %+v, want a new refresh token", status, tok)
			}
			srv.Clock().Advance(61 * time.Second)
			status, _ = postToken(t, srv, refreshParams(srv, rt), false)
			if got := status == 200; got != tt.wantOldOK {
				t.Errorf("reusing the old refresh token: %d, want ok=%v", status, tt.wantOldOK)
			}
			srv.Clock().Advance(15 * 24 * time.Hour)
			if status, tok2 := postToken(t, srv, refreshParams(srv, tok.RefreshToken), false); status != 400 || tok2.Error != "invalid_grant" {
				t.Errorf("refresh token after 15 days: %d %q, want 400 invalid_grant", status, tok2.Error)
			}
			if r := call(t, srv, tok.AccessToken, "GET", "/api/v2", ""); r.status != 401 {
				t.Errorf("access token after 15 days: %d, want 401", r.status)
			}
			c := srv.Counters()
			if c.TokenThrottled != 1 || c.Refreshes < 1 {
				t.Errorf("counters = %+v, want 1 throttled and refreshes counted", c)
			}
		})
	}
}

func TestRefreshTokenCap(t *testing.T) {
	srv := start(t, sandbox.Options{MaxRefreshTokens: 3, KeepRotatedRefreshTokens: true, MintInterval: -1})
	var rts []string
	for range 4 {
		_, rt, err := srv.IssueToken(1)
		if err != nil {
			t.Fatal(err)
		}
		rts = append(rts, rt)
	}
	for i, rt := range rts {
		status, _ := postToken(t, srv, refreshParams(srv, rt), false)
		// The first token was pushed out by the fourth; refreshing mints more,
		// which pushes out the next oldest, so only the newest survive.
		if i == 0 && status != 400 {
			t.Errorf("oldest refresh token: %d, want 400 (revoked by the cap)", status)
		}
		if i == 3 && status != 200 {
			t.Errorf("newest refresh token: %d, want 200", status)
		}
	}
}

func TestRevoke(t *testing.T) {
	srv := start(t, sandbox.Options{MintInterval: -1})
	access, rt, _ := srv.IssueToken(1)
	app := srv.Apps()[0]
	form := url.Values{"token": {rt}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}}
	req, _ := http.NewRequest("POST", srv.URL+"/oauth/revoke", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := send(t, req); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if status, _ := postToken(t, srv, refreshParams(srv, rt), false); status != 400 {
		t.Errorf("revoked refresh token: %d, want 400", status)
	}
	if r := call(t, srv, access, "GET", "/api/v2", ""); r.status != 401 {
		t.Errorf("access token of a revoked refresh token: %d, want 401", r.status)
	}
}
