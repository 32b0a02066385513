// Package web serves the credentials UI (server-rendered HTML with
// embedded assets), its JSON REST API, and the OAuth callback.
//
// Every route but sign-in, the callback, assets and /healthz needs the
// admin: a session cookie (HTML) or the admin token as a bearer token
// (JSON API). Every form carries a CSRF token bound to the session.
package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Options configure a Server.
type Options struct {
	Manager *credential.Manager
	// AdminToken signs people in and authenticates the JSON API.
	AdminToken string
	// CallbackURL is this server's OAuth callback as Outreach redirects to
	// it, the default redirect URI of new credentials.
	CallbackURL string
	// PublicURL is the URL browsers reach this server at. When it is
	// https, cookies are Secure even when a proxy in front terminates TLS.
	PublicURL string
	// Defaults prefill the Add Credential form (for the sandbox).
	Defaults credential.NewCredential
	// Catalog tells which scopes read which streams; nil means
	// catalog.Default().
	Catalog *catalog.Catalog
	Logger  *slog.Logger
	// Now tells the time; nil means time.Now.
	Now func() time.Time
	// Connections runs connections (internal/service). Nil: the
	// connection pages and API answer 404 and no page offers them.
	Connections Connections
	// Metrics, when set, serves GET /metrics to the admin: the admin token
	// as a bearer token, or a signed-in session (see ops.go).
	Metrics http.Handler
	// Ready, when set, answers GET /readyz: nil means ready.
	Ready func(context.Context) error
	// Keys, when set, serves the API keys page (/keys) of the proxy.
	Keys APIKeys
	// Sessions keeps sign-in sessions; nil keeps them in this process
	// (a restart signs everyone out, and other nodes do not know them).
	Sessions SessionStore
}

// Server is the web UI and API.
type Server struct {
	opts      Options
	m         *credential.Manager
	log       *slog.Logger
	now       func() time.Time
	adminHash [32]byte
	sessions  SessionStore
	pages     *template.Template
	mux       *http.ServeMux
	secure    bool // Secure cookies whatever the request
	scopes    *scopeModel
	limiter   *signInLimiter
	conns     Connections
	streams   []connStream // what a connection can sync, by name
}

const (
	sessionCookie = "oc_session"
	browserCookie = "oc_oauth_browser"
	// pendingCookie names the credential being authorized, so a failed
	// callback can say which one.
	pendingCookie = "oc_oauth_credential"
	sessionTTL    = 12 * time.Hour
	// maxFormBytes caps a form body, maxJSONBytes an API body.
	maxFormBytes = 64 << 10
	maxJSONBytes = 64 << 10
)

// New builds a server.
func New(opts Options) (*Server, error) {
	if opts.Manager == nil || len(opts.AdminToken) < 16 {
		return nil, errors.New("web: a manager and an admin token of at least 16 characters are required")
	}
	s := &Server{opts: opts, m: opts.Manager, log: opts.Logger, now: opts.Now, adminHash: sha256.Sum256([]byte(opts.AdminToken)),
		sessions: opts.Sessions, limiter: newSignInLimiter()}
	if s.sessions == nil {
		s.sessions = newMemSessions()
	}
	if opts.PublicURL != "" {
		u, err := url.Parse(opts.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("web: public URL %q must be an absolute http(s) URL such as https://connector.example.com", opts.PublicURL)
		}
		s.secure = u.Scheme == "https"
	}
	cat := opts.Catalog
	if cat == nil {
		cat = catalog.Default()
	}
	s.scopes = newScopeModel(cat)
	s.conns = opts.Connections
	s.streams = connStreams(cat)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	funcs := template.FuncMap{
		"statusLabel": statusLabel,
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"join":         strings.Join,
		"has":          func(list []string, s string) bool { return slices.Contains(list, s) },
		"stateLabel":   stateLabel,
		"outcomeLabel": outcomeLabel,
		"redact":       connection.RedactedURL,
		"records":      func(r *connection.Run) int64 { return r.Totals().Records },
		"took":         took,
	}
	t, err := template.New("").Funcs(funcs).ParseFS(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	s.pages = t
	s.routes()
	return s, nil
}

// ServeHTTP serves the UI and API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; form-action 'self' http: https:; frame-ancestors 'none'")
	s.mux.ServeHTTP(w, r)
}

