package credential

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Errors of the token lifecycle.
var (
	// ErrNeedsReauthorization: Outreach refused the refresh token
	// (invalid_grant, invalid_client, unauthorized_client) or the
	// credential was never authorized; a person must authorize it again.
	ErrNeedsReauthorization = errors.New("credential: needs re-authorization")
	// ErrBadState: the authorization callback's state is unknown, used,
	// expired or from another browser.
	ErrBadState = errors.New("credential: the authorization request is unknown, expired, already used, or from another browser; start again")
	// ErrTryLater: Outreach's token endpoint could not be used now (a
	// 429 because a token was minted for this user and app less than a
	// minute ago, a 5xx, a timeout). The refresh token was not used up;
	// the same call works later.
	ErrTryLater = errors.New("credential: Outreach's token endpoint cannot be used right now")
	// ErrRevokeFailed: Outreach did not confirm the revocation; the
	// credential and its tokens are kept so the revoke can be retried.
	ErrRevokeFailed = errors.New("credential: Outreach did not revoke the token")
)

// Options configure a Manager.
type Options struct {
	Store   Store
	Keyring *Keyring
	// HTTPClient calls Outreach's token endpoint and GET /api/v2; nil
	// means a client with a 30-second timeout.
	HTTPClient *http.Client
	// Now tells the time; nil means time.Now.
	Now func() time.Time
	// Logger receives lifecycle logs (never a token or secret); nil
	// discards them.
	Logger *slog.Logger
	// RefreshBefore is how long before expiry a token is refreshed (10
	// minutes).
	RefreshBefore time.Duration
	// StateTTL is how long an authorization may take (10 minutes).
	StateTTL time.Duration
}

// Manager owns the credentials: configuration, authorization, and valid
// access tokens for every user of a credential. It is safe for concurrent
// use; several processes may run Managers on one database.
type Manager struct {
	store         Store
	keys          *Keyring
	http          *http.Client
	now           func() time.Time
	log           *slog.Logger
	refreshBefore time.Duration
	stateTTL      time.Duration
	leaseTTL      time.Duration
	owner         string // lease owner: this Manager

	mu       sync.Mutex
	flights  map[string]*flight
	backoffs map[string]backoff // after transient refresh failures
}

type flight struct {
	done  chan struct{}
	token string
	err   error
}

type backoff struct {
	until time.Time
	delay time.Duration
}

// NewManager returns a Manager.
func NewManager(opts Options) (*Manager, error) {
	if opts.Store == nil || opts.Keyring == nil {
		return nil, errors.New("credential: a manager needs a store and a keyring")
	}
	m := &Manager{store: opts.Store, keys: opts.Keyring, http: opts.HTTPClient, now: opts.Now, log: opts.Logger,
		refreshBefore: opts.RefreshBefore, stateTTL: opts.StateTTL, flights: map[string]*flight{}, backoffs: map[string]backoff{}}
	if m.http == nil {
		m.http = &http.Client{Timeout: 30 * time.Second}
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.refreshBefore == 0 {
		m.refreshBefore = 10 * time.Minute
	}
	if m.stateTTL == 0 {
		m.stateTTL = 10 * time.Minute
	}
	timeout := m.http.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	m.leaseTTL = timeout + 30*time.Second // longer than the HTTP call it covers
	host, _ := os.Hostname()
	m.owner = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), randomID()[:8])
	return m, nil
}

// NewCredential is what a person enters to add a credential.
type NewCredential struct {
	Name, Description      string
	ClientID, ClientSecret string
	Scopes                 []string // nil means DefaultScopes
	Environment            Environment
	APIBaseURL             string // empty means DefaultAPIBaseURL
	RedirectURI            string
}

var scopeRE = regexp.MustCompile(`^[a-zA-Z]+\.(read|write|delete|all|aggregate)$|^scim$`)

