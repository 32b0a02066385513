package web_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/jobs"
	"github.com/outreach-connector/outreach-connector/internal/service"
	"github.com/outreach-connector/outreach-connector/internal/web"
)

// The real service satisfies what the pages use.
var _ web.Connections = (*service.Service)(nil)

// fakeConns is an in-memory connections service: a run completes within
// RunNow, writing recordsPerStream records to each stream.
type fakeConns struct {
	m   func() *credential.Manager
	now func() time.Time

	mu      sync.Mutex
	conns   map[string]*connection.Connection
	runs    map[string][]*connection.Run // newest first
	streams map[string][]service.StreamStatus
	calls   []string
	jobID   int64
	// failRuns makes runs fail with this error.
	failRuns string
	// streamsErr makes Streams fail.
	streamsErr error
	// state, when set, is every connection's state.
	state string
	// refuse, when set, is what Create and RunNow return.
	refuse error
}

func (f *fakeConns) setRefuse(err error) {
	f.mu.Lock()
	f.refuse = err
	f.mu.Unlock()
}

func (f *fakeConns) setState(state string) {
	f.mu.Lock()
	f.state = state
	f.mu.Unlock()
}

const recordsPerStream = 7

func newFakeConns() *fakeConns {
	return &fakeConns{now: func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) },
		conns: map[string]*connection.Connection{}, runs: map[string][]*connection.Run{}, streams: map[string][]service.StreamStatus{}}
}

func (f *fakeConns) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeConns) lookup(idOrName string) (*connection.Connection, error) {
	if c, ok := f.conns[idOrName]; ok {
		return c, nil
	}
	for _, c := range f.conns {
		if c.Name == idOrName {
			return c, nil
		}
	}
	return nil, fmt.Errorf("connection %q: %w", idOrName, connection.ErrNotFound)
}

func (f *fakeConns) Create(ctx context.Context, n service.NewConnection) (*connection.Connection, error) {
	f.mu.Lock()
	refuse := f.refuse
	f.mu.Unlock()
	if refuse != nil {
		return nil, refuse
	}
	cred, err := f.m().Get(ctx, n.Credential)
	if err != nil {
		return nil, err
	}
	sched, err := connection.ParseSchedule(n.Schedule)
	if err != nil {
		return nil, err
	}
	c := &connection.Connection{ID: connection.NewID(), Name: n.Name, CredentialID: cred.ID, Direction: n.Direction,
		DestinationURL: n.DestinationURL, Streams: n.Streams, Schedule: sched, StartDate: n.StartDate, PageSize: n.PageSize,
		QuotaShare: n.QuotaShare, Namespace: n.Namespace, NotifyURL: n.NotifyURL, Paused: n.Paused, CreatedAt: f.now(), UpdatedAt: f.now()}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.conns {
		if o.Name == c.Name {
			return nil, connection.ErrNameTaken
		}
		if o.Namespace == c.Namespace && o.DestinationURL == c.DestinationURL {
			return nil, connection.ErrNamespaceTaken
		}
	}
	f.conns[c.ID] = c
	f.calls = append(f.calls, "create "+c.Name)
	cp := *c
	return &cp, nil
}

func (f *fakeConns) Update(ctx context.Context, idOrName string, ch service.Changes) (*connection.Connection, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(idOrName)
	if err != nil {
		return nil, err
	}
	next := *c
	if ch.Name != nil {
		next.Name = *ch.Name
	}
	if ch.DestinationURL != nil {
		next.DestinationURL = *ch.DestinationURL
	}
	if ch.Streams != nil {
		next.Streams = ch.Streams
	}
	if ch.Schedule != nil {
		if next.Schedule, err = connection.ParseSchedule(*ch.Schedule); err != nil {
			return nil, err
		}
	}
	if ch.PageSize != nil {
		next.PageSize = *ch.PageSize
	}
	if ch.QuotaShare != nil {
		next.QuotaShare = *ch.QuotaShare
	}
	if ch.NotifyURL != nil {
		next.NotifyURL = *ch.NotifyURL
	}
	if err := next.Validate(); err != nil {
		return nil, err
	}
	*c = next
	f.calls = append(f.calls, "update "+c.Name)
	cp := *c
	return &cp, nil
}

func (f *fakeConns) status(ctx context.Context, c *connection.Connection) *service.Status {
	cp := *c
	st := &service.Status{Connection: &cp, State: "idle"}
	if cred, err := f.m().Get(ctx, c.CredentialID); err == nil {
		st.CredentialName = cred.Name
		for _, s := range f.streamNames(c, cred) {
			need := strings.Replace(s, "_", "", -1) // good enough for the fake: prospects → prospects.read
			need = need + ".read"
			if !slices.Contains(st.ScopesNeeded, need) {
				st.ScopesNeeded = append(st.ScopesNeeded, need)
				if !slices.Contains(cred.Scopes, need) {
					st.ScopesMissing = append(st.ScopesMissing, need)
				}
			}
		}
	}
	if runs := f.runs[c.ID]; len(runs) > 0 {
		st.LastRun = runs[0]
		if runs[0].Outcome == connection.Failed {
			st.State = "failing"
		}
	}
	switch {
	case c.Paused:
		st.State = "paused"
	case !c.Schedule.IsManual():
		st.NextDue = f.now().Add(c.Schedule.Interval())
	}
	if f.state != "" {
		st.State = f.state
	}
	return st
}

