package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/jobs"
	"github.com/outreach-connector/outreach-connector/internal/service"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
)

// Connections is what the connection pages and API use of the
// connections service (internal/service.Service satisfies it). Its types
// are the service's own: declaring parallel ones here would only copy
// them.
type Connections interface {
	Create(ctx context.Context, n service.NewConnection) (*connection.Connection, error)
	Update(ctx context.Context, idOrName string, ch service.Changes) (*connection.Connection, error)
	Get(ctx context.Context, idOrName string) (*service.Status, error)
	List(ctx context.Context) ([]*service.Status, error)
	Streams(ctx context.Context, idOrName string) ([]service.StreamStatus, error)
	History(ctx context.Context, idOrName string, limit int) ([]*connection.Run, error)
	RunNow(ctx context.Context, idOrName string) (jobs.Job, error)
	Resync(ctx context.Context, idOrName string, streams []string) (jobs.Job, error)
	Pause(ctx context.Context, idOrName string) error
	Resume(ctx context.Context, idOrName string) error
	Cancel(ctx context.Context, idOrName string) error
	Delete(ctx context.Context, idOrName string, dropData bool) error
}

// DefaultDestination prefills the destination of a new connection.
const DefaultDestination = "sqlite:./outreach.db"

// activeRefreshSeconds is how often a connection's page reloads itself
// while a run is queued or running.
const activeRefreshSeconds = 5

// historyLimit is how many runs a connection's page shows.
const historyLimit = 20

// connStream is a stream a connection can sync and the scopes that read
// it, any one of them.
type connStream struct {
	Name  string // "sequence_states"
	Read  string // "sequenceStates.read"
	All   string // "sequenceStates.all", or ""
	Label string
}

