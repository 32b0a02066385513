// Package web serves the credentials UI (server-rendered HTML with
// embedded assets), its JSON REST API, and the OAuth callback.
//
// Every route but sign-in, the callback, assets and /healthz needs the
// admin: a session cookie (HTML) or the admin token as a bearer token
// (JSON API). Every form carries a CSRF token bound to the session.
package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

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
	// Defaults prefill the Add Credential form (for the sandbox).
	Defaults credential.NewCredential
	Logger   *slog.Logger
	// Now tells the time; nil means time.Now.
	Now func() time.Time
}

// Server is the web UI and API.
type Server struct {
	opts      Options
	m         *credential.Manager
	log       *slog.Logger
	now       func() time.Time
	adminHash [32]byte
	csrfKey   []byte
	pages     *template.Template
	mux       *http.ServeMux

	mu       sync.Mutex
	sessions map[string]time.Time // session id → expiry
}

const (
	sessionCookie = "oc_session"
	browserCookie = "oc_oauth_browser"
	sessionTTL    = 12 * time.Hour
)

// New builds a server.
func New(opts Options) (*Server, error) {
	if opts.Manager == nil || len(opts.AdminToken) < 16 {
		return nil, errors.New("web: a manager and an admin token of at least 16 characters are required")
	}
	s := &Server{opts: opts, m: opts.Manager, log: opts.Logger, now: opts.Now, adminHash: sha256.Sum256([]byte(opts.AdminToken)),
		csrfKey: make([]byte, 32), sessions: map[string]time.Time{}}
	rand.Read(s.csrfKey)
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
		"join": strings.Join,
		"has": func(list []string, s string) bool {
			for _, x := range list {
				if x == s {
					return true
				}
			}
			return false
		},
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
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /signin", s.signInPage)
	mux.HandleFunc("POST /signin", s.signIn)
	mux.HandleFunc("GET /oauth/callback", s.callback)

	mux.Handle("POST /signout", s.page(s.signOut))
	mux.Handle("GET /{$}", s.page(s.list))
	mux.Handle("GET /credentials/new", s.page(s.newForm))
	mux.Handle("POST /credentials", s.page(s.create))
	mux.Handle("GET /credentials/{id}", s.page(s.show))
	mux.Handle("POST /credentials/{id}/authorize", s.page(s.authorize))
	mux.Handle("POST /credentials/{id}/refresh", s.page(s.refresh))
	mux.Handle("POST /credentials/{id}/revoke", s.page(s.revoke))
	mux.Handle("POST /credentials/{id}/delete", s.page(s.delete))

	mux.Handle("GET /api/credentials", s.api(s.apiList))
	mux.Handle("POST /api/credentials", s.api(s.apiCreate))
	mux.Handle("GET /api/credentials/{id}", s.api(s.apiShow))
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
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.sessions[c.Value]
	if !ok || s.now().After(exp) {
		delete(s.sessions, c.Value)
		return "", false
	}
	return c.Value, true
}

func (s *Server) csrfFor(session string) string {
	mac := hmac.New(sha256.New, s.csrfKey)
	mac.Write([]byte(session))
	return hex.EncodeToString(mac.Sum(nil))
}

// page guards an HTML route: a session is required (else to sign-in), and
// every POST must carry the session's CSRF token.
func (s *Server) page(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sid, ok := s.session(r)
		if !ok {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/signin?next="+safeNext(r.URL.Path), http.StatusSeeOther)
				return
			}
			http.Error(w, "Sign in first.", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(s.csrfFor(sid))) != 1 {
				s.render(w, http.StatusForbidden, "error.html", sid, map[string]any{"Title": "Form expired",
					"Message": "This form is stale or did not come from this site. Go back, reload the page and try again."})
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, sid)))
	})
}

// safeNext keeps only local paths, so sign-in cannot redirect elsewhere.
func safeNext(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") {
		return "/"
	}
	return p
}

func (s *Server) render(w http.ResponseWriter, status int, name, sid string, data map[string]any) {
	if data == nil {
		data = map[string]any{}
	}
	if sid != "" {
		data["CSRF"] = s.csrfFor(sid)
		data["SignedIn"] = true
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := s.pages.ExecuteTemplate(w, name, data); err != nil {
		s.log.Error("render page", "page", name, "err", err)
	}
}

func sessionOf(r *http.Request) string {
	sid, _ := r.Context().Value(sessionKey{}).(string)
	return sid
}

func (s *Server) signInPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.session(r); ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.render(w, http.StatusOK, "signin.html", "", map[string]any{"Next": safeNext(r.URL.Query().Get("next"))})
}

func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || !s.adminOK(r.PostForm.Get("token")) {
		s.log.Warn("failed sign-in", "remote", r.RemoteAddr)
		s.render(w, http.StatusUnauthorized, "signin.html", "", map[string]any{"Error": "That admin token is not right. It was printed when the server first started.",
			"Next": safeNext(r.PostForm.Get("next"))})
		return
	}
	sid := randomHex(32)
	s.mu.Lock()
	s.sessions[sid] = s.now().Add(sessionTTL)
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: r.TLS != nil, MaxAge: int(sessionTTL / time.Second)})
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

func (s *Server) signOut(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	delete(s.sessions, sessionOf(r))
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}
