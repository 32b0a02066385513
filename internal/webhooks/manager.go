package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
	"github.com/outreach-connector/outreach-connector/outreach"
)

// Resources returns the resource types Outreach delivers webhooks for
// (its webhooks documentation); other streams follow by scheduled runs
// only.
func Resources() []string {
	return []string{"account", "call", "emailAddress", "mailing", "opportunity", "opportunityProspectRole", "prospect",
		"sequence", "sequenceState", "task", "user"}
}

// ErrNoPublicURL is the error of Subscribe when the manager has no public
// URL to give Outreach: `serve --public-url` subscribes the connection at
// its next check.
var ErrNoPublicURL = errors.New("no public URL to receive webhooks at; serve --public-url subscribes live connections")

// ManagerOptions configure a Manager.
type ManagerOptions struct {
	Store Store
	// Connections finds the connections of the subscriptions (Check).
	Connections connection.Store
	Keys        *credential.Keyring
	// PublicURL is where Outreach reaches this server (https://host); the
	// webhooks' URL is PublicURL/webhooks/<connection id>. Empty: Subscribe
	// returns ErrNoPublicURL.
	PublicURL string
	// Client returns an Outreach client acting with the connection's
	// credential.
	Client func(ctx context.Context, c *connection.Connection) (*outreach.Client, error)
	// CatchUp queues an incremental run of the connection, for changes
	// no delivery brought.
	CatchUp func(ctx context.Context, connectionID string) error
	Catalog *catalog.Catalog // nil: catalog.Default()
	Logger  *slog.Logger
	Now     func() time.Time
}

// Manager subscribes and unsubscribes live connections at Outreach and
// watches their webhooks. Safe for concurrent use.
type Manager struct {
	o ManagerOptions
}