func (s *Server) routes() {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	mux.HandleFunc("GET /static/{file}", func(w http.ResponseWriter, r *http.Request) {
		// Files only: no directory listings.
		name := r.PathValue("file")
		if info, err := fs.Stat(static, name); err != nil || !info.Mode().IsRegular() {
			http.NotFound(w, r)
			return
		}
		http.ServeFileFS(w, r, static, name)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	s.opsRoutes(mux)
	mux.HandleFunc("GET /signin", s.signInPage)
	mux.HandleFunc("POST /signin", s.signIn)
	mux.HandleFunc("GET /oauth/callback", s.callback)

	mux.Handle("POST /signout", s.page(s.signOut))
	mux.Handle("GET /{$}", s.page(s.list))
	mux.Handle("GET /credentials", s.page(s.list)) // the list where the other pages' paths lead a reader to look
	mux.Handle("GET /credentials/new", s.page(s.newForm))
	mux.Handle("POST /credentials", s.page(s.create))
	mux.Handle("GET /credentials/{id}", s.page(s.show))
	mux.Handle("GET /credentials/{id}/edit", s.page(s.editForm))
	mux.Handle("POST /credentials/{id}/edit", s.page(s.edit))
	mux.Handle("POST /credentials/{id}/authorize", s.page(s.authorize))
	mux.Handle("POST /credentials/{id}/refresh", s.page(s.refresh))
	mux.Handle("GET /credentials/{id}/revoke", s.page(s.confirmRevoke))
	mux.Handle("POST /credentials/{id}/revoke", s.page(s.revoke))
	mux.Handle("GET /credentials/{id}/delete", s.page(s.confirmDelete))
	mux.Handle("POST /credentials/{id}/delete", s.page(s.delete))

	s.connectionRoutes(mux)
	s.keyRoutes(mux)

	mux.Handle("GET /api/credentials", s.api(s.apiList))
	mux.Handle("POST /api/credentials", s.api(s.apiCreate))
	mux.Handle("GET /api/credentials/{id}", s.api(s.apiShow))
	mux.Handle("PATCH /api/credentials/{id}", s.api(s.apiUpdate))
	mux.Handle("DELETE /api/credentials/{id}", s.api(s.apiDelete))
	mux.Handle("POST /api/credentials/{id}/authorize", s.api(s.apiAuthorize))
	mux.Handle("POST /api/credentials/{id}/refresh", s.api(s.apiRefresh))
	mux.Handle("POST /api/credentials/{id}/revoke", s.api(s.apiRevoke))
	s.mux = mux
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) adminOK(token string) bool {
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], s.adminHash[:]) == 1
}

type sessionKey struct{}

// session returns the request's live session id.
func (s *Server) session(r *http.Request) (string, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", false
	}
	exp, ok, err := s.sessions.SessionExpiry(r.Context(), sessionHash(c.Value))
	if err != nil {
		s.log.Error("web: read a session", "error", err)
		return "", false
	}
	if !ok || s.now().After(exp) {
		return "", false
	}
	return c.Value, true
}

// page guards an HTML route: a session is required (else to sign-in),
// form bodies are capped, and every POST must carry the session's CSRF
// token.
func (s *Server) page(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sid, ok := s.session(r)
		if !ok {
			if r.Method == http.MethodGet {
				target := r.URL.EscapedPath()
				if r.URL.RawQuery != "" {
					target += "?" + r.URL.RawQuery
				}
				http.Redirect(w, r, signInURL(target), http.StatusSeeOther)
				return
			}
			s.render(w, http.StatusUnauthorized, "error.html", "", map[string]any{"Title": "Sign in first",
				"Message": "Your session has ended. Sign in, then send the form again."})
			return
		}
		if r.Method == http.MethodPost {
			if !s.parseForm(w, r, sid) {
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(csrfFor(sid))) != 1 {
				s.render(w, http.StatusForbidden, "error.html", sid, map[string]any{"Title": "Form expired",
					"Message": "This form is stale or did not come from this site. Go back, reload the page and try again."})
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, sid)))
	})
}

// parseForm reads a form body of at most maxFormBytes; on failure it
// answers (413 for a body too large) and returns false.
func (s *Server) parseForm(w http.ResponseWriter, r *http.Request, sid string) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		p := classify(err)
		if p.Status == http.StatusInternalServerError {
			p = problem{Status: http.StatusBadRequest, Title: "Unreadable form", Message: "The form could not be read: " + err.Error()}
		}
		s.renderProblem(w, sid, "", p)
		return false
	}
	return true
}

