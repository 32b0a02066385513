package web

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/jobs"
	"github.com/outreach-connector/outreach-connector/internal/service"
)

// The connections JSON API (documented in docs/connections.md), beside the
// pages: the admin token as a bearer token, as for credentials. A
// destination URL's password is never returned.

func (s *Server) apiConnectionsOn(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.conns == nil {
			s.writeProblem(w, r, problem{Status: http.StatusNotFound, Code: "not_found", Title: "Connections are off",
				Message: "this server runs no connections service"}, nil)
			return
		}
		h(w, r)
	}
}

func ts(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	v := t.UTC().Format(time.RFC3339)
	return &v
}

type connectionJSON struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	CredentialID   string   `json:"credential_id"`
	CredentialName string   `json:"credential_name,omitempty"`
	Direction      string   `json:"direction"`
	DestinationURL string   `json:"destination_url"`
	Streams        []string `json:"streams"` // null: every stream the credential can read
	Schedule       string   `json:"schedule"`
	StartDate      *string  `json:"start_date"`
	PageSize       int      `json:"page_size"`
	QuotaShare     float64  `json:"quota_share"`
	Paused         bool     `json:"paused"`
	Live           bool     `json:"live"`
	Namespace      string   `json:"namespace"`
	NotifyURL      string   `json:"notify_url,omitempty"`
	CreatedAt      *string  `json:"created_at"`
	UpdatedAt      *string  `json:"updated_at"`
	State          string   `json:"state,omitempty"`
	LastRun        *runJSON `json:"last_run,omitempty"`
	NextDue        *string  `json:"next_due"`
	ScopesNeeded   []string `json:"scopes_needed,omitempty"`
	ScopesMissing  []string `json:"scopes_missing,omitempty"`
	// StreamStates, on GET of one connection.
	StreamStates []streamJSON `json:"stream_states,omitempty"`
	// Load is a destination connection's load (its rows come from
	// destination_url, a SQL query).
	Load *connection.LoadSpec `json:"load,omitempty"`
}

type streamJSON struct {
	Stream    string `json:"stream"`
	Cursor    string `json:"cursor,omitempty"`
	Rows      int64  `json:"rows"`
	LastError string `json:"last_error,omitempty"`
}

type runJSON struct {
	ID        string          `json:"id"`
	Trigger   string          `json:"trigger"`
	Attempt   int             `json:"attempt"`
	StartedAt *string         `json:"started_at"`
	EndedAt   *string         `json:"ended_at"`
	Outcome   string          `json:"outcome"` // "running" while it runs
	Error     string          `json:"error,omitempty"`
	Records   int64           `json:"records"`
	Streams   []runStreamJSON `json:"streams"`
	DueAt     *string         `json:"due_at"` // the due time a scheduled run fulfils
	Log       []string        `json:"log"`
}

type runStreamJSON struct {
	Stream    string `json:"stream"`
	Records   int64  `json:"records"`
	Pages     int64  `json:"pages"`
	Requests  int64  `json:"requests"`
	Deletions int64  `json:"deletions"`
	Error     string `json:"error,omitempty"`
	// A destination connection's rows (its stream is the type written).
	Created   *int64 `json:"created,omitempty"`
	Updated   *int64 `json:"updated,omitempty"`
	Unchanged *int64 `json:"unchanged,omitempty"`
	Rejected  *int64 `json:"rejected,omitempty"`
}

func connToJSON(c *connection.Connection) connectionJSON {
	return connectionJSON{ID: c.ID, Name: c.Name, CredentialID: c.CredentialID, Direction: string(c.Direction),
		DestinationURL: connection.RedactedURL(c.DestinationURL), Streams: c.Streams, Schedule: c.Schedule.String(),
		StartDate: ts(c.StartDate), PageSize: c.PageSize, QuotaShare: c.QuotaShare, Paused: c.Paused, Live: c.Live, Namespace: c.Namespace,
		NotifyURL: c.NotifyURL, CreatedAt: ts(c.CreatedAt), UpdatedAt: ts(c.UpdatedAt), Load: c.Load}
}

