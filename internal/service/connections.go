package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/jobs"
	"github.com/outreach-connector/outreach-connector/internal/load"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
)

// errNoQueue is returned by what needs the job queue when none is set.
var errNoQueue = errors.New("service: no job queue is configured")

// lookup returns the connection with id or name idOrName.
func (s *Service) lookup(ctx context.Context, idOrName string) (*connection.Connection, error) {
	c, err := s.opts.Store.GetConnection(ctx, idOrName)
	if errors.Is(err, connection.ErrNotFound) {
		c, err = s.opts.Store.GetConnectionByName(ctx, idOrName)
	}
	if errors.Is(err, connection.ErrNotFound) {
		return nil, &notFoundError{name: idOrName}
	}
	return c, err
}

// credential returns the credential with id or name idOrName; nil
// without an error when idOrName is empty (Validate says it is required).
func (s *Service) credential(ctx context.Context, idOrName string) (*credential.Record, error) {
	if idOrName == "" {
		return nil, nil
	}
	rec, err := s.opts.Credentials.Get(ctx, idOrName)
	if errors.Is(err, credential.ErrNotFound) {
		return nil, fmt.Errorf("credential %q: %w; %s", idOrName, err, s.credentialNames(ctx))
	}
	if err != nil {
		return nil, fmt.Errorf("credential %q: %w (see `credentials list`)", idOrName, err)
	}
	return rec, nil
}

// credentialNames says which credentials there are, for an error about
// one that does not exist.
func (s *Service) credentialNames(ctx context.Context) string {
	recs, err := s.opts.Credentials.List(ctx)
	if err != nil {
		return "see `credentials list`"
	}
	if len(recs) == 0 {
		return "there is no credential yet: add one (`credentials add` or `credentials import`, or the Credentials page)"
	}
	names := make([]string, len(recs))
	for i, r := range recs {
		names[i] = r.Name
	}
	return "the credentials are: " + strings.Join(names, ", ")
}

// Create validates and stores a connection, and schedules it. It refuses
// with an *InvalidError naming every problem, or a *ConflictError.
func (s *Service) Create(ctx context.Context, n NewConnection) (*connection.Connection, error) {
	rec, err := s.credential(ctx, n.Credential)
	if err != nil {
		return nil, err
	}
	sched, schedErr := connection.ParseSchedule(n.Schedule)
	now := s.now()
	c := &connection.Connection{ID: connection.NewID(), Name: n.Name, Direction: n.Direction,
		DestinationURL: n.DestinationURL, Streams: n.Streams, Schedule: sched, StartDate: n.StartDate, PageSize: n.PageSize,
		QuotaShare: n.QuotaShare, Paused: n.Paused, Namespace: n.Namespace, NotifyURL: n.NotifyURL, CreatedAt: now, UpdatedAt: now,
		Load: n.Load}
	if rec != nil {
		c.CredentialID = rec.ID
	}
	c.SetDefaults()
	if err := s.check(ctx, c, rec, schedErr); err != nil {
		return nil, err
	}
	if err := s.opts.Store.CreateConnection(ctx, c); err != nil {
		return nil, conflict(c.Name, err)
	}
	if err := s.schedule(ctx, c); err != nil {
		return c, err
	}
	return c, nil
}

// check validates c, its schedule (schedErr from parsing it) and its
// streams against what rec may read: an *InvalidError with every problem.
func (s *Service) check(ctx context.Context, c *connection.Connection, rec *credential.Record, schedErr error) error {
	problems := connection.FieldErrorsOf(schedErr)
	if schedErr != nil && problems == nil {
		problems = []connection.FieldError{{Field: connection.FieldSchedule, Message: schedErr.Error()}}
	}
	problems = append(problems, connection.FieldErrorsOf(c.Validate())...)
	if rec != nil && c.Direction == connection.DirectionDestination && c.Load != nil {
		if err := s.checkDestination(c, rec); err != nil {
			problems = append(problems, connection.FieldError{Field: connection.FieldLoad, Message: strings.TrimPrefix(err.Error(), "connection: ")})
		}
		// The source's query is prepared, not run; an unreachable database
		// is the runs' problem (they retry), a wrong query is the user's.
		var cfg *load.ConfigError
		if len(problems) > 0 {
			// Checked last: no connection to a source that is refused anyway.
		} else if err := load.CheckSource(ctx, c.DestinationURL); errors.As(err, &cfg) {
			problems = append(problems, connection.FieldError{Field: connection.FieldDestination, Message: cfg.Msg})
		}
	} else if rec != nil && c.Direction != connection.DirectionDestination {
		problems = append(problems, s.checkStreams(c, rec)...)
	}
	if len(problems) == 0 {
		return nil
	}
	return &InvalidError{Problems: problems, Direction: c.Direction}
}

