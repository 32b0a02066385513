package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/jobs"
	"github.com/outreach-connector/outreach-connector/internal/load"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
)

// A destination connection is the scheduled form of `load`: each run
// loads the rows of its SQL query into Outreach (internal/load), with the
// connection's load journal, so a run stopped at any instant and run
// again (River's retry, the next schedule, Run now) resumes it, and a
// finished one run again writes only what changed.

// WriteBackStore is what the connections' store also keeps for
// destination connections: the load journal (which records actions too,
// load.ActionJournal) and each run's rejected rows. internal/sqlstore's
// Connections implements it.
type WriteBackStore interface {
	LoadJournal() load.Journal
	// DeleteLoad removes a load and its journal (rows and actions).
	DeleteLoad(ctx context.Context, id string) error
	SaveRejects(ctx context.Context, connectionID, runID string, rejects []load.Rejection) error
	Rejects(ctx context.Context, connectionID, runID string, limit int) ([]load.Rejection, error)
}

// writeBackStore returns the store's write-back part.
func (s *Service) writeBackStore() (WriteBackStore, error) {
	if w, ok := s.opts.Store.(WriteBackStore); ok {
		return w, nil
	}
	return nil, errors.New("the app store keeps no load journal, so destination connections cannot run on it")
}

// loadID is the journal's name of a destination connection's load.
func loadID(c *connection.Connection) string { return "conn_" + c.ID }

// checkDestination validates a destination connection's load against the
// catalog and the credential's scopes, before it is stored.
func (s *Service) checkDestination(c *connection.Connection, rec *credential.Record) error {
	l := c.Load
	if _, err := load.ParseMode(l.Mode); err != nil {
		return fmt.Errorf("connection: %w", err)
	}
	for _, t := range l.Then {
		if _, err := load.ParseThen(t, l.Mailbox); err != nil {
			return fmt.Errorf("connection: %w", err)
		}
	}
	res, ok := s.cat.ByType(l.Type)
	if !ok {
		res, ok = s.cat.ByPath(l.Type)
	}
	if !ok {
		// Perhaps one of the org's custom objects: the run discovers them.
		return nil
	}
	if !res.Ops.Create && !res.Ops.Update {
		return fmt.Errorf("connection: Outreach does not let the API create or update %s", res.Path)
	}
	if missing := writeScopeMissing(res, rec); missing != "" {
		return fmt.Errorf("connection: credential %s cannot write %s: it needs scope %s; give it that scope and authorize it again",
			rec.Name, res.Path, missing)
	}
	return nil
}

// writeScopeMissing returns the write scope of res rec lacks, or "".
func writeScopeMissing(res *catalog.Resource, rec *credential.Record) string {
	w, all := res.Scope(catalog.LevelWrite), res.Scope(catalog.LevelAll)
	if slices.Contains(rec.Scopes, w) || slices.Contains(rec.Scopes, all) {
		return ""
	}
	return w
}

// destinationScopes are the scopes a destination connection needs (write
// its type, read what it matches) and those rec lacks.
func (s *Service) destinationScopes(c *connection.Connection, rec *credential.Record) (needed, missing []string) {
	if c.Load == nil {
		return nil, nil
	}
	res, ok := s.cat.ByType(c.Load.Type)
	if !ok {
		res, ok = s.cat.ByPath(c.Load.Type)
	}
	if !ok {
		return nil, nil
	}
	needed = []string{res.Scope(catalog.LevelWrite)}
	if m := writeScopeMissing(res, rec); m != "" {
		missing = []string{m}
	}
	return needed, missing
}