func statusToJSON(st *service.Status) connectionJSON {
	j := connToJSON(st.Connection)
	j.CredentialName, j.State, j.NextDue = st.CredentialName, st.State, ts(st.NextDue)
	j.ScopesNeeded, j.ScopesMissing = st.ScopesNeeded, st.ScopesMissing
	if st.LastRun != nil {
		r := runToJSON(st.LastRun)
		j.LastRun = &r
	}
	return j
}

func runToJSON(r *connection.Run) runJSON {
	j := runJSON{ID: r.ID, Trigger: string(r.Trigger), Attempt: r.Attempt, StartedAt: ts(r.StartedAt), EndedAt: ts(r.EndedAt),
		Outcome: string(r.Outcome), Error: r.Error, Records: r.Totals().Records, Streams: []runStreamJSON{}, Log: r.Log, DueAt: ts(r.DueAt)}
	if r.Outcome == connection.Running {
		j.Outcome = "running"
	}
	if j.Log == nil {
		j.Log = []string{}
	}
	for _, st := range r.Streams {
		js := runStreamJSON{Stream: st.Stream, Records: st.Records, Pages: st.Pages, Requests: st.Requests,
			Deletions: st.Deletions, Error: st.Error}
		if st.Created+st.Updated+st.Unchanged+st.Rejected > 0 {
			js.Created, js.Updated, js.Unchanged, js.Rejected = &st.Created, &st.Updated, &st.Unchanged, &st.Rejected
		}
		j.Streams = append(j.Streams, js)
	}
	return j
}

func jobToJSON(j jobs.Job) map[string]any {
	return map[string]any{"id": j.ID, "connection_id": j.ConnectionID, "trigger": string(j.Trigger), "state": j.State,
		"attempt": j.Attempt, "already_queued": j.Duplicate}
}

// apiConnError answers a failed connection operation.
func (s *Server) apiConnError(w http.ResponseWriter, r *http.Request, err error) {
	s.writeProblem(w, r, connProblem(err), err)
}

// apiInvalid answers a request refused for its fields.
func (s *Server) apiInvalid(w http.ResponseWriter, r *http.Request, problems []fieldProblem) {
	s.writeProblem(w, r, invalidProblem(problems), nil)
}

func (s *Server) apiConnList(w http.ResponseWriter, r *http.Request) {
	statuses, err := s.conns.List(r.Context())
	if err != nil {
		s.apiConnError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"connections": mapAll(statuses, statusToJSON)})
}

