// Package sandbox is a faithful local simulator of Outreach: its OAuth 2.0
// authorization server, its JSON:API REST API v2 for every resource type of
// the catalog, its rate limits, its webhooks and its failure modes.
//
// Every test, benchmark and demo of outreach-connector runs against it, and
// users can run it on its own with `outreach-connector sandbox`. A Sandbox
// is an http.Handler; Start serves one on a loopback port for tests.
//
// Seeded data is a pure function of the seed: records are generated when
// read, so an org with millions of prospects costs only the memory of the
// records changed since start.
package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
)

// Options configure a sandbox. The zero value is a demo-sized org that
// behaves like Outreach in production.
type Options struct {
	// Seed makes the seeded data; the same seed gives the same org.
	Seed int64
	// Prospects is the number of seeded prospects; every other type scales
	// with it. 0 means 1000; negative means none (an empty org).
	Prospects int64
	// OrgName is the org's name (GET /api/v2); "" means "Sandbox Org".
	OrgName string
	// DataEnd is the latest seeded updatedAt; seeded data spans the six
	// years before it. Zero means 2026-01-01T00:00:00Z.
	DataEnd time.Time
	// Clock tells the time; nil means a Clock that follows the system
	// clock and can be advanced.
	Clock *Clock

	// RateLimit is the number of API requests a user may make per
	// RateWindow (10,000 per hour by default).
	RateLimit  int
	RateWindow time.Duration
	// SingleRateLimitValue sends X-RateLimit-Remaining as one number
	// instead of Outreach's two comma-separated values.
	SingleRateLimitValue bool

	// AccessTokenTTL defaults to 2 hours, RefreshTokenTTL to 14 days.
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	// MaxRefreshTokens caps live refresh tokens per user and app (100);
	// minting one more revokes the oldest.
	MaxRefreshTokens int
	// MintInterval is the least time between two token grants for one
	// user and app (60 s); a grant sooner gets 429. Negative disables.
	MintInterval time.Duration
	// ExpireDevelopmentGrants does what Outreach does to development
	// apps (App.Production false, the default, as for a new Outreach app)
	// for users outside the owning org or beyond its first ten: seven days
	// of the sandbox clock after an authorization, the grant expires, its
	// tokens stop working, a refresh answers invalid_grant saying so, and
	// the user sees the consent page again. The sandbox applies it to
	// every user of a development app.
	ExpireDevelopmentGrants bool
	// KeepRotatedRefreshTokens lets a refresh token stay valid after it
	// was used; by default rotation revokes it, the stricter behaviour.
	KeepRotatedRefreshTokens bool
	// StrictMediaType answers 415 to every API request whose Content-Type
	// is not application/vnd.api+json, reads included, as Outreach's
	// documentation says. By default the sandbox does what Outreach does
	// for clients in production: a request without a body needs no
	// Content-Type, and a JSON body may be application/vnd.api+json or
	// application/json.
	StrictMediaType bool
	// StrictSort refuses sort on attributes the OpenAPI document does not
	// badge sortable. By default the sandbox sorts by any attribute of the
	// type, and by updatedAt even where a type lacks it (createdAt order,
	// else id order), as clients do with events, webhooks, sequence
	// templates and duties.
	StrictSort bool
	// CountByDefault adds meta.count to collections without count=true,
	// as for apps registered before October 2024.
	CountByDefault bool

	// Apps are the registered OAuth apps; nil means one development app
	// with a generated id and secret (see DefaultApp).
	Apps []App
	// RedirectURI is the redirect URI of the default app.
	RedirectURI string
	// Password signs in every seeded user on the sign-in page.
	Password string

	// CustomObjects are the org's custom objects, served at
	// /api/v2/customObjects/<name>; nil means one, "project".
	CustomObjects []CustomObject

	// Faults are injected from the start; see SetFaults.
	Faults Faults
	// MutationsPerSecond keeps creating, updating and deleting records.
	MutationsPerSecond float64
	// BatchItemsPerSecond is how fast a confirmed bulk-action batch
	// processes its items, by the sandbox clock; 0 means 100, negative
	// means every item at once on confirmation.
	BatchItemsPerSecond float64

	// WebhookClient delivers webhooks; nil means a client with Outreach's
	// 5-second timeout.
	WebhookClient *http.Client
	// WebhookDisableAfter is how many failed deliveries in a row (no
	// answer, or a non-2xx one) disable a webhook; 0 means
	// DefaultWebhookDisableAfter, negative never.
	WebhookDisableAfter int
	// Logger receives the sandbox's own logs; nil discards them.
	Logger *slog.Logger
}

