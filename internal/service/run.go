package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/jobs"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
	"github.com/outreach-connector/outreach-connector/outreach"
)

// Sync is the work of one run (a jobs.SyncFunc): it fills run's stats and
// log as it goes.
func (s *Service) Sync(ctx context.Context, run *connection.Run) error {
	c, err := s.opts.Store.GetConnection(ctx, run.ConnectionID)
	if err != nil {
		if errors.Is(err, connection.ErrNotFound) {
			return jobs.NoRetry(fmt.Errorf("connection %s no longer exists", run.ConnectionID))
		}
		return err
	}
	rl := &runLog{run: run, store: s.opts.Store}
	// The service's log names the connection and run on every line; the
	// run's own log need not.
	base := s.log.Handler().WithAttrs([]slog.Attr{slog.String("connection", c.Name), slog.String("run", run.ID)})
	log := slog.New(&teeHandler{base: base, run: rl})
	err = s.sync(ctx, c, run, rl, log)
	var owned *connection.OwnedError
	if err != nil && (errors.Is(err, credential.ErrNeedsReauthorization) || errors.As(err, &owned)) {
		// Retrying cannot help until someone authorizes the credential
		// again, or gives the connection a namespace of its own.
		err = jobs.NoRetry(err)
	}
	outcome, ended := jobs.OutcomeOf(ctx, err), s.now()
	switch outcome {
	case connection.Succeeded:
		log.Info("run succeeded", "records", rl.snapshot().Totals().Records)
	case connection.Failed:
		log.Error("run failed", "error", err)
	default:
		log.Info("run stopped", "outcome", string(outcome))
	}
	fin := rl.snapshot()
	fin.Finish(ended, outcome, err)
	s.notifyAfter(ctx, c, fin, err, log)
	if s.opts.Observe != nil {
		fin = rl.snapshot()
		fin.Finish(ended, outcome, err)
		s.opts.Observe(c, fin)
	}
	return err
}

// sync does the run's work: credential → client → streams → engine.
func (s *Service) sync(ctx context.Context, c *connection.Connection, run *connection.Run, rl *runLog, log *slog.Logger) error {
	if c.Direction == connection.DirectionDestination {
		return s.writeBack(ctx, c, run, rl, log)
	}
	rec, err := s.opts.Credentials.Get(ctx, c.CredentialID)
	if err != nil {
		if errors.Is(err, credential.ErrNotFound) {
			return jobs.NoRetry(fmt.Errorf("connection %s: its credential no longer exists; delete the connection or create it again with another", c.Name))
		}
		return err
	}
	if rec.Status != credential.StatusConnected {
		return fmt.Errorf("credential %s is %s: %w; authorize it again", rec.Name, strings.ReplaceAll(string(rec.Status), "_", " "),
			credential.ErrNeedsReauthorization)
	}
	counter := &requestCounter{}
	client, err := s.runClient(c, rec, counter)
	if err != nil {
		return jobs.NoRetry(fmt.Errorf("credential %s: %w", rec.Name, err))
	}
	cat, err := syncer.Discover(ctx, client)
	if cat == nil {
		return fmt.Errorf("discover custom objects: %w", err)
	}
	if err != nil {
		log.Warn("syncing standard streams only", "reason", err)
	}
	streams, err := s.pick(cat, c, rec, log)
	if err != nil {
		return jobs.NoRetry(err)
	}
	counter.streams = streams
	dst, closeDst, err := s.open(ctx, c)
	if err != nil {
		return err
	}
	defer closeDst()
	start := c.StartDate
	if start.IsZero() {
		start = allHistory()
	}
	log.Info("run started", "trigger", string(run.Trigger), "attempt", run.Attempt, "streams", len(streams),
		"destination", connection.RedactedURL(c.DestinationURL), "namespace", c.Namespace)
	engine := syncer.NewEngine(client, dst, log, s.now)
	owner := connection.Owner{Org: rec.OutreachOrg, CredentialID: rec.ID, Credential: rec.Name, Connection: c.Name}
	progress := func(p syncer.Progress) {
		rl.setStream(p.Stream, func(st *connection.StreamStats) {
			st.Records, st.Pages, st.Requests = int64(p.Records), int64(p.Pages), counter.count(p.Stream)
		})
		rl.save(ctx, s.now(), p.Done, log)
	}
	results := engine.Run(ctx, streams, syncer.Options{StartDate: start, PageSize: c.PageSize, Concurrency: s.opts.Concurrency, Owner: owner,
		Progress: progress})
	for _, r := range results {
		rl.setStream(r.Stream, func(st *connection.StreamStats) {
			st.Records, st.Pages, st.Deletions, st.Requests = int64(r.Records), int64(r.Pages), int64(r.Deleted), counter.count(r.Stream)
			if r.Err != nil {
				st.Error = r.Err.Error()
			}
		})
	}
	if err := syncer.Failed(results); err != nil {
		n := 0
		for _, r := range results {
			if r.Err != nil {
				n++
			}
		}
		return fmt.Errorf("%d of %d streams failed: %w", n, len(results), err)
	}
	return nil
}