func (s *Server) apiConnCreate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name           string   `json:"name"`
		Credential     string   `json:"credential"`
		Direction      string   `json:"direction"`
		DestinationURL string   `json:"destination_url"`
		Streams        []string `json:"streams"`
		Schedule       string   `json:"schedule"`
		StartDate      string   `json:"start_date"`
		PageSize       int      `json:"page_size"`
		QuotaShare     float64  `json:"quota_share"`
		Namespace      string   `json:"namespace"`
		NotifyURL      string   `json:"notify_url"`
		Paused         bool     `json:"paused"`
		// A destination connection's source (or destination_url) and load.
		SourceURL string               `json:"source_url"`
		Load      *connection.LoadSpec `json:"load"`
	}
	if !s.decodeBody(w, r, &body) {
		return
	}
	n := service.NewConnection{Name: body.Name, Credential: body.Credential, Direction: connection.Direction(body.Direction),
		DestinationURL: body.DestinationURL, Streams: body.Streams, Schedule: body.Schedule, PageSize: body.PageSize,
		QuotaShare: body.QuotaShare, Namespace: body.Namespace, NotifyURL: body.NotifyURL, Paused: body.Paused, Load: body.Load}
	dest := n.Direction == connection.DirectionDestination
	if dest && body.SourceURL != "" {
		n.DestinationURL = body.SourceURL
	}
	if n.DestinationURL == "" && !dest {
		n.DestinationURL = DefaultDestination
	}
	var problems []fieldProblem
	if body.StartDate != "" {
		d, err := time.Parse("2006-01-02", body.StartDate)
		if err != nil {
			if d, err = time.Parse(time.RFC3339, body.StartDate); err != nil {
				problems = append(problems, fieldProblemOf(connection.FieldStartDate,
					"start_date "+strconv.Quote(body.StartDate)+" is not a date such as 2024-01-31 or an RFC 3339 time"))
			}
		}
		n.StartDate = d
	}
	if n.Credential == "" {
		problems = append(problems, fieldProblemOf(connection.FieldCredential, "credential is required: the id or name of a connected credential"))
	} else {
		cred, err := s.m.Get(r.Context(), n.Credential)
		if err != nil {
			s.apiConnError(w, r, err)
			return
		}
		if !dest {
			problems = append(problems, s.checkStreams(n.Streams, cred)...)
		}
	}
	sched, err := connection.ParseSchedule(n.Schedule)
	problems = append(problems, fieldProblems(err)...)
	credID := n.Credential
	if credID == "" {
		credID = "-" // said above
	}
	problems = append(problems, draftProblems(n, credID, sched)...)
	if len(problems) > 0 {
		s.apiInvalid(w, r, problems)
		return
	}
	created, err := s.conns.Create(r.Context(), n)
	if err != nil {
		s.apiConnError(w, r, err)
		return
	}
	st, err := s.conns.Get(r.Context(), created.ID)
	if err != nil {
		writeJSON(w, http.StatusCreated, connToJSON(created))
		return
	}
	writeJSON(w, http.StatusCreated, statusToJSON(st))
}

func (s *Server) apiConnShow(w http.ResponseWriter, r *http.Request) {
	st, err := s.conns.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiConnError(w, r, err)
		return
	}
	j := statusToJSON(st)
	if streams, err := s.conns.Streams(r.Context(), st.Connection.ID); err == nil {
		j.StreamStates = mapAll(streams, func(ss service.StreamStatus) streamJSON {
			return streamJSON{Stream: ss.Stream, Cursor: ss.Cursor, Rows: ss.Rows, LastError: ss.LastError}
		})
	} else {
		s.log.Warn("read a connection's streams", "connection", st.Connection.Name, "err", err)
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) apiConnUpdate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name           *string  `json:"name"`
		DestinationURL *string  `json:"destination_url"`
		Streams        []string `json:"streams"`
		Schedule       *string  `json:"schedule"`
		PageSize       *int     `json:"page_size"`
		QuotaShare     *float64 `json:"quota_share"`
		NotifyURL      *string  `json:"notify_url"`
	}
	if !s.decodeBody(w, r, &body) {
		return
	}
	var problems []fieldProblem
	if body.Name != nil {
		problems = append(problems, fieldProblems(connection.ValidateName(*body.Name))...)
	}
	if body.DestinationURL != nil {
		problems = append(problems, fieldProblems(connection.ValidateDestinationURL(*body.DestinationURL))...)
	}
	if body.Schedule != nil {
		_, err := connection.ParseSchedule(*body.Schedule)
		problems = append(problems, fieldProblems(err)...)
	}
	if body.Streams != nil && len(body.Streams) == 0 {
		problems = append(problems, fieldProblemOf(connection.FieldStreams, "streams is empty; name at least one stream, or leave it out to keep them"))
	} else if body.Streams != nil {
		st, err := s.conns.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			s.apiConnError(w, r, err)
			return
		}
		cred, err := s.m.Get(r.Context(), st.Connection.CredentialID)
		if err != nil {
			s.apiConnError(w, r, err)
			return
		}
		problems = append(problems, s.checkStreams(body.Streams, cred)...)
	}
	if body.QuotaShare != nil && !(*body.QuotaShare > 0 && *body.QuotaShare <= 1) {
		problems = append(problems, fieldProblemOf(connection.FieldQuotaShare, "quota_share must be a fraction in (0, 1], such as 0.5 for half the hourly limit"))
	}
	if body.PageSize != nil && (*body.PageSize < 0 || *body.PageSize > connection.MaxPageSize) {
		problems = append(problems, fieldProblemOf(connection.FieldPageSize, "page_size must be 1 to "+strconv.Itoa(connection.MaxPageSize)+", or 0 for the default"))
	}
	if len(problems) > 0 {
		s.apiInvalid(w, r, problems)
		return
	}
	c, err := s.conns.Update(r.Context(), r.PathValue("id"), service.Changes{Name: body.Name, DestinationURL: body.DestinationURL,
		Streams: body.Streams, Schedule: body.Schedule, PageSize: body.PageSize, QuotaShare: body.QuotaShare, NotifyURL: body.NotifyURL})
	if err != nil {
		s.apiConnError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, connToJSON(c))
}

