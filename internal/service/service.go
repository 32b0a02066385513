// Package service runs connections: it creates, changes and deletes them,
// schedules and queues their runs (internal/jobs), and does the work of a
// source run: a credential's client → the sync engine → the connection's
// destination, in the connection's own namespace. The web UI and the CLI
// drive connections only through it.
//
// The exported API is what the CLI and the UI are built against; change a
// signature only together with its callers. connections.go holds the
// connection operations, run.go a run (Sync), notify.go the notifications.
package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/jobs"
	"github.com/outreach-connector/outreach-connector/internal/webhooks"
	"github.com/outreach-connector/outreach-connector/outreach"
)

// OpenDestination opens a destination URL (sqlite:, postgres://, jsonl:) in
// one namespace; close releases it. Wired by cmd to destinations.Open.
type OpenDestination func(ctx context.Context, url, namespace string) (dst connection.Destination, close func() error, err error)

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
	// ObserveRequests, when set, gives the observer of the Outreach client
	// a run builds for the named credential acting for the Outreach user
	// at a quota share (metrics.ObserveRequests, SetQuotaShare).
	ObserveRequests func(credential, user string, quotaShare float64) func(outreach.RequestEvent)
	// UserAgent is sent to Outreach; default "outreach-connector".
	UserAgent string
	// NotifyTimeout bounds one notification POST; default 5s.
	NotifyTimeout time.Duration
	// Concurrency is how many streams of one run sync at once (default 4).
	Concurrency int
	// SharedBudget, when set, is where every run's rate limiter takes its
	// permits, per Outreach user and window, so that runs on every node
	// sharing it stay within their quota share together
	// (internal/ratebudget on the app database).
	SharedBudget outreach.SharedBudget
}

// Service is safe for concurrent use.
type Service struct {
	opts Options
	cat  *catalog.Catalog
	log  *slog.Logger
	now  func() time.Time
	http *http.Client

	mu       sync.Mutex
	limiters map[limiterKey]*outreach.RateLimiter

	webhooks *webhooks.Manager // nil: no connection is subscribed from here (see SetWebhooks)
}

// limiterKey names the rate limiter of one Outreach user at one quota
// share: every run for the user at that share paces through it.
type limiterKey struct {
	user  string
	share float64
}

// New checks opts and returns a Service.
func New(opts Options) (*Service, error) {
	if opts.Store == nil || opts.Credentials == nil || opts.Open == nil {
		return nil, errors.New("service: Store, Credentials and Open are required")
	}
	if opts.NotifyURL != "" {
		if err := CheckNotifyURL(opts.NotifyURL); err != nil {
			return nil, err
		}
	}
	s := &Service{opts: opts, cat: opts.Catalog, log: opts.Logger, now: opts.Now, http: opts.HTTPClient,
		limiters: map[limiterKey]*outreach.RateLimiter{}}
	if s.cat == nil {
		s.cat = catalog.Default()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.http == nil {
		s.http = &http.Client{}
	}
	if s.opts.UserAgent == "" {
		s.opts.UserAgent = "outreach-connector"
	}
	if s.opts.NotifyTimeout <= 0 {
		s.opts.NotifyTimeout = 5 * time.Second
	}
	return s, nil
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
	// Load is what a destination connection writes into Outreach (its
	// rows come from DestinationURL, a SQL query); nil for a source.
	Load *connection.LoadSpec
}

// Changes to a connection; nil fields stay as they are.
type Changes struct {
	Name           *string
	DestinationURL *string
	Streams        []string // nil: unchanged; empty: every stream the credential can read
	Schedule       *string
	PageSize       *int
	QuotaShare     *float64
	NotifyURL      *string
	// Credential moves the connection to another credential (id or name).
	Credential *string
	// Load replaces a destination connection's load.
	Load *connection.LoadSpec
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
