package service_test

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/destinations"
	"github.com/outreach-connector/outreach-connector/internal/jobs"
	"github.com/outreach-connector/outreach-connector/internal/postgres"
	"github.com/outreach-connector/outreach-connector/internal/postgres/pgtest"
	"github.com/outreach-connector/outreach-connector/internal/service"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
	"github.com/outreach-connector/outreach-connector/internal/sqlstore"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// wait bounds every wait on an event; reaching it fails the test.
const wait = 60 * time.Second

// env is a service over an in-process sandbox, a SQLite app database,
// a SQLite job queue in the same file, and SQLite destinations.
type env struct {
	t      *testing.T
	ctx    context.Context
	sb     *sandbox.Server
	m      *credential.Manager
	cred   *credential.Record
	store  connection.Store
	q      *jobs.Queue
	svc    *service.Service
	events <-chan jobs.Event
	hooks  *sqlstore.Webhooks // the app database's webhook subscriptions
	keys   *credential.Keyring
	dir    string

	// failOpen makes opening a destination fail (a failing run).
	failOpen atomic.Bool
	mu       sync.Mutex
	observed []*connection.Run
}

// plainDest has none of the optional capabilities.
type plainDest struct{ connection.Destination }

type envOptions struct {
	start    bool // work the queue
	postgres bool // the app database and the queue on PostgreSQL
	plain    bool // destinations without optional capabilities
	notify   string
	secret   []byte
	// notifyTimeout bounds a notification (0: the default).
	notifyTimeout time.Duration
	// store wraps the connection store the service is given.
	store func(connection.Store) connection.Store
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx := t.Context()
	e := &env{t: t, ctx: ctx, dir: t.TempDir()}
	sb, err := sandbox.Start("", sandbox.Options{Prospects: 40})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	e.sb = sb
	keys, err := credential.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	var svc *service.Service
	qopts := jobs.Options{MaxAttempts: 1, SchedulerInterval: time.Hour}
	var credStore credential.Store
	if o.postgres {
		// The app database and the queue on PostgreSQL, in a schema of
		// their own.
		dsn := pgtest.DSN(t)
		db, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		credStore, e.store, e.hooks = db, db.Connections(), db.Webhooks()
		u, _ := url.Parse(dsn)
		qopts.Schema = u.Query().Get("search_path")
		qopts.Run = jobs.Recorded(e.store, nil, nil, func(ctx context.Context, r *connection.Run) error { return svc.Sync(ctx, r) })
		e.q, err = jobs.OpenPostgres(ctx, dsn, qopts)
		if err != nil {
			t.Fatal(err)
		}
	} else {
		appPath := filepath.Join(e.dir, "app.db")
		db, err := sqlite.Open(ctx, appPath)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		credStore, e.store, e.hooks = db, db.Connections(), db.Webhooks()
		qopts.Run = jobs.Recorded(e.store, nil, nil, func(ctx context.Context, r *connection.Run) error { return svc.Sync(ctx, r) })
		e.q, err = jobs.OpenSQLite(ctx, appPath, qopts)
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := e.q.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
		e.q.Close()
	})
	e.keys = keys
	e.m, err = credential.NewManager(credential.Options{Store: credStore, Keyring: keys})
	if err != nil {
		t.Fatal(err)
	}
	_, refresh, err := sb.IssueToken(1)
	if err != nil {
		t.Fatal(err)
	}
	sb.Clock().Advance(time.Minute)
	app := sb.Apps()[0]
	e.cred, err = e.m.Import(ctx, credential.NewCredential{Name: "sandbox", ClientID: app.ClientID, ClientSecret: app.ClientSecret,
		Scopes: sb.Catalog().Scopes(), Environment: credential.Development, APIBaseURL: sb.URL + "/api/v2", RedirectURI: app.RedirectURIs[0]}, refresh)
	if err != nil {
		t.Fatal(err)
	}
	svcStore := e.store
	if o.store != nil {
		svcStore = o.store(e.store)
	}
	svc, err = service.New(service.Options{Store: svcStore, Queue: e.q, Credentials: e.m, NotifyURL: o.notify, NotifySecret: o.secret, NotifyTimeout: o.notifyTimeout,
		Logger: slog.New(slog.DiscardHandler),
		Open: func(ctx context.Context, url, ns string) (connection.Destination, func() error, error) {
			if e.failOpen.Load() {
				return nil, nil, errors.New("the destination is down")
			}
			d, closeDst, err := destinations.Open(ctx, url, ns, io.Discard)
			if err != nil {
				return nil, nil, err
			}
			if o.plain {
				return plainDest{d}, closeDst, nil
			}
			return d, closeDst, nil
		},
		Observe: func(c *connection.Connection, r *connection.Run) {
			e.mu.Lock()
			e.observed = append(e.observed, r)
			e.mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	if o.start {
		c, cancel := e.q.Subscribe()
		t.Cleanup(cancel)
		e.events = c
		if err := e.q.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *env) create(n service.NewConnection) *connection.Connection {
	e.t.Helper()
	if n.Name == "" {
		n.Name = "acme"
	}
	if n.Credential == "" {
		n.Credential = "sandbox"
	}
	if n.DestinationURL == "" {
		n.DestinationURL = "sqlite:" + filepath.Join(e.dir, "outreach.db")
	}
	if n.Streams == nil {
		n.Streams = []string{"accounts", "prospects"}
	}
	c, err := e.svc.Create(e.ctx, n)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// finished waits for the end of connection id's job (not a snooze).
func (e *env) finished(id string) jobs.Event {
	e.t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case ev := <-e.events:
			if ev.Job.ConnectionID == id && ev.Kind != jobs.JobSnoozed {
				return ev
			}
		case <-timeout:
			e.t.Fatalf("connection %s: no job event within %s", id, wait)
		}
	}
}

// runNow queues a run of c and waits for its end; it returns the run.
func (e *env) runNow(c *connection.Connection) *connection.Run {
	e.t.Helper()
	if _, err := e.svc.RunNow(e.ctx, c.Name); err != nil {
		e.t.Fatal(err)
	}
	e.finished(c.ID)
	runs, err := e.svc.History(e.ctx, c.Name, 1)
	if err != nil || len(runs) == 0 {
		e.t.Fatalf("history: %v %v", runs, err)
	}
	return runs[0]
}

func TestRunNowRecordsTheRun(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := map[bool]string{false: "sqlite", true: "postgres"}[pg]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testRunNowRecordsTheRun(t, envOptions{start: true, postgres: pg})
		})
	}
}