func connStreams(cat *catalog.Catalog) []connStream {
	var out []connStream
	for _, st := range syncer.Streams(cat) {
		need := syncer.ReadScopes(cat, st)
		cs := connStream{Name: st.Name, Read: need[0], Label: st.Name}
		if len(need) > 1 {
			cs.All = need[1]
		}
		out = append(out, cs)
	}
	slices.SortFunc(out, func(a, b connStream) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// readableBy reports whether scopes let a credential read cs.
func (cs connStream) readableBy(scopes []string) bool {
	return slices.Contains(scopes, cs.Read) || (cs.All != "" && slices.Contains(scopes, cs.All))
}

func (s *Server) stream(name string) (connStream, bool) {
	i := slices.IndexFunc(s.streams, func(cs connStream) bool { return cs.Name == name })
	if i < 0 {
		return connStream{}, false
	}
	return s.streams[i], true
}

// readableStreams are the names of the streams scopes can read.
func (s *Server) readableStreams(scopes []string) []string {
	var out []string
	for _, cs := range s.streams {
		if cs.readableBy(scopes) {
			out = append(out, cs.Name)
		}
	}
	return out
}

// scopeNeed is one scope a connection's streams need, and whether the
// credential holds it (or the "all" scope that covers it).
type scopeNeed struct {
	Scope   string
	Held    bool
	Streams []string
}

// scopesNeeded lists the read scopes streams need against those held:
// least privilege, one read scope per resource.
func (s *Server) scopesNeeded(streams, held []string) []scopeNeed {
	var out []scopeNeed
	for _, name := range streams {
		cs, ok := s.stream(name)
		if !ok {
			continue
		}
		if i := slices.IndexFunc(out, func(n scopeNeed) bool { return n.Scope == cs.Read }); i >= 0 {
			out[i].Streams = append(out[i].Streams, name)
			continue
		}
		out = append(out, scopeNeed{Scope: cs.Read, Held: cs.readableBy(held), Streams: []string{name}})
	}
	slices.SortFunc(out, func(a, b scopeNeed) int { return strings.Compare(a.Scope, b.Scope) })
	return out
}

func stateLabel(state string) string {
	switch state {
	case "idle":
		return "Idle"
	case "queued":
		return "Queued"
	case "running":
		return "Running"
	case "paused":
		return "Paused"
	case "failing":
		return "Failing"
	case "needs_reauthorization":
		return "Needs re-authorization"
	}
	return state
}

func outcomeLabel(o connection.Outcome) string {
	switch o {
	case connection.Running:
		return "Running"
	case connection.Succeeded:
		return "Succeeded"
	case connection.Failed:
		return "Failed"
	case connection.Interrupted:
		return "Interrupted"
	case connection.Cancelled:
		return "Cancelled"
	}
	return string(o)
}

// took is how long a run ran, "—" while it runs.
func took(r *connection.Run) string {
	if r.EndedAt.IsZero() || r.StartedAt.IsZero() {
		return "—"
	}
	return humanDuration(r.EndedAt.Sub(r.StartedAt))
}

func humanDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return "<1s"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d"
}

// cursorLag is how far behind now the furthest-behind stream cursor is;
// false when no stream has a time cursor.
func cursorLag(streams []service.StreamStatus, now time.Time) (time.Duration, bool) {
	var oldest time.Time
	for _, st := range streams {
		c, err := time.Parse(time.RFC3339Nano, st.Cursor)
		if err != nil {
			continue
		}
		if oldest.IsZero() || c.Before(oldest) {
			oldest = c
		}
	}
	if oldest.IsZero() {
		return 0, false
	}
	return max(now.Sub(oldest), 0), true
}

// checkStreams says what is wrong with syncing streams (nil: every
// readable one) with cred, as the service would refuse it: unknown
// streams, streams its scopes cannot read (least privilege shows the
// scope each needs), or nothing readable at all. Custom objects
// (custom_<name>) are the run's to check.
func (s *Server) checkStreams(streams []string, cred *credential.Record) []fieldProblem {
	if streams == nil {
		if len(s.readableStreams(cred.Scopes)) == 0 {
			return []fieldProblem{streamsProblem("%s can read no stream with its scopes; edit it to add read scopes (such as prospects.read) and authorize it again.", cred.Name)}
		}
		return nil
	}
	var problems []fieldProblem
	var unreadable []string
	for _, name := range streams {
		cs, ok := s.stream(name)
		switch {
		case !ok && !strings.HasPrefix(name, "custom_"):
			problems = append(problems, streamsProblem("Stream %q is unknown; choose streams from the list.", name))
		case ok && !cs.readableBy(cred.Scopes):
			need := cs.Read
			if cs.All != "" {
				need += " or " + cs.All
			}
			unreadable = append(unreadable, name+" needs "+need)
		}
	}
	if len(unreadable) > 0 {
		problems = append(problems, streamsProblem("%s cannot read %s. Edit the credential to add the missing scopes and authorize it again, or untick those streams.",
			cred.Name, strings.Join(unreadable, ", ")))
	}
	return problems
}

// streamsProblem is a problem of the streams field.
func streamsProblem(format string, args ...any) fieldProblem {
	return fieldProblemOf(connection.FieldStreams, fmt.Sprintf(format, args...))
}

// connProblem is what a failed connection operation means, by the
// service's typed refusals and the connection sentinels first, then the
// credential's (classify).
func connProblem(err error) problem {
	detail := err.Error()
	switch {
	case errors.Is(err, connection.ErrNotFound):
		return problem{Status: http.StatusNotFound, Code: "not_found", Title: "No such connection",
			Message: "There is no connection with this id or name. It may have been deleted.", Detail: detail}
	case errors.Is(err, connection.ErrNameTaken):
		msg := "A connection with this name exists already; choose another name."
		return problem{Status: http.StatusConflict, Code: "name_taken", Title: "Name taken", Message: msg,
			Problems: []fieldProblem{{Field: connection.FieldName, Message: msg}}}
	case errors.Is(err, connection.ErrNamespaceTaken):
		msg := "Another connection writes to the same destination in this namespace; choose another namespace, so their rows, cursors and locks stay apart."
		return problem{Status: http.StatusConflict, Code: "namespace_taken", Title: "Namespace taken", Message: msg,
			Problems: []fieldProblem{{Field: connection.FieldNamespace, Message: msg}}}
	case errors.Is(err, connection.ErrCannotApply):
		return problem{Status: http.StatusUnprocessableEntity, Code: "cannot_be_live", Title: "Cannot be live",
			Message: "Only connections into SQLite or PostgreSQL can be live: their destination applies each pushed change on its own.", Detail: detail}
	case errors.Is(err, service.ErrRunning):
		return problem{Status: http.StatusConflict, Code: "conflict", Title: "A run is in progress",
			Message: "The connection is running. Wait for the run to end (or cancel it), then try again.", Detail: detail}
	case errors.Is(err, service.ErrNoRun):
		return problem{Status: http.StatusConflict, Code: "conflict", Title: "Nothing to cancel",
			Message: "The connection has no run queued or running.", Detail: detail}
	case errors.Is(err, service.ErrUnsupported):
		return problem{Status: http.StatusUnprocessableEntity, Code: "unsupported", Title: "Not available for this connection",
			Message: "Its destination cannot do that; nothing was changed.", Detail: detail}
	}
	if ps := fieldProblems(err); ps != nil {
		p := invalidProblem(ps)
		p.Detail = detail
		return p
	}
	return classify(err)
}

// connFail answers a failed connection operation with a page.
func (s *Server) connFail(w http.ResponseWriter, r *http.Request, err error) {
	p := connProblem(err)
	if p.Status == http.StatusInternalServerError {
		s.log.Error("request failed", "path", r.URL.Path, "err", err)
	} else {
		s.log.Warn("request failed", "path", r.URL.Path, "status", p.Status, "err", err)
	}
	if p.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	data := map[string]any{"Title": p.Title, "Message": p.Message, "Detail": p.Detail}
	if id := r.PathValue("id"); id != "" && p.Status != http.StatusNotFound && strings.HasPrefix(r.URL.Path, "/connections/") {
		data["ConnectionID"] = id
	}
	s.render(w, p.Status, "error.html", sessionOf(r), data)
}

// connectionsOn guards the connection pages: 404 when no service is
// wired.
func (s *Server) connectionsOn(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.conns == nil {
			s.render(w, http.StatusNotFound, "error.html", sessionOf(r), map[string]any{"Title": "Connections are off",
				"Message": "This server runs no connections service, so there are no connection pages."})
			return
		}
		h(w, r)
	}
}

