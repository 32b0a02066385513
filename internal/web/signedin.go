package web

import "net/http"

// SignedIn reports whether the request carries a live signed-in session
// (for handlers mounted beside the server, such as the proxy).
func (s *Server) SignedIn(r *http.Request) bool {
	_, ok := s.session(r)
	return ok
}