// CustomObject is an org-defined object type. Records get createdAt and
// updatedAt (read-only, filterable, sortable) besides Attributes.
type CustomObject struct {
	// Name is the object's type, and its path under /api/v2/customObjects/.
	Name       string
	Attributes []CustomAttribute
	// Relationships are to-one, by name, to a catalog type ("account").
	Relationships map[string]string
	// Records is the number of seeded records; 0 means one per five
	// prospects.
	Records int64
}

// CustomAttribute is one attribute of a custom object. Type is string,
// integer, number, boolean, date or date-time.
type CustomAttribute struct {
	Name                 string
	Type                 string
	Filterable, Sortable bool
	MaxLength            int
}

// DefaultCustomObjects are the custom objects of a sandbox whose options
// name none.
func DefaultCustomObjects() []CustomObject {
	return []CustomObject{{
		Name: "project",
		Attributes: []CustomAttribute{
			{Name: "name", Type: "string", Filterable: true, Sortable: true, MaxLength: 255},
			{Name: "status", Type: "string", Filterable: true},
			{Name: "budget", Type: "number"},
			{Name: "dueDate", Type: "date", Sortable: true},
		},
		Relationships: map[string]string{"account": "account", "owner": "user"},
	}}
}

// customResources turns custom objects into catalog resources.
func customResources(objs []CustomObject, cat *catalog.Catalog) ([]catalog.Resource, map[string]int64, error) {
	var out []catalog.Resource
	records := map[string]int64{}
	for _, o := range objs {
		if o.Name == "" {
			return nil, nil, errors.New("sandbox: a custom object needs a name")
		}
		if _, clash := cat.ByType(o.Name); clash {
			return nil, nil, fmt.Errorf("sandbox: custom object %q has the name of a standard type", o.Name)
		}
		r := catalog.Resource{Type: o.Name, Path: catalog.CustomObjectPathPrefix + o.Name, Custom: true,
			Summary: "A custom object of the org.",
			Ops:     catalog.Operations{List: true, Get: true, Create: true, Update: true, Delete: true},
			Attributes: []catalog.Attribute{
				{Name: "createdAt", Type: catalog.TypeDateTime, Nullable: true, ReadOnly: true, Filterable: true, Sortable: true},
				{Name: "updatedAt", Type: catalog.TypeDateTime, Nullable: true, ReadOnly: true, Filterable: true, Sortable: true},
			}}
		for _, a := range o.Attributes {
			t := catalog.Type(a.Type)
			switch t {
			case catalog.TypeString, catalog.TypeInteger, catalog.TypeNumber, catalog.TypeBoolean, catalog.TypeDate, catalog.TypeDateTime:
			default:
				return nil, nil, fmt.Errorf("sandbox: custom object %s: attribute %s has type %q; use string, integer, number, boolean, date or date-time", o.Name, a.Name, a.Type)
			}
			r.Attributes = append(r.Attributes, catalog.Attribute{Name: a.Name, Type: t, Nullable: true, Filterable: a.Filterable, Sortable: a.Sortable, MaxLength: a.MaxLength})
		}
		for _, name := range sortedKeys(o.Relationships) {
			target := o.Relationships[name]
			if _, ok := cat.ByType(target); !ok {
				return nil, nil, fmt.Errorf("sandbox: custom object %s: relationship %s targets unknown type %q", o.Name, name, target)
			}
			r.Relationships = append(r.Relationships, catalog.Relationship{Name: name, Targets: []string{target}, FilterBy: []string{"id"}})
		}
		out = append(out, r)
		records[o.Name] = o.Records
	}
	return out, records, nil
}