// NewManager checks opts and returns a Manager.
func NewManager(o ManagerOptions) (*Manager, error) {
	if o.Store == nil || o.Connections == nil || o.Keys == nil || o.Client == nil {
		return nil, errors.New("webhooks: Store, Connections, Keys and Client are required")
	}
	if o.Catalog == nil {
		o.Catalog = catalog.Default()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.PublicURL = strings.TrimSuffix(o.PublicURL, "/")
	return &Manager{o: o}, nil
}

// URL is where Outreach delivers the connection's webhooks.
func (m *Manager) URL(connectionID string) string { return m.o.PublicURL + "/webhooks/" + connectionID }

// ResourcesOf returns the webhook resource types of the streams c syncs:
// ["*"] when it syncs every stream its credential can read, else one per
// type that has webhooks. An empty list means none of its streams has.
func (m *Manager) ResourcesOf(c *connection.Connection) []string {
	if c.Streams == nil {
		return []string{"*"}
	}
	byName := map[string]string{}
	for _, s := range syncer.Streams(m.o.Catalog) {
		byName[s.Name] = s.Type
	}
	hooked := Resources()
	var out []string
	for _, name := range c.Streams {
		if t, ok := byName[name]; ok && slices.Contains(hooked, t) && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// Subscribe makes a webhook at Outreach for each resource type of c that
// has none yet, each with its own random secret, and stores them. When
// one fails, those it made are removed again.
func (m *Manager) Subscribe(ctx context.Context, c *connection.Connection) error {
	if m.o.PublicURL == "" {
		return ErrNoPublicURL
	}
	resources := m.ResourcesOf(c)
	if len(resources) == 0 {
		return fmt.Errorf("connection %s: none of its streams has webhooks at Outreach (they exist for %s)", c.Name, strings.Join(Resources(), ", "))
	}
	have, err := m.o.Store.Subscriptions(ctx, c.ID)
	if err != nil {
		return err
	}
	client, err := m.o.Client(ctx, c)
	if err != nil {
		return err
	}
	var made []*Subscription
	for _, r := range resources {
		if slices.ContainsFunc(have, func(s *Subscription) bool { return s.Resource == r && s.URL == m.URL(c.ID) }) {
			continue
		}
		s, err := m.create(ctx, client, c, r)
		if err != nil {
			for _, s := range made {
				m.remove(ctx, client, s)
			}
			return fmt.Errorf("connection %s: subscribe to %s webhooks at Outreach: %w", c.Name, r, err)
		}
		made = append(made, s)
		m.o.Logger.Info("webhook subscribed", "connection", c.Name, "resource", r, "webhook", s.WebhookID)
	}
	// Webhooks for types the connection no longer syncs, or for an old URL.
	for _, s := range have {
		if !slices.Contains(resources, s.Resource) || s.URL != m.URL(c.ID) {
			if err := m.remove(ctx, client, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// create makes one webhook at Outreach and stores it.
func (m *Manager) create(ctx context.Context, client *outreach.Client, c *connection.Connection, resource string) (*Subscription, error) {
	secret := newSecret()
	sealed, err := seal(m.o.Keys, c.ID, secret)
	if err != nil {
		return nil, err
	}
	attrs := map[string]json.RawMessage{}
	for k, v := range map[string]string{"url": m.URL(c.ID), "secret": secret, "resource": resource, "action": "*"} {
		attrs[k], _ = json.Marshal(v)
	}
	res, err := client.Create(ctx, "webhooks", &outreach.Resource{Type: "webhook", Attributes: attrs})
	if err != nil {
		return nil, err
	}
	s := &Subscription{ConnectionID: c.ID, WebhookID: res.ID, Resource: resource, URL: m.URL(c.ID), Secret: sealed, CreatedAt: m.o.Now().UTC()}
	if err := m.o.Store.AddSubscription(ctx, s); err != nil {
		client.Delete(ctx, "webhooks", res.ID)
		return nil, err
	}
	return s, nil
}

// remove deletes the webhook at Outreach (gone already is fine) and then
// its row.
func (m *Manager) remove(ctx context.Context, client *outreach.Client, s *Subscription) error {
	if err := client.Delete(ctx, "webhooks", s.WebhookID); err != nil && !errors.Is(err, outreach.ErrNotFound) {
		return fmt.Errorf("delete webhook %d at Outreach: %w", s.WebhookID, err)
	}
	return m.o.Store.DeleteSubscription(ctx, s.ConnectionID, s.WebhookID)
}

// Unsubscribe deletes c's webhooks at Outreach and their rows. A webhook
// Outreach cannot delete now keeps its row (and the error says so); with
// force the rows go anyway (the connection is being deleted; deliveries
// to it are then refused as for an unknown connection).
func (m *Manager) Unsubscribe(ctx context.Context, c *connection.Connection, force bool) error {
	subs, err := m.o.Store.Subscriptions(ctx, c.ID)
	if err != nil || len(subs) == 0 {
		return err
	}
	var errs []error
	client, err := m.o.Client(ctx, c)
	for _, s := range subs {
		if err == nil {
			err = m.remove(ctx, client, s)
			if err == nil {
				m.o.Logger.Info("webhook deleted", "connection", c.Name, "resource", s.Resource, "webhook", s.WebhookID)
				continue
			}
		}
		errs = append(errs, err)
		err = nil
		if force {
			if derr := m.o.Store.DeleteSubscription(ctx, s.ConnectionID, s.WebhookID); derr != nil {
				errs = append(errs, derr)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("connection %s: unsubscribe at Outreach: %w", c.Name, errors.Join(errs...))
	}
	return nil
}

// Check brings the webhooks in line with the live connections: a live
// connection without its webhooks is subscribed; a webhook Outreach
// disabled (active false, disabledSince or disabledReason set) is
// re-enabled, one Outreach no longer has is made again, and either way the
// connection gets a catch-up run for what was not delivered meanwhile;
// webhooks of connections no longer live (or gone) are deleted. Problems
// are logged and left for the next check; it returns how many webhooks it
// repaired.
func (m *Manager) Check(ctx context.Context) (int, error) {
	conns, err := m.o.Connections.ListConnections(ctx)
	if err != nil {
		return 0, err
	}
	subs, err := m.o.Store.Subscriptions(ctx, "")
	if err != nil {
		return 0, err
	}
	byConn := map[string][]*Subscription{}
	for _, s := range subs {
		byConn[s.ConnectionID] = append(byConn[s.ConnectionID], s)
	}
	repaired := 0
	for _, c := range conns {
		mine := byConn[c.ID]
		delete(byConn, c.ID)
		if !c.Live {
			if len(mine) > 0 {
				if err := m.Unsubscribe(ctx, c, false); err != nil {
					m.o.Logger.Warn("webhook check: unsubscribe a connection no longer live", "connection", c.Name, "err", err)
				}
			}
			continue
		}
		gap := false
		if len(mine) == 0 || !m.complete(c, mine) {
			if err := m.Subscribe(ctx, c); err != nil {
				if !errors.Is(err, ErrNoPublicURL) {
					m.o.Logger.Warn("webhook check: subscribe", "connection", c.Name, "err", err)
				}
				continue
			}
			gap = true
			if mine, err = m.o.Store.Subscriptions(ctx, c.ID); err != nil {
				m.o.Logger.Warn("webhook check", "connection", c.Name, "err", err)
				continue
			}
		}
		if n, err := m.repair(ctx, c, mine); err != nil {
			m.o.Logger.Warn("webhook check", "connection", c.Name, "err", err)
		} else if n > 0 {
			repaired += n
			gap = true
		}
		if gap && m.o.CatchUp != nil {
			if err := m.o.CatchUp(ctx, c.ID); err != nil {
				m.o.Logger.Warn("webhook check: queue a catch-up run", "connection", c.Name, "err", err)
			} else {
				m.o.Logger.Info("catch-up run queued for changes webhooks did not deliver", "connection", c.Name)
			}
		}
	}
	// Rows of connections that no longer exist (deleted while Outreach
	// was unreachable): nothing to ask Outreach with; drop them.
	for id, rest := range byConn {
		for _, s := range rest {
			if err := m.o.Store.DeleteSubscription(ctx, id, s.WebhookID); err != nil {
				m.o.Logger.Warn("webhook check: forget a deleted connection's webhook", "err", err)
			}
		}
	}
	return repaired, nil
}

// complete reports whether subs are exactly the webhooks c needs: every
// resource type of c at the current URL, and nothing else (a stream
// dropped by an edit, an old public URL).
func (m *Manager) complete(c *connection.Connection, subs []*Subscription) bool {
	want := m.ResourcesOf(c)
	for _, r := range want {
		if !slices.ContainsFunc(subs, func(s *Subscription) bool { return s.Resource == r && s.URL == m.URL(c.ID) }) {
			return false
		}
	}
	return !slices.ContainsFunc(subs, func(s *Subscription) bool { return !slices.Contains(want, s.Resource) || s.URL != m.URL(c.ID) })
}

// repair reads each of c's webhooks at Outreach and re-enables a disabled
// one or re-creates a missing one; it returns how many it repaired.
func (m *Manager) repair(ctx context.Context, c *connection.Connection, subs []*Subscription) (int, error) {
	if len(subs) == 0 {
		return 0, nil
	}
	client, err := m.o.Client(ctx, c)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range subs {
		res, _, err := client.Get(ctx, "webhooks", s.WebhookID, nil)
		switch {
		case errors.Is(err, outreach.ErrNotFound):
			if err := m.o.Store.DeleteSubscription(ctx, s.ConnectionID, s.WebhookID); err != nil {
				return n, err
			}
			ns, err := m.create(ctx, client, c, s.Resource)
			if err != nil {
				return n, fmt.Errorf("re-create the %s webhook Outreach no longer has: %w", s.Resource, err)
			}
			m.o.Logger.Warn("webhook was gone at Outreach; made again", "connection", c.Name, "resource", s.Resource, "webhook", ns.WebhookID)
			n++
			continue
		case err != nil:
			return n, err
		}
		active := true
		if raw, ok := res.Attributes["active"]; ok {
			json.Unmarshal(raw, &active)
		}
		reason, since := res.String("disabledReason"), res.Time("disabledSince")
		if active && reason == "" && since.IsZero() {
			continue
		}
		on, _ := json.Marshal(true)
		// Any update resets disabledReason, disabledSince and disabledUntil.
		if _, err := client.Update(ctx, "webhooks", &outreach.Resource{Type: "webhook", ID: s.WebhookID,
			Attributes: map[string]json.RawMessage{"active": on}}); err != nil {
			return n, fmt.Errorf("re-enable webhook %d: %w", s.WebhookID, err)
		}
		s.DisabledReason, s.DisabledSince = reason, since
		if s.DisabledSince.IsZero() {
			s.DisabledSince = m.o.Now().UTC()
		}
		if err := m.o.Store.UpdateSubscription(ctx, s); err != nil {
			return n, err
		}
		m.o.Logger.Warn("webhook was disabled at Outreach; re-enabled", "connection", c.Name, "resource", s.Resource, "webhook", s.WebhookID,
			"reason", reason, "since", since)
		n++
	}
	return n, nil
}

// Run checks every interval until ctx ends. One goroutine (serve's) runs
// it.
func (m *Manager) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := m.Check(ctx); err != nil && ctx.Err() == nil {
			m.o.Logger.Warn("webhook check", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