func (s *Server) connectionRoutes(mux *http.ServeMux) {
	page := func(h http.HandlerFunc) http.Handler { return s.page(s.connectionsOn(h)) }
	mux.Handle("GET /connections", page(s.connList))
	mux.Handle("GET /connections/new", page(s.connNewForm))
	mux.Handle("POST /connections", page(s.connCreate))
	mux.Handle("GET /connections/{id}", page(s.connShow))
	mux.Handle("GET /connections/{id}/edit", page(s.connEditForm))
	mux.Handle("POST /connections/{id}/edit", page(s.connEdit))
	mux.Handle("POST /connections/{id}/run", page(s.connRun))
	mux.Handle("POST /connections/{id}/cancel", page(s.connCancel))
	mux.Handle("POST /connections/{id}/pause", page(s.connPause))
	mux.Handle("POST /connections/{id}/resume", page(s.connResume))
	mux.Handle("GET /connections/{id}/resync", page(s.connConfirmResync))
	mux.Handle("POST /connections/{id}/resync", page(s.connResync))
	mux.Handle("GET /connections/{id}/delete", page(s.connConfirmDelete))
	mux.Handle("POST /connections/{id}/delete", page(s.connDelete))
	mux.Handle("GET /connections/{id}/rejects", page(s.connRejects))

	api := func(h http.HandlerFunc) http.Handler { return s.api(s.apiConnectionsOn(h)) }
	mux.Handle("GET /api/connections", api(s.apiConnList))
	mux.Handle("POST /api/connections", api(s.apiConnCreate))
	mux.Handle("GET /api/connections/{id}", api(s.apiConnShow))
	mux.Handle("PATCH /api/connections/{id}", api(s.apiConnUpdate))
	mux.Handle("DELETE /api/connections/{id}", api(s.apiConnDelete))
	mux.Handle("GET /api/connections/{id}/runs", api(s.apiConnRuns))
	mux.Handle("GET /api/connections/{id}/rejects", api(s.apiConnRejects))
	mux.Handle("POST /api/connections/{id}/run", api(s.apiConnRun))
	mux.Handle("POST /api/connections/{id}/resync", api(s.apiConnResync))
	mux.Handle("POST /api/connections/{id}/pause", api(s.apiConnAction(Connections.Pause)))
	mux.Handle("POST /api/connections/{id}/resume", api(s.apiConnAction(Connections.Resume)))
	mux.Handle("POST /api/connections/{id}/cancel", api(s.apiConnCancel))
	s.liveRoutes(mux)
}