// writeBack does the work of a destination connection's run: credential →
// client → the source's rows → load.Run, the counts into the run's
// stats, the rejected rows kept for the run.
func (s *Service) writeBack(ctx context.Context, c *connection.Connection, run *connection.Run, rl *runLog, log *slog.Logger) error {
	if c.Load == nil {
		return jobs.NoRetry(fmt.Errorf("connection %s: a destination connection without a load; create it again", c.Name))
	}
	store, err := s.writeBackStore()
	if err != nil {
		return jobs.NoRetry(err)
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
	mode, err := load.ParseMode(c.Load.Mode)
	if err != nil {
		return jobs.NoRetry(fmt.Errorf("connection %s: %w", c.Name, err))
	}
	var then []load.Then
	for _, t := range c.Load.Then {
		th, err := load.ParseThen(t, c.Load.Mailbox)
		if err != nil {
			return jobs.NoRetry(fmt.Errorf("connection %s: %w", c.Name, err))
		}
		then = append(then, th)
	}
	counter := &requestCounter{}
	client, err := s.runClient(c, rec, counter)
	if err != nil {
		return jobs.NoRetry(fmt.Errorf("credential %s: %w", rec.Name, err))
	}
	cat := s.cat
	if _, ok := cat.ByType(c.Load.Type); !ok {
		if _, ok := cat.ByPath(c.Load.Type); !ok {
			// One of the org's custom objects: only schema.json knows them.
			found, err := syncer.Discover(ctx, client)
			if found == nil {
				return fmt.Errorf("discover custom objects: %w", err)
			}
			cat = found
		}
	}
	src, err := load.OpenSource(ctx, c.DestinationURL)
	if err != nil {
		err = fmt.Errorf("connection %s: source: %w", c.Name, err)
		if cfg := (*load.ConfigError)(nil); errors.As(err, &cfg) {
			return jobs.NoRetry(fmt.Errorf("%w; change the connection", err))
		}
		return err
	}
	defer src.Close()
	log.Info("run started", "trigger", string(run.Trigger), "attempt", run.Attempt, "type", c.Load.Type, "mode", c.Load.Mode,
		"source", src.Name())
	sum, err := load.Run(ctx, src, client, store.LoadJournal(), load.Options{Type: c.Load.Type, Mode: mode, Match: c.Load.Match,
		Map: c.Load.Map, LoadID: loadID(c), Catalog: cat, Logger: log, Then: then, Holder: load.Holder(c.ID),
		Requests: func() int64 { return counter.other.Load() },
		Progress: func(sum load.Summary) {
			rl.setStream(sum.Type, func(st *connection.StreamStats) { loaded(st, &sum, counter) })
			rl.save(ctx, s.now(), false, log)
		}})
	if sum != nil {
		rl.setStream(sum.Type, func(st *connection.StreamStats) {
			loaded(st, sum, counter)
			if err != nil && !errors.Is(err, load.ErrRowsRejected) && !errors.Is(err, load.ErrActionsFailed) {
				st.Error = err.Error()
			}
		})
		for _, a := range sum.Actions {
			log.Info("then "+a.Action, "records", a.Records, "done", a.Done, "already", a.Already, "failed", a.Failed, "requests", a.Requests)
			for i, f := range a.Failures {
				if i == 5 {
					break
				}
				log.Warn("then "+a.Action+" failed", "line", f.Line, "record", f.ID, "reason", f.Reason)
			}
		}
		if serr := store.SaveRejects(ctx, c.ID, run.ID, sum.Rejections); serr != nil {
			log.Error("keeping the rejected rows failed", "error", serr)
		}
		log.Info("rows loaded", "rows", sum.Rows, "created", sum.Created, "updated", sum.Updated, "unchanged", sum.Unchanged,
			"rejected", sum.Rejected, "earlier_runs", sum.FromEarlierRuns, "resolved", sum.Resolved)
	}
	var cfg *load.ConfigError
	switch {
	case err == nil, errors.Is(err, load.ErrRowsRejected), errors.Is(err, load.ErrActionsFailed):
		// Rejected rows and refused actions are the run's outcome, kept
		// and shown; not a failure to retry.
		return nil
	case errors.As(err, &cfg):
		return jobs.NoRetry(fmt.Errorf("connection %s: %w; change the connection", c.Name, err))
	}
	return err
}

// forgetLoad removes a deleted destination connection's load journal.
func (s *Service) forgetLoad(ctx context.Context, c *connection.Connection) {
	if c.Direction != connection.DirectionDestination {
		return
	}
	if store, err := s.writeBackStore(); err == nil {
		if err := store.DeleteLoad(ctx, loadID(c)); err != nil {
			s.log.Warn("the deleted connection's load journal stays", "connection", c.Name, "load", loadID(c), "error", err)
		}
	}
}

// RunRejects is the rejected rows kept for one run of a destination
// connection.
type RunRejects struct {
	Run     *connection.Run // nil when the connection has no run with rejects
	Rejects []load.Rejection
}

// Rejects returns the rows a destination connection's run rejected: the
// run runID, or the newest run when runID is "".
func (s *Service) Rejects(ctx context.Context, idOrName, runID string, limit int) (*RunRejects, error) {
	c, err := s.lookup(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	if c.Direction != connection.DirectionDestination {
		return nil, fmt.Errorf("connection %s reads Outreach into a destination; only destination connections reject rows", c.Name)
	}
	store, err := s.writeBackStore()
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 1000
	}
	runs, err := s.opts.Store.ListRuns(ctx, c.ID, 1000)
	if err != nil {
		return nil, err
	}
	out := &RunRejects{}
	for _, r := range runs {
		if runID == "" || r.ID == runID {
			out.Run = r
			break
		}
	}
	if out.Run == nil {
		if runID != "" {
			return nil, fmt.Errorf("connection %s has no run %s (see `connections history %s`): %w", c.Name, runID, c.Name, connection.ErrNotFound)
		}
		return out, nil
	}
	out.Rejects, err = store.Rejects(ctx, c.ID, out.Run.ID, limit)
	return out, err
}

// destinationOnly refuses what only source connections do.
func destinationOnly(c *connection.Connection, what string) error {
	if c.Direction == connection.DirectionDestination {
		return fmt.Errorf("connection %s writes into Outreach and has no destination tables: %s is for source connections; Run now loads its rows again, writing only what changed", c.Name, what)
	}
	return nil
}

// loaded sets a load's counts so far in its stream's stats.
func loaded(st *connection.StreamStats, sum *load.Summary, counter *requestCounter) {
	st.Created, st.Updated, st.Unchanged, st.Rejected = int64(sum.Created), int64(sum.Updated), int64(sum.Unchanged), int64(sum.Rejected)
	st.Records = int64(sum.Created + sum.Updated)
	st.Requests = counter.other.Load()
}