// progressStore hands each progress write of a run to the test, which
// holds the run there until it takes it.
type progressStore struct {
	connection.Store
	updates chan *connection.Run
}

func (p *progressStore) UpdateRun(ctx context.Context, r *connection.Run) error {
	if err := p.Store.UpdateRun(ctx, r); err != nil {
		return err
	}
	p.updates <- r
	return nil
}

// A run's record shows what it did while it runs: the record of a run
// whose node dies keeps it.
func TestRunRecordShowsProgress(t *testing.T) {
	ps := &progressStore{updates: make(chan *connection.Run)}
	e := newEnv(t, envOptions{start: true, store: func(s connection.Store) connection.Store { ps.Store = s; return ps }})
	c := e.create(service.NewConnection{Streams: []string{"prospects"}, PageSize: 10})
	if _, err := e.svc.RunNow(e.ctx, c.Name); err != nil {
		t.Fatal(err)
	}
	var first *connection.Run
	select {
	case first = <-ps.updates: // the run waits here
	case <-time.After(wait):
		t.Fatal("no progress recorded")
	}
	runs, err := e.svc.History(e.ctx, c.Name, 1)
	if err != nil || len(runs) != 1 {
		t.Fatal(runs, err)
	}
	if r := runs[0]; r.ID != first.ID || r.Outcome != connection.Running || len(r.Streams) != 1 ||
		r.Streams[0].Records != 10 || r.Streams[0].Pages != 1 || r.Streams[0].Requests < 1 || len(r.Log) == 0 {
		t.Fatalf("record of the running run = %+v, want prospects: 10 records, 1 page, its requests and log", r)
	}
	go func() {
		for range ps.updates {
		}
	}()
	ev := e.finished(c.ID)
	close(ps.updates)
	if ev.Kind != jobs.JobCompleted {
		t.Fatalf("event %+v", ev)
	}
	runs, err = e.svc.History(e.ctx, c.Name, 1)
	if err != nil || len(runs) != 1 {
		t.Fatal(runs, err)
	}
	if r := runs[0]; r.Outcome != connection.Succeeded || r.Streams[0].Records != 40 || r.Streams[0].Pages != 4 {
		t.Fatalf("record of the run = %+v, want prospects: 40 records in 4 pages", r)
	}
}

