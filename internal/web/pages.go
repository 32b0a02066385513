package web

import (
	"errors"
	"net/http"
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

// scopeChoices are offered on the Add Credential form; the defaults are
// ticked.
var scopeChoices = []string{
	"accounts.all", "accounts.read", "calls.all", "calls.read", "events.read", "mailboxes.read", "mailings.read",
	"opportunities.all", "opportunities.read", "opportunityStages.all", "opportunityStages.read", "personas.read",
	"profiles.all", "profiles.read", "prospects.all", "prospects.read", "sequences.all", "sequences.read",
	"sequenceStates.all", "sequenceStates.read", "sequenceSteps.read", "stages.all", "stages.read", "tasks.all",
	"tasks.read", "teams.all", "teams.read", "templates.read", "snippets.read", "users.all", "users.read", "webhooks.all",
}

// readOnlyPreset is the least-privilege scope set for syncing.
var readOnlyPreset = []string{"accounts.read", "calls.read", "events.read", "mailboxes.read", "mailings.read", "opportunities.read",
	"opportunityStages.read", "personas.read", "profiles.read", "prospects.read", "sequences.read", "sequenceStates.read",
	"sequenceSteps.read", "stages.read", "tasks.read", "teams.read", "templates.read", "snippets.read", "users.read"}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	recs, err := s.m.List(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, http.StatusOK, "list.html", sessionOf(r), map[string]any{"Title": "Credentials", "Credentials": recs})
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
	s.render(w, http.StatusOK, "new.html", sessionOf(r), map[string]any{"Title": "Add credential", "Form": d,
		"ScopeChoices": scopeChoices, "ReadOnlyPreset": strings.Join(readOnlyPreset, " ")})
}

func formCredential(r *http.Request) credential.NewCredential {
	f := r.PostForm
	n := credential.NewCredential{Name: f.Get("name"), Description: f.Get("description"), ClientID: f.Get("client_id"),
		ClientSecret: f.Get("client_secret"), Environment: credential.Environment(f.Get("environment")), APIBaseURL: f.Get("api_base_url"),
		RedirectURI: f.Get("redirect_uri"), Scopes: f["scopes"]}
	if f.Get("preset") == "read-only" {
		n.Scopes = append([]string(nil), readOnlyPreset...)
	}
	if extra := strings.Fields(f.Get("extra_scopes")); len(extra) > 0 {
		n.Scopes = append(n.Scopes, extra...)
	}
	if n.Scopes == nil {
		n.Scopes = []string{}
	}
	return n
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	n := formCredential(r)
	rec, err := s.m.Create(r.Context(), n)
	if err != nil {
		n.ClientSecret = "" // never sent back to the browser
		msg := err.Error()
		if errors.Is(err, credential.ErrNameTaken) {
			msg = "A credential named " + n.Name + " exists already; choose another name."
		}
		s.render(w, http.StatusUnprocessableEntity, "new.html", sessionOf(r), map[string]any{"Title": "Add credential", "Form": n,
			"Error": msg, "ScopeChoices": scopeChoices, "ReadOnlyPreset": strings.Join(readOnlyPreset, " ")})
		return
	}
	http.Redirect(w, r, "/credentials/"+rec.ID, http.StatusSeeOther)
}

func (s *Server) show(w http.ResponseWriter, r *http.Request) {
	rec, err := s.m.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	events, _ := s.m.Events(r.Context(), rec.ID, 20)
	s.render(w, http.StatusOK, "show.html", sessionOf(r), map[string]any{"Title": rec.Name, "C": rec, "Events": events,
		"Notice": notice(r.URL.Query().Get("notice"))})
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
	}
	return ""
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	authURL, browser, err := s.m.BeginAuthorize(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: browserCookie, Value: browser, Path: "/oauth/callback", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil, MaxAge: int((10 * time.Minute) / time.Second)})
	http.Redirect(w, r, authURL, http.StatusSeeOther)
}

// callback serves GET /oauth/callback. It needs no session: the single-use
// state and the browser-binding cookie authenticate it.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var browser string
	if c, err := r.Cookie(browserCookie); err == nil {
		browser = c.Value
	}
	http.SetCookie(w, &http.Cookie{Name: browserCookie, Value: "", Path: "/oauth/callback", MaxAge: -1, HttpOnly: true})
	rec, err := s.m.CompleteAuthorize(r.Context(), q.Get("state"), q.Get("code"), q.Get("error"), browser)
	sid, _ := s.session(r)
	if err != nil {
		s.log.Warn("authorization failed", "err", err)
		msg := err.Error()
		if errors.Is(err, credential.ErrBadState) {
			msg = "This authorization link is unknown, expired (10 minutes), already used, or was started in another browser. Start again from the credential's page."
		}
		s.render(w, http.StatusBadRequest, "error.html", sid, map[string]any{"Title": "Authorization failed", "Message": msg})
		return
	}
	http.Redirect(w, r, "/credentials/"+rec.ID+"?notice=connected", http.StatusSeeOther)
}

func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	rec, err := s.m.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.m.RefreshNow(r.Context(), rec.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/credentials/"+rec.ID+"?notice=refreshed", http.StatusSeeOther)
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	if err := s.m.Revoke(r.Context(), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/credentials/"+r.PathValue("id")+"?notice=revoked", http.StatusSeeOther)
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	if err := s.m.Delete(r.Context(), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, credential.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, credential.ErrNeedsReauthorization):
		status = http.StatusConflict
	}
	if status == http.StatusInternalServerError {
		s.log.Error("request failed", "path", r.URL.Path, "err", err)
	}
	s.render(w, status, "error.html", sessionOf(r), map[string]any{"Title": http.StatusText(status), "Message": err.Error()})
}
