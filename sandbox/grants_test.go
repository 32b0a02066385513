package sandbox_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/sandbox"
)

func TestConsentIsRememberedPerUserAppAndScopes(t *testing.T) {
	other := sandbox.App{Name: "Other Integration", ClientID: "other-client", ClientSecret: "other-secret", RedirectURIs: []string{sandbox.DefaultRedirectURI}}
	first := start(t, sandbox.Options{})
	srv := start(t, sandbox.Options{Apps: []sandbox.App{first.Apps()[0], other}})
	app := srv.Apps()[0]
	authorizeURL := func(app sandbox.App, scopes string) string {
		return srv.URL + "/oauth/authorize?" + url.Values{"client_id": {app.ClientID}, "redirect_uri": {app.RedirectURIs[0]},
			"response_type": {"code"}, "scope": {scopes}, "state": {"s1"}}.Encode()
	}
	b := newBrowser(t, srv)
	if u := b.authorizeApp(app, "prospects.all accounts.read"); u.Query().Get("code") == "" {
		t.Fatalf("first authorization: %s", u)
	}
	tests := []struct {
		name    string
		b       *browser
		app     sandbox.App
		scopes  string
		consent bool // the consent page is shown
	}{
		{"same app and scopes", b, app, "prospects.all accounts.read", false},
		{"same scopes in another order", b, app, "accounts.read prospects.all", false},
		{"fewer scopes", b, app, "accounts.read", false},
		{"a scope more", b, app, "prospects.all accounts.read calls.read", true},
		{"another app", b, other, "accounts.read", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := tt.b.get(authorizeURL(tt.app, tt.scopes))
			switch {
			case tt.consent && (resp.StatusCode != 200 || !strings.Contains(body, `id="accept"`)):
				t.Errorf("got %d %s, want the consent page", resp.StatusCode, resp.Header.Get("Location"))
			case !tt.consent && resp.StatusCode != http.StatusFound:
				t.Errorf("got %d, want a redirect to the app without the consent page", resp.StatusCode)
			case !tt.consent:
				loc, _ := url.Parse(resp.Header.Get("Location"))
				if loc.Query().Get("code") == "" || loc.Query().Get("state") != "s1" {
					t.Errorf("redirect %s, want a code and the state", loc)
				}
				status, tok := postToken(t, srv, codeParams(srv, loc.Query().Get("code")), false)
				if status != 200 || tok.Scope != tt.scopes {
					t.Errorf("exchange: %d %+v, want scopes %q", status, tok, tt.scopes)
				}
				srv.Clock().Advance(time.Minute) // the next grant is not throttled
			}
		})
	}
	// The consent belongs to the user, not the browser session: a fresh
	// browser signs in and goes straight back to the app.
	fresh := newBrowser(t, srv)
	if u := fresh.authorizeApp(app, "accounts.read"); u.Query().Get("code") == "" {
		t.Errorf("fresh browser: %s", u)
	}
	// A user who never consented sees the page.
	resp, body := fresh.get(authorizeURL(app, "prospects.all accounts.read calls.read"))
	if resp.StatusCode != 200 || !strings.Contains(body, `id="accept"`) {
		t.Errorf("scopes never consented: %d, want the consent page", resp.StatusCode)
	}
}

func TestDevelopmentGrantsExpireAfterAWeek(t *testing.T) {
	prod := sandbox.App{Name: "Published App", ClientID: "prod-client", ClientSecret: "prod-secret", RedirectURIs: []string{sandbox.DefaultRedirectURI}, Production: true}
	for _, tt := range []struct {
		name          string
		expire, isDev bool
		wantExpired   bool
	}{
		{"development app with the switch", true, true, true},
		{"production app with the switch", true, false, false},
		{"development app without the switch", false, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			first := start(t, sandbox.Options{})
			dev := first.Apps()[0]
			srv := start(t, sandbox.Options{Prospects: 20, Apps: []sandbox.App{dev, prod}, ExpireDevelopmentGrants: tt.expire,
				AccessTokenTTL: 30 * 24 * time.Hour, RefreshTokenTTL: 30 * 24 * time.Hour})
			app := prod
			if tt.isDev {
				app = dev
			}
			b := newBrowser(t, srv)
			tok := authorizeApp(t, srv, b, app, "prospects.read")
			refresh := func() (int, tokenResponse) {
				return postToken(t, srv, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken},
					"client_id": {app.ClientID}, "client_secret": {app.ClientSecret}}, false)
			}

			srv.Clock().Advance(6 * 24 * time.Hour)
			status, next := refresh()
			if status != 200 {
				t.Fatalf("refresh on day 6: %d %+v", status, next)
			}
			tok = next
			if r := call(t, srv, tok.AccessToken, "GET", "/api/v2/prospects/1", ""); r.status != 200 {
				t.Fatalf("API on day 6: %d %s", r.status, r.body)
			}

			srv.Clock().Advance(24 * time.Hour) // a week since the authorization
			r := call(t, srv, tok.AccessToken, "GET", "/api/v2/prospects/1", "")
			status, next = refresh()
			if !tt.wantExpired {
				if r.status != 200 || status != 200 {
					t.Fatalf("day 7: API %d, refresh %d %+v; want both working", r.status, status, next)
				}
				return
			}
			if r.status != 401 || !strings.Contains(string(r.body), "development app") {
				t.Errorf("API on day 7: %d %s, want 401 saying the development grant expired", r.status, r.body)
			}
			raw := postTokenRaw(t, srv, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken},
				"client_id": {app.ClientID}, "client_secret": {app.ClientSecret}})
			if status != 400 || next.Error != "invalid_grant" || !strings.Contains(raw, "development app") || !strings.Contains(raw, "expired") {
				t.Errorf("refresh on day 7: %d %s, want invalid_grant saying the development grant expired", status, raw)
			}
			// Authorizing again shows the consent page and starts a new week.
			resp, body := b.get(srv.URL + "/oauth/authorize?" + url.Values{"client_id": {app.ClientID}, "redirect_uri": {app.RedirectURIs[0]},
				"response_type": {"code"}, "scope": {"prospects.read"}}.Encode())
			if resp.StatusCode != 200 || !strings.Contains(body, `id="accept"`) || !strings.Contains(body, "development version") {
				t.Fatalf("authorize after expiry: %d, want the consent page with the development warning", resp.StatusCode)
			}
			again := authorizeApp(t, srv, b, app, "prospects.read")
			if r := call(t, srv, again.AccessToken, "GET", "/api/v2/prospects/1", ""); r.status != 200 {
				t.Errorf("API after authorizing again: %d %s", r.status, r.body)
			}
		})
	}
}

func TestIssuedTokensFollowTheDevelopmentRule(t *testing.T) {
	srv := start(t, sandbox.Options{Prospects: 20, ExpireDevelopmentGrants: true, AccessTokenTTL: 30 * 24 * time.Hour})
	tok := token(t, srv)
	srv.Clock().Advance(7*24*time.Hour - time.Second)
	if r := call(t, srv, tok, "GET", "/api/v2/prospects/1", ""); r.status != 200 {
		t.Fatalf("a second before the week: %d", r.status)
	}
	srv.Clock().Advance(time.Second)
	if r := call(t, srv, tok, "GET", "/api/v2/prospects/1", ""); r.status != 401 {
		t.Errorf("after the week: %d, want 401", r.status)
	}
}

// postTokenRaw posts a form to the token endpoint and returns the body.
func postTokenRaw(t *testing.T, srv *sandbox.Server, params url.Values) string {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+"/oauth/token", strings.NewReader(params.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return string(send(t, req).body)
}