// connRow is a connection as the list shows it.
type connRow struct {
	*service.Status
	Destination string
	Records     string
	NextRun     string
	Lag         string
}

// listBudget bounds the time the list spends asking destinations for
// their cursors; connections not reached in time show no lag.
const listBudget = 3 * time.Second

func (s *Server) connRows(ctx context.Context, statuses []*service.Status) []connRow {
	ctx, cancel := context.WithTimeout(ctx, listBudget)
	defer cancel()
	now := s.now()
	rows := make([]connRow, len(statuses))
	for i, st := range statuses {
		row := connRow{Status: st, Destination: connection.RedactedURL(st.Connection.DestinationURL), Records: "—", Lag: "—"}
		if st.LastRun != nil {
			row.Records = strconv.FormatInt(st.LastRun.Totals().Records, 10)
		}
		row.NextRun = nextRun(st)
		if ctx.Err() == nil {
			if streams, err := s.conns.Streams(ctx, st.Connection.ID); err == nil {
				if lag, ok := cursorLag(streams, now); ok {
					row.Lag = humanDuration(lag)
				}
			} else {
				s.log.Warn("read a connection's streams", "connection", st.Connection.Name, "err", err)
			}
		}
		rows[i] = row
	}
	return rows
}

func nextRun(st *service.Status) string {
	switch {
	case st.Connection.Paused:
		return "paused"
	case st.Connection.Schedule.IsManual():
		return "manual"
	case st.NextDue.IsZero():
		return "—"
	}
	return st.NextDue.UTC().Format("2006-01-02 15:04 UTC")
}

func (s *Server) connList(w http.ResponseWriter, r *http.Request) {
	statuses, err := s.conns.List(r.Context())
	if err != nil {
		s.connFail(w, r, err)
		return
	}
	s.render(w, http.StatusOK, "connections.html", sessionOf(r), map[string]any{"Title": "Connections",
		"Rows": s.connRows(r.Context(), statuses), "Notice": connNotice(r.URL.Query().Get("notice")), "NoticeCode": r.URL.Query().Get("notice")})
}

// connNotice maps a fixed set of codes to messages.
func connNotice(code string) string {
	switch code {
	case "created":
		return "Connection created."
	case "queued":
		return "A run is queued. This page reloads itself until it ends."
	case "already":
		return "A run is already queued or running. This page reloads itself until it ends."
	case "paused":
		return "Paused: no scheduled runs until you resume. A run in progress finishes."
	case "resumed":
		return "Resumed: runs are scheduled again from now."
	case "cancelled":
		return "The queued or running run was cancelled."
	case "resync":
		return "The cursors were forgotten and a run is queued: it reads the streams again from the start date. The rows stay and are updated."
	case "updated":
		return "Saved."
	case "deleted":
		return "The connection was deleted."
	case "deleted_data":
		return "The connection and its data were deleted."
	}
	return liveNotice(code)
}

// connForm is the New and Edit connection form as typed, so a form sent
// back keeps it.
type connForm struct {
	CredentialID string
	Name         string
	Direction    string
	Destination  string
	// StreamsMode is "readable" (every stream the credential can read,
	// following its scopes) or "ticked".
	StreamsMode  string
	Streams      []string
	ScheduleKind string // "every", "cron" or "manual"
	Every, Cron  string
	StartDate    string
	QuotaShare   string
	Namespace    string
	NotifyURL    string
	// A destination connection's load (see destination.go).
	Dest destForm
}

// streamChoice is one checkbox of the streams list.
type streamChoice struct {
	connStream
	Readable, Checked bool
}

func (s *Server) formData(data map[string]any, f connForm, cred *credential.Record) map[string]any {
	readable := s.readableStreams(cred.Scopes)
	selected := f.Streams
	if f.StreamsMode != "ticked" {
		selected = readable
	}
	choices := make([]streamChoice, len(s.streams))
	for i, cs := range s.streams {
		choices[i] = streamChoice{connStream: cs, Readable: cs.readableBy(cred.Scopes), Checked: slices.Contains(selected, cs.Name)}
	}
	needs := s.scopesNeeded(selected, cred.Scopes)
	missing := 0
	for _, n := range needs {
		if !n.Held {
			missing++
		}
	}
	data["Form"] = f
	data["Cred"] = cred
	data["Choices"] = choices
	data["Readable"] = len(readable)
	data["Total"] = len(s.streams)
	data["Needs"] = needs
	data["Missing"] = missing
	data["Held"] = strings.Join(cred.Scopes, " ")
	data["DefaultNamespace"] = connection.DefaultNamespace(f.Name)
	return data
}

