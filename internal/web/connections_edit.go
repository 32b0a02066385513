package web

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/service"
)

// Editing a connection: name, destination, streams, schedule, quota share
// and notify URL. Its credential, direction and namespace stay: a new
// namespace would be a new connection's data.

// formOf is the form of an existing connection.
func formOf(c *connection.Connection) connForm {
	f := connForm{CredentialID: c.CredentialID, Name: c.Name, Direction: string(c.Direction),
		Destination: connection.RedactedURL(c.DestinationURL), StreamsMode: "readable", Streams: c.Streams,
		QuotaShare: strconv.FormatFloat(c.QuotaShare, 'f', -1, 64), Namespace: c.Namespace, NotifyURL: c.NotifyURL}
	if c.Streams != nil {
		f.StreamsMode = "ticked"
	}
	if l := c.Load; l != nil {
		f.Dest = destFormOf(c)
	}
	if !c.StartDate.IsZero() {
		f.StartDate = c.StartDate.UTC().Format("2006-01-02")
	}
	switch c.Schedule.Kind() {
	case connection.Interval:
		f.ScheduleKind, f.Every = "every", c.Schedule.String()[len("every "):]
	case connection.Cron:
		f.ScheduleKind, f.Cron = "cron", c.Schedule.Expr()
	default:
		f.ScheduleKind = "manual"
	}
	return f
}

func (s *Server) connEditForm(w http.ResponseWriter, r *http.Request) {
	st, err := s.conns.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.connFail(w, r, err)
		return
	}
	cred, err := s.m.Get(r.Context(), st.Connection.CredentialID)
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	s.renderConnEdit(w, r, http.StatusOK, st.Connection, formOf(st.Connection), cred, nil)
}

func (s *Server) renderConnEdit(w http.ResponseWriter, r *http.Request, status int, c *connection.Connection, f connForm, cred *credential.Record, problems []fieldProblem) {
	data := map[string]any{"Title": "Edit " + c.Name, "C": c, "Connected": cred.Status == credential.StatusConnected}
	withProblems(data, problems)
	s.render(w, status, "connection_new.html", sessionOf(r), s.formData(data, f, cred))
}

func (s *Server) connEdit(w http.ResponseWriter, r *http.Request) {
	st, err := s.conns.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.connFail(w, r, err)
		return
	}
	c := st.Connection
	cred, err := s.m.Get(r.Context(), c.CredentialID)
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	f := readConnForm(r)
	// What the form cannot change.
	f.CredentialID, f.Direction, f.Namespace = c.CredentialID, string(c.Direction), c.Namespace
	n, problems := s.check(f, cred)
	if len(problems) > 0 {
		s.renderConnEdit(w, r, http.StatusUnprocessableEntity, c, f, cred, problems)
		return
	}
	ch := service.Changes{Name: &n.Name, Schedule: &n.Schedule, QuotaShare: &n.QuotaShare, NotifyURL: &n.NotifyURL, Load: n.Load}
	// The form shows the URL without its password: sent back unchanged,
	// the stored one stays.
	if n.DestinationURL != connection.RedactedURL(c.DestinationURL) {
		ch.DestinationURL = &n.DestinationURL
	}
	switch {
	case n.Streams != nil && !slices.Equal(n.Streams, c.Streams):
		ch.Streams = n.Streams
	case n.Streams == nil && c.Streams != nil:
		// Back to every readable stream: Changes cannot say "nil", so
		// the streams the credential reads today are named.
		ch.Streams = s.readableStreams(cred.Scopes)
	}
	updated, err := s.conns.Update(r.Context(), c.ID, ch)
	if err != nil {
		p := connProblem(err)
		if p.Status == http.StatusInternalServerError || p.Status == http.StatusNotFound {
			s.connFail(w, r, err)
			return
		}
		s.renderConnEdit(w, r, p.Status, c, f, cred, formProblems(p))
		return
	}
	http.Redirect(w, r, "/connections/"+updated.ID+"?notice=updated", http.StatusSeeOther)
}
