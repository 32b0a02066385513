package web

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/credential"
)

func statusLabel(st credential.Status) string {
	switch st {
	case credential.StatusAwaiting:
		return "Awaiting authorization"
	case credential.StatusConnected:
		return "Connected"
	case credential.StatusNeedsReauth:
		return "Needs re-authorization"
	case credential.StatusRevoked:
		return "Revoked"
	}
	return string(st)
}

// The scope presets of the Add and Edit forms.
const (
	presetTicked   = "ticked"
	presetSync     = "sync"
	presetDefaults = "defaults"
)

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	recs, err := s.m.List(r.Context())
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	s.render(w, http.StatusOK, "list.html", sessionOf(r), map[string]any{"Title": "Credentials", "Credentials": recs})
}

// scopeData is what the scope fieldset of a form shows: the choices, the
// presets and what each can read.
func (s *Server) scopeData(data map[string]any, selected []string) map[string]any {
	data["ScopeChoices"] = s.scopes.choicesWith(selected)
	data["SyncPreset"] = strings.Join(s.scopes.syncPreset, " ")
	data["DefaultScopes"] = strings.Join(credential.DefaultScopes(), " ")
	data["Coverage"] = s.scopes.cover(selected)
	data["SyncCoverage"] = s.scopes.cover(s.scopes.syncPreset)
	data["DefaultsCoverage"] = s.scopes.cover(credential.DefaultScopes())
	data["Streams"] = s.scopes.streams
	data["Selected"] = selected
	return data
}

func (s *Server) newForm(w http.ResponseWriter, r *http.Request) {
	d := s.opts.Defaults
	if d.Scopes == nil {
		d.Scopes = credential.DefaultScopes()
	}
	if d.RedirectURI == "" {
		d.RedirectURI = s.opts.CallbackURL
	}
	if d.APIBaseURL == "" {
		d.APIBaseURL = credential.DefaultAPIBaseURL
	}
	if d.Environment == "" {
		d.Environment = credential.Development
	}
	s.render(w, http.StatusOK, "new.html", sessionOf(r), s.scopeData(map[string]any{"Title": "Add credential", "Form": d}, d.Scopes))
}

// formScopes reads the scopes of a form: a preset, or the ticked boxes,
// plus any typed in.
func (s *Server) formScopes(r *http.Request) []string {
	f := r.PostForm
	var scopes []string
	switch f.Get("preset") {
	case presetSync, "read-only":
		scopes = slices.Clone(s.scopes.syncPreset)
	case presetDefaults:
		scopes = credential.DefaultScopes()
	default:
		scopes = slices.Clone(f["scopes"])
	}
	for _, extra := range strings.Fields(f.Get("extra_scopes")) {
		if !slices.Contains(scopes, extra) {
			scopes = append(scopes, extra)
		}
	}
	if scopes == nil {
		scopes = []string{}
	}
	return scopes
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	n := credential.NewCredential{Name: f.Get("name"), Description: f.Get("description"), ClientID: f.Get("client_id"),
		ClientSecret: f.Get("client_secret"), Environment: credential.Environment(f.Get("environment")), APIBaseURL: f.Get("api_base_url"),
		RedirectURI: f.Get("redirect_uri"), Scopes: s.formScopes(r)}
	rec, err := s.m.Create(r.Context(), n)
	if err != nil {
		n.ClientSecret = "" // never sent back to the browser
		p := classify(err)
		if p.Status == http.StatusInternalServerError {
			s.fail(w, r, "", err)
			return
		}
		msg := p.Message
		if errors.Is(err, credential.ErrNameTaken) {
			msg = "A credential named " + n.Name + " exists already; choose another name."
		}
		s.render(w, p.Status, "new.html", sessionOf(r), s.scopeData(map[string]any{"Title": "Add credential", "Form": n, "Error": msg}, n.Scopes))
		return
	}
	http.Redirect(w, r, "/credentials/"+rec.ID, http.StatusSeeOther)
}