func (s *Server) connNewForm(w http.ResponseWriter, r *http.Request) {
	credID := r.URL.Query().Get("credential")
	if credID == "" {
		s.connChooseCredential(w, r)
		return
	}
	cred, err := s.m.Get(r.Context(), credID)
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	f := connForm{CredentialID: cred.ID, Name: cred.Name, Direction: string(connection.DirectionSource), Destination: DefaultDestination,
		StreamsMode: "readable", ScheduleKind: "every", Every: "15m", QuotaShare: "1"}
	s.renderConnForm(w, r, http.StatusOK, f, cred, nil)
}

// connChooseCredential asks which credential a new connection uses: the
// connected ones, each a link to the form; the others say what they need.
func (s *Server) connChooseCredential(w http.ResponseWriter, r *http.Request) {
	recs, err := s.m.List(r.Context())
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	var connected, other []*credential.Record
	for _, rec := range recs {
		if rec.Status == credential.StatusConnected {
			connected = append(connected, rec)
		} else {
			other = append(other, rec)
		}
	}
	s.render(w, http.StatusOK, "connection_choose.html", sessionOf(r), map[string]any{"Title": "New connection: choose a credential",
		"Connected": connected, "Other": other})
}

func (s *Server) renderConnForm(w http.ResponseWriter, r *http.Request, status int, f connForm, cred *credential.Record, problems []fieldProblem) {
	data := map[string]any{"Title": "New connection", "Connected": cred.Status == credential.StatusConnected}
	withProblems(data, problems)
	s.render(w, status, "connection_new.html", sessionOf(r), s.formData(data, f, cred))
}

// withProblems puts the form's problems into data: all of them above the
// form, and each next to its field.
func withProblems(data map[string]any, problems []fieldProblem) {
	data["Problems"] = messages(problems)
	data["FieldErrors"] = byField(problems)
}

// readConnForm reads the form as typed.
func readConnForm(r *http.Request) connForm {
	p := r.PostForm
	return connForm{CredentialID: p.Get("credential"), Name: p.Get("name"), Direction: p.Get("direction"),
		Destination: strings.TrimSpace(p.Get("destination_url")), StreamsMode: p.Get("streams_mode"), Streams: p["streams"],
		ScheduleKind: p.Get("schedule"), Every: strings.TrimSpace(p.Get("every")), Cron: strings.TrimSpace(p.Get("cron")),
		StartDate: strings.TrimSpace(p.Get("start_date")), QuotaShare: strings.TrimSpace(p.Get("quota_share")),
		Namespace: strings.TrimSpace(p.Get("namespace")), NotifyURL: strings.TrimSpace(p.Get("notify_url")), Dest: readDestForm(p)}
}

// scheduleText is the schedule the form names, as the service reads it.
func (f connForm) scheduleText() string {
	switch f.ScheduleKind {
	case "every":
		return "every " + f.Every
	case "cron":
		return "cron " + f.Cron
	}
	return "manual"
}

