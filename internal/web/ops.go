package web

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// opsRoutes mounts what operators' tools read: /readyz, open like
// /healthz, and /metrics, for the admin only (the admin token as a bearer
// token, as the JSON API takes it, or a signed-in session).
func (s *Server) opsRoutes(mux *http.ServeMux) {
	if s.opts.Ready != nil {
		mux.HandleFunc("GET /readyz", s.readyz)
	}
	if s.opts.Metrics != nil {
		mux.Handle("GET /metrics", s.adminOrSession(s.opts.Metrics))
	}
}

// readyz answers 200 when the server can do its work, else 503 with the
// reason (never a secret: the checks' errors name what is down).
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.opts.Ready(ctx); err != nil {
		s.log.Warn("not ready", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("not ready: " + err.Error() + "\n"))
		return
	}
	w.Write([]byte("ready\n"))
}

// adminOrSession lets a signed-in session through, and otherwise guards h
// as the JSON API is guarded.
func (s *Server) adminOrSession(h http.Handler) http.Handler {
	api := s.api(h.ServeHTTP)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.session(r); ok && !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			h.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}
