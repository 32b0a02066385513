package web

import "net/http"

func (s *Server) editForm(w http.ResponseWriter, r *http.Request)  {}
func (s *Server) edit(w http.ResponseWriter, r *http.Request)      {}
func (s *Server) apiUpdate(w http.ResponseWriter, r *http.Request) {}
