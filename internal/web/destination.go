package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/service"
)

// Destination connections in the UI: the New connection form's
// destination fields, the rejected rows on a connection's page and on a
// run's rejects page.

// destForm is the destination part of the New connection form as typed.
type destForm struct {
	Source  string // sqlite:PATH?query=SQL or postgres://...?query=SQL
	Type    string
	Mode    string
	Match   string // comma-separated
	Map     string // one COLUMN=ATTRIBUTE a line
	Then    string // one action a line
	Mailbox string
}

func readDestForm(p url.Values) destForm {
	return destForm{Source: strings.TrimSpace(p.Get("source_url")), Type: strings.TrimSpace(p.Get("load_type")),
		Mode: strings.TrimSpace(p.Get("load_mode")), Match: strings.TrimSpace(p.Get("load_match")), Map: p.Get("load_map"),
		Then: p.Get("load_then"), Mailbox: strings.TrimSpace(p.Get("load_mailbox"))}
}

// rejectsReader is the part of the service that reads a run's rejected
// rows (internal/service.Service has it).
type rejectsReader interface {
	Rejects(ctx context.Context, idOrName, runID string, limit int) (*service.RunRejects, error)
}

// rejectsShown is how many rejected rows a connection's page shows.
const rejectsShown = 20

// checkDestination turns the form of a destination connection into what
// Create takes, or says everything there is to fix.
func (s *Server) checkDestination(f connForm, cred *credential.Record) (service.NewConnection, []fieldProblem) {
	var problems []fieldProblem
	d := f.Dest
	n := service.NewConnection{Name: f.Name, Credential: cred.ID, Direction: connection.DirectionDestination,
		DestinationURL: d.Source, Schedule: f.scheduleText(), Namespace: f.Namespace, NotifyURL: f.NotifyURL, QuotaShare: 1}
	spec := &connection.LoadSpec{Type: d.Type, Mode: strings.ToLower(d.Mode), Mailbox: d.Mailbox}
	for _, a := range strings.Split(d.Match, ",") {
		if a = strings.TrimSpace(a); a != "" {
			spec.Match = append(spec.Match, a)
		}
	}
	for _, line := range strings.Split(d.Map, "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		col, attr, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(col) == "" {
			problems = append(problems, fieldProblemOf(connection.FieldLoad, "Mapping line \""+line+"\" is not COLUMN=ATTRIBUTE (or COLUMN= to skip the column)."))
			continue
		}
		if spec.Map == nil {
			spec.Map = map[string]string{}
		}
		spec.Map[strings.TrimSpace(col)] = strings.TrimSpace(attr)
	}
	for _, line := range strings.Split(d.Then, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			spec.Then = append(spec.Then, line)
		}
	}
	n.Load = spec
	if _, err := connection.ParseSchedule(n.Schedule); err != nil {
		problems = append(problems, fieldProblems(err)...)
	}
	c := connection.Connection{Name: n.Name, CredentialID: cred.ID, Direction: connection.DirectionDestination, DestinationURL: n.DestinationURL,
		QuotaShare: 1, Namespace: n.Namespace, NotifyURL: n.NotifyURL, Load: spec}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		problems = append(problems, fieldProblems(err)...)
	}
	return n, problems
}

// destinationData adds a destination connection's load and its newest
// run's rejected rows to its page's data.
func (s *Server) destinationData(ctx context.Context, data map[string]any, c *connection.Connection, runs []*connection.Run) {
	if c.Direction != connection.DirectionDestination {
		return
	}
	data["Dest"] = true
	data["Load"] = c.Load
	rr, ok := s.conns.(rejectsReader)
	if !ok || len(runs) == 0 {
		return
	}
	rj, err := rr.Rejects(ctx, c.ID, runs[0].ID, rejectsShown)
	if err != nil {
		s.log.Warn("read a run's rejected rows", "connection", c.Name, "err", err)
		return
	}
	data["RejectsRun"] = rj.Run
	data["Rejects"] = rejectRows(rj)
}