// lastFailedAuthorization returns the newest failed or denied
// authorization when no authorization succeeded since; events are newest
// first.
func lastFailedAuthorization(events []credential.Event) *credential.Event {
	for i, e := range events {
		switch e.Kind {
		case "authorized", "imported":
			return nil
		case "authorization_failed", "authorization_denied":
			return &events[i]
		}
	}
	return nil
}

func (s *Server) show(w http.ResponseWriter, r *http.Request) {
	rec, err := s.m.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	events, err := s.m.Events(r.Context(), rec.ID, 20)
	if err != nil {
		s.log.Warn("list credential events", "credential", rec.ID, "err", err)
	}
	s.render(w, http.StatusOK, "show.html", sessionOf(r), map[string]any{"Title": rec.Name, "C": rec, "Events": events,
		"Notice": notice(r.URL.Query().Get("notice")), "FailedAuth": lastFailedAuthorization(events),
		"Development": rec.Environment == credential.Development, "Coverage": s.scopes.cover(rec.Scopes),
		"Connections": s.credentialConnections(r.Context(), rec.ID)})
}

// notice maps a fixed set of codes to messages: nothing from the URL is
// shown as is.
func notice(code string) string {
	switch code {
	case "connected":
		return "Connected to Outreach."
	case "refreshed":
		return "The access token was refreshed."
	case "revoked":
		return "The credential was disconnected and its tokens deleted."
	case "updated":
		return "Saved."
	case "reauthorize":
		return "Saved. The added scopes need a new authorization: click Re-authorize and accept them at Outreach."
	}
	return ""
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	rec, err := s.m.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	authURL, browser, err := s.m.BeginAuthorize(r.Context(), rec.ID)
	if err != nil {
		s.fail(w, r, rec.ID, err)
		return
	}
	age := int((10 * time.Minute) / time.Second)
	s.cookie(w, r, &http.Cookie{Name: browserCookie, Value: browser, Path: "/oauth/callback", MaxAge: age})
	s.cookie(w, r, &http.Cookie{Name: pendingCookie, Value: rec.ID, Path: "/oauth/callback", MaxAge: age})
	http.Redirect(w, r, authURL, http.StatusSeeOther)
}

// callback serves GET /oauth/callback. It needs no session: the single-use
// state and the browser-binding cookie authenticate it.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var browser, pending string
	if c, err := r.Cookie(browserCookie); err == nil {
		browser = c.Value
	}
	if c, err := r.Cookie(pendingCookie); err == nil {
		pending = c.Value
	}
	rec, err := s.m.CompleteAuthorize(r.Context(), q.Get("state"), q.Get("code"), q.Get("error"), browser)
	if err == nil || !errors.Is(err, credential.ErrBadState) {
		// The state is used up: the cookies have served.
		s.cookie(w, r, &http.Cookie{Name: browserCookie, Value: "", Path: "/oauth/callback", MaxAge: -1})
		s.cookie(w, r, &http.Cookie{Name: pendingCookie, Value: "", Path: "/oauth/callback", MaxAge: -1})
	}
	if err == nil {
		http.Redirect(w, r, "/credentials/"+rec.ID+"?notice=connected", http.StatusSeeOther)
		return
	}
	sid, _ := s.session(r)
	s.log.Warn("authorization failed", "err", err)
	// Name the credential only to the signed-in admin: the cookie is the
	// browser's to write.
	var cred *credential.Record
	if sid != "" && pending != "" {
		cred, _ = s.m.Get(r.Context(), pending)
	}
	data := map[string]any{"C": cred, "Detail": err.Error()}
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, credential.ErrBadState):
		p := classify(err)
		data["Title"], data["Message"] = p.Title, p.Message
		delete(data, "Detail")
	case q.Get("error") == "access_denied":
		status = http.StatusOK
		data["Title"] = "Authorization denied"
		data["Denied"] = true
	case q.Get("error") != "":
		data["Title"] = "Outreach refused the authorization"
		data["Message"] = "Outreach answered " + q.Get("error") + " and issued no tokens. Check the credential's scopes and the " +
			"redirect URI registered on the Outreach app, then authorize again."
	default:
		p := classify(err)
		status = p.Status
		if p.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(p.RetryAfter))
		}
		data["Title"], data["Message"] = "Authorization failed: "+p.Title, p.Message
	}
	s.render(w, status, "callback.html", sid, data)
}