// App is a registered OAuth application.
type App struct {
	Name         string
	ClientID     string
	ClientSecret string
	// RedirectURIs must match the authorize and token requests exactly.
	RedirectURIs []string
	// Production marks an app published through Outreach's review: no
	// development warning on the consent page, and no weekly grant expiry
	// under Options.ExpireDevelopmentGrants. Apps are development apps by
	// default, as a new Outreach app is.
	Production bool
}

// Defaults.
const (
	DefaultPassword    = "sandbox-password"
	DefaultRedirectURI = "http://127.0.0.1:8787/oauth/callback"
)

// Sandbox simulates Outreach. It is safe for concurrent use.
type Sandbox struct {
	opts    Options
	cat     *catalog.Catalog
	clock   *Clock
	log     *slog.Logger
	store   *store
	apps    []App
	auth    *authServer
	limits  *rateLimiter
	faults  *faultInjector
	hooks   *webhookDispatcher
	mux     *http.ServeMux
	stats   counters
	sign    []byte // key that signs access tokens
	mutator *mutator
	layouts map[string]*layout
	buffers sync.Pool // *[]byte for rendering pages
	batches batchRunner

	closing   chan struct{} // closed by Close: requests held by a fault end
	closeOnce sync.Once
}

// New builds a sandbox. Close it to stop background work.
func New(opts Options) (*Sandbox, error) {
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	switch {
	case opts.Prospects == 0:
		opts.Prospects = 1000
	case opts.Prospects < 0:
		opts.Prospects = 0
	}
	if opts.DataEnd.IsZero() {
		opts.DataEnd = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if opts.Clock == nil {
		opts.Clock = NewClock(time.Time{})
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = 10000
	}
	if opts.RateWindow == 0 {
		opts.RateWindow = time.Hour
	}
	if opts.AccessTokenTTL == 0 {
		opts.AccessTokenTTL = 2 * time.Hour
	}
	if opts.RefreshTokenTTL == 0 {
		opts.RefreshTokenTTL = 14 * 24 * time.Hour
	}
	if opts.MaxRefreshTokens == 0 {
		opts.MaxRefreshTokens = 100
	}
	if opts.MintInterval == 0 {
		opts.MintInterval = time.Minute
	}
	if opts.Password == "" {
		opts.Password = DefaultPassword
	}
	if opts.RedirectURI == "" {
		opts.RedirectURI = DefaultRedirectURI
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := opts.Faults.validate(); err != nil {
		return nil, err
	}
	if opts.CustomObjects == nil {
		opts.CustomObjects = DefaultCustomObjects()
	}
	custom, customCounts, err := customResources(opts.CustomObjects, catalog.Default())
	if err != nil {
		return nil, err
	}
	cat, err := catalog.Default().With(custom...)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	n := counts(opts.Prospects, cat)
	for name, c := range customCounts {
		if c == 0 {
			c = opts.Prospects / 5
		}
		n[name] = c
	}
	from := opts.DataEnd.AddDate(-6, 0, 0)
	plans := newPlans(cat, uint64(opts.Seed), n, from, opts.DataEnd)
	s := &Sandbox{opts: opts, cat: cat, clock: opts.Clock, log: opts.Logger, store: newStore(cat, plans)}
	s.sign = make([]byte, 32)
	rand.Read(s.sign)
	s.apps = opts.Apps
	if s.apps == nil {
		s.apps = []App{DefaultApp(opts.Seed, opts.RedirectURI)}
	}
	for _, a := range s.apps {
		if a.ClientID == "" || a.ClientSecret == "" || len(a.RedirectURIs) == 0 {
			return nil, fmt.Errorf("sandbox: app %q needs a client id, a client secret and at least one redirect URI", a.Name)
		}
	}
	s.closing = make(chan struct{})
	s.layouts = newLayouts(cat)
	s.buffers.New = func() any { b := make([]byte, 0, 1<<20); return &b }
	s.auth = newAuthServer(s)
	s.limits = newRateLimiter(opts.RateLimit, opts.RateWindow)
	s.faults = newFaultInjector(opts.Faults, uint64(opts.Seed))
	client := opts.WebhookClient
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	s.hooks = newWebhookDispatcher(s, client)
	s.routes()
	s.mutator = newMutator(s, uint64(opts.Seed))
	s.mutator.setRate(opts.MutationsPerSecond)
	return s, nil
}

// DefaultApp is the development app a sandbox registers when Options.Apps
// is nil. Its secret holds characters that must be URL-encoded ('+', '/',
// '=', '&', '%'), so clients that send it unencoded fail as on Outreach.
func DefaultApp(seed int64, redirectURI string) App {
	r := newRNG(uint64(seed), 0xa99)
	const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	const unsafe = "+/=&%#?"
	id := make([]byte, 43)
	for i := range id {
		id[i] = alnum[r.intn(len(alnum))]
	}
	secret := make([]byte, 40)
	for i := range secret {
		if i%8 == 3 {
			secret[i] = unsafe[(i/8)%len(unsafe)]
		} else {
			secret[i] = alnum[r.intn(len(alnum))]
		}
	}
	return App{Name: "Sandbox Development App", ClientID: string(id), ClientSecret: string(secret), RedirectURIs: []string{redirectURI}}
}

// ServeHTTP serves the sandbox.
//
// Every answer's Date is the sandbox clock's, as Outreach's Date is its
// own clock's: clients measure Retry-After and X-RateLimit-Reset against
// it, and a clock advanced ahead of this machine's would otherwise make
// every wait that much longer.
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Date", s.clock.Now().UTC().Format(http.TimeFormat))
	s.mux.ServeHTTP(w, r)
}

// Close stops mutations, ends the requests a fault holds open, and waits
// for webhook deliveries in flight.
func (s *Sandbox) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.mutator.setRate(0)
	s.hooks.wait()
}

