package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/proxy"
)

// APIKeys is what the API keys page needs of the key store
// (sqlstore.APIKeys).
type APIKeys interface {
	CreateKey(ctx context.Context, k *proxy.Key) error
	ListKeys(ctx context.Context) ([]*proxy.Key, error)
	RevokeKey(ctx context.Context, name string, at time.Time) error
}

func (s *Server) keyRoutes(mux *http.ServeMux) {
	if s.opts.Keys == nil {
		return
	}
	mux.Handle("GET /keys", s.page(s.keysPage))
	mux.Handle("POST /keys", s.page(s.createKey))
	mux.Handle("POST /keys/{name}/revoke", s.page(s.revokeKey))
}

// keyRow is one key as the page lists it.
type keyRow struct {
	Key         *proxy.Key
	Credentials []string // names
}

// showKeys renders the page; data may hold the key just created (shown
// once) or an error of the create form.
func (s *Server) showKeys(w http.ResponseWriter, r *http.Request, status int, data map[string]any) {
	keys, err := s.opts.Keys.ListKeys(r.Context())
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	creds, err := s.m.List(r.Context())
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	names := map[string]string{}
	for _, c := range creds {
		names[c.ID] = c.Name
	}
	rows := make([]keyRow, 0, len(keys))
	for _, k := range keys {
		row := keyRow{Key: k}
		for _, id := range k.Credentials {
			n := names[id]
			if n == "" {
				n = id + " (deleted)"
			}
			row.Credentials = append(row.Credentials, n)
		}
		rows = append(rows, row)
	}
	if data == nil {
		data = map[string]any{}
	}
	data["Title"] = "API keys"
	data["Keys"] = rows
	data["Credentials"] = creds
	data["Base"] = s.opts.PublicURL
	s.render(w, status, "keys.html", sessionOf(r), data)
}

func (s *Server) keysPage(w http.ResponseWriter, r *http.Request) {
	data := map[string]any{}
	if r.URL.Query().Get("notice") == "revoked" {
		data["Notice"] = "Key " + r.URL.Query().Get("name") + " is revoked: the proxy refuses it within 2 seconds."
	}
	s.showKeys(w, r, http.StatusOK, data)
}

// createKey creates a key and shows it once, on the answer to the POST
// itself (never in a URL or a redirect).
func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	name := r.PostForm.Get("name")
	ids := r.PostForm["credentials"]
	fail := func(msg string) {
		s.showKeys(w, r, http.StatusBadRequest, map[string]any{"Error": msg, "Name": name})
	}
	for _, id := range ids {
		if _, err := s.m.Get(r.Context(), id); err != nil {
			fail("A credential ticked no longer exists; reload the page.")
			return
		}
	}
	secret, k, err := proxy.NewKey(name, ids, s.now())
	if err != nil {
		fail(err.Error() + ".")
		return
	}
	if err := s.opts.Keys.CreateKey(r.Context(), k); err != nil {
		if errors.Is(err, proxy.ErrKeyExists) {
			fail("A key named " + name + " exists; choose another name.")
			return
		}
		s.fail(w, r, "", err)
		return
	}
	s.log.Info("API key created", "key", k.Name, "credentials", len(ids))
	s.showKeys(w, r, http.StatusOK, map[string]any{"NewKey": secret, "NewName": k.Name})
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.opts.Keys.RevokeKey(r.Context(), name, s.now()); err != nil {
		if errors.Is(err, proxy.ErrKeyNotFound) {
			s.render(w, http.StatusNotFound, "error.html", sessionOf(r), map[string]any{"Title": "No such key", "Message": "There is no API key named " + name + "."})
			return
		}
		s.fail(w, r, "", err)
		return
	}
	s.log.Info("API key revoked", "key", name)
	http.Redirect(w, r, "/keys?notice=revoked&name="+url.QueryEscape(name), http.StatusSeeOther)
}