// checkStreams checks c's streams against what rec may read.
func (s *Service) checkStreams(c *connection.Connection, rec *credential.Record) []connection.FieldError {
	problem := func(format string, args ...any) []connection.FieldError {
		return []connection.FieldError{{Field: connection.FieldStreams, Message: fmt.Sprintf(format, args...)}}
	}
	if c.Streams == nil {
		if readable, _ := syncer.SplitByScopes(s.cat, syncer.Streams(s.cat), rec.Scopes); len(readable) == 0 {
			return problem("credential %s can read no stream with its scopes (%s); give it read scopes and authorize it again",
				rec.Name, strings.Join(rec.Scopes, " "))
		}
		return nil
	}
	// A name that may be a custom object is checked by the run, which
	// discovers the org's custom objects.
	picked, unknown := pickStreams(s.cat, c.Streams)
	unknown = slices.DeleteFunc(unknown, isCustomName)
	if len(unknown) > 0 {
		var names []string
		for _, st := range syncer.Streams(s.cat) {
			names = append(names, st.Name)
		}
		return problem("unknown stream %s; the streams are %s", strings.Join(unknown, ", "), strings.Join(names, ", "))
	}
	if text := unreadableText(s.cat, picked, rec.Scopes); text != "" {
		return problem("credential %s cannot read %s; give it those scopes and authorize it again, or leave those streams out", rec.Name, text)
	}
	return nil
}

// isCustomName reports whether a stream name can be a custom object's
// (syncer names them custom_<name>).
func isCustomName(name string) bool { return strings.HasPrefix(name, "custom_") }

// schedule puts c on the queue's schedule, or takes it off when it is
// paused or manual.
func (s *Service) schedule(ctx context.Context, c *connection.Connection) error {
	if s.opts.Queue == nil {
		return nil
	}
	if c.Paused || c.Schedule.IsManual() {
		return s.opts.Queue.Unschedule(ctx, c.ID)
	}
	return s.opts.Queue.Schedule(ctx, c.ID, c.Schedule, s.now())
}

