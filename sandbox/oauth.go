package sandbox

import (
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// authServer is Outreach's OAuth 2.0 authorization server: the sign-in and
// consent pages, the token endpoint, revocation, and bearer validation.
type authServer struct {
	sb *Sandbox

	mu       sync.Mutex
	pending  map[string]*authRequest // consent forms in progress, by id
	sessions map[string]int64        // signed-in browser sessions → user id
	codes    map[string]*authCode
	access   map[string]*accessToken // by jti
	refresh  map[string]*refreshToken
	lastMint map[string]time.Time // by user×app
	consents map[string]consent   // by user×app: what the user last accepted
	minted   int64
}

// consent is a user's Accept on the consent page for an app.
type consent struct {
	scopes []string
	at     time.Time
}

// grant is one authorization of an app by a user: the code exchange (or
// IssueToken) starts it, and every token refreshed from it belongs to it.
type grant struct {
	user    int64
	app     *App
	created time.Time
	ended   bool // expired, its tokens revoked
}

// developmentGrantTTL is how long Outreach lets a development app's grant
// live for a user outside the owning org, or beyond its ten users.
const developmentGrantTTL = 7 * 24 * time.Hour

type authRequest struct {
	app                  *App
	redirectURI, state   string
	scopes               []string
	challenge, challMeth string
	expires              time.Time
}

type authCode struct {
	app                  *App
	user                 int64
	redirectURI          string
	scopes               []string
	challenge            string
	expires              time.Time
	used                 bool
	issued               []string // refresh tokens minted from this code
	accessIssued         []string
	challengeWasProvided bool
}

type accessToken struct {
	jti     string
	user    int64
	app     *App
	grant   *grant
	scopes  []string
	created time.Time
	expires time.Time
	revoked bool
	refresh string // the refresh token minted with it
}

type refreshToken struct {
	seq     int64 // mint order
	user    int64
	app     *App
	grant   *grant
	scopes  []string
	created time.Time
	expires time.Time
	revoked bool
}

const (
	sessionCookie = "outreach_sandbox_session"
	codeTTL       = 10 * time.Minute
)

func newAuthServer(sb *Sandbox) *authServer {
	return &authServer{sb: sb, pending: map[string]*authRequest{}, sessions: map[string]int64{}, codes: map[string]*authCode{},
		access: map[string]*accessToken{}, refresh: map[string]*refreshToken{}, lastMint: map[string]time.Time{}, consents: map[string]consent{}}
}

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (a *authServer) app(clientID string) *App {
	for i := range a.sb.apps {
		if a.sb.apps[i].ClientID == clientID {
			return &a.sb.apps[i]
		}
	}
	return nil
}

// --- Authorization: sign-in and consent pages ---

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · Outreach Sandbox</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1d1d1f}
h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;box-sizing:border-box}
button{margin:1rem .5rem 0 0;padding:.5rem 1.2rem}.warn{background:#fff4ce;border:1px solid #e0c060;padding:.6rem}
.err{background:#fde7e9;border:1px solid #d13438;padding:.6rem}ul{padding-left:1.2rem}</style></head>
<body><p><strong>Outreach</strong> Sandbox</p><h1>{{.Title}}</h1>
{{if .Error}}<p class="err" role="alert">{{.Error}}</p>{{end}}
{{if eq .Kind "signin"}}
<form method="post" action="/oauth/sign_in">
<input type="hidden" name="request" value="{{.Request}}">
<label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="sign-in">Sign in</button>
</form>
{{else if eq .Kind "consent"}}
{{if .Development}}<p class="warn" role="note">You are using a development version of <strong>{{.AppName}}</strong>. This application has not been reviewed by Outreach and its usage is limited.</p>{{end}}
<p><strong>{{.AppName}}</strong> would like to access your Outreach account ({{.Email}}) with these permissions:</p>
<ul id="scopes">{{range .Scopes}}<li>{{.}}</li>{{end}}</ul>
<form method="post" action="/oauth/consent">
<input type="hidden" name="request" value="{{.Request}}">
<button type="submit" name="decision" value="accept" id="accept">Accept</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form>
{{end}}
</body></html>`))

type page struct {
	Kind, Title, Error, Request, AppName, Email string
	Scopes                                      []string
	Development                                 bool
}

func renderPage(w http.ResponseWriter, status int, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	pageTmpl.Execute(w, p)
}

// handleAuthorize serves GET /oauth/authorize.
func (a *authServer) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	app := a.app(q.Get("client_id"))
	if app == nil {
		renderPage(w, http.StatusBadRequest, page{Title: "Authorization error", Error: "Client authentication failed due to unknown client (client_id)."})
		return
	}
	redirect := q.Get("redirect_uri")
	if !slices.Contains(app.RedirectURIs, redirect) {
		renderPage(w, http.StatusBadRequest, page{Title: "Authorization error", Error: "The redirect uri included is not valid for this application."})
		return
	}
	state := q.Get("state")
	fail := func(code, desc string) {
		redirectWith(w, r, redirect, url.Values{"error": {code}, "error_description": {desc}, "state": {state}})
	}
	if q.Get("response_type") != "code" {
		fail("unsupported_response_type", "The authorization server does not support this response type.")
		return
	}
	scopes := strings.Fields(q.Get("scope"))
	known := a.sb.cat.Scopes()
	if len(scopes) == 0 {
		fail("invalid_scope", "The requested scope is invalid, unknown, or malformed.")
		return
	}
	for _, sc := range scopes {
		if !slices.Contains(known, sc) {
			fail("invalid_scope", "The requested scope is invalid, unknown, or malformed: "+sc)
			return
		}
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	if challenge != "" && method != "S256" {
		fail("invalid_request", "code_challenge_method must be S256.")
		return
	}
	id := randomToken(24)
	now := a.sb.clock.Now()
	a.mu.Lock()
	a.pending[id] = &authRequest{app: app, redirectURI: redirect, state: state, scopes: scopes, challenge: challenge, challMeth: method, expires: now.Add(codeTTL)}
	a.mu.Unlock()
	a.showConsentOrSignIn(w, r, id, "")
}

func (a *authServer) sessionUser(r *http.Request) (int64, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return 0, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	u, ok := a.sessions[c.Value]
	return u, ok
}

func (a *authServer) showConsentOrSignIn(w http.ResponseWriter, r *http.Request, id, errMsg string) {
	a.mu.Lock()
	req := a.pending[id]
	a.mu.Unlock()
	if req == nil || a.sb.clock.Now().After(req.expires) {
		renderPage(w, http.StatusBadRequest, page{Title: "Authorization error", Error: "This authorization request has expired or was already used. Start again from the application."})
		return
	}
	user, ok := a.sessionUser(r)
	if !ok {
		renderPage(w, http.StatusOK, page{Kind: "signin", Title: "Sign in to Outreach", Request: id, Error: errMsg})
		return
	}
	if a.consented(user, req.app, req.scopes) {
		// Outreach loads the consent popup and closes it at once.
		a.mu.Lock()
		_, pending := a.pending[id]
		delete(a.pending, id)
		a.mu.Unlock()
		if pending {
			a.issueCode(w, r, req, user)
			return
		}
	}
	renderPage(w, http.StatusOK, page{Kind: "consent", Title: "Authorize " + req.app.Name, Request: id, AppName: req.app.Name,
		Email: a.sb.userEmail(user), Scopes: req.scopes, Development: !req.app.Production})
}

// handleSignIn serves POST /oauth/sign_in.
func (a *authServer) handleSignIn(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		renderPage(w, http.StatusBadRequest, page{Title: "Sign-in error", Error: "The form could not be read."})
		return
	}
	id := r.PostForm.Get("request")
	user := a.sb.userByEmail(r.PostForm.Get("email"))
	if user == 0 || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("password")), []byte(a.sb.opts.Password)) != 1 {
		a.mu.Lock()
		_, ok := a.pending[id]
		a.mu.Unlock()
		if !ok {
			renderPage(w, http.StatusBadRequest, page{Title: "Authorization error", Error: "This authorization request has expired or was already used."})
			return
		}
		renderPage(w, http.StatusUnauthorized, page{Kind: "signin", Title: "Sign in to Outreach", Request: id, Error: "Invalid email or password."})
		return
	}
	sid := randomToken(24)
	a.mu.Lock()
	a.sessions[sid] = user
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sid, Path: "/oauth", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/oauth/consent?request="+url.QueryEscape(id), http.StatusSeeOther)
}

// handleConsentPage serves GET /oauth/consent.
func (a *authServer) handleConsentPage(w http.ResponseWriter, r *http.Request) {
	a.showConsentOrSignIn(w, r, r.URL.Query().Get("request"), "")
}

// handleConsent serves POST /oauth/consent: Accept or Deny.
func (a *authServer) handleConsent(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		renderPage(w, http.StatusBadRequest, page{Title: "Authorization error", Error: "The form could not be read."})
		return
	}
	user, ok := a.sessionUser(r)
	id := r.PostForm.Get("request")
	a.mu.Lock()
	req := a.pending[id]
	if ok && req != nil {
		delete(a.pending, id) // single use
	}
	a.mu.Unlock()
	if req == nil || a.sb.clock.Now().After(req.expires) {
		renderPage(w, http.StatusBadRequest, page{Title: "Authorization error", Error: "This authorization request has expired or was already used. Start again from the application."})
		return
	}
	if !ok {
		renderPage(w, http.StatusUnauthorized, page{Title: "Authorization error", Error: "Sign in first."})
		return
	}
	if r.PostForm.Get("decision") != "accept" {
		redirectWith(w, r, req.redirectURI, url.Values{"error": {"access_denied"},
			"error_description": {"The resource owner or authorization server denied the request."}, "state": {req.state}})
		return
	}
	a.mu.Lock()
	a.consents[userApp(user, req.app)] = consent{scopes: slices.Clone(req.scopes), at: a.sb.clock.Now()}
	a.mu.Unlock()
	a.issueCode(w, r, req, user)
}

// issueCode redirects to the app with a new authorization code.
func (a *authServer) issueCode(w http.ResponseWriter, r *http.Request, req *authRequest, user int64) {
	code := randomToken(32)
	a.mu.Lock()
	a.codes[code] = &authCode{app: req.app, user: user, redirectURI: req.redirectURI, scopes: req.scopes, challenge: req.challenge,
		expires: a.sb.clock.Now().Add(codeTTL), challengeWasProvided: req.challenge != ""}
	a.mu.Unlock()
	redirectWith(w, r, req.redirectURI, url.Values{"code": {code}, "state": {req.state}})
}

func userApp(user int64, app *App) string { return strconv.FormatInt(user, 10) + "|" + app.ClientID }

// consented reports whether user already accepted app for every one of
// scopes. A development grant that expired asks again.
func (a *authServer) consented(user int64, app *App, scopes []string) bool {
	a.mu.Lock()
	c, ok := a.consents[userApp(user, app)]
	a.mu.Unlock()
	if !ok || a.developmentExpired(app, c.at, a.sb.clock.Now()) {
		return false
	}
	for _, sc := range scopes {
		if !slices.Contains(c.scopes, sc) {
			return false // more than was consented to: ask
		}
	}
	return true
}

// developmentExpired reports whether a grant of app made at created has
// expired at now under ExpireDevelopmentGrants.
func (a *authServer) developmentExpired(app *App, created, now time.Time) bool {
	return a.sb.opts.ExpireDevelopmentGrants && !app.Production && !now.Before(created.Add(developmentGrantTTL))
}

// grantExpired reports whether g is a development grant past its week,
// and revokes its tokens when it is. The caller holds a.mu.
func (a *authServer) grantExpired(g *grant, now time.Time) bool {
	if g == nil || !a.developmentExpired(g.app, g.created, now) {
		return false
	}
	if g.ended {
		return true
	}
	g.ended = true
	for _, t := range a.refresh {
		if t.grant == g {
			t.revoked = true
		}
	}
	for _, t := range a.access {
		if t.grant == g {
			t.revoked = true
		}
	}
	return true
}

func developmentGrantExpired(app *App) string {
	return "The authorization of the development app " + app.Name + " expired: Outreach limits development credentials to a week for users outside the app's organization or beyond its first ten users. Authorize the app again."
}

func redirectWith(w http.ResponseWriter, r *http.Request, target string, params url.Values) {
	u, err := url.Parse(target)
	if err != nil {
		renderPage(w, http.StatusBadRequest, page{Title: "Authorization error", Error: "The redirect uri is invalid."})
		return
	}
	q := u.Query()
	for k, v := range params {
		if len(v) == 1 && v[0] == "" {
			continue
		}
		q[k] = v
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// --- Token endpoint ---

type oauthError struct {
	status int
	code   string
	desc   string
}

func writeOAuthError(w http.ResponseWriter, e oauthError) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSONType(w, e.status, "application/json; charset=utf-8", map[string]string{"error": e.code, "error_description": e.desc})
}

var (
	errInvalidClient = oauthError{http.StatusUnauthorized, "invalid_client", "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method."}
	errInvalidGrant  = oauthError{http.StatusBadRequest, "invalid_grant", "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client."}
)

// tokenParams reads a token or revocation request from a form or JSON body.
func tokenParams(r *http.Request) (url.Values, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/x-www-form-urlencoded", "":
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		return r.PostForm, nil
	case "application/json":
		var m map[string]any
		if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<16)).Decode(&m); err != nil {
			return nil, err
		}
		v := url.Values{}
		for k, x := range m {
			switch x := x.(type) {
			case string:
				v.Set(k, x)
			case float64:
				v.Set(k, strconv.FormatFloat(x, 'f', -1, 64))
			}
		}
		return v, nil
	}
	return nil, errors.New("unsupported content type " + ct)
}

// clientRequest reads a token or revocation request and authenticates its
// client; on failure it has answered with an OAuth error.
func (a *authServer) clientRequest(w http.ResponseWriter, r *http.Request) (url.Values, *App, bool) {
	p, err := tokenParams(r)
	if err != nil {
		writeOAuthError(w, oauthError{http.StatusBadRequest, "invalid_request", "The request body could not be read: send application/x-www-form-urlencoded or application/json."})
		return nil, nil, false
	}
	app := a.clientFrom(p)
	if app == nil {
		writeOAuthError(w, errInvalidClient)
		return nil, nil, false
	}
	return p, app, true
}

// clientFrom authenticates the client from client_id and client_secret in
// the body (client_secret_post, the only method Outreach documents).
func (a *authServer) clientFrom(p url.Values) *App {
	app := a.app(p.Get("client_id"))
	if app == nil || subtle.ConstantTimeCompare([]byte(p.Get("client_secret")), []byte(app.ClientSecret)) != 1 {
		return nil
	}
	return app
}

// handleToken serves POST /oauth/token.
func (a *authServer) handleToken(w http.ResponseWriter, r *http.Request) {
	a.sb.stats.tokenRequests.Add(1)
	if a.sb.faults.roll(func(f Faults) float64 { return f.TokenErrors }) {
		a.sb.stats.faults.Add(1)
		writeGatewayPage(w, http.StatusServiceUnavailable)
		return
	}
	p, app, ok := a.clientRequest(w, r)
	if !ok {
		return
	}
	now := a.sb.clock.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	switch p.Get("grant_type") {
	case "authorization_code":
		code := a.codes[p.Get("code")]
		if code == nil || code.app != app || now.After(code.expires) || code.redirectURI != p.Get("redirect_uri") {
			writeOAuthError(w, errInvalidGrant)
			return
		}
		if code.used {
			// A replayed code revokes what it minted (RFC 6749 §4.1.2).
			for _, rt := range code.issued {
				if t := a.refresh[rt]; t != nil {
					t.revoked = true
				}
			}
			for _, jti := range code.accessIssued {
				if t := a.access[jti]; t != nil {
					t.revoked = true
				}
			}
			writeOAuthError(w, errInvalidGrant)
			return
		}
		if code.challengeWasProvided {
			sum := sha256.Sum256([]byte(p.Get("code_verifier")))
			if base64.RawURLEncoding.EncodeToString(sum[:]) != code.challenge {
				writeOAuthError(w, oauthError{http.StatusBadRequest, "invalid_grant", "The code_verifier does not match the code_challenge."})
				return
			}
		}
		if a.throttled(w, code.user, app, now) {
			return
		}
		code.used = true
		tok := a.mint(&grant{user: code.user, app: app, created: now}, code.scopes, now)
		code.issued = append(code.issued, tok.refreshToken)
		code.accessIssued = append(code.accessIssued, tok.jti)
		a.writeToken(w, tok)
	case "refresh_token":
		if ru := p.Get("redirect_uri"); ru != "" && !slices.Contains(app.RedirectURIs, ru) {
			writeOAuthError(w, errInvalidGrant)
			return
		}
		rt := a.refresh[p.Get("refresh_token")]
		if rt != nil && rt.app == app && a.grantExpired(rt.grant, now) {
			writeOAuthError(w, oauthError{http.StatusBadRequest, "invalid_grant", developmentGrantExpired(app)})
			return
		}
		if rt == nil || rt.app != app || rt.revoked || now.After(rt.expires) {
			writeOAuthError(w, errInvalidGrant)
			return
		}
		if a.throttled(w, rt.user, app, now) {
			return
		}
		if !a.sb.opts.KeepRotatedRefreshTokens {
			rt.revoked = true
		}
		tok := a.mint(rt.grant, rt.scopes, now)
		a.sb.stats.refreshes.Add(1)
		a.writeToken(w, tok)
	default:
		writeOAuthError(w, oauthError{http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server."})
	}
}

// throttled enforces one grant per user and app per MintInterval. The
// caller holds a.mu.
func (a *authServer) throttled(w http.ResponseWriter, user int64, app *App, now time.Time) bool {
	if wait, ok := a.reserveMint(user, app, now); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		a.sb.stats.tokenThrottled.Add(1)
		writeOAuthError(w, oauthError{http.StatusTooManyRequests, "rate_limit_exceeded",
			"Only one token may be minted per minute for each user and application; the latest token is still valid."})
		return true
	}
	return false
}

// reserveMint records a grant for user and app at now, or reports how long
// until one is allowed. The caller holds a.mu.
func (a *authServer) reserveMint(user int64, app *App, now time.Time) (time.Duration, bool) {
	if a.sb.opts.MintInterval < 0 {
		return 0, true
	}
	key := strconv.FormatInt(user, 10) + "|" + app.ClientID
	if last, ok := a.lastMint[key]; ok && now.Sub(last) < a.sb.opts.MintInterval {
		return a.sb.opts.MintInterval - now.Sub(last), false
	}
	a.lastMint[key] = now
	return 0, true
}

type mintedToken struct {
	accessToken, refreshToken, jti string
	scopes                         []string
	created                        time.Time
	expiresIn                      int
}

// mint issues an access token and a refresh token of grant g. The caller
// holds a.mu.
func (a *authServer) mint(g *grant, scopes []string, now time.Time) mintedToken {
	user, app := g.user, g.app
	opts := &a.sb.opts
	jti := randomToken(16)
	rt := randomToken(32)
	at := &accessToken{jti: jti, user: user, app: app, grant: g, scopes: scopes, created: now, expires: now.Add(opts.AccessTokenTTL), refresh: rt}
	a.access[jti] = at
	a.minted++
	a.refresh[rt] = &refreshToken{seq: a.minted, user: user, app: app, grant: g, scopes: scopes, created: now, expires: now.Add(opts.RefreshTokenTTL)}
	// Cap the live refresh tokens of this user and app: the oldest go.
	var live []*refreshToken
	for _, t := range a.refresh {
		if t.user == user && t.app == app && !t.revoked && now.Before(t.expires) {
			live = append(live, t)
		}
	}
	if extra := len(live) - opts.MaxRefreshTokens; extra > 0 {
		slices.SortFunc(live, func(x, y *refreshToken) int { return cmp.Compare(x.seq, y.seq) })
		for _, t := range live[:extra] {
			t.revoked = true
		}
	}
	a.sb.stats.tokensMinted.Add(1)
	return mintedToken{accessToken: a.signJWT(at), refreshToken: rt, jti: jti, scopes: scopes, created: now, expiresIn: int(opts.AccessTokenTTL / time.Second)}
}

func (a *authServer) writeToken(w http.ResponseWriter, t mintedToken) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSONType(w, http.StatusOK, "application/json; charset=utf-8", map[string]any{
		"access_token": t.accessToken, "token_type": "bearer", "expires_in": t.expiresIn,
		"refresh_token": t.refreshToken, "scope": strings.Join(t.scopes, " "), "created_at": t.created.Unix(),
	})
}

// handleRevoke serves POST /oauth/revoke (RFC 7009).
func (a *authServer) handleRevoke(w http.ResponseWriter, r *http.Request) {
	p, app, ok := a.clientRequest(w, r)
	if !ok {
		return
	}
	tok := p.Get("token")
	a.mu.Lock()
	if rt := a.refresh[tok]; rt != nil && rt.app == app {
		rt.revoked = true
		for _, at := range a.access {
			if at.refresh == tok {
				at.revoked = true
			}
		}
	}
	if at, ok := a.parseJWT(tok); ok && at.app == app {
		at.revoked = true
	}
	a.mu.Unlock()
	writeJSONType(w, http.StatusOK, "application/json; charset=utf-8", map[string]any{})
}

// --- Access tokens: JWTs signed by the sandbox ---

type jwtClaims struct {
	JTI   string `json:"jti"`
	Sub   string `json:"sub"`
	Aud   string `json:"aud"`
	Iat   int64  `json:"iat"`
	Exp   int64  `json:"exp"`
	Scope string `json:"scope"`
}

func (a *authServer) signJWT(t *accessToken) string {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(jwtClaims{JTI: t.jti, Sub: strconv.FormatInt(t.user, 10), Aud: t.app.ClientID,
		Iat: t.created.Unix(), Exp: t.expires.Unix(), Scope: strings.Join(t.scopes, " ")})
	body := header + "." + base64.RawURLEncoding.EncodeToString(claims)
	mac := hmac.New(sha256.New, a.sb.sign)
	mac.Write([]byte(body))
	return body + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// parseJWT verifies a token's signature and finds it. The caller holds a.mu.
func (a *authServer) parseJWT(tok string) (*accessToken, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, false
	}
	mac := hmac.New(sha256.New, a.sb.sign)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, false
	}
	var c jwtClaims
	if json.Unmarshal(raw, &c) != nil {
		return nil, false
	}
	at := a.access[c.JTI]
	return at, at != nil
}

// authenticate checks the bearer token of an API request. On failure it
// has answered with a 401.
func (a *authServer) authenticate(w http.ResponseWriter, r *http.Request) (*accessToken, bool) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		writeGateway401(w, "The request has no bearer token in its Authorization header.")
		return nil, false
	}
	a.mu.Lock()
	at, ok := a.parseJWT(strings.TrimSpace(tok))
	var expired, revoked, grantEnded bool
	if ok {
		now := a.sb.clock.Now()
		grantEnded = a.grantExpired(at.grant, now)
		expired, revoked = !now.Before(at.expires), at.revoked
	}
	a.mu.Unlock()
	switch {
	case !ok:
		writeGateway401(w, "The JWT token could not be decoded.")
		return nil, false
	case grantEnded:
		writeGateway401(w, "The JWT token has been revoked. "+developmentGrantExpired(at.app))
		return nil, false
	case revoked:
		writeGateway401(w, "The JWT token has been revoked.")
		return nil, false
	case expired:
		writeGateway401(w, "The JWT token has expired.")
		return nil, false
	}
	return at, true
}

// IssueToken mints an access and refresh token for a seeded user and the
// first app without the browser flow, for tests and scripts. It is
// subject to the same per-minute mint limit as the token endpoint.
func (s *Sandbox) IssueToken(user int64, scopes ...string) (access, refresh string, err error) {
	if len(scopes) == 0 {
		scopes = s.cat.Scopes()
	}
	if s.userEmail(user) == "" {
		return "", "", errors.New("sandbox: no such user")
	}
	a := s.auth
	app := &s.apps[0]
	now := s.clock.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if wait, ok := a.reserveMint(user, app, now); !ok {
		return "", "", fmt.Errorf("sandbox: a token was minted for this user and app less than a minute ago; try again in %s", wait.Round(time.Second))
	}
	t := a.mint(&grant{user: user, app: app, created: now}, scopes, now)
	return t.accessToken, t.refreshToken, nil
}

func (s *Sandbox) userByEmail(email string) int64 {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	res, _ := s.cat.ByType("user")
	i := res.AttributeIndex("email")
	c := s.store.cols["user"]
	for id := int64(1); id < c.nextID; id++ {
		rec, ok := s.store.get("user", id)
		if ok {
			if e, _ := rec.attrs[i].(string); e != "" && strings.EqualFold(e, email) {
				return id
			}
		}
	}
	return 0
}