// Clock returns the sandbox's clock.
func (s *Sandbox) Clock() *Clock { return s.clock }

// Apps returns the registered OAuth apps.
func (s *Sandbox) Apps() []App { return append([]App(nil), s.apps...) }

// Catalog returns the resource catalog the sandbox serves.
func (s *Sandbox) Catalog() *catalog.Catalog { return s.cat }

// SignInUser returns the email and password of a seeded admin user who can
// sign in on the authorize page.
func (s *Sandbox) SignInUser() (email, password string) {
	return s.userEmail(1), s.opts.Password
}

// RestrictedUser returns the email of a seeded user without admin rights:
// Outreach's governance denies it writes to users, teams, profiles, roles
// and org settings (403 unauthorizedRequest).
func (s *Sandbox) RestrictedUser() string { return s.userEmail(2) }

func (s *Sandbox) userEmail(id int64) string {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	res, _ := s.cat.ByType("user")
	rec, ok := s.store.get("user", id)
	if !ok {
		return ""
	}
	e, _ := rec.attrs[res.AttributeIndex("email")].(string)
	return e
}

// SetFaults replaces the injected faults.
func (s *Sandbox) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	s.faults.set(f)
	return nil
}

// Faults returns the faults in force.
func (s *Sandbox) Faults() Faults { return s.faults.get() }

// SetMutationRate sets how many creates, updates and deletes per second the
// sandbox makes on its own; 0 stops them.
func (s *Sandbox) SetMutationRate(perSecond float64) { s.mutator.setRate(perSecond) }

// Mutate makes n random changes (creates, updates, deletes) now.
func (s *Sandbox) Mutate(n int) { s.mutator.mutate(n) }