func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	rec, err := s.m.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	if _, err := s.m.RefreshNow(r.Context(), rec.ID); err != nil {
		s.fail(w, r, rec.ID, err)
		return
	}
	http.Redirect(w, r, "/credentials/"+rec.ID+"?notice=refreshed", http.StatusSeeOther)
}

// confirm shows the page that asks before a destructive action.
func (s *Server) confirm(w http.ResponseWriter, r *http.Request, action string) {
	rec, err := s.m.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	title := "Delete " + rec.Name + "?"
	if action == "revoke" {
		title = "Disconnect " + rec.Name + "?"
	}
	s.render(w, http.StatusOK, "confirm.html", sessionOf(r), map[string]any{"Title": title, "C": rec, "Action": action,
		"HasTokens": rec.Status == credential.StatusConnected || rec.Status == credential.StatusNeedsReauth})
}

func (s *Server) confirmRevoke(w http.ResponseWriter, r *http.Request) { s.confirm(w, r, "revoke") }
func (s *Server) confirmDelete(w http.ResponseWriter, r *http.Request) { s.confirm(w, r, "delete") }

// confirmed reports whether the form carries the confirmation; if not it
// sends the browser to the confirmation page.
func confirmed(w http.ResponseWriter, r *http.Request, action string) bool {
	if r.PostForm.Get("confirm") == "yes" {
		return true
	}
	http.Redirect(w, r, "/credentials/"+r.PathValue("id")+"/"+action, http.StatusSeeOther)
	return false
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	if !confirmed(w, r, "revoke") {
		return
	}
	id := r.PathValue("id")
	var err error
	if r.PostForm.Get("local") == "yes" {
		err = s.m.RevokeLocally(r.Context(), id)
	} else {
		err = s.m.Revoke(r.Context(), id)
	}
	if err != nil {
		s.failDestructive(w, r, "revoke", err)
		return
	}
	http.Redirect(w, r, "/credentials/"+id+"?notice=revoked", http.StatusSeeOther)
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	if !confirmed(w, r, "delete") {
		return
	}
	id := r.PathValue("id")
	var err error
	if r.PostForm.Get("local") == "yes" {
		err = s.m.Forget(r.Context(), id)
	} else {
		err = s.m.Delete(r.Context(), id)
	}
	if err != nil {
		s.failDestructive(w, r, "delete", err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// failDestructive answers a failed Disconnect or Delete. When Outreach did
// not confirm the revocation the credential and its tokens are kept; the
// confirmation page comes back saying so, and offers to do it here only.
func (s *Server) failDestructive(w http.ResponseWriter, r *http.Request, action string, err error) {
	if !errors.Is(err, credential.ErrRevokeFailed) {
		s.fail(w, r, r.PathValue("id"), err)
		return
	}
	rec, gerr := s.m.Get(r.Context(), r.PathValue("id"))
	if gerr != nil {
		s.fail(w, r, "", gerr)
		return
	}
	s.log.Warn("revoke at Outreach failed", "credential", rec.Name, "err", err)
	title := "Delete " + rec.Name + "?"
	if action == "revoke" {
		title = "Disconnect " + rec.Name + "?"
	}
	s.render(w, http.StatusBadGateway, "confirm.html", sessionOf(r), map[string]any{"Title": title, "C": rec, "Action": action,
		"HasTokens": true, "RevokeFailed": true, "Detail": err.Error()})
}

// fail answers a failed operation with a page that says what happened
// and what to do; credID is the credential it concerned, if any.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, credID string, err error) {
	p := classify(err)
	if p.Status == http.StatusInternalServerError {
		s.log.Error("request failed", "path", r.URL.Path, "err", err)
	} else {
		s.log.Warn("request failed", "path", r.URL.Path, "status", p.Status, "err", err)
	}
	if p.Status == http.StatusNotFound {
		credID = ""
	}
	s.renderProblem(w, sessionOf(r), credID, p)
}
