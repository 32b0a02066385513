// Package service runs connections: it creates, changes and deletes them,
// schedules and queues their runs (internal/jobs), and does the work of a
// source run: a credential's client → the sync engine → the connection's
// destination, in the connection's own namespace. The web UI and the CLI
// drive connections only through it.
//
// CONTRACT (issue 9): the exported API below is what the CLI and the UI are
// built against. The service helper fills in the bodies; change a signature
// only together with its callers.
package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/jobs"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
)

// OpenDestination opens a destination URL (sqlite:, postgres://, jsonl:) in
// one namespace; close releases it. Wired by cmd to destinations.Open.
type OpenDestination func(ctx context.Context, url, namespace string) (dst syncer.Destination, close func() error, err error)

// Options configure a Service.
type Options struct {
	Store       connection.Store
	Queue       *jobs.Queue
	Credentials *credential.Manager
	Open        OpenDestination
	Catalog     *catalog.Catalog // nil: catalog.Default()
	Logger      *slog.Logger
	Now         func() time.Time
	// NotifyURL receives failures, recoveries and re-authorization needs of
	// connections without their own notify URL; empty: none.
	NotifyURL string
	// NotifySecret signs notifications (HMAC-SHA256 of the body, header
	// X-Outreach-Connector-Signature: sha256=<hex>).
	NotifySecret []byte
	HTTPClient   *http.Client
	// Observe, when set, is given every finished run (metrics).
	Observe func(c *connection.Connection, r *connection.Run)
	// Stdout receives nothing today; reserved for destinations that print.
	Stdout io.Writer
}

// Service is safe for concurrent use.
type Service struct{ opts Options }

// New checks opts and returns a Service.
func New(opts Options) (*Service, error) {
	if opts.Store == nil || opts.Credentials == nil || opts.Open == nil {
		return nil, errors.New("service: Store, Credentials and Open are required")
	}
	return &Service{opts: opts}, nil
}

// NewConnection is what Create takes; zero fields get the defaults
// (every stream the credential can read, manual schedule, quota share 1,
// namespace from the name).
type NewConnection struct {
	Name           string
	Credential     string // id or name
	Direction      connection.Direction
	DestinationURL string
	Streams        []string
	Schedule       string // "15m", "every 1h", a cron expression, or "manual"
	StartDate      time.Time
	PageSize       int
	QuotaShare     float64
	Namespace      string
	NotifyURL      string
	Paused         bool
}

// Changes to a connection; nil fields stay as they are.
type Changes struct {
	Name           *string
	DestinationURL *string
	Streams        []string // nil: unchanged
	Schedule       *string
	PageSize       *int
	QuotaShare     *float64
	NotifyURL      *string
}

// Status is a connection with what the UI and `connections list` show.
type Status struct {
	Connection     *connection.Connection
	CredentialName string
	// State: "idle", "queued", "running", "paused", "failing",
	// "needs_reauthorization".
	State   string
	LastRun *connection.Run // nil before the first run
	NextDue time.Time       // zero when not scheduled
	// ScopesNeeded are the read scopes its streams need; ScopesMissing
	// those the credential lacks.
	ScopesNeeded, ScopesMissing []string
}

// StreamStatus is one stream of a connection, as its destination has it.
type StreamStatus struct {
	Stream    string
	Cursor    string
	Rows      int64
	LastError string
}

var errTODO = errors.New("service: not implemented yet")

// Create validates and stores a connection, and schedules it.
func (s *Service) Create(ctx context.Context, n NewConnection) (*connection.Connection, error) {
	return nil, errTODO
}

// Update applies ch and reschedules.
func (s *Service) Update(ctx context.Context, idOrName string, ch Changes) (*connection.Connection, error) {
	return nil, errTODO
}

// Get returns a connection's status.
func (s *Service) Get(ctx context.Context, idOrName string) (*Status, error) { return nil, errTODO }

// List returns every connection's status, by name.
func (s *Service) List(ctx context.Context) ([]*Status, error) { return nil, errTODO }

// Streams returns the connection's streams with cursor, rows and last error.
func (s *Service) Streams(ctx context.Context, idOrName string) ([]StreamStatus, error) {
	return nil, errTODO
}

// History returns the connection's runs, newest first.
func (s *Service) History(ctx context.Context, idOrName string, limit int) ([]*connection.Run, error) {
	return nil, errTODO
}

// RunNow queues a manual run (or returns the one already queued/running).
func (s *Service) RunNow(ctx context.Context, idOrName string) (jobs.Job, error) {
	return jobs.Job{}, errTODO
}

// Resync forgets the cursor of streams (all when nil) and queues a run.
func (s *Service) Resync(ctx context.Context, idOrName string, streams []string) (jobs.Job, error) {
	return jobs.Job{}, errTODO
}

// Pause stops scheduling; a running run finishes.
func (s *Service) Pause(ctx context.Context, idOrName string) error { return errTODO }

// Resume schedules again from now.
func (s *Service) Resume(ctx context.Context, idOrName string) error { return errTODO }

// Cancel cancels the connection's queued or running run.
func (s *Service) Cancel(ctx context.Context, idOrName string) error { return errTODO }

// Delete unschedules and removes a connection and its history; with
// dropData, also its tables/files and sync state in its destination.
func (s *Service) Delete(ctx context.Context, idOrName string, dropData bool) error {
	return errTODO
}

// Sync is the work of one run (a jobs.SyncFunc): it fills run's stats and
// log as it goes.
func (s *Service) Sync(ctx context.Context, run *connection.Run) error { return errTODO }