// pick chooses the run's streams: the connection's (an unknown or
// unreadable one is an error), or every stream the credential can read.
func (s *Service) pick(cat *catalog.Catalog, c *connection.Connection, rec *credential.Record, log *slog.Logger) ([]*connection.Stream, error) {
	all := syncer.Streams(cat)
	if c.Streams == nil {
		readable, unreadable := syncer.SplitByScopes(cat, all, rec.Scopes)
		if len(unreadable) > 0 {
			log.Debug("streams skipped for lack of scopes", "count", len(unreadable))
		}
		if len(readable) == 0 {
			return nil, fmt.Errorf("credential %s can read no stream with its scopes; give it read scopes and authorize it again", rec.Name)
		}
		return readable, nil
	}
	picked, unknown := pickStreams(cat, c.Streams)
	if len(unknown) > 0 {
		return nil, fmt.Errorf("connection %s: unknown stream %s (a custom object the org no longer has?); change the connection's streams",
			c.Name, strings.Join(unknown, ", "))
	}
	if text := unreadableText(cat, picked, rec.Scopes); text != "" {
		return nil, fmt.Errorf("credential %s cannot read %s; give it those scopes and authorize it again", rec.Name, text)
	}
	return picked, nil
}

// limiter returns the rate limiter of an Outreach user at a quota share,
// shared by every run of this service for that user and share.
func (s *Service) limiter(user string, share float64) *outreach.RateLimiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := limiterKey{user, share}
	l, ok := s.limiters[k]
	if !ok {
		opts := outreach.RateLimiterOptions{QuotaLimit: share}
		if s.opts.SharedBudget != nil && user != "" {
			opts.Shared, opts.User = s.opts.SharedBudget, user
		}
		l = outreach.NewRateLimiter(opts)
		s.limiters[k] = l
	}
	return l
}

// requestCounter counts a run's requests per stream, by the collection
// path each request's URL names.
type requestCounter struct {
	streams []*connection.Stream // set before the engine runs
	mu      sync.Mutex
	by      map[string]int64
	other   atomic.Int64
}

func (rc *requestCounter) observe(ev outreach.RequestEvent) {
	name := rc.streamOf(ev.URL)
	if name == "" {
		rc.other.Add(1)
		return
	}
	rc.mu.Lock()
	if rc.by == nil {
		rc.by = map[string]int64{}
	}
	rc.by[name]++
	rc.mu.Unlock()
}

// streamOf returns the stream whose collection path ends the URL's path
// (the longest that matches), or "".
func (rc *requestCounter) streamOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	p := strings.TrimSuffix(u.Path, "/")
	best, bestLen := "", 0
	for _, st := range rc.streams {
		if (strings.HasSuffix(p, "/"+st.Path)) && len(st.Path) > bestLen {
			best, bestLen = st.Name, len(st.Path)
		}
	}
	return best
}

func (rc *requestCounter) count(stream string) int64 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.by[stream]
}

// runLog guards a run that the engine's goroutines log into.
type runLog struct {
	mu  sync.Mutex
	run *connection.Run

	store  connection.Store
	saving sync.Mutex // held while the record is written
	saved  time.Time  // when it was last written
}

// progressEvery is how often, at most, a run's record is brought up to
// date while the run goes on (and whenever a stream ends): the record of a
// run whose node died shows what it had done.
const progressEvery = 5 * time.Second

// setStream sets what the run did to one stream so far.
func (l *runLog) setStream(stream string, f func(*connection.StreamStats)) {
	l.mu.Lock()
	f(l.run.Stream(stream))
	l.mu.Unlock()
}

// save writes the run's stats and log to its record, unless it was written
// less than progressEvery before now (force: regardless) or is being
// written now.
func (l *runLog) save(ctx context.Context, now time.Time, force bool, log *slog.Logger) {
	if l.store == nil || !l.saving.TryLock() {
		return
	}
	defer l.saving.Unlock()
	if !force && !l.saved.IsZero() && now.Sub(l.saved) < progressEvery {
		return
	}
	l.saved = now
	if err := l.store.UpdateRun(ctx, l.snapshot()); err != nil && ctx.Err() == nil {
		log.Warn("could not record the run's progress", "error", err)
	}
}

// snapshot is a copy of the run as it stands.
func (l *runLog) snapshot() *connection.Run {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := *l.run
	r.Streams = slices.Clone(l.run.Streams)
	r.Log = slices.Clone(l.run.Log)
	return &r
}

// runClient is the Outreach client of a run of c with credential rec: the
// user's rate limiter at c's quota share, requests counted by counter and
// observed by the service's observer.
func (s *Service) runClient(c *connection.Connection, rec *credential.Record, counter *requestCounter) (*outreach.Client, error) {
	observers := []func(outreach.RequestEvent){counter.observe}
	if s.opts.ObserveRequests != nil {
		observers = append(observers, s.opts.ObserveRequests(rec.Name, rec.OutreachUserID, c.QuotaShare))
	}
	return outreach.NewClient(outreach.WithBaseURL(rec.APIBaseURL), outreach.WithTokenSource(s.opts.Credentials.TokenSource(rec.ID)),
		outreach.WithRateLimiter(s.limiter(rec.OutreachUserID, c.QuotaShare)), outreach.WithUserAgent(s.opts.UserAgent),
		outreach.WithObserver(func(ev outreach.RequestEvent) {
			for _, o := range observers {
				o(ev)
			}
		}))
}