func (n *NewCredential) validate() error {
	var problems []string
	if strings.TrimSpace(n.Name) == "" || len(n.Name) > 100 {
		problems = append(problems, "name is required (at most 100 characters)")
	}
	if strings.TrimSpace(n.ClientID) == "" {
		problems = append(problems, "client id is required")
	}
	if n.ClientSecret == "" {
		problems = append(problems, "client secret is required")
	}
	for _, s := range n.Scopes {
		if !scopeRE.MatchString(s) {
			problems = append(problems, fmt.Sprintf("scope %q is not an Outreach scope such as prospects.read", s))
		}
	}
	switch n.Environment {
	case Development, Production:
	default:
		problems = append(problems, "environment must be development or production")
	}
	for _, u := range []struct{ name, v string }{{"API base URL", n.APIBaseURL}, {"redirect URI", n.RedirectURI}} {
		p, err := url.Parse(u.v)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			problems = append(problems, u.name+" must be an absolute http(s) URL")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("credential: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Create validates and stores a new credential, awaiting authorization.
func (m *Manager) Create(ctx context.Context, n NewCredential) (*Record, error) {
	if n.Scopes == nil {
		n.Scopes = DefaultScopes()
	}
	if n.Environment == "" {
		n.Environment = Development
	}
	if n.APIBaseURL == "" {
		n.APIBaseURL = DefaultAPIBaseURL
	}
	n.APIBaseURL = strings.TrimSuffix(n.APIBaseURL, "/")
	if err := n.validate(); err != nil {
		return nil, err
	}
	now := m.now().UTC()
	rec := &Record{ID: NewID(), Name: strings.TrimSpace(n.Name), Description: n.Description, ClientID: strings.TrimSpace(n.ClientID),
		Scopes: n.Scopes, Environment: n.Environment, APIBaseURL: n.APIBaseURL, RedirectURI: n.RedirectURI,
		Status: StatusAwaiting, CreatedAt: now, UpdatedAt: now}
	secret, err := m.keys.Seal([]byte(n.ClientSecret), aad(rec.ID, "client_secret"))
	if err != nil {
		return nil, err
	}
	rec.ClientSecret = secret
	if err := m.store.CreateCredential(ctx, rec); err != nil {
		return nil, err
	}
	m.event(ctx, rec.ID, "created", "credential created")
	return Public(rec), nil
}

// Public returns a copy of rec without its secrets, safe to show.
func Public(rec *Record) *Record {
	c := *rec
	c.ClientSecret, c.Tokens = nil, nil
	return &c
}

// Get returns a credential by id or name, without secrets.
func (m *Manager) Get(ctx context.Context, idOrName string) (*Record, error) {
	rec, err := m.lookup(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	return Public(rec), nil
}

func (m *Manager) lookup(ctx context.Context, idOrName string) (*Record, error) {
	rec, err := m.store.GetCredential(ctx, idOrName)
	if errors.Is(err, ErrNotFound) {
		rec, err = m.store.GetCredentialByName(ctx, idOrName)
	}
	return rec, err
}

// List returns every credential, without secrets.
func (m *Manager) List(ctx context.Context) ([]*Record, error) {
	recs, err := m.store.ListCredentials(ctx)
	for i, r := range recs {
		recs[i] = Public(r)
	}
	return recs, err
}

// Events returns the newest events of a credential.
func (m *Manager) Events(ctx context.Context, id string, limit int) ([]Event, error) {
	return m.store.ListEvents(ctx, id, limit)
}

func aad(id, field string) []byte { return []byte(id + "|" + field) }

// tokens is the sealed token pair.
type tokens struct {
	Access  string    `json:"access_token"`
	Refresh string    `json:"refresh_token"`
	Expiry  time.Time `json:"expiry"`
}

func (m *Manager) open(rec *Record) (*tokens, string, error) {
	secret, err := m.keys.Open(rec.ClientSecret, aad(rec.ID, "client_secret"))
	if err != nil {
		return nil, "", fmt.Errorf("credential %s: client secret: %w", rec.Name, err)
	}
	if rec.Tokens == nil {
		return nil, string(secret), nil
	}
	raw, err := m.keys.Open(rec.Tokens, aad(rec.ID, "tokens"))
	if err != nil {
		return nil, "", fmt.Errorf("credential %s: tokens: %w", rec.Name, err)
	}
	var t tokens
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, "", fmt.Errorf("credential %s: tokens: %w", rec.Name, err)
	}
	return &t, string(secret), nil
}

func (m *Manager) sealTokens(id string, t *tokens) ([]byte, error) {
	raw, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	return m.keys.Seal(raw, aad(id, "tokens"))
}

// oauthConfig is the credential's OAuth app, with Outreach's endpoints on
// the API's origin and the client secret sent in the body.
func oauthConfig(rec *Record, secret string) *oauth2.Config {
	origin := rec.APIBaseURL
	if u, err := url.Parse(rec.APIBaseURL); err == nil {
		origin = u.Scheme + "://" + u.Host
	}
	return &oauth2.Config{ClientID: rec.ClientID, ClientSecret: secret, RedirectURL: rec.RedirectURI, Scopes: rec.Scopes,
		Endpoint: oauth2.Endpoint{AuthURL: origin + "/oauth/authorize", TokenURL: origin + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
}

func (m *Manager) event(ctx context.Context, id, kind, msg string) {
	if err := m.store.AddEvent(ctx, Event{CredentialID: id, At: m.now().UTC(), Kind: kind, Message: msg}); err != nil {
		m.log.Warn("record credential event", "credential", id, "kind", kind, "err", err)
	}
}

// --- Authorization ---

// BeginAuthorize starts the authorize flow for a credential. It returns
// the URL to send the browser to and a browser-binding value to set as an
// HttpOnly cookie; the callback must present both the state and that
// cookie within StateTTL, once.
func (m *Manager) BeginAuthorize(ctx context.Context, idOrName string) (authURL, browser string, err error) {
	rec, err := m.lookup(ctx, idOrName)
	if err != nil {
		return "", "", err
	}
	_, secret, err := m.open(rec)
	if err != nil {
		return "", "", err
	}
	// The state names the app environment, so a callback tells which
	// credentials it answers, and carries 256 random bits.
	state := string(rec.Environment[:3]) + "." + randomToken(32)
	browser = randomToken(32)
	verifier := oauth2.GenerateVerifier()
	sealed, err := m.keys.Seal([]byte(verifier), aad(hashHex(state), "verifier"))
	if err != nil {
		return "", "", err
	}
	st := &State{Hash: hashHex(state), CredentialID: rec.ID, Browser: hashHex(browser), Verifier: sealed, ExpiresAt: m.now().Add(m.stateTTL)}
	if err := m.store.SaveState(ctx, st); err != nil {
		return "", "", fmt.Errorf("credential: save authorization state: %w", err)
	}
	conf := oauthConfig(rec, secret)
	return conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), browser, nil
}

// CompleteAuthorize handles the callback: it takes the state (once, and
// only when the request comes from the browser the state is bound to, so
// a request without the cookie cannot burn it), checks its age, then
// exchanges the code and stores the tokens before anything else can fail;
// the Outreach identity is looked up after that, and again later when
// that lookup fails (see KeepAlive). errorCode is the callback's error
// parameter (access_denied when the person clicked Deny). On a failure
// before the exchange nothing about the credential changes.
func (m *Manager) CompleteAuthorize(ctx context.Context, state, code, errorCode, browser string) (*Record, error) {
	if state == "" || browser == "" {
		return nil, ErrBadState
	}
	st, err := m.store.TakeState(ctx, hashHex(state), hashHex(browser))
	if errors.Is(err, ErrNotFound) {
		return nil, ErrBadState
	}
	if err != nil {
		return nil, err
	}
	if m.now().After(st.ExpiresAt) {
		return nil, ErrBadState
	}
	rec, err := m.store.GetCredential(ctx, st.CredentialID)
	if err != nil {
		return nil, err
	}
	if errorCode != "" {
		m.event(ctx, rec.ID, "authorization_denied", "Outreach answered "+errorCode)
		if errorCode == "access_denied" {
			return nil, errors.New("credential: authorization was denied on Outreach's consent page")
		}
		return nil, fmt.Errorf("credential: Outreach refused the authorization (%s)", errorCode)
	}
	if code == "" {
		return nil, errors.New("credential: the callback has no code")
	}
	verifier, err := m.keys.Open(st.Verifier, aad(st.Hash, "verifier"))
	if err != nil {
		return nil, err
	}
	_, secret, err := m.open(rec)
	if err != nil {
		return nil, err
	}
	hctx := context.WithValue(ctx, oauth2.HTTPClient, m.http)
	tok, err := oauthConfig(rec, secret).Exchange(hctx, code, oauth2.VerifierOption(string(verifier)))
	if err != nil {
		m.event(ctx, rec.ID, "authorization_failed", describeOAuthError(err))
		return nil, fmt.Errorf("credential %s: exchange the authorization code: %s", rec.Name, describeOAuthError(err))
	}
	// The new refresh token is stored before anything else is tried: it
	// is the only copy.
	if err := m.saveFresh(ctx, rec, &tokens{Access: tok.AccessToken, Refresh: tok.RefreshToken, Expiry: m.expiry(tok, m.now())}); err != nil {
		return nil, fmt.Errorf("credential %s: store the new tokens: %w", rec.Name, err)
	}
	m.event(ctx, rec.ID, "authorized", "connected")
	m.log.Info("credential authorized", "credential", rec.Name)
	m.tryIdentity(ctx, rec.ID)
	return m.Get(ctx, rec.ID)
}

// Import creates a connected credential from an existing refresh token
// (the configuration tap-outreach and Mage use): it refreshes once to
// check the token, then learns the Outreach user (later, if that lookup
// fails). Import is all or nothing: when the token does not work, or
// Outreach's token endpoint cannot be used now (ErrTryLater), nothing is
// kept, so a retry under the same name starts afresh. The token handed
// in is never revoked.
func (m *Manager) Import(ctx context.Context, n NewCredential, refreshToken string) (*Record, error) {
	if refreshToken == "" {
		return nil, errors.New("credential: a refresh token is required to import")
	}
	created, err := m.Create(ctx, n)
	if err != nil {
		return nil, err
	}
	rec, err := m.importInto(ctx, created.ID, refreshToken)
	if err != nil {
		if cur, gerr := m.store.GetCredential(context.WithoutCancel(ctx), created.ID); gerr == nil && cur.Status == StatusConnected {
			return nil, err // the refresh worked and rotated the token: keep the only copy
		}
		// Forget, never revoke: the token was handed to us and may work
		// on the next try.
		if ferr := m.store.DeleteCredential(context.WithoutCancel(ctx), created.ID); ferr != nil && !errors.Is(ferr, ErrNotFound) {
			return nil, errors.Join(err, fmt.Errorf("credential %s: remove the half-imported credential: %w", created.Name, ferr))
		}
		return nil, err
	}
	return rec, nil
}

// Reimport gives an existing credential a refresh token handed in (a tap
// whose stored token stopped working, and a new one in its config). The
// credential's stored tokens are replaced only when the new token works;
// otherwise the credential is left as it was. Nothing is revoked.
func (m *Manager) Reimport(ctx context.Context, idOrName, refreshToken string) (*Record, error) {
	if refreshToken == "" {
		return nil, errors.New("credential: a refresh token is required to import")
	}
	prev, err := m.lookup(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	rec, err := m.importInto(ctx, prev.ID, refreshToken)
	if err != nil {
		// Put back what was there, unless the attempt rotated the token
		// (then what it stored is the only working copy).
		if cur, gerr := m.store.GetCredential(context.WithoutCancel(ctx), prev.ID); gerr == nil && cur.Status != StatusConnected {
			if rerr := m.store.SaveTokens(context.WithoutCancel(ctx), prev.ID, TokenUpdate{Tokens: prev.Tokens, TokenExpiresAt: prev.TokenExpiresAt,
				LastRefreshAt: prev.LastRefreshAt, Status: prev.Status, LastError: cur.LastError, UpdatedAt: m.now().UTC()}); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		return nil, err
	}
	return rec, nil
}

// importInto stores refreshToken on credential id and refreshes with it.
func (m *Manager) importInto(ctx context.Context, id, refreshToken string) (*Record, error) {
	full, err := m.store.GetCredential(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := m.saveFresh(ctx, full, &tokens{Refresh: refreshToken, Expiry: time.Unix(0, 0)}); err != nil {
		return nil, err
	}
	m.clearBackoff(id)
	if _, err := m.shared(ctx, id, "\x00none"); err != nil {
		if errors.Is(err, ErrTryLater) {
			return nil, err
		}
		return nil, fmt.Errorf("credential %s: the refresh token does not work: %w", full.Name, err)
	}
	m.event(ctx, id, "imported", "connected from a refresh token") // the refresh looked up the identity
	return m.Get(ctx, id)
}

// saveFresh seals and stores tokens: connected with an access token,
// awaiting a first refresh without.
func (m *Manager) saveFresh(ctx context.Context, rec *Record, t *tokens) error {
	sealed, err := m.sealTokens(rec.ID, t)
	if err != nil {
		return err
	}
	now := m.now().UTC()
	u := TokenUpdate{Tokens: sealed, TokenExpiresAt: t.Expiry.UTC(), LastRefreshAt: now, Status: StatusConnected, UpdatedAt: now}
	if t.Access == "" {
		u.Status, u.LastRefreshAt = StatusAwaiting, time.Time{}
	}
	return m.store.SaveTokens(ctx, rec.ID, u)
}

// expiry is when a token from the token endpoint expires, by the
// manager's clock: now plus expires_in (2 hours when absent).
func (m *Manager) expiry(t *oauth2.Token, now time.Time) time.Time {
	if t.ExpiresIn > 0 {
		return now.Add(time.Duration(t.ExpiresIn) * time.Second).UTC()
	}
	return now.Add(2 * time.Hour).UTC()
}

type identity struct{ user, email, org string }

// tryIdentity asks Outreach who the credential's token belongs to and
// stores the answer. A failure (a 429, a timeout) is recorded as an event
// and the lookup is tried again later (KeepAlive, the next refresh): it
// never costs the tokens.
func (m *Manager) tryIdentity(ctx context.Context, id string) {
	// Bounded: it may run under the refresh lease, which must outlast it.
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := m.learnIdentity(lctx, id); err != nil {
		m.event(ctx, id, "identity_unknown", "could not ask Outreach who the token belongs to; will try again: "+err.Error())
		m.log.Warn("credential identity lookup failed; will retry", "credential", id, "err", err)
	}
}

func (m *Manager) learnIdentity(ctx context.Context, id string) error {
	rec, err := m.store.GetCredential(ctx, id)
	if err != nil {
		return err
	}
	t, _, err := m.open(rec)
	if err != nil {
		return err
	}
	if t == nil || t.Access == "" {
		return errors.New("no access token yet")
	}
	who, err := m.whoAmI(ctx, rec, t.Access)
	if err != nil {
		return err
	}
	return m.store.SaveIdentity(ctx, id, who.user, who.email, who.org)
}

// whoAmI calls GET /api/v2, which names the token's user and org.
func (m *Manager) whoAmI(ctx context.Context, rec *Record, access string) (identity, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", rec.APIBaseURL, nil)
	if err != nil {
		return identity{}, err
	}
	req.Header.Set("Authorization", "Bearer "+access)
	req.Header.Set("Content-Type", "application/vnd.api+json")
	resp, err := m.http.Do(req)
	if err != nil {
		return identity{}, fmt.Errorf("credential %s: ask Outreach who the token belongs to: %w", rec.Name, err)
	}
	defer resp.Body.Close()
	var doc struct {
		Data struct {
			Attributes struct {
				Name string `json:"name"`
			} `json:"attributes"`
		} `json:"data"`
		Meta struct {
			User struct {
				ID    json.Number `json:"id"`
				Email string      `json:"email"`
			} `json:"user"`
		} `json:"meta"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&doc) != nil {
		return identity{}, fmt.Errorf("credential %s: GET %s answered %d", rec.Name, rec.APIBaseURL, resp.StatusCode)
	}
	return identity{user: doc.Meta.User.ID.String(), email: doc.Meta.User.Email, org: doc.Data.Attributes.Name}, nil
}

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// describeOAuthError turns a token-endpoint failure into a message with
// the OAuth error code and status, never the response body.
func describeOAuthError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		code := re.ErrorCode
		if code == "" {
			code = "no OAuth error code"
		}
		return fmt.Sprintf("token endpoint answered %d (%s)", status, code)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return "token endpoint unreachable: " + ue.Err.Error()
	}
	return "token request failed"
}