// apiConnDelete deletes a connection; with ?drop_data=true also its
// tables or files and sync state in its destination.
func (s *Server) apiConnDelete(w http.ResponseWriter, r *http.Request) {
	if err := s.conns.Delete(r.Context(), r.PathValue("id"), r.URL.Query().Get("drop_data") == "true"); err != nil {
		s.apiConnError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) apiConnRuns(w http.ResponseWriter, r *http.Request) {
	limit := historyLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.apiInvalid(w, r, []fieldProblem{fieldProblemOf("limit", "limit must be a whole number from 1 to 1000")})
			return
		}
		limit = n
	}
	runs, err := s.conns.History(r.Context(), r.PathValue("id"), limit)
	if err != nil {
		s.apiConnError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": mapAll(runs, runToJSON)})
}

func (s *Server) apiConnRun(w http.ResponseWriter, r *http.Request) {
	job, err := s.conns.RunNow(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiConnError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"job": jobToJSON(job)})
}

// apiConnResync takes an optional body {"streams": [...]}; none or an
// empty body re-syncs every stream.
func (s *Server) apiConnResync(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Streams []string `json:"streams"`
	}
	if r.ContentLength != 0 {
		if !s.decodeBody(w, r, &body) {
			return
		}
	}
	if !s.apiNotNow(w, r, "running", "the connection is running; wait for the run to end (or cancel it), then re-sync") {
		return
	}
	job, err := s.conns.Resync(r.Context(), r.PathValue("id"), body.Streams)
	if err != nil {
		s.apiConnError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"job": jobToJSON(job)})
}

// apiNotNow answers 409 and returns false when the connection is in one
// of the states states (space separated), where the action cannot be
// done.
func (s *Server) apiNotNow(w http.ResponseWriter, r *http.Request, states, msg string) bool {
	st, err := s.conns.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiConnError(w, r, err)
		return false
	}
	if slices.Contains(strings.Fields(states), st.State) {
		s.writeProblem(w, r, problem{Status: http.StatusConflict, Code: "conflict", Title: "Not now", Message: msg, State: st.State}, nil)
		return false
	}
	return true
}

func (s *Server) apiConnCancel(w http.ResponseWriter, r *http.Request) {
	if !s.apiNotNow(w, r, "idle paused failing needs_reauthorization", "the connection has no run queued or running") {
		return
	}
	s.apiConnAction(Connections.Cancel)(w, r)
}

// apiConnAction answers Pause, Resume and Cancel with the connection.
func (s *Server) apiConnAction(do func(Connections, context.Context, string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := do(s.conns, r.Context(), r.PathValue("id")); err != nil {
			s.apiConnError(w, r, err)
			return
		}
		st, err := s.conns.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			s.apiConnError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, statusToJSON(st))
	}
}
