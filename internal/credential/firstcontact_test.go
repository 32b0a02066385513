package credential_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/sqlstore"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// A request to the callback without the browser's cookie (a prefetch, a
// copied link, an attacker) must not use up the state: the real browser's
// callback still completes.
func TestCallbackFromAnotherBrowserDoesNotBurnTheState(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	ctx := context.Background()
	e.create(t, "c")
	authURL, browser, err := e.manager.BeginAuthorize(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	cb := consent(t, e.srv, authURL, "accept")
	state, code := cb.Query().Get("state"), cb.Query().Get("code")
	for _, other := range []string{"", "someone-else"} {
		if _, err := e.manager.CompleteAuthorize(ctx, state, code, "", other); !errors.Is(err, credential.ErrBadState) {
			t.Fatalf("callback with browser %q: %v, want ErrBadState", other, err)
		}
	}
	rec, err := e.manager.CompleteAuthorize(ctx, state, code, "", browser)
	if err != nil || rec.Status != credential.StatusConnected {
		t.Fatalf("the real browser's callback after a cookie-less one: %v, want connected", err)
	}
}

// The tokens are stored before the identity lookup: a failing GET /api/v2
// does not lose a freshly minted refresh token, and the identity is
// looked up again later.
func TestIdentityLookupFailureKeepsTheNewTokens(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	ctx := context.Background()
	e.create(t, "auth")
	authURL, browser, err := e.manager.BeginAuthorize(ctx, "auth")
	if err != nil {
		t.Fatal(err)
	}
	cb := consent(t, e.srv, authURL, "accept")
	e.srv.SetFaults(sandbox.Faults{ServerErrors: 1}) // every API call fails; the token endpoint works
	rec, err := e.manager.CompleteAuthorize(ctx, cb.Query().Get("state"), cb.Query().Get("code"), "", browser)
	if err != nil {
		t.Fatalf("CompleteAuthorize with a failing identity lookup: %v; want the tokens kept", err)
	}
	if rec.Status != credential.StatusConnected || rec.OutreachUserID != "" {
		t.Errorf("after authorization: status %s, user %q; want connected, identity not known yet", rec.Status, rec.OutreachUserID)
	}
	if refresh, _ := e.manager.RefreshTokenForTest(ctx, rec.ID); refresh == "" {
		t.Error("the refresh token was not stored")
	}

	// Import: the same.
	e.srv.Clock().Advance(2 * time.Minute)
	_, handed, err := e.srv.IssueToken(3)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Clock().Advance(2 * time.Minute)
	app := e.srv.Apps()[0]
	imp, err := e.manager.Import(ctx, credential.NewCredential{Name: "imp", ClientID: app.ClientID, ClientSecret: app.ClientSecret,
		Environment: credential.Production, APIBaseURL: e.srv.URL + "/api/v2", RedirectURI: app.RedirectURIs[0]}, handed)
	if err != nil || imp.Status != credential.StatusConnected {
		t.Fatalf("Import with a failing identity lookup: %v; want connected", err)
	}

	e.srv.SetFaults(sandbox.Faults{})
	if _, err := e.manager.KeepAlive(ctx, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	for name, user := range map[string]string{"auth": "1", "imp": "3"} {
		got, _ := e.manager.Get(ctx, name)
		if got.OutreachUserID != user || got.OutreachUserEmail == "" {
			t.Errorf("%s after KeepAlive: user %q %q, want user %s", name, got.OutreachUserID, got.OutreachUserEmail, user)
		}
	}
}

// Import within a minute of minting (token endpoint 429) keeps nothing,
// revokes nothing, and says to try again; the same token works a minute
// later under the same name. A token that does not work leaves the name
// free too.
func TestImportIsAllOrNothingAndNeverRevokes(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	ctx := context.Background()
	app := e.srv.Apps()[0]
	n := credential.NewCredential{Name: "tap", ClientID: app.ClientID, ClientSecret: app.ClientSecret, Environment: credential.Production,
		APIBaseURL: e.srv.URL + "/api/v2", RedirectURI: app.RedirectURIs[0]}
	_, handed, err := e.srv.IssueToken(1)
	if err != nil {
		t.Fatal(err)
	}
	for try := range 2 {
		_, err := e.manager.Import(ctx, n, handed)
		if !errors.Is(err, credential.ErrTryLater) || !strings.Contains(err.Error(), "try again in") || strings.Contains(err.Error(), handed) {
			t.Fatalf("import %d within a minute of minting: %v; want ErrTryLater saying to try again", try+1, err)
		}
		if _, err := e.manager.Get(ctx, "tap"); !errors.Is(err, credential.ErrNotFound) {
			t.Fatalf("a failed import left a credential behind: %v", err)
		}
	}
	e.srv.Clock().Advance(61 * time.Second)
	rec, err := e.manager.Import(ctx, n, handed)
	if err != nil || rec.Status != credential.StatusConnected {
		t.Fatalf("import a minute later: %v; the handed token must still work", err)
	}
	n.Name = "bogus"
	for range 2 {
		if _, err := e.manager.Import(ctx, n, "not-a-token"); err == nil || errors.Is(err, credential.ErrNameTaken) ||
			!strings.Contains(err.Error(), "does not work") {
			t.Fatalf("import of a bogus token: %v; want 'does not work', and the name free for a retry", err)
		}
	}
}

// failingRevoke fails POST /oauth/revoke while on.
type failingRevoke struct{ on atomic.Bool }

func (f *failingRevoke) RoundTrip(req *http.Request) (*http.Response, error) {
	if f.on.Load() && strings.HasSuffix(req.URL.Path, "/oauth/revoke") {
		return nil, errors.New("connection reset by peer")
	}
	return http.DefaultTransport.RoundTrip(req)
}

func TestFailedRevokeKeepsTheTokens(t *testing.T) {
	e := newEnv(t, sandbox.Options{MintInterval: -1})
	ctx := context.Background()
	rt := &failingRevoke{}
	m, err := credential.NewManager(credential.Options{Store: e.db, Keyring: e.keys, Now: e.srv.Clock().Now, HTTPClient: &http.Client{Transport: rt}})
	if err != nil {
		t.Fatal(err)
	}
	e.manager = m
	rec := e.authorize(t, e.create(t, "r").Name)
	rt.on.Store(true)
	for name, op := range map[string]func() error{
		"revoke": func() error { return m.Revoke(ctx, "r") },
		"delete": func() error { return m.Delete(ctx, "r") },
	} {
		err := op()
		if !errors.Is(err, credential.ErrRevokeFailed) || !strings.Contains(err.Error(), "connection reset") {
			t.Errorf("%s while the revoke fails: %v; want ErrRevokeFailed with the reason", name, err)
		}
		got, gerr := m.Get(ctx, "r")
		if gerr != nil || got.Status != credential.StatusConnected {
			t.Fatalf("after a failed %s: %v, status %v; want the credential kept, connected", name, gerr, got)
		}
		if _, err := m.Token(ctx, rec.ID); err != nil {
			t.Errorf("after a failed %s the tokens are gone: %v", name, err)
		}
	}
	if events, _ := m.Events(ctx, rec.ID, 1); len(events) != 1 || events[0].Kind != "revoke_failed" {
		t.Errorf("events = %+v, want revoke_failed", events)
	}
	rt.on.Store(false)
	if err := m.Revoke(ctx, "r"); err != nil {
		t.Fatalf("retried revoke: %v", err)
	}
	if got, _ := m.Get(ctx, "r"); got.Status != credential.StatusRevoked {
		t.Errorf("after the retried revoke: %s", got.Status)
	}

	// RevokeLocally forgets the tokens without Outreach: they still work there.
	local := e.authorize(t, e.create(t, "local").Name)
	access, _ := m.Token(ctx, local.ID)
	rt.on.Store(true)
	if err := m.RevokeLocally(ctx, "local"); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Get(ctx, "local"); got.Status != credential.StatusRevoked {
		t.Errorf("after RevokeLocally: %s", got.Status)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v2", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	req.Header.Set("Content-Type", "application/vnd.api+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("the locally revoked token at Outreach: %v %v; want still valid", err, resp)
	}
	resp.Body.Close()
}

// revokeAtSandbox revokes the credential's refresh token at the sandbox,
// as Outreach does when it expires a development app's grant.
func revokeAtSandbox(t *testing.T, e *env, id string) {
	t.Helper()
	refresh, err := e.manager.RefreshTokenForTest(context.Background(), id)
	if err != nil || refresh == "" {
		t.Fatalf("no refresh token: %v", err)
	}
	app := e.srv.Apps()[0]
	resp, err := http.PostForm(e.srv.URL+"/oauth/revoke", url.Values{"token": {refresh}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke at the sandbox: %v %v", err, resp)
	}
	resp.Body.Close()
}

func TestRevokedGrantNeedsReauthorizationWithAReason(t *testing.T) {
	e := newEnv(t, sandbox.Options{MintInterval: -1})
	ctx := context.Background()
	dev := e.authorize(t, e.create(t, "dev").Name)
	app := e.srv.Apps()[0]
	prod, err := e.manager.Create(ctx, credential.NewCredential{Name: "prod", ClientID: app.ClientID, ClientSecret: app.ClientSecret,
		Environment: credential.Production, APIBaseURL: e.srv.URL + "/api/v2", RedirectURI: app.RedirectURIs[0]})
	if err != nil {
		t.Fatal(err)
	}
	e.authorize(t, prod.Name)
	for _, id := range []string{dev.ID, prod.ID} {
		revokeAtSandbox(t, e, id)
	}
	e.srv.Clock().Advance(2 * time.Hour)
	for _, tc := range []struct {
		id     string
		weekly bool
	}{{dev.ID, true}, {prod.ID, false}} {
		_, err := e.manager.Token(ctx, tc.id)
		got, _ := e.manager.Get(ctx, tc.id)
		if !errors.Is(err, credential.ErrNeedsReauthorization) || got.Status != credential.StatusNeedsReauth {
			t.Fatalf("%s after its grant was revoked: %v, status %s; want needs re-authorization", got.Name, err, got.Status)
		}
		for _, want := range []string{"invalid_grant", "expired or was revoked", "authorize the credential again"} {
			if !strings.Contains(got.LastError, want) {
				t.Errorf("%s: last error %q lacks %q", got.Name, got.LastError, want)
			}
		}
		if weekly := strings.Contains(got.LastError, "development apps weekly"); weekly != tc.weekly {
			t.Errorf("%s: last error %q mentions the weekly development expiry: %v, want %v", got.Name, got.LastError, weekly, tc.weekly)
		}
		if !strings.Contains(err.Error(), got.LastError) {
			t.Errorf("%s: the error %q does not carry the reason", got.Name, err)
		}
	}
}

// TestExpiredDevelopmentGrantNeedsReauthorization runs a week with the
// sandbox expiring development grants as Outreach does: the development
// credential ends as needs_reauthorization saying why, the production one
// stays connected, and authorizing again connects it.
func TestExpiredDevelopmentGrantNeedsReauthorization(t *testing.T) {
	redirect := "http://127.0.0.1:8787/oauth/callback"
	dev := sandbox.DefaultApp(1, redirect)
	prod := sandbox.App{Name: "Published App", ClientID: "prod-client", ClientSecret: "prod-secret", RedirectURIs: []string{redirect}, Production: true}
	e := newEnv(t, sandbox.Options{Apps: []sandbox.App{dev, prod}, ExpireDevelopmentGrants: true, MintInterval: -1})
	ctx := context.Background()
	devRec := e.authorize(t, e.create(t, "dev").Name)
	p, err := e.manager.Create(ctx, credential.NewCredential{Name: "prod", ClientID: prod.ClientID, ClientSecret: prod.ClientSecret,
		Environment: credential.Production, APIBaseURL: e.srv.URL + "/api/v2", RedirectURI: redirect})
	if err != nil {
		t.Fatal(err)
	}
	prodRec := e.authorize(t, p.Name)
	for day := 1; day <= 8; day++ {
		e.srv.Clock().Advance(24 * time.Hour)
		e.manager.KeepAlive(ctx, 20*time.Hour) // the development credential fails from day 7 on
	}
	got, _ := e.manager.Get(ctx, devRec.ID)
	if got.Status != credential.StatusNeedsReauth || !strings.Contains(got.LastError, "invalid_grant") ||
		!strings.Contains(got.LastError, "development apps weekly") {
		t.Errorf("development credential after eight days: %s, %q; want needs re-authorization explaining the weekly expiry", got.Status, got.LastError)
	}
	if _, err := e.manager.Token(ctx, devRec.ID); !errors.Is(err, credential.ErrNeedsReauthorization) {
		t.Errorf("Token of the expired development credential: %v", err)
	}
	if got, _ := e.manager.Get(ctx, prodRec.ID); got.Status != credential.StatusConnected {
		t.Errorf("production credential after eight days: %s %q; want connected", got.Status, got.LastError)
	}
	if again := e.authorize(t, "dev"); again.Status != credential.StatusConnected || again.LastError != "" {
		t.Errorf("after authorizing again: %s %q", again.Status, again.LastError)
	}
}

func TestDeleteOfACredentialInUseRevokesNothing(t *testing.T) {
	e := newEnv(t, sandbox.Options{MintInterval: -1})
	ctx := context.Background()
	rec := e.authorize(t, e.create(t, "used").Name)
	conns, ok := e.db.(interface{ Connections() *sqlstore.Connections })
	if !ok {
		t.Fatalf("store %T has no connections", e.db)
	}
	c := &connection.Connection{ID: connection.NewID(), Name: "nightly", CredentialID: rec.ID,
		DestinationURL: "sqlite:data.db", Schedule: connection.Schedule{}}
	c.SetDefaults()
	if err := conns.Connections().CreateConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	err := e.manager.Delete(ctx, "used")
	if !errors.Is(err, credential.ErrInUse) || !strings.Contains(err.Error(), `"nightly"`) {
		t.Fatalf("Delete of a credential in use: %v; want ErrInUse naming the connection", err)
	}
	got, err := e.manager.Get(ctx, "used")
	if err != nil || got.Status != credential.StatusConnected {
		t.Fatalf("after a refused delete: %v; want the credential kept, connected", err)
	}
	if _, err := e.manager.Token(ctx, rec.ID); err != nil {
		t.Errorf("after a refused delete the tokens do not work: %v", err)
	}
	// The refresh token still works at Outreach: nothing was revoked there.
	if _, err := e.manager.RefreshNow(ctx, "used"); err != nil {
		t.Errorf("refresh after a refused delete: %v; want the refresh token still valid at Outreach", err)
	}
}