// Update applies ch and reschedules.
func (s *Service) Update(ctx context.Context, idOrName string, ch Changes) (*connection.Connection, error) {
	c, err := s.lookup(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	if ch.Name != nil {
		c.Name = *ch.Name
	}
	if ch.DestinationURL != nil {
		c.DestinationURL = *ch.DestinationURL
	}
	switch {
	case ch.Streams == nil:
	case len(ch.Streams) == 0:
		c.Streams = nil // every stream the credential can read
	default:
		c.Streams = ch.Streams
	}
	var schedErr error
	if ch.Schedule != nil {
		c.Schedule, schedErr = connection.ParseSchedule(*ch.Schedule)
	}
	if ch.PageSize != nil {
		c.PageSize = *ch.PageSize
	}
	if ch.QuotaShare != nil {
		c.QuotaShare = *ch.QuotaShare
	}
	if ch.NotifyURL != nil {
		c.NotifyURL = *ch.NotifyURL
	}
	if ch.Load != nil {
		c.Load = ch.Load
	}
	credID := c.CredentialID
	if ch.Credential != nil {
		credID = *ch.Credential
	}
	rec, err := s.credential(ctx, credID)
	if err != nil {
		return nil, err
	}
	c.CredentialID = ""
	if rec != nil {
		c.CredentialID = rec.ID
	}
	if err := s.check(ctx, c, rec, schedErr); err != nil {
		return nil, err
	}
	c.UpdatedAt = s.now()
	if err := s.opts.Store.UpdateConnection(ctx, c); err != nil {
		return nil, conflict(c.Name, err)
	}
	return c, s.schedule(ctx, c)
}

// Get returns a connection's status.
func (s *Service) Get(ctx context.Context, idOrName string) (*Status, error) {
	c, err := s.lookup(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	return s.status(ctx, c, nil)
}

// List returns every connection's status, by name.
func (s *Service) List(ctx context.Context) ([]*Status, error) {
	cs, err := s.opts.Store.ListConnections(ctx)
	if err != nil {
		return nil, err
	}
	creds := map[string]*credential.Record{}
	if list, err := s.opts.Credentials.List(ctx); err == nil {
		for _, r := range list {
			creds[r.ID] = r
		}
	}
	out := make([]*Status, 0, len(cs))
	for _, c := range cs {
		st, err := s.status(ctx, c, creds)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// status computes c's status; creds, when set, holds the credentials by
// id (List reads them once).
func (s *Service) status(ctx context.Context, c *connection.Connection, creds map[string]*credential.Record) (*Status, error) {
	st := &Status{Connection: c, State: "idle"}
	rec := creds[c.CredentialID]
	if creds == nil {
		rec, _ = s.opts.Credentials.Get(ctx, c.CredentialID)
	}
	if rec != nil {
		st.CredentialName = rec.Name
		st.ScopesNeeded, st.ScopesMissing = s.scopes(c, rec)
	}
	runs, err := s.opts.Store.ListRuns(ctx, c.ID, 1)
	if err != nil {
		return nil, err
	}
	if len(runs) > 0 {
		st.LastRun = runs[0]
	}
	var active jobs.Job
	var queued bool
	if q := s.opts.Queue; q != nil {
		if due, ok, err := q.NextDue(ctx, c.ID); err != nil {
			return nil, err
		} else if ok {
			st.NextDue = due
		}
		if active, queued, err = q.Active(ctx, c.ID); err != nil {
			return nil, err
		}
	}
	switch {
	case queued && active.State == "running":
		st.State = "running"
	case c.Paused:
		st.State = "paused"
	case rec != nil && rec.Status != credential.StatusConnected:
		st.State = "needs_reauthorization"
	case queued:
		st.State = "queued"
	case st.LastRun != nil && st.LastRun.Outcome == connection.Failed:
		st.State = "failing"
	}
	return st, nil
}

// scopes returns the read scopes c's streams need and those rec lacks.
func (s *Service) scopes(c *connection.Connection, rec *credential.Record) (needed, missing []string) {
	if c.Direction == connection.DirectionDestination {
		return s.destinationScopes(c, rec)
	}
	all := syncer.Streams(s.cat)
	if c.Streams == nil {
		readable, _ := syncer.SplitByScopes(s.cat, all, rec.Scopes)
		return syncer.ScopesToRead(s.cat, readable), nil
	}
	picked, _ := pickStreams(s.cat, c.Streams)
	_, unreadable := syncer.SplitByScopes(s.cat, picked, rec.Scopes)
	for _, u := range unreadable {
		if len(u.Scopes) > 0 && !slices.Contains(missing, u.Scopes[0]) {
			missing = append(missing, u.Scopes[0])
		}
	}
	slices.Sort(missing)
	return syncer.ScopesToRead(s.cat, picked), missing
}

// streamNames are the streams c syncs as far as the catalog without the
// org's custom objects tells: its list, or every stream rec can read.
func (s *Service) streamNames(c *connection.Connection, rec *credential.Record) []string {
	if c.Streams != nil {
		return slices.Clone(c.Streams)
	}
	all := syncer.Streams(s.cat)
	if rec != nil {
		all, _ = syncer.SplitByScopes(s.cat, all, rec.Scopes)
	}
	var names []string
	for _, st := range all {
		names = append(names, st.Name)
	}
	return names
}

// open opens c's destination in its namespace.
func (s *Service) open(ctx context.Context, c *connection.Connection) (connection.Destination, func() error, error) {
	dst, closeDst, err := s.opts.Open(ctx, c.DestinationURL, c.Namespace)
	if err != nil {
		return nil, nil, fmt.Errorf("connection %s: open destination %s: %w", c.Name, connection.RedactedURL(c.DestinationURL), err)
	}
	if closeDst == nil {
		closeDst = func() error { return nil }
	}
	return dst, closeDst, nil
}

// Streams returns the connection's streams with cursor, rows and last error.
func (s *Service) Streams(ctx context.Context, idOrName string) ([]StreamStatus, error) {
	c, err := s.lookup(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	if c.Direction == connection.DirectionDestination {
		return nil, nil // it writes into Outreach: no stream, no cursor
	}
	rec, _ := s.opts.Credentials.Get(ctx, c.CredentialID)
	var out []StreamStatus
	index := map[string]int{}
	add := func(name string) *StreamStatus {
		if i, ok := index[name]; ok {
			return &out[i]
		}
		index[name] = len(out)
		out = append(out, StreamStatus{Stream: name})
		return &out[len(out)-1]
	}
	for _, name := range s.streamNames(c, rec) {
		add(name)
	}
	if infos, ok, err := s.inspect(ctx, c); err != nil {
		return nil, err
	} else if ok {
		for _, in := range infos {
			st := add(in.Stream)
			st.Cursor, st.Rows = in.Cursor, in.Rows
		}
	}
	runs, err := s.opts.Store.ListRuns(ctx, c.ID, 1)
	if err != nil {
		return nil, err
	}
	if len(runs) > 0 {
		for _, ss := range runs[0].Streams {
			if ss.Error != "" {
				add(ss.Stream).LastError = ss.Error
			}
		}
	}
	slices.SortStableFunc(out, func(a, b StreamStatus) int { return strings.Compare(a.Stream, b.Stream) })
	return out, nil
}

// History returns the connection's runs, newest first.
func (s *Service) History(ctx context.Context, idOrName string, limit int) ([]*connection.Run, error) {
	c, err := s.lookup(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 20
	}
	return s.opts.Store.ListRuns(ctx, c.ID, limit)
}

// RunNow queues a manual run (or returns the one already queued/running).
func (s *Service) RunNow(ctx context.Context, idOrName string) (jobs.Job, error) {
	c, err := s.lookup(ctx, idOrName)
	if err != nil {
		return jobs.Job{}, err
	}
	if s.opts.Queue == nil {
		return jobs.Job{}, errNoQueue
	}
	return s.opts.Queue.Enqueue(ctx, c.ID, connection.ManualRun)
}

// Resync forgets the cursor of streams (all when nil) and queues a run.
func (s *Service) Resync(ctx context.Context, idOrName string, streams []string) (jobs.Job, error) {
	c, err := s.lookup(ctx, idOrName)
	if err != nil {
		return jobs.Job{}, err
	}
	if err := destinationOnly(c, "re-sync"); err != nil {
		return jobs.Job{}, err
	}
	if s.opts.Queue == nil {
		return jobs.Job{}, errNoQueue
	}
	if j, ok, err := s.opts.Queue.Active(ctx, c.ID); err != nil {
		return jobs.Job{}, err
	} else if ok && j.State == "running" {
		return jobs.Job{}, fmt.Errorf("connection %s: %w; wait for the run to end (or cancel it), then re-sync", c.Name, ErrRunning)
	}
	if streams != nil && len(streams) == 0 {
		return jobs.Job{}, invalid([]connection.FieldError{{Field: connection.FieldStreams, Message: "name at least one stream to re-sync, or none for all"}})
	}
	rec, _ := s.opts.Credentials.Get(ctx, c.CredentialID)
	known := s.streamNames(c, rec)
	// Streams the destination holds beyond those (custom objects).
	if infos, ok, err := s.inspect(ctx, c); err == nil && ok {
		for _, in := range infos {
			if !slices.Contains(known, in.Stream) {
				known = append(known, in.Stream)
			}
		}
	}
	if streams == nil {
		streams = known
	}
	var unknown []connection.FieldError
	for _, name := range streams {
		if !slices.Contains(known, name) {
			unknown = append(unknown, connection.FieldError{Field: connection.FieldStreams,
				Message: fmt.Sprintf("%s does not sync a stream named %q (it syncs %s)", c.Name, name, strings.Join(known, ", "))})
		}
	}
	if unknown != nil {
		return jobs.Job{}, invalid(unknown)
	}
	dst, closeDst, err := s.open(ctx, c)
	if err != nil {
		return jobs.Job{}, err
	}
	r, ok := dst.(connection.Resetter)
	if !ok {
		closeDst()
		return jobs.Job{}, fmt.Errorf("connection %s: %w: its destination cannot forget stream state; re-sync is not available for it", c.Name, ErrUnsupported)
	}
	err = r.ResetStreams(ctx, streams)
	if cerr := closeDst(); err == nil {
		err = cerr
	}
	if err != nil {
		return jobs.Job{}, fmt.Errorf("connection %s: reset streams: %w", c.Name, err)
	}
	return s.opts.Queue.Enqueue(ctx, c.ID, connection.ManualRun)
}

// Pause stops scheduling; a running run finishes.
func (s *Service) Pause(ctx context.Context, idOrName string) error {
	return s.setPaused(ctx, idOrName, true)
}

// Resume schedules again from now.
func (s *Service) Resume(ctx context.Context, idOrName string) error {
	return s.setPaused(ctx, idOrName, false)
}

func (s *Service) setPaused(ctx context.Context, idOrName string, paused bool) error {
	c, err := s.lookup(ctx, idOrName)
	if err != nil {
		return err
	}
	if c.Paused != paused {
		c.Paused = paused
		c.UpdatedAt = s.now()
		if err := s.opts.Store.UpdateConnection(ctx, c); err != nil {
			return conflict(c.Name, err)
		}
	}
	if paused && s.opts.Queue != nil {
		return s.opts.Queue.Unschedule(ctx, c.ID)
	}
	return s.schedule(ctx, c)
}

// Cancel cancels the connection's queued or running run.
func (s *Service) Cancel(ctx context.Context, idOrName string) error {
	c, err := s.lookup(ctx, idOrName)
	if err != nil {
		return err
	}
	if s.opts.Queue == nil {
		return errNoQueue
	}
	j, ok, err := s.opts.Queue.Active(ctx, c.ID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("connection %s: %w", c.Name, ErrNoRun)
	}
	_, err = s.opts.Queue.Cancel(ctx, j.ID)
	return err
}

// Delete unschedules and removes a connection and its history; with
// dropData, also its tables/files and sync state in its destination.
func (s *Service) Delete(ctx context.Context, idOrName string, dropData bool) error {
	c, err := s.lookup(ctx, idOrName)
	if err != nil {
		return err
	}
	var drop connection.Dropper
	closeDst := func() error { return nil }
	defer func() { closeDst() }()
	if dropData && c.Direction != connection.DirectionDestination {
		// Refuse before anything changes when the data cannot be dropped.
		var dst connection.Destination
		if dst, closeDst, err = s.open(ctx, c); err != nil {
			return err
		}
		d, ok := dst.(connection.Dropper)
		if !ok {
			return fmt.Errorf("connection %s: %w: its destination cannot drop its data; delete without dropping data, and remove the data by hand",
				c.Name, ErrUnsupported)
		}
		drop = d
	}
	if q := s.opts.Queue; q != nil {
		if err := q.Unschedule(ctx, c.ID); err != nil {
			return err
		}
		if j, ok, err := q.Active(ctx, c.ID); err != nil {
			return err
		} else if ok {
			if _, err := q.Cancel(ctx, j.ID); err != nil {
				return err
			}
		}
	}
	if drop != nil {
		err := drop.DropNamespace(ctx)
		if cerr := closeDst(); err == nil {
			err = cerr
		}
		closeDst = func() error { return nil }
		if err != nil {
			return fmt.Errorf("connection %s: drop data: %w", c.Name, err)
		}
	}
	if s.webhooks != nil {
		// Its webhooks go first; those Outreach cannot delete now are
		// forgotten with it (their deliveries are refused as unknown).
		if err := s.webhooks.Unsubscribe(ctx, c, true); err != nil {
			s.log.Warn("deleting a connection whose webhooks Outreach did not delete", "connection", c.Name, "err", err)
		}
	}
	if err := s.opts.Store.DeleteConnection(ctx, c.ID); err != nil {
		return fmt.Errorf("connection %s: %w", c.Name, err)
	}
	s.forgetLoad(ctx, c)
	return nil
}

// allHistory is the start date of a connection without one: before
// Outreach existed.
func allHistory() time.Time { return time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC) }

// inspect asks c's destination for its streams' cursors and rows; false
// when the destination cannot tell.
func (s *Service) inspect(ctx context.Context, c *connection.Connection) ([]connection.StreamInfo, bool, error) {
	if c.Direction == connection.DirectionDestination {
		return nil, false, nil
	}
	dst, closeDst, err := s.open(ctx, c)
	if err != nil {
		return nil, false, err
	}
	defer closeDst()
	in, ok := dst.(connection.Inspector)
	if !ok {
		return nil, false, nil
	}
	infos, err := in.Inspect(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("connection %s: read its streams from the destination: %w", c.Name, err)
	}
	return infos, true, nil
}