// rejectRow is a rejected row as the pages show it.
type rejectRow struct {
	Line             int
	Column, Reason   string
	ErrorID, Pointer string
	Row              string
}

func rejectRows(rj *service.RunRejects) []rejectRow {
	var out []rejectRow
	for _, r := range rj.Rejects {
		var cells []string
		for k, v := range r.Row {
			if v == nil {
				v = "" // a NULL or empty cell
			}
			cells = append(cells, k+"="+strings.TrimSpace(strings.ReplaceAll(fmt.Sprint(v), "\n", " ")))
		}
		slices.Sort(cells)
		out = append(out, rejectRow{Line: r.Line, Column: r.Column, Reason: r.Reason, ErrorID: r.ErrorID, Pointer: r.Pointer,
			Row: strings.Join(cells, ", ")})
	}
	return out
}

// connRejects is the page of one run's rejected rows (?run=ID, default
// the newest run).
func (s *Server) connRejects(w http.ResponseWriter, r *http.Request) {
	st, err := s.conns.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.connFail(w, r, err)
		return
	}
	c := st.Connection
	rr, ok := s.conns.(rejectsReader)
	if !ok || c.Direction != connection.DirectionDestination {
		s.render(w, http.StatusNotFound, "error.html", sessionOf(r), map[string]any{"Title": "No rejected rows",
			"Message": "Only destination connections (a query loaded into Outreach) reject rows."})
		return
	}
	rj, err := rr.Rejects(r.Context(), c.ID, r.URL.Query().Get("run"), 10000)
	if err != nil {
		s.connFail(w, r, err)
		return
	}
	s.render(w, http.StatusOK, "connection_rejects.html", sessionOf(r), map[string]any{"Title": "Rejected rows of " + c.Name,
		"C": c, "RejectsRun": rj.Run, "Rejects": rejectRows(rj)})
}

// apiConnRejects answers GET /api/connections/{id}/rejects[?run=ID]: the
// rows a destination connection's run (default the newest) rejected.
func (s *Server) apiConnRejects(w http.ResponseWriter, r *http.Request) {
	rr, ok := s.conns.(rejectsReader)
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "this server keeps no rejected rows", "code": "not_found"})
		return
	}
	st, err := s.conns.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiConnError(w, r, err)
		return
	}
	if st.Connection.Direction != connection.DirectionDestination {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "only destination connections (a query loaded into Outreach) reject rows",
			"code": "not_found"})
		return
	}
	rj, err := rr.Rejects(r.Context(), st.Connection.ID, r.URL.Query().Get("run"), 10000)
	if err != nil {
		s.apiConnError(w, r, err)
		return
	}
	type reject struct {
		Line    int            `json:"line"`
		Column  string         `json:"column"`
		Reason  string         `json:"reason"`
		ErrorID string         `json:"error_id,omitempty"`
		Pointer string         `json:"pointer,omitempty"`
		Row     map[string]any `json:"row"`
	}
	out := struct {
		Run     *runJSON `json:"run"`
		Rejects []reject `json:"rejects"`
	}{Rejects: []reject{}}
	if rj.Run != nil {
		run := runToJSON(rj.Run)
		out.Run = &run
	}
	for _, x := range rj.Rejects {
		out.Rejects = append(out.Rejects, reject{Line: x.Line, Column: x.Column, Reason: x.Reason, ErrorID: x.ErrorID, Pointer: x.Pointer, Row: x.Row})
	}
	writeJSON(w, http.StatusOK, out)
}

// destFormOf is the destination part of the form of an existing
// destination connection.
func destFormOf(c *connection.Connection) destForm {
	l := c.Load
	var maps []string
	for col, to := range l.Map {
		maps = append(maps, col+"="+to)
	}
	slices.Sort(maps)
	return destForm{Source: connection.RedactedURL(c.DestinationURL), Type: l.Type, Mode: l.Mode, Match: strings.Join(l.Match, ","),
		Map: strings.Join(maps, "\n"), Then: strings.Join(l.Then, "\n"), Mailbox: l.Mailbox}
}
