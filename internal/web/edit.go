package web

import (
	"net/http"
	"slices"

	"github.com/outreach-connector/outreach-connector/internal/credential"
)

// Editing a credential: name, description and scopes, and replacing the
// client secret (write-only). Growing the scopes needs a new
// authorization, which the credential's page then offers.

func (s *Server) editForm(w http.ResponseWriter, r *http.Request) {
	rec, err := s.m.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	s.renderEdit(w, r, http.StatusOK, rec, rec.Name, rec.Description, rec.Scopes, "")
}

func (s *Server) renderEdit(w http.ResponseWriter, r *http.Request, status int, rec *credential.Record, name, description string, scopes []string, msg string) {
	s.render(w, status, "edit.html", sessionOf(r), s.scopeData(map[string]any{"Title": "Edit " + rec.Name, "C": rec,
		"Name": name, "Description": description, "Error": msg}, scopes))
}

// sameSet reports whether a and b hold the same scopes in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func (s *Server) edit(w http.ResponseWriter, r *http.Request) {
	rec, err := s.m.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	f := r.PostForm
	name, description := f.Get("name"), f.Get("description")
	c := credential.Changes{Name: &name, Description: &description}
	if secret := f.Get("client_secret"); secret != "" {
		c.ClientSecret = &secret
	}
	scopes := s.formScopes(r)
	if !sameSet(scopes, rec.Scopes) {
		c.Scopes = scopes
	}
	updated, reauthorize, err := s.m.Update(r.Context(), rec.ID, c)
	if err != nil {
		p := classify(err)
		if p.Status == http.StatusInternalServerError || p.Status == http.StatusNotFound {
			s.fail(w, r, rec.ID, err)
			return
		}
		// The form comes back with what to fix, never with the secret.
		s.renderEdit(w, r, p.Status, rec, name, description, scopes, p.Message)
		return
	}
	code := "updated"
	if reauthorize {
		code = "reauthorize"
	}
	http.Redirect(w, r, "/credentials/"+updated.ID+"?notice="+code, http.StatusSeeOther)
}

func (s *Server) apiUpdate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name         *string  `json:"name"`
		Description  *string  `json:"description"`
		ClientSecret *string  `json:"client_secret"`
		Scopes       []string `json:"scopes"`
	}
	if !s.decodeBody(w, r, &body) {
		return
	}
	rec, reauthorize, err := s.m.Update(r.Context(), r.PathValue("id"), credential.Changes{Name: body.Name, Description: body.Description,
		ClientSecret: body.ClientSecret, Scopes: body.Scopes})
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"credential": toJSON(rec), "reauthorize": reauthorize})
}
