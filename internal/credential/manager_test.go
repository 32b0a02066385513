package credential_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

type env struct {
	srv     *sandbox.Server
	db      credential.Store
	dbPath  string
	keys    *credential.Keyring
	manager *credential.Manager
	logs    *bytes.Buffer
}

func newEnv(t *testing.T, opts sandbox.Options) *env {
	t.Helper()
	return newEnvOn(t, opts, "")
}

// newEnvOn is newEnv on a given store: "" for a SQLite file, or a spec
// for openStore.
func newEnvOn(t *testing.T, opts sandbox.Options, spec string) *env {
	t.Helper()
	if opts.Clock == nil {
		opts.Clock = sandbox.NewClock(time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC))
	}
	if opts.Prospects == 0 {
		opts.Prospects = 20
	}
	opts.RedirectURI = "http://127.0.0.1:8787/oauth/callback"
	srv, err := sandbox.Start("", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	path := filepath.Join(t.TempDir(), "outreach.db")
	if spec == "" {
		spec = "sqlite:" + path
	}
	db, closeDB, err := openStore(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeDB)
	keys, err := credential.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{srv: srv, db: db, dbPath: path, keys: keys, logs: &bytes.Buffer{}}
	e.manager = e.newManager(t)
	return e
}

func (e *env) newManager(t *testing.T) *credential.Manager {
	m, err := credential.NewManager(credential.Options{Store: e.db, Keyring: e.keys, Now: e.srv.Clock().Now, Logger: testLogger(e.logs)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (e *env) create(t *testing.T, name string) *credential.Record {
	t.Helper()
	app := e.srv.Apps()[0]
	rec, err := e.manager.Create(context.Background(), credential.NewCredential{Name: name, ClientID: app.ClientID, ClientSecret: app.ClientSecret,
		Scopes: []string{"prospects.all", "accounts.read"}, Environment: credential.Development, APIBaseURL: e.srv.URL + "/api/v2",
		RedirectURI: app.RedirectURIs[0]})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

var requestField = regexp.MustCompile(`name="request" value="([^"]+)"`)

// consent walks the sandbox's sign-in and consent pages for authURL and
// returns the callback URL the browser is sent to.
func consent(t *testing.T, srv *sandbox.Server, authURL, decision string) *url.URL {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), srv.URL) {
			return nil
		}
		return http.ErrUseLastResponse
	}}
	body := func(resp *http.Response, err error) (*http.Response, string) {
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	_, page := body(client.Get(authURL))
	m := requestField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no sign-in form: %.300s", page)
	}
	email, password := srv.SignInUser()
	resp, page := body(client.PostForm(srv.URL+"/oauth/sign_in", url.Values{"request": {m[1]}, "email": {email}, "password": {password}}))
	if resp.StatusCode == http.StatusFound && decision == "accept" {
		// Consented before to this app and these scopes: Outreach skips the page.
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	m = requestField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no consent form: %d %.300s", resp.StatusCode, page)
	}
	resp, _ = body(client.PostForm(srv.URL+"/oauth/consent", url.Values{"request": {m[1]}, "decision": {decision}}))
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("consent answered %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc
}

func (e *env) authorize(t *testing.T, name string) *credential.Record {
	t.Helper()
	ctx := context.Background()
	authURL, browser, err := e.manager.BeginAuthorize(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	cb := consent(t, e.srv, authURL, "accept")
	rec, err := e.manager.CompleteAuthorize(ctx, cb.Query().Get("state"), cb.Query().Get("code"), cb.Query().Get("error"), browser)
	if err != nil {
		t.Fatalf("CompleteAuthorize: %v", err)
	}
	return rec
}

func TestAuthorizeFlow(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	ctx := context.Background()
	created := e.create(t, "main")
	if created.Status != credential.StatusAwaiting || created.ClientSecret != nil {
		t.Fatalf("created = %+v, want awaiting authorization and no secret shown", created)
	}
	authURL, _, err := e.manager.BeginAuthorize(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	q := u.Query()
	if !strings.HasPrefix(authURL, e.srv.URL+"/oauth/authorize?") || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" ||
		!strings.HasPrefix(q.Get("state"), "dev.") || len(q.Get("state")) < 40 || q.Get("scope") != "prospects.all accounts.read" {
		t.Errorf("authorize URL %s lacks PKCE S256, a long dev state or the scopes", authURL)
	}
	rec := e.authorize(t, "main")
	email, _ := e.srv.SignInUser()
	if rec.Status != credential.StatusConnected || rec.OutreachUserID != "1" || rec.OutreachUserEmail != email || rec.OutreachOrg == "" || rec.TokenExpiresAt.IsZero() {
		t.Errorf("after authorize: %+v", rec)
	}
	tok, err := e.manager.Token(ctx, rec.ID)
	if err != nil || tok == "" {
		t.Fatalf("Token: %q %v", tok, err)
	}
	// Re-authorizing keeps the id (after the one-token-a-minute limit).
	e.srv.Clock().Advance(2 * time.Minute)
	again := e.authorize(t, "main")
	if again.ID != rec.ID {
		t.Errorf("re-authorize changed the id from %s to %s", rec.ID, again.ID)
	}
}

func TestAuthorizeRejectsBadStates(t *testing.T) {
	e := newEnv(t, sandbox.Options{MintInterval: -1})
	ctx := context.Background()
	e.create(t, "c")
	tests := []struct {
		name    string
		run     func() error
		wantErr error
	}{
		{"forged state", func() error {
			_, browser, _ := e.manager.BeginAuthorize(ctx, "c")
			_, err := e.manager.CompleteAuthorize(ctx, "dev.forged", "code", "", browser)
			return err
		}, credential.ErrBadState},
		{"another browser", func() error {
			authURL, _, _ := e.manager.BeginAuthorize(ctx, "c")
			cb := consent(t, e.srv, authURL, "accept")
			_, err := e.manager.CompleteAuthorize(ctx, cb.Query().Get("state"), cb.Query().Get("code"), "", "someone-else")
			return err
		}, credential.ErrBadState},
		{"replayed state", func() error {
			authURL, browser, _ := e.manager.BeginAuthorize(ctx, "c")
			cb := consent(t, e.srv, authURL, "accept")
			if _, err := e.manager.CompleteAuthorize(ctx, cb.Query().Get("state"), cb.Query().Get("code"), "", browser); err != nil {
				return err
			}
			_, err := e.manager.CompleteAuthorize(ctx, cb.Query().Get("state"), cb.Query().Get("code"), "", browser)
			return err
		}, credential.ErrBadState},
		{"expired state", func() error {
			authURL, browser, _ := e.manager.BeginAuthorize(ctx, "c")
			cb := consent(t, e.srv, authURL, "accept")
			e.srv.Clock().Advance(11 * time.Minute)
			_, err := e.manager.CompleteAuthorize(ctx, cb.Query().Get("state"), cb.Query().Get("code"), "", browser)
			return err
		}, credential.ErrBadState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); !errors.Is(err, tt.wantErr) {
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
	t.Run("denied consent changes nothing", func(t *testing.T) {
		e2 := newEnv(t, sandbox.Options{})
		rec := e2.create(t, "d")
		authURL, browser, _ := e2.manager.BeginAuthorize(ctx, "d")
		cb := consent(t, e2.srv, authURL, "deny")
		_, err := e2.manager.CompleteAuthorize(ctx, cb.Query().Get("state"), cb.Query().Get("code"), cb.Query().Get("error"), browser)
		got, _ := e2.manager.Get(ctx, rec.ID)
		if err == nil || !strings.Contains(err.Error(), "denied") || got.Status != credential.StatusAwaiting {
			t.Errorf("deny: err %v, status %s; want an error and no change", err, got.Status)
		}
	})
}

func TestRefreshBeforeExpiryRotatesAndPersists(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	ctx := context.Background()
	rec := e.authorize(t, e.create(t, "r").Name)
	first, _ := e.manager.Token(ctx, rec.ID)
	e.srv.Clock().Advance(time.Hour)
	if tok, _ := e.manager.Token(ctx, rec.ID); tok != first {
		t.Error("refreshed an hour before the refresh window")
	}
	before := e.srv.Counters().TokenRequests
	e.srv.Clock().Advance(55 * time.Minute) // 5 minutes left: inside the 10-minute window
	second, err := e.manager.Token(ctx, rec.ID)
	if err != nil || second == first {
		t.Fatalf("Token in the refresh window: %v, new token %v", err, second != first)
	}
	if got := e.srv.Counters().TokenRequests - before; got != 1 {
		t.Errorf("token requests = %d, want 1", got)
	}
	// The rotated refresh token was stored: a new manager (another
	// process) refreshes with it after the next expiry.
	e.srv.Clock().Advance(2 * time.Hour)
	third, err := e.newManager(t).Token(ctx, rec.ID)
	if err != nil || third == second {
		t.Errorf("refresh from the stored rotated token: %v", err)
	}
	events, _ := e.manager.Events(ctx, rec.ID, 10)
	if len(events) < 3 || events[0].Kind != "refreshed" {
		t.Errorf("events = %+v, want refreshed events", events)
	}
}

func TestThirtyIdleDaysStayConnected(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	ctx := context.Background()
	rec := e.authorize(t, e.create(t, "idle").Name)
	for day := 1; day <= 30; day++ {
		e.srv.Clock().Advance(24 * time.Hour)
		if _, err := e.manager.KeepAlive(ctx, 20*time.Hour); err != nil {
			t.Fatalf("day %d: KeepAlive: %v", day, err)
		}
	}
	got, _ := e.manager.Get(ctx, rec.ID)
	if _, err := e.manager.Token(ctx, rec.ID); err != nil || got.Status != credential.StatusConnected {
		t.Errorf("after 30 idle days: status %s, token error %v", got.Status, err)
	}
}

func TestDeadRefreshTokenNeedsReauthorization(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	ctx := context.Background()
	rec := e.authorize(t, e.create(t, "dead").Name)
	e.srv.Clock().Advance(15 * 24 * time.Hour) // past the refresh token's 14 days, no keep-alive
	_, err := e.manager.Token(ctx, rec.ID)
	if !errors.Is(err, credential.ErrNeedsReauthorization) {
		t.Fatalf("Token = %v, want ErrNeedsReauthorization", err)
	}
	got, _ := e.manager.Get(ctx, rec.ID)
	if got.Status != credential.StatusNeedsReauth || !strings.Contains(got.LastError, "invalid_grant") {
		t.Errorf("status %s, last error %q; want needs re-authorization from invalid_grant", got.Status, got.LastError)
	}
	events, _ := e.manager.Events(ctx, rec.ID, 1)
	if len(events) != 1 || events[0].Kind != "needs_reauthorization" {
		t.Errorf("events = %+v", events)
	}
	before := e.srv.Counters().TokenRequests
	if _, err := e.manager.Token(ctx, rec.ID); !errors.Is(err, credential.ErrNeedsReauthorization) || e.srv.Counters().TokenRequests != before {
		t.Error("a credential that needs re-authorization tried the token endpoint again")
	}
}

func TestThrottledRefreshUsesTheCurrentToken(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	ctx := context.Background()
	rec := e.authorize(t, e.create(t, "t").Name)
	current, _ := e.manager.Token(ctx, rec.ID)
	e.srv.Clock().Advance(1*time.Hour + 55*time.Minute)
	if _, _, err := e.srv.IssueToken(1); err != nil { // someone else mints for the same user and app
		t.Fatal(err)
	}
	got, err := e.manager.Token(ctx, rec.ID)
	if err != nil || got != current {
		t.Errorf("throttled refresh: %v; want the still-valid current token", err)
	}
	if st, _ := e.manager.Get(ctx, rec.ID); st.Status != credential.StatusConnected {
		t.Errorf("status after a 429 = %s, want connected", st.Status)
	}
}

func TestTransientFailureKeepsStatus(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	ctx := context.Background()
	rec := e.authorize(t, e.create(t, "flaky").Name)
	current, _ := e.manager.Token(ctx, rec.ID)
	e.srv.Clock().Advance(1*time.Hour + 55*time.Minute)
	e.srv.SetFaults(sandbox.Faults{TokenErrors: 1})
	got, err := e.manager.Token(ctx, rec.ID)
	if err != nil || got != current {
		t.Errorf("refresh under 503s: %v; want the current token while it lives", err)
	}
	st, _ := e.manager.Get(ctx, rec.ID)
	if st.Status != credential.StatusConnected || !strings.Contains(st.LastError, "503") {
		t.Errorf("status %s, last error %q; want connected with the failure noted", st.Status, st.LastError)
	}
	e.srv.SetFaults(sandbox.Faults{})
	e.srv.Clock().Advance(time.Minute) // past the backoff
	if got, err := e.manager.Token(ctx, rec.ID); err != nil || got == current {
		t.Errorf("after the fault: %v, refreshed %v", err, got != current)
	}
}

func TestImportAndRevoke(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	ctx := context.Background()
	_, refresh, err := e.srv.IssueToken(1)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Clock().Advance(2 * time.Minute)
	app := e.srv.Apps()[0]
	rec, err := e.manager.Import(ctx, credential.NewCredential{Name: "imported", ClientID: app.ClientID, ClientSecret: app.ClientSecret,
		Environment: credential.Production, APIBaseURL: e.srv.URL + "/api/v2", RedirectURI: app.RedirectURIs[0]}, refresh)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != credential.StatusConnected || rec.OutreachUserID != "1" {
		t.Errorf("imported = %+v", rec)
	}
	if err := e.manager.Revoke(ctx, "imported"); err != nil {
		t.Fatal(err)
	}
	got, _ := e.manager.Get(ctx, "imported")
	if _, err := e.manager.Token(ctx, rec.ID); got.Status != credential.StatusRevoked || !errors.Is(err, credential.ErrNeedsReauthorization) {
		t.Errorf("after revoke: status %s, token error %v", got.Status, err)
	}
	if _, err := e.manager.Import(ctx, credential.NewCredential{Name: "bad", ClientID: app.ClientID, ClientSecret: app.ClientSecret,
		Environment: credential.Production, APIBaseURL: e.srv.URL + "/api/v2", RedirectURI: app.RedirectURIs[0]}, "not-a-token"); err == nil {
		t.Error("import of a bogus refresh token succeeded")
	}
}

func TestCreateValidates(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	_, err := e.manager.Create(context.Background(), credential.NewCredential{Name: " ", Scopes: []string{"everything"},
		Environment: "staging", APIBaseURL: "ftp://x", RedirectURI: "/cb"})
	for _, want := range []string{"name is required", "client id is required", "client secret is required", `scope "everything"`,
		"environment must be", "API base URL", "redirect URI"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

func TestSecretsAreNotStoredOrLoggedInPlaintext(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	ctx := context.Background()
	rec := e.authorize(t, e.create(t, "secret").Name)
	access, _ := e.manager.Token(ctx, rec.ID)
	e.srv.Clock().Advance(1*time.Hour + 55*time.Minute)
	e.manager.Token(ctx, rec.ID)
	e.db.(*sqlite.DB).Close()
	var raw []byte
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, _ := os.ReadFile(e.dbPath + suffix)
		raw = append(raw, b...)
	}
	secret := e.srv.Apps()[0].ClientSecret
	for name, s := range map[string]string{"client secret": secret, "access token": access} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("the database files hold the %s in plaintext", name)
		}
		if strings.Contains(e.logs.String(), s) {
			t.Errorf("the logs hold the %s", name)
		}
	}
	if !strings.Contains(e.logs.String(), "credential refreshed") {
		t.Error("no refresh log line: the log check proves nothing")
	}
}

func TestReencryptAll(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	ctx := context.Background()
	rec := e.authorize(t, e.create(t, "rotate").Name)
	before, _ := e.manager.Token(ctx, rec.ID)
	rotated, err := e.keys.Rotated()
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := credential.NewManager(credential.Options{Store: e.db, Keyring: rotated, Now: e.srv.Clock().Now})
	if n, err := m2.ReencryptAll(ctx); err != nil || n != 1 {
		t.Fatalf("ReencryptAll = %d, %v", n, err)
	}
	stored, _ := e.db.GetCredential(ctx, rec.ID)
	for name, blob := range map[string][]byte{"client secret": stored.ClientSecret, "tokens": stored.Tokens} {
		if id, _ := credential.KeyIDOf(blob); id != rotated.Current() {
			t.Errorf("%s sealed with %q, want the new key %q", name, id, rotated.Current())
		}
	}
	if got, err := m2.Token(ctx, rec.ID); err != nil || got != before {
		t.Errorf("token after re-encryption: %v (same %v)", err, got == before)
	}
	if _, err := e.manager.Token(ctx, rec.ID); err == nil {
		t.Error("the old keyring still opens the re-encrypted secrets")
	}
}

// TestLifecycleOnBothStores runs the lifecycle on SQLite and PostgreSQL:
// authorize, refresh in the window, thirty idle days, and a dead refresh
// token.
func TestLifecycleOnBothStores(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			spec := ""
			if kind == "postgres" {
				spec = postgresSpec(t)
			}
			e := newEnvOn(t, sandbox.Options{}, spec)
			ctx := context.Background()
			rec := e.authorize(t, e.create(t, "life").Name)
			first, _ := e.manager.Token(ctx, rec.ID)
			e.srv.Clock().Advance(1*time.Hour + 55*time.Minute)
			if second, err := e.manager.Token(ctx, rec.ID); err != nil || second == first {
				t.Fatalf("refresh in the window: %v", err)
			}
			for range 30 {
				e.srv.Clock().Advance(24 * time.Hour)
				if _, err := e.manager.KeepAlive(ctx, 20*time.Hour); err != nil {
					t.Fatalf("KeepAlive: %v", err)
				}
			}
			if _, err := e.manager.Token(ctx, rec.ID); err != nil {
				t.Fatalf("after 30 days: %v", err)
			}
			e.srv.Clock().Advance(15 * 24 * time.Hour)
			if _, err := e.manager.Token(ctx, rec.ID); !errors.Is(err, credential.ErrNeedsReauthorization) {
				t.Errorf("after 15 days without keep-alive: %v, want ErrNeedsReauthorization", err)
			}
		})
	}
}

func TestForgetDoesNotCallOutreach(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	ctx := context.Background()
	rec := e.authorize(t, e.create(t, "gone").Name)
	e.srv.Close() // its Outreach is gone
	if err := e.manager.Forget(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.manager.Get(ctx, rec.ID); !errors.Is(err, credential.ErrNotFound) {
		t.Errorf("after Forget: %v, want ErrNotFound", err)
	}
	if strings.Contains(e.logs.String(), "revoke upstream") {
		t.Error("Forget tried to revoke at Outreach")
	}
}