// Counters are running totals tests can read.
type Counters struct {
	Requests          int64            `json:"requests"`           // API requests answered
	RequestsByUser    map[string]int64 `json:"requests_by_user"`   // by user id
	RateLimited       int64            `json:"rate_limited"`       // 429s sent by the API rate limit
	TokenRequests     int64            `json:"token_requests"`     // POST /oauth/token calls
	TokensMinted      int64            `json:"tokens_minted"`      // successful grants
	TokenThrottled    int64            `json:"token_throttled"`    // 429s from /oauth/token
	Refreshes         int64            `json:"refreshes"`          // successful refresh_token grants
	FaultsInjected    int64            `json:"faults_injected"`    // injected failures of any kind
	WebhookDeliveries int64            `json:"webhook_deliveries"` // delivery attempts
	Mutations         int64            `json:"mutations"`          // changes made by the mutator
	// WriteRequests counts API requests that ask to write (POST, PATCH,
	// DELETE) and passed authentication and the rate limit, whatever came
	// of them; Creates, Updates and Deletes count the writes committed
	// through the API (actions count as updates), the mutator's excluded.
	WriteRequests int64 `json:"write_requests"`
	Creates       int64 `json:"creates"`
	Updates       int64 `json:"updates"`
	Deletes       int64 `json:"deletes"`
	// LostAnswers counts committed writes whose answer a committed_resets
	// or committed_bad_gateway fault replaced.
	LostAnswers int64 `json:"lost_answers"`
}

type counters struct {
	requests, rateLimited, tokenRequests, tokensMinted, tokenThrottled atomic.Int64
	refreshes, faults, webhookDeliveries, mutations                    atomic.Int64
	writeRequests, creates, updates, deletes, lostAnswers              atomic.Int64
	mu                                                                 sync.Mutex
	byUser                                                             map[string]int64
}

func (c *counters) userRequest(user string) {
	c.requests.Add(1)
	c.mu.Lock()
	if c.byUser == nil {
		c.byUser = map[string]int64{}
	}
	c.byUser[user]++
	c.mu.Unlock()
}

// Counters returns a snapshot of the counters.
func (s *Sandbox) Counters() Counters {
	c := &s.stats
	c.mu.Lock()
	by := make(map[string]int64, len(c.byUser))
	for k, v := range c.byUser {
		by[k] = v
	}
	c.mu.Unlock()
	return Counters{Requests: c.requests.Load(), RequestsByUser: by, RateLimited: c.rateLimited.Load(),
		TokenRequests: c.tokenRequests.Load(), TokensMinted: c.tokensMinted.Load(), TokenThrottled: c.tokenThrottled.Load(),
		Refreshes: c.refreshes.Load(), FaultsInjected: c.faults.Load(), WebhookDeliveries: c.webhookDeliveries.Load(),
		Mutations: c.mutations.Load(), WriteRequests: c.writeRequests.Load(), Creates: c.creates.Load(),
		Updates: c.updates.Load(), Deletes: c.deletes.Load(), LostAnswers: c.lostAnswers.Load()}
}

// Server is a sandbox listening on a loopback port.
type Server struct {
	*Sandbox
	// URL is the base URL, e.g. http://127.0.0.1:41234; the API is at
	// URL+"/api/v2" and OAuth at URL+"/oauth".
	URL string
	srv *http.Server
	ln  net.Listener
}

// Start serves a new sandbox on addr ("" means 127.0.0.1:0, a free
// loopback port). Close the server when done.
func Start(addr string, opts Options) (*Server, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sandbox: listen on %s: %w", addr, err)
	}
	sb, err := New(opts)
	if err != nil {
		ln.Close()
		return nil, err
	}
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 10 * time.Second}
	s := &Server{Sandbox: sb, URL: "http://" + ln.Addr().String(), srv: srv, ln: ln}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			sb.log.Error("sandbox server stopped", "err", err)
		}
	}()
	return s, nil
}

// Close stops the server and the sandbox's background work. Requests that
// have not ended 2 s later have their connections closed, and Close says
// so.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.Sandbox.Close()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
		return fmt.Errorf("sandbox: requests still open after 2 s were cut: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONType(w, status, mediaType, v)
}

func writeJSONType(w http.ResponseWriter, status int, contentType string, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	w.Write(raw)
}