// check turns the form into what Create takes, or says everything there
// is to fix, field by field. It checks what the connection domain checks,
// so the form comes back at once with what was typed.
func (s *Server) check(f connForm, cred *credential.Record) (service.NewConnection, []fieldProblem) {
	var problems []fieldProblem
	add := func(field, format string, args ...any) {
		problems = append(problems, fieldProblemOf(field, fmt.Sprintf(format, args...)))
	}
	if connection.Direction(f.Direction) == connection.DirectionDestination {
		return s.checkDestination(f, cred)
	}
	n := service.NewConnection{Name: f.Name, Credential: cred.ID, Direction: connection.Direction(f.Direction),
		DestinationURL: f.Destination, Schedule: f.scheduleText(), Namespace: f.Namespace, NotifyURL: f.NotifyURL}
	switch n.Direction {
	case "", connection.DirectionSource:
		n.Direction = connection.DirectionSource
	default:
		add(connection.FieldDirection, "Direction %q is unknown; choose Source or Destination.", f.Direction)
	}
	switch f.StreamsMode {
	case "", "readable":
	case "ticked":
		if len(f.Streams) == 0 {
			add(connection.FieldStreams, "No stream is ticked: tick at least one, or choose every stream the credential can read.")
		}
		n.Streams = slices.Clone(f.Streams)
	default:
		add(connection.FieldStreams, "Choose which streams to sync.")
	}
	problems = append(problems, s.checkStreams(n.Streams, cred)...)
	var sched connection.Schedule
	switch {
	case f.ScheduleKind == "every" && f.Every == "":
		add(connection.FieldSchedule, "The schedule is an interval but none is typed; type one such as 15m or 1h, or choose manual.")
	case f.ScheduleKind == "cron" && f.Cron == "":
		add(connection.FieldSchedule, "The schedule is cron but no expression is typed; type one such as */15 * * * * (UTC), or choose manual.")
	case f.ScheduleKind != "every" && f.ScheduleKind != "cron" && f.ScheduleKind != "manual":
		add(connection.FieldSchedule, "Choose a schedule: an interval, a cron expression, or manual.")
	default:
		var err error
		if sched, err = connection.ParseSchedule(n.Schedule); err != nil {
			problems = append(problems, fieldProblems(err)...)
		}
	}
	if f.StartDate != "" {
		d, err := time.Parse("2006-01-02", f.StartDate)
		if err != nil {
			add(connection.FieldStartDate, "Start date %q is not a date such as 2024-01-31; leave it empty for all history.", f.StartDate)
		}
		n.StartDate = d
	}
	n.QuotaShare = 1
	if f.QuotaShare != "" {
		q, err := strconv.ParseFloat(f.QuotaShare, 64)
		if err != nil {
			add(connection.FieldQuotaShare, "Quota share %q is not a number; use a fraction in (0, 1], such as 0.5 for half the hourly limit.", f.QuotaShare)
			q = 1
		}
		n.QuotaShare = q
	}
	// The direction was checked above, with the form's words.
	source := n
	source.Direction = connection.DirectionSource
	problems = append(problems, draftProblems(source, cred.ID, sched)...)
	return n, problems
}

// draftProblems are what the connection domain finds wrong with the
// connection n would create, of credential credID, on schedule sched.
func draftProblems(n service.NewConnection, credID string, sched connection.Schedule) []fieldProblem {
	c := connection.Connection{Name: n.Name, CredentialID: credID, Direction: n.Direction, DestinationURL: n.DestinationURL,
		Streams: n.Streams, Schedule: sched, StartDate: n.StartDate, PageSize: n.PageSize, QuotaShare: n.QuotaShare,
		Namespace: n.Namespace, NotifyURL: n.NotifyURL, Load: n.Load}
	c.SetDefaults()
	return fieldProblems(c.Validate())
}

// mapAll converts every element of in with f.
func mapAll[T, U any](in []T, f func(T) U) []U {
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

// formProblems are what a refused create or edit says on the form: the
// refusal's field problems, or its message for the form as a whole.
func formProblems(p problem) []fieldProblem {
	if p.Problems != nil {
		return p.Problems
	}
	return []fieldProblem{{Message: p.Message}}
}

func (s *Server) connCreate(w http.ResponseWriter, r *http.Request) {
	f := readConnForm(r)
	cred, err := s.m.Get(r.Context(), f.CredentialID)
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	n, problems := s.check(f, cred)
	if len(problems) > 0 {
		s.renderConnForm(w, r, http.StatusUnprocessableEntity, f, cred, problems)
		return
	}
	c, err := s.conns.Create(r.Context(), n)
	if err != nil {
		p := connProblem(err)
		if p.Status == http.StatusInternalServerError || p.Status == http.StatusNotFound {
			s.connFail(w, r, err)
			return
		}
		s.renderConnForm(w, r, p.Status, f, cred, formProblems(p))
		return
	}
	http.Redirect(w, r, "/connections/"+c.ID+"?notice=created", http.StatusSeeOther)
}

// streamRow is one stream of a connection's page.
type streamRow struct {
	service.StreamStatus
	Lag string
}

func (s *Server) connShow(w http.ResponseWriter, r *http.Request) {
	st, err := s.conns.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.connFail(w, r, err)
		return
	}
	c := st.Connection
	code := r.URL.Query().Get("notice")
	data := map[string]any{"Title": c.Name, "S": st, "C": c, "Notice": connNotice(code), "NoticeCode": code,
		"Destination": connection.RedactedURL(c.DestinationURL), "NextRun": nextRun(st)}
	streams, err := s.conns.Streams(r.Context(), c.ID)
	if err != nil {
		s.log.Warn("read a connection's streams", "connection", c.Name, "err", err)
		data["StreamsError"] = connProblem(err).Message + " (" + err.Error() + ")"
	}
	now := s.now()
	rows := make([]streamRow, len(streams))
	for i, ss := range streams {
		rows[i] = streamRow{StreamStatus: ss, Lag: "—"}
		if lag, ok := cursorLag(streams[i:i+1], now); ok {
			rows[i].Lag = humanDuration(lag)
		}
	}
	data["Streams"] = rows
	runs, err := s.conns.History(r.Context(), c.ID, historyLimit)
	if err != nil {
		s.connFail(w, r, err)
		return
	}
	data["Runs"] = runs
	s.destinationData(r.Context(), data, c, runs)
	data["Active"] = st.State == "queued" || st.State == "running"
	if data["Active"] == true {
		// Follow the run without JavaScript.
		data["Refresh"] = activeRefreshSeconds
	} else if code == "queued" || code == "already" {
		data["Notice"] = "The run has ended: its outcome is in the history below."
	}
	s.render(w, http.StatusOK, "connection.html", sessionOf(r), data)
}