// streamNames are the streams a run of c syncs.
func (f *fakeConns) streamNames(c *connection.Connection, cred *credential.Record) []string {
	if c.Streams != nil {
		return c.Streams
	}
	var out []string
	for _, sc := range cred.Scopes {
		if name, ok := strings.CutSuffix(sc, ".read"); ok && (name == "prospects" || name == "accounts") {
			out = append(out, name)
		}
	}
	return out
}

func (f *fakeConns) Get(ctx context.Context, idOrName string) (*service.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(idOrName)
	if err != nil {
		return nil, err
	}
	return f.status(ctx, c), nil
}

func (f *fakeConns) List(ctx context.Context) ([]*service.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*service.Status
	for _, c := range f.conns {
		out = append(out, f.status(ctx, c))
	}
	slices.SortFunc(out, func(a, b *service.Status) int { return strings.Compare(a.Connection.Name, b.Connection.Name) })
	return out, nil
}

func (f *fakeConns) Streams(ctx context.Context, idOrName string) ([]service.StreamStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(idOrName)
	if err != nil {
		return nil, err
	}
	if f.streamsErr != nil {
		return nil, f.streamsErr
	}
	return slices.Clone(f.streams[c.ID]), nil
}

func (f *fakeConns) History(ctx context.Context, idOrName string, limit int) ([]*connection.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(idOrName)
	if err != nil {
		return nil, err
	}
	runs := f.runs[c.ID]
	return slices.Clone(runs[:min(limit, len(runs))]), nil
}

// run does a run of c at once.
func (f *fakeConns) run(ctx context.Context, c *connection.Connection, trigger connection.Trigger) jobs.Job {
	cred, _ := f.m().Get(ctx, c.CredentialID)
	run := &connection.Run{ID: connection.NewID(), ConnectionID: c.ID, Trigger: trigger, Attempt: 1, StartedAt: f.now()}
	run.AddLog("run started")
	cursor := f.now().Add(-5 * time.Minute).Format(time.RFC3339Nano)
	for _, name := range f.streamNames(c, cred) {
		st := run.Stream(name)
		st.Pages, st.Requests = 1, 1
		if f.failRuns != "" {
			st.Error = f.failRuns
			continue
		}
		st.Records = recordsPerStream
		i := slices.IndexFunc(f.streams[c.ID], func(s service.StreamStatus) bool { return s.Stream == name })
		if i < 0 {
			f.streams[c.ID] = append(f.streams[c.ID], service.StreamStatus{Stream: name})
			i = len(f.streams[c.ID]) - 1
		}
		f.streams[c.ID][i].Rows += recordsPerStream
		f.streams[c.ID][i].Cursor = cursor
		run.AddLog(fmt.Sprintf("%s: %d records", name, recordsPerStream))
	}
	if f.failRuns != "" {
		run.Finish(f.now().Add(3*time.Second), connection.Failed, fmt.Errorf("%s", f.failRuns))
	} else {
		run.Finish(f.now().Add(3*time.Second), connection.Succeeded, nil)
	}
	f.runs[c.ID] = append([]*connection.Run{run}, f.runs[c.ID]...)
	f.jobID++
	return jobs.Job{ID: f.jobID, ConnectionID: c.ID, Trigger: trigger, Attempt: 1, State: "completed"}
}

func (f *fakeConns) RunNow(ctx context.Context, idOrName string) (jobs.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(idOrName)
	if err != nil {
		return jobs.Job{}, err
	}
	if f.refuse != nil {
		return jobs.Job{}, f.refuse
	}
	f.calls = append(f.calls, "run "+c.Name)
	return f.run(ctx, c, connection.ManualRun), nil
}

func (f *fakeConns) Resync(ctx context.Context, idOrName string, streams []string) (jobs.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(idOrName)
	if err != nil {
		return jobs.Job{}, err
	}
	f.calls = append(f.calls, fmt.Sprintf("resync %s %v", c.Name, streams))
	for i, st := range f.streams[c.ID] {
		if streams == nil || slices.Contains(streams, st.Stream) {
			f.streams[c.ID][i].Cursor = ""
		}
	}
	return f.run(ctx, c, connection.ManualRun), nil
}

func (f *fakeConns) setPaused(idOrName string, paused bool, call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(idOrName)
	if err != nil {
		return err
	}
	c.Paused = paused
	f.calls = append(f.calls, call+" "+c.Name)
	return nil
}

func (f *fakeConns) Pause(ctx context.Context, idOrName string) error {
	return f.setPaused(idOrName, true, "pause")
}

func (f *fakeConns) Resume(ctx context.Context, idOrName string) error {
	return f.setPaused(idOrName, false, "resume")
}

func (f *fakeConns) Cancel(ctx context.Context, idOrName string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(idOrName)
	if err != nil {
		return err
	}
	f.calls = append(f.calls, "cancel "+c.Name)
	return nil
}

func (f *fakeConns) Delete(ctx context.Context, idOrName string, dropData bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookup(idOrName)
	if err != nil {
		return err
	}
	delete(f.conns, c.ID)
	delete(f.runs, c.ID)
	delete(f.streams, c.ID)
	f.calls = append(f.calls, fmt.Sprintf("delete %s drop=%v", c.Name, dropData))
	return nil
}