// cookie sets an HttpOnly, SameSite=Lax cookie, Secure when the request
// came over TLS or the public URL is https.
func (s *Server) cookie(w http.ResponseWriter, r *http.Request, c *http.Cookie) {
	c.HttpOnly = true
	c.SameSite = http.SameSiteLaxMode
	c.Secure = s.secure || r.TLS != nil
	http.SetCookie(w, c)
}

func (s *Server) render(w http.ResponseWriter, status int, name, sid string, data map[string]any) {
	if data == nil {
		data = map[string]any{}
	}
	if sid != "" {
		data["CSRF"] = csrfFor(sid)
		data["SignedIn"] = true
		data["ConnectionsOn"] = s.conns != nil
		data["KeysOn"] = s.opts.Keys != nil
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := s.pages.ExecuteTemplate(w, name, data); err != nil {
		s.log.Error("render page", "page", name, "err", err)
	}
}

// renderProblem shows a problem page; credID, when set, is the credential
// the Authorize button of a problem that asks for it authorizes.
func (s *Server) renderProblem(w http.ResponseWriter, sid, credID string, p problem) {
	if p.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	data := map[string]any{"Title": p.Title, "Message": p.Message, "Detail": p.Detail}
	if p.Reauthorize && credID != "" {
		data["AuthorizeID"] = credID
	}
	if credID != "" {
		data["CredentialID"] = credID
	}
	s.render(w, p.Status, "error.html", sid, data)
}

func sessionOf(r *http.Request) string {
	sid, _ := r.Context().Value(sessionKey{}).(string)
	return sid
}

func (s *Server) signInPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if _, ok := s.session(r); ok {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	s.render(w, http.StatusOK, "signin.html", "", map[string]any{"Title": "Sign in", "Next": next})
}

// clientIP is the address sign-in attempts are counted against: the
// peer's, since headers such as X-Forwarded-For are the client's to write.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r, "") {
		return
	}
	ip := clientIP(r)
	next := safeNext(r.PostForm.Get("next"))
	// A locked-out address is refused before its token is looked at.
	if wait := s.limiter.wait(ip, s.now()); wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		s.log.Warn("sign-in refused: too many wrong admin tokens", "remote", ip, "retry_after_s", secs)
		s.render(w, http.StatusTooManyRequests, "signin.html", "", map[string]any{"Title": "Sign in", "Next": next,
			"Error": "Too many wrong admin tokens. Wait " + humanSeconds(secs) + ", then try again."})
		return
	}
	if !s.adminOK(r.PostForm.Get("token")) {
		s.limiter.fail(ip, s.now())
		s.log.Warn("failed sign-in", "remote", ip)
		s.render(w, http.StatusUnauthorized, "signin.html", "", map[string]any{"Title": "Sign in", "Next": next,
			"Error": "That admin token is not right. serve printed it when it first started and keeps it in its admin token file."})
		return
	}
	s.limiter.succeed(ip)
	sid := randomHex(32)
	if err := s.sessions.CreateSession(r.Context(), sessionHash(sid), s.now(), s.now().Add(sessionTTL)); err != nil {
		s.log.Error("web: keep a session", "error", err)
		s.render(w, http.StatusServiceUnavailable, "signin.html", "", map[string]any{"Title": "Sign in", "Next": next,
			"Error": "The app database does not answer; try again in a moment."})
		return
	}
	s.cookie(w, r, &http.Cookie{Name: sessionCookie, Value: sid, Path: "/", MaxAge: int(sessionTTL / time.Second)})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func humanSeconds(n int) string {
	switch {
	case n == 1:
		return "1 second"
	case n < 120:
		return strconv.Itoa(n) + " seconds"
	}
	return strconv.Itoa((n+59)/60) + " minutes"
}

func (s *Server) signOut(w http.ResponseWriter, r *http.Request) {
	if sid := sessionOf(r); sid != "" {
		if err := s.sessions.DeleteSession(r.Context(), sessionHash(sid)); err != nil {
			s.log.Error("web: end a session", "error", err)
		}
	}
	s.cookie(w, r, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1})
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}
