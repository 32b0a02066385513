package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/credential"
)

// The JSON API (documented in docs/credentials.md) takes the admin token
// as a bearer token. It never returns a client secret or a token.

func (s *Server) api(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Wrong tokens count against the address as wrong sign-ins do.
		ip := clientIP(r)
		if wait := s.limiter.wait(ip, s.now()); wait > 0 {
			secs := int((wait + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": "too many wrong admin tokens; wait, then try again",
				"code": "too_many_attempts", "retry_after": secs})
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !s.adminOK(strings.TrimSpace(tok)) {
			if ok {
				s.limiter.fail(ip, s.now())
				s.log.Warn("API request with a wrong admin token", "remote", ip)
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="outreach-connector"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "send the admin token as Authorization: Bearer <token>"})
			return
		}
		h(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// credentialJSON is a credential as the API shows it: no secrets.
type credentialJSON struct {
	ID                string   `json:"id"`
	Name              string   `json:"name"`
	Description       string   `json:"description"`
	ClientID          string   `json:"client_id"`
	Scopes            []string `json:"scopes"`
	Environment       string   `json:"environment"`
	APIBaseURL        string   `json:"api_base_url"`
	RedirectURI       string   `json:"redirect_uri"`
	Status            string   `json:"status"`
	OutreachUserID    string   `json:"outreach_user_id,omitempty"`
	OutreachUserEmail string   `json:"outreach_user_email,omitempty"`
	OutreachOrg       string   `json:"outreach_org,omitempty"`
	TokenExpiresAt    *string  `json:"token_expires_at"`
	LastRefreshAt     *string  `json:"last_refresh_at"`
	LastError         string   `json:"last_error,omitempty"`
	CreatedAt         string   `json:"created_at"`
}

func toJSON(r *credential.Record) credentialJSON {
	ts := func(t time.Time) *string {
		if t.IsZero() {
			return nil
		}
		s := t.UTC().Format(time.RFC3339)
		return &s
	}
	return credentialJSON{ID: r.ID, Name: r.Name, Description: r.Description, ClientID: r.ClientID, Scopes: r.Scopes,
		Environment: string(r.Environment), APIBaseURL: r.APIBaseURL, RedirectURI: r.RedirectURI, Status: string(r.Status),
		OutreachUserID: r.OutreachUserID, OutreachUserEmail: r.OutreachUserEmail, OutreachOrg: r.OutreachOrg,
		TokenExpiresAt: ts(r.TokenExpiresAt), LastRefreshAt: ts(r.LastRefreshAt), LastError: r.LastError, CreatedAt: r.CreatedAt.UTC().Format(time.RFC3339)}
}

// apiError answers a failed operation: the status that fits (Outreach's
// trouble is never a 500), a stable code, what happened and what to do.
func (s *Server) apiError(w http.ResponseWriter, r *http.Request, err error) {
	s.writeProblem(w, r, classify(err), err)
}

// decodeBody reads a JSON body of at most maxJSONBytes into v, answering
// 400 (413 when too large) on failure.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF { // another value, or bytes that are none
			err = errors.New("one JSON object, and nothing after it")
		}
	}
	if err != nil {
		status := http.StatusBadRequest
		var maxErr *http.MaxBytesError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &maxErr):
			status = http.StatusRequestEntityTooLarge
		case errors.As(err, &typeErr) && typeErr.Field == "":
			err = fmt.Errorf("send a JSON object, not %s", typeErr.Value)
		case errors.As(err, &typeErr):
			err = fmt.Errorf("field %s: send %s, not %s", typeErr.Field, jsonKind(typeErr.Type.Kind()), typeErr.Value)
		}
		writeJSON(w, status, map[string]string{"error": "body: " + err.Error(), "code": "bad_body"})
		return false
	}
	return true
}

// jsonKind names, as JSON does, what a Go kind is decoded from.
func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct, reflect.Pointer:
		return "an object"
	}
	return "a number"
}

func (s *Server) apiList(w http.ResponseWriter, r *http.Request) {
	recs, err := s.m.List(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"credentials": mapAll(recs, toJSON)})
}

func (s *Server) apiCreate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name         string   `json:"name"`
		Description  string   `json:"description"`
		ClientID     string   `json:"client_id"`
		ClientSecret string   `json:"client_secret"`
		Scopes       []string `json:"scopes"`
		Environment  string   `json:"environment"`
		APIBaseURL   string   `json:"api_base_url"`
		RedirectURI  string   `json:"redirect_uri"`
	}
	if !s.decodeBody(w, r, &body) {
		return
	}
	if body.RedirectURI == "" {
		body.RedirectURI = s.opts.CallbackURL
	}
	rec, err := s.m.Create(r.Context(), credential.NewCredential{Name: body.Name, Description: body.Description, ClientID: body.ClientID,
		ClientSecret: body.ClientSecret, Scopes: body.Scopes, Environment: credential.Environment(body.Environment),
		APIBaseURL: body.APIBaseURL, RedirectURI: body.RedirectURI})
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toJSON(rec))
}

func (s *Server) apiShow(w http.ResponseWriter, r *http.Request) {
	rec, err := s.m.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toJSON(rec))
}

// apiDelete revokes at Outreach and deletes; with ?local=true it deletes
// without contacting Outreach.
func (s *Server) apiDelete(w http.ResponseWriter, r *http.Request) {
	del := s.m.Delete
	if r.URL.Query().Get("local") == "true" {
		del = s.m.Forget
	}
	if err := del(r.Context(), r.PathValue("id")); err != nil {
		s.apiError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// apiAuthorize returns the URL to open in the browser; the browser must
// first visit it through this server's /credentials/{id} page to get the
// binding cookie, so the API hands out the UI link.
func (s *Server) apiAuthorize(w http.ResponseWriter, r *http.Request) {
	rec, err := s.m.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"open_in_browser": "/credentials/" + rec.ID,
		"note": "authorization runs in a browser: open this page, signed in, and click Authorize"})
}

func (s *Server) apiRefresh(w http.ResponseWriter, r *http.Request) {
	if _, err := s.m.RefreshNow(r.Context(), r.PathValue("id")); err != nil {
		s.apiError(w, r, err)
		return
	}
	s.apiShow(w, r)
}

// apiRevoke revokes at Outreach; with ?local=true it deletes the tokens
// here only.
func (s *Server) apiRevoke(w http.ResponseWriter, r *http.Request) {
	revoke := s.m.Revoke
	if r.URL.Query().Get("local") == "true" {
		revoke = s.m.RevokeLocally
	}
	if err := revoke(r.Context(), r.PathValue("id")); err != nil {
		s.apiError(w, r, err)
		return
	}
	s.apiShow(w, r)
}