func testRunNowRecordsTheRun(t *testing.T, o envOptions) {
	e := newEnv(t, o)
	c := e.create(service.NewConnection{})
	if c.Namespace != "acme" || c.QuotaShare != 1 || !c.Schedule.IsManual() {
		t.Fatalf("defaults: %+v", c)
	}
	r := e.runNow(c)
	if r.Outcome != connection.Succeeded || r.Trigger != connection.ManualRun || r.EndedAt.IsZero() {
		t.Fatalf("run: %+v", r)
	}
	tot := r.Totals()
	if tot.Records == 0 || tot.Pages == 0 || tot.Requests == 0 {
		t.Fatalf("totals %+v of streams %+v", tot, r.Streams)
	}
	for _, st := range r.Streams {
		if st.Records == 0 || st.Requests == 0 || st.Error != "" {
			t.Errorf("stream %+v", st)
		}
	}
	if len(r.Log) == 0 || !strings.Contains(strings.Join(r.Log, "\n"), "run succeeded") {
		t.Errorf("log: %q", r.Log)
	}
	st, err := e.svc.Get(e.ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != "idle" || st.LastRun == nil || st.LastRun.ID != r.ID || st.CredentialName != "sandbox" || !st.NextDue.IsZero() {
		t.Fatalf("status: %+v", st)
	}
	if strings.Join(st.ScopesNeeded, " ") != "accounts.read prospects.read" || len(st.ScopesMissing) != 0 {
		t.Fatalf("scopes: %v / %v", st.ScopesNeeded, st.ScopesMissing)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.observed) != 1 || e.observed[0].Outcome != connection.Succeeded || e.observed[0].Totals().Records != tot.Records {
		t.Fatalf("observed: %+v", e.observed)
	}
}

func TestCreateChecksStreamsAgainstScopes(t *testing.T) {
	e := newEnv(t, envOptions{})
	narrow, err := e.m.Create(e.ctx, credential.NewCredential{Name: "narrow", ClientID: "id", ClientSecret: "secret",
		Scopes: []string{"prospects.read"}, APIBaseURL: e.sb.URL + "/api/v2", RedirectURI: "http://127.0.0.1:9/cb"})
	if err != nil {
		t.Fatal(err)
	}
	dst := "sqlite:" + filepath.Join(e.dir, "o.db")
	_, err = e.svc.Create(e.ctx, service.NewConnection{Name: "n", Credential: narrow.Name, DestinationURL: dst, Streams: []string{"prospects", "accounts"}})
	if err == nil || !strings.Contains(err.Error(), "accounts needs scope accounts.read") {
		t.Fatalf("unreadable stream: %v", err)
	}
	_, err = e.svc.Create(e.ctx, service.NewConnection{Name: "n", Credential: narrow.Name, DestinationURL: dst, Streams: []string{"prospectz"}})
	if err == nil || !strings.Contains(err.Error(), "unknown stream prospectz") {
		t.Fatalf("unknown stream: %v", err)
	}
	_, err = e.svc.Create(e.ctx, service.NewConnection{Name: "n", Credential: "nobody", DestinationURL: dst})
	if !errors.Is(err, credential.ErrNotFound) || !strings.Contains(err.Error(), "the credentials are: ") || !strings.Contains(err.Error(), narrow.Name) {
		t.Fatalf("unknown credential: %v; want ErrNotFound naming the credentials there are", err)
	}
	_, err = e.svc.Create(e.ctx, service.NewConnection{Name: "n", Credential: narrow.ID, DestinationURL: dst, Schedule: "30s"})
	if err == nil || !strings.Contains(err.Error(), "too short") {
		t.Fatalf("bad schedule: %v", err)
	}
	// By default: every stream the credential can read.
	c, err := e.svc.Create(e.ctx, service.NewConnection{Name: "n", Credential: narrow.ID, DestinationURL: dst})
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.svc.Get(e.ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Streams != nil || strings.Join(st.ScopesNeeded, " ") != "prospects.read" || st.State != "needs_reauthorization" {
		t.Fatalf("default streams: %v, status %+v", c.Streams, st)
	}
	ss, err := e.svc.Streams(e.ctx, "n")
	if err != nil || len(ss) != 1 || ss[0].Stream != "prospects" {
		t.Fatalf("streams: %+v %v", ss, err)
	}
	// Update checks as Create does; an empty list means every readable stream again.
	if _, err := e.svc.Update(e.ctx, "n", service.Changes{Streams: []string{"accounts"}}); err == nil || !strings.Contains(err.Error(), "accounts needs scope") {
		t.Fatalf("update to an unreadable stream: %v", err)
	}
	if c, err := e.svc.Update(e.ctx, "n", service.Changes{Streams: []string{"prospects"}}); err != nil || len(c.Streams) != 1 {
		t.Fatalf("update: %+v %v", c, err)
	}
	if c, err := e.svc.Update(e.ctx, "n", service.Changes{Streams: []string{}}); err != nil || c.Streams != nil {
		t.Fatalf("update to every stream: %+v %v", c, err)
	}
}

func TestPauseResumeReschedule(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.create(service.NewConnection{Schedule: "15m"})
	due := func() time.Time {
		t.Helper()
		st, err := e.svc.Get(e.ctx, c.Name)
		if err != nil {
			t.Fatal(err)
		}
		return st.NextDue
	}
	if due().IsZero() {
		t.Fatal("a 15m connection is not scheduled")
	}
	if err := e.svc.Pause(e.ctx, c.Name); err != nil {
		t.Fatal(err)
	}
	st, _ := e.svc.Get(e.ctx, c.Name)
	if st.State != "paused" || !st.NextDue.IsZero() || !st.Connection.Paused {
		t.Fatalf("paused: %+v", st)
	}
	if err := e.svc.Resume(e.ctx, c.Name); err != nil {
		t.Fatal(err)
	}
	st, _ = e.svc.Get(e.ctx, c.Name)
	if st.State == "paused" || st.NextDue.IsZero() || st.Connection.Paused {
		t.Fatalf("resumed: %+v", st)
	}
	// Changing the schedule to manual takes it off the schedule.
	manual := "manual"
	if _, err := e.svc.Update(e.ctx, c.Name, service.Changes{Schedule: &manual}); err != nil {
		t.Fatal(err)
	}
	if !due().IsZero() {
		t.Fatal("a manual connection is still scheduled")
	}
	// A manual run waits in the queue (not worked here).
	if _, err := e.svc.RunNow(e.ctx, c.Name); err != nil {
		t.Fatal(err)
	}
	if j, err := e.svc.RunNow(e.ctx, c.ID); err != nil || !j.Duplicate {
		t.Fatalf("second run now: %+v %v", j, err)
	}
	if d, err := e.q.Depth(e.ctx); err != nil || d["available"] != 1 {
		t.Fatalf("depth %v %v", d, err)
	}
	if st, _ := e.svc.Get(e.ctx, c.Name); st.State != "queued" {
		t.Fatalf("state %q", st.State)
	}
	if err := e.svc.Cancel(e.ctx, c.Name); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.q.Depth(e.ctx); len(d) != 0 {
		t.Fatalf("depth after cancel %v", d)
	}
	// Created paused: not scheduled.
	p := e.create(service.NewConnection{Name: "later", Schedule: "1h", Paused: true})
	if d, ok, _ := e.q.NextDue(e.ctx, p.ID); ok {
		t.Fatalf("a paused connection is due at %s", d)
	}
}

// inspect reads a namespace of a destination as it stands.
func (e *env) inspect(url, ns string) map[string]connection.StreamInfo {
	e.t.Helper()
	d, closeDst, err := destinations.Open(e.ctx, url, ns, io.Discard)
	if err != nil {
		e.t.Fatal(err)
	}
	defer closeDst()
	infos, err := d.(connection.Inspector).Inspect(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]connection.StreamInfo{}
	for _, in := range infos {
		out[in.Stream] = in
	}
	return out
}

func TestDelete(t *testing.T) {
	e := newEnv(t, envOptions{start: true})
	c := e.create(service.NewConnection{Schedule: "15m"})
	keep := e.create(service.NewConnection{Name: "keep data", Schedule: "15m"})
	e.runNow(c)
	e.runNow(keep)
	if c.DestinationURL != keep.DestinationURL || c.Namespace == keep.Namespace {
		t.Fatalf("namespaces %q and %q in %s and %s", c.Namespace, keep.Namespace, c.DestinationURL, keep.DestinationURL)
	}
	ss, err := e.svc.Streams(e.ctx, c.Name)
	if err != nil || len(ss) != 2 || ss[1].Stream != "prospects" || ss[1].Rows == 0 || ss[1].Cursor == "" {
		t.Fatalf("streams: %+v %v", ss, err)
	}
	if err := e.svc.Delete(e.ctx, c.Name, true); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Delete(e.ctx, keep.ID, false); err != nil {
		t.Fatal(err)
	}
	if got := e.inspect(c.DestinationURL, c.Namespace); got["prospects"].Rows != 0 {
		t.Fatalf("dropped namespace still holds %+v", got)
	}
	if got := e.inspect(keep.DestinationURL, keep.Namespace); got["prospects"].Rows != ss[1].Rows {
		t.Fatalf("kept namespace holds %+v, want %d prospects", got, ss[1].Rows)
	}
	for _, id := range []string{c.ID, keep.ID} {
		if _, err := e.store.GetConnection(e.ctx, id); !errors.Is(err, connection.ErrNotFound) {
			t.Fatalf("still stored: %v", err)
		}
		if _, ok, _ := e.q.NextDue(e.ctx, id); ok {
			t.Fatal("still scheduled")
		}
	}
	if _, err := e.svc.Get(e.ctx, c.Name); !errors.Is(err, connection.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestDeleteDropDataNeedsADropper(t *testing.T) {
	e := newEnv(t, envOptions{plain: true})
	c := e.create(service.NewConnection{})
	err := e.svc.Delete(e.ctx, c.Name, true)
	if err == nil || !strings.Contains(err.Error(), "cannot drop its data") {
		t.Fatalf("delete: %v", err)
	}
	if _, err := e.store.GetConnection(e.ctx, c.ID); err != nil {
		t.Fatalf("the connection went although its data could not: %v", err)
	}
	if _, err := e.svc.Resync(e.ctx, c.Name, nil); err == nil || !strings.Contains(err.Error(), "cannot forget") {
		t.Fatalf("resync: %v", err)
	}
}

func TestResyncReadsTheStreamsAgain(t *testing.T) {
	e := newEnv(t, envOptions{start: true})
	c := e.create(service.NewConnection{})
	first := e.runNow(c)
	prospects, accounts := first.Stream("prospects").Records, first.Stream("accounts").Records
	if prospects == 0 || accounts == 0 {
		t.Fatalf("first run: %+v", first.Streams)
	}
	if again := e.runNow(c); again.Stream("prospects").Records != 0 || again.Stream("accounts").Records != 0 {
		t.Fatalf("an incremental run read again: %+v", again.Streams)
	}
	// A stream it does not sync (a typo) is refused, naming those it does,
	// and nothing is forgotten.
	if _, err := e.svc.Resync(e.ctx, c.Name, []string{"prospects", "prospectz"}); !errors.As(err, new(*service.InvalidError)) ||
		!strings.Contains(err.Error(), `does not sync a stream named "prospectz"`) || !strings.Contains(err.Error(), "accounts") {
		t.Fatalf("resync of an unknown stream: %v", err)
	}
	if _, err := e.svc.Resync(e.ctx, c.Name, []string{"prospects"}); err != nil {
		t.Fatal(err)
	}
	if ev := e.finished(c.ID); ev.Kind != jobs.JobCompleted {
		t.Fatalf("event %+v", ev)
	}
	runs, _ := e.svc.History(e.ctx, c.Name, 1)
	if r := runs[0]; r.Stream("prospects").Records != prospects || r.Stream("accounts").Records != 0 {
		t.Fatalf("after resync of prospects: %+v", r.Streams)
	}
	if _, err := e.svc.Resync(e.ctx, c.Name, nil); err != nil {
		t.Fatal(err)
	}
	e.finished(c.ID)
	runs, _ = e.svc.History(e.ctx, c.Name, 1)
	if r := runs[0]; r.Stream("prospects").Records != prospects || r.Stream("accounts").Records != accounts {
		t.Fatalf("after resync of all: %+v", r.Streams)
	}
}

// receiver is a notify URL that checks signatures.
type receiver struct {
	t      *testing.T
	secret []byte
	got    chan service.Notification
	status atomic.Int32 // answer; 0 = 204
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	sig := r.Header.Get(service.SignatureHeader)
	if !hmac.Equal([]byte(sig), []byte(service.Sign(rc.secret, body))) {
		rc.t.Errorf("bad signature %q", sig)
	}
	var n service.Notification
	if err := json.Unmarshal(body, &n); err != nil {
		rc.t.Errorf("body %s: %v", body, err)
	}
	rc.got <- n
	if s := rc.status.Load(); s != 0 {
		w.WriteHeader(int(s))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func TestNotifications(t *testing.T) {
	rc := &receiver{t: t, secret: []byte("s3cret-s3cret"), got: make(chan service.Notification, 10)}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	e := newEnv(t, envOptions{start: true, notify: hook.URL + "/hook?token=private", secret: rc.secret})
	c := e.create(service.NewConnection{})
	none := func(when string) {
		t.Helper()
		select {
		case n := <-rc.got:
			t.Fatalf("%s: unexpected notification %+v", when, n)
		default:
		}
	}
	one := func(when, event string, r *connection.Run) {
		t.Helper()
		select {
		case n := <-rc.got:
			if n.Event != event || n.Connection.ID != c.ID || n.Connection.Name != c.Name || n.Run.ID != r.ID ||
				n.Run.Outcome != string(r.Outcome) || n.Run.Error != r.Error || n.Run.StartedAt.IsZero() || n.Run.EndedAt.IsZero() || n.At.IsZero() {
				t.Fatalf("%s: notification %+v for run %+v", when, n, r)
			}
		default:
			t.Fatalf("%s: no %s notification", when, event)
		}
	}
	if r := e.runNow(c); r.Outcome != connection.Succeeded {
		t.Fatalf("first run: %+v", r)
	}
	none("first success")
	e.failOpen.Store(true)
	r := e.runNow(c)
	if r.Outcome != connection.Failed || !strings.Contains(r.Error, "the destination is down") {
		t.Fatalf("failing run: %+v", r)
	}
	one("first failure", service.EventRunFailed, r)
	rc.status.Store(http.StatusInternalServerError)
	e.runNow(c)
	none("second failure of the streak")
	e.failOpen.Store(false)
	r = e.runNow(c)
	one("recovery", service.EventRunRecovered, r)
	log := strings.Join(r.Log, "\n")
	if !strings.Contains(log, "notification failed") || !strings.Contains(log, "500") || strings.Contains(log, "private") {
		t.Fatalf("the failed delivery is not in the run log (or shows the URL's token):\n%s", log)
	}
	rc.status.Store(0)
	if err := e.m.RevokeLocally(e.ctx, "sandbox"); err != nil {
		t.Fatal(err)
	}
	r = e.runNow(c)
	if r.Outcome != connection.Failed || !strings.Contains(r.Error, "re-authorization") {
		t.Fatalf("run of a revoked credential: %+v", r)
	}
	one("re-authorization", service.EventNeedsReauthorization, r)
	e.runNow(c)
	none("second run of a revoked credential")
	st, _ := e.svc.Get(e.ctx, c.Name)
	if st.State != "needs_reauthorization" {
		t.Fatalf("state %q", st.State)
	}
	runs, _ := e.svc.History(e.ctx, c.Name, 10)
	for _, r := range runs {
		if all := strings.Join(r.Log, "\n") + r.Error; strings.Contains(all, string(rc.secret)) || strings.Contains(all, "private") {
			t.Errorf("run %s shows the secret or the notify URL's token:\n%s", r.ID, all)
		}
	}
}

// TestANotifyURLThatHangsDoesNotHoldTheRun: the receiver never answers;
// the run ends when the notification's time is up, and says so.
func TestANotifyURLThatHangsDoesNotHoldTheRun(t *testing.T) {
	release := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hook.Close()
	defer close(release)
	e := newEnv(t, envOptions{start: true, notify: hook.URL, notifyTimeout: 200 * time.Millisecond})
	c := e.create(service.NewConnection{})
	e.failOpen.Store(true)
	r := e.runNow(c)
	if r.Outcome != connection.Failed {
		t.Fatalf("run %+v", r)
	}
	if log := strings.Join(r.Log, "\n"); !strings.Contains(log, "notification failed") || !strings.Contains(log, "no answer within 200ms") {
		t.Fatalf("log:\n%s", log)
	}
}