// connAction runs a POST action of a connection's page and goes back to
// it with notice.
func (s *Server) connAction(w http.ResponseWriter, r *http.Request, do func(context.Context, string) error, notice string) {
	id := r.PathValue("id")
	if err := do(r.Context(), id); err != nil {
		s.connFail(w, r, err)
		return
	}
	s.backTo(w, r, id, notice)
}

// backTo sends the browser to the connection's page; the id in the URL
// is the connection's own, never what was typed.
func (s *Server) backTo(w http.ResponseWriter, r *http.Request, idOrName, notice string) {
	st, err := s.conns.Get(r.Context(), idOrName)
	if err != nil {
		s.connFail(w, r, err)
		return
	}
	http.Redirect(w, r, "/connections/"+st.Connection.ID+"?notice="+notice, http.StatusSeeOther)
}

func (s *Server) connRun(w http.ResponseWriter, r *http.Request) {
	job, err := s.conns.RunNow(r.Context(), r.PathValue("id"))
	if err != nil {
		s.connFail(w, r, err)
		return
	}
	notice := "queued"
	if job.Duplicate {
		notice = "already"
	}
	s.backTo(w, r, r.PathValue("id"), notice)
}

func (s *Server) connCancel(w http.ResponseWriter, r *http.Request) {
	st, err := s.conns.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.connFail(w, r, err)
		return
	}
	if st.State != "queued" && st.State != "running" {
		s.conflict(w, r, st, "Nothing to cancel", st.Connection.Name+" has no run queued or running.")
		return
	}
	s.connAction(w, r, s.conns.Cancel, "cancelled")
}
func (s *Server) connPause(w http.ResponseWriter, r *http.Request) {
	s.connAction(w, r, s.conns.Pause, "paused")
}
func (s *Server) connResume(w http.ResponseWriter, r *http.Request) {
	s.connAction(w, r, s.conns.Resume, "resumed")
}

// connStreamNames are the streams a connection syncs, as its page lists
// them: what its destination reports, else what it was given.
func (s *Server) connStreamNames(ctx context.Context, c *connection.Connection) []string {
	names := slices.Clone(c.Streams)
	if streams, err := s.conns.Streams(ctx, c.ID); err == nil {
		for _, st := range streams {
			if !slices.Contains(names, st.Stream) {
				names = append(names, st.Stream)
			}
		}
	}
	return names
}

// confirmConn shows the page that asks before deleting or re-syncing.
func (s *Server) confirmConn(w http.ResponseWriter, r *http.Request, status int, action, stream, failure string) {
	st, err := s.conns.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.connFail(w, r, err)
		return
	}
	c := st.Connection
	title := "Delete " + c.Name + "?"
	if action == "resync" {
		title = "Re-sync " + c.Name + "?"
		if stream != "" {
			title = "Re-sync " + stream + " of " + c.Name + "?"
		}
	}
	s.render(w, status, "connection_confirm.html", sessionOf(r), map[string]any{"Title": title, "C": c, "Action": action,
		"Stream": stream, "Destination": connection.RedactedURL(c.DestinationURL), "Error": failure})
}

