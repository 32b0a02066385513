package web

import (
	"context"
	"net/http"

	"github.com/outreach-connector/outreach-connector/internal/service"
)

// liveSetter is the optional part of Connections that makes a connection
// live (internal/service has it); without it the live routes answer 404.
type liveSetter interface {
	SetLive(ctx context.Context, idOrName string, on bool) (*service.LiveResult, error)
}

// liveRoutes adds the live toggle: POST /connections/{id}/live (form field
// live=on|off) and POST /api/connections/{id}/live {"live": true}.
func (s *Server) liveRoutes(mux *http.ServeMux) {
	mux.Handle("POST /connections/{id}/live", s.page(s.connectionsOn(s.connLive)))
	mux.Handle("POST /api/connections/{id}/live", s.api(s.apiConnectionsOn(s.apiConnLive)))
}

func (s *Server) liveSetter() (liveSetter, bool) {
	l, ok := s.conns.(liveSetter)
	return l, ok
}

func (s *Server) connLive(w http.ResponseWriter, r *http.Request) {
	l, ok := s.liveSetter()
	if !ok {
		http.NotFound(w, r)
		return
	}
	on := r.PostFormValue("live") == "on"
	res, err := l.SetLive(r.Context(), r.PathValue("id"), on)
	if err != nil {
		s.connFail(w, r, err)
		return
	}
	notice := "live_off"
	switch {
	case on && res.Subscribed:
		notice = "live_on"
	case on:
		notice = "live_pending"
	}
	s.backTo(w, r, res.Connection.ID, notice)
}

// apiConnLive takes {"live": true|false} and answers the connection, with
// "subscribed" (its webhooks exist at Outreach now) and the catch-up job.
func (s *Server) apiConnLive(w http.ResponseWriter, r *http.Request) {
	l, ok := s.liveSetter()
	if !ok {
		http.NotFound(w, r)
		return
	}
	var body struct {
		Live *bool `json:"live"`
	}
	if !s.decodeBody(w, r, &body) {
		return
	}
	if body.Live == nil {
		s.apiInvalid(w, r, []fieldProblem{{Field: "live", Message: `send {"live": true} or {"live": false}`}})
		return
	}
	res, err := l.SetLive(r.Context(), r.PathValue("id"), *body.Live)
	if err != nil {
		s.apiConnError(w, r, err)
		return
	}
	out := map[string]any{"connection": connToJSON(res.Connection), "subscribed": res.Subscribed}
	if res.CatchUp != 0 {
		out["catch_up_job"] = res.CatchUp
	}
	writeJSON(w, http.StatusOK, out)
}

// liveNotice is the notice of the live toggle's codes.
func liveNotice(code string) string {
	switch code {
	case "live_on":
		return "Live: Outreach now pushes this connection's changes, applied within seconds. A catch-up run is queued for what changed before."
	case "live_pending":
		return "Live: serve makes the webhooks at Outreach at its next check, then queues a catch-up run."
	case "live_off":
		return "Not live: the webhooks at Outreach are deleted. Scheduled runs go on."
	}
	return ""
}