func (s *Server) connConfirmDelete(w http.ResponseWriter, r *http.Request) {
	s.confirmConn(w, r, http.StatusOK, "delete", "", "")
}

func (s *Server) connConfirmResync(w http.ResponseWriter, r *http.Request) {
	stream := r.URL.Query().Get("stream")
	if stream != "" && !s.knownStream(w, r, stream) {
		return
	}
	s.confirmConn(w, r, http.StatusOK, "resync", stream, "")
}

// knownStream checks that stream is one of the connection's; if not it
// answers 422 and returns false.
func (s *Server) knownStream(w http.ResponseWriter, r *http.Request, stream string) bool {
	st, err := s.conns.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.connFail(w, r, err)
		return false
	}
	if slices.Contains(s.connStreamNames(r.Context(), st.Connection), stream) {
		return true
	}
	if _, ok := s.stream(stream); ok && st.Connection.Streams == nil {
		return true
	}
	s.render(w, http.StatusUnprocessableEntity, "error.html", sessionOf(r), map[string]any{"Title": "No such stream",
		"Message":      fmt.Sprintf("%s does not sync a stream named %q; choose Re-sync on one of the streams its page lists.", st.Connection.Name, stream),
		"ConnectionID": st.Connection.ID})
	return false
}

// connConfirmed reports whether the form carries the confirmation; if not
// it sends the browser to the confirmation page.
func connConfirmed(w http.ResponseWriter, r *http.Request, action string) bool {
	if r.PostForm.Get("confirm") == "yes" {
		return true
	}
	http.Redirect(w, r, "/connections/"+r.PathValue("id")+"/"+action, http.StatusSeeOther)
	return false
}

// conflict answers 409 with a page that says why the action cannot be
// done now.
func (s *Server) conflict(w http.ResponseWriter, r *http.Request, st *service.Status, title, msg string) {
	s.render(w, http.StatusConflict, "error.html", sessionOf(r), map[string]any{"Title": title, "Message": msg,
		"ConnectionID": st.Connection.ID})
}

func (s *Server) connResync(w http.ResponseWriter, r *http.Request) {
	if !connConfirmed(w, r, "resync") {
		return
	}
	st, err := s.conns.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.connFail(w, r, err)
		return
	}
	if st.State == "running" {
		s.conflict(w, r, st, "A run is in progress", st.Connection.Name+" is running. Wait for the run to end (or cancel it), then re-sync.")
		return
	}
	var streams []string
	if stream := r.PostForm.Get("stream"); stream != "" {
		if !s.knownStream(w, r, stream) {
			return
		}
		streams = []string{stream}
	}
	if _, err := s.conns.Resync(r.Context(), r.PathValue("id"), streams); err != nil {
		s.connFail(w, r, err)
		return
	}
	s.backTo(w, r, r.PathValue("id"), "resync")
}

func (s *Server) connDelete(w http.ResponseWriter, r *http.Request) {
	if !connConfirmed(w, r, "delete") {
		return
	}
	drop := r.PostForm.Get("drop_data") == "yes"
	if err := s.conns.Delete(r.Context(), r.PathValue("id"), drop); err != nil {
		p := connProblem(err)
		if p.Status == http.StatusNotFound {
			s.connFail(w, r, err)
			return
		}
		s.log.Warn("delete a connection", "connection", r.PathValue("id"), "drop_data", drop, "err", err)
		msg := p.Message
		if p.Detail != "" {
			msg += " Details: " + p.Detail
		}
		s.confirmConn(w, r, p.Status, "delete", "", msg)
		return
	}
	notice := "deleted"
	if drop {
		notice = "deleted_data"
	}
	http.Redirect(w, r, "/connections?notice="+notice, http.StatusSeeOther)
}

// credentialConnections are the connections using credential id, for its
// page; nil when connections are off or cannot be listed.
func (s *Server) credentialConnections(ctx context.Context, id string) []*service.Status {
	if s.conns == nil {
		return nil
	}
	all, err := s.conns.List(ctx)
	if err != nil {
		s.log.Warn("list connections", "err", err)
		return nil
	}
	var out []*service.Status
	for _, st := range all {
		if st.Connection.CredentialID == id {
			out = append(out, st)
		}
	}
	return out
}
