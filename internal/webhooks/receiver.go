package webhooks

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/metrics"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
)

// MaxBody is the largest delivery accepted (413 beyond): one record's
// event, mailings' bodies included, is far smaller.
const MaxBody = 1 << 20

// SignatureHeader carries the lowercase hex HMAC-SHA256 of the raw body,
// keyed with the webhook's secret.
const SignatureHeader = "Outreach-Webhook-Signature"

// OpenDestination opens a destination URL in a namespace (see
// destinations.Open).
type OpenDestination func(ctx context.Context, url, namespace string) (connection.Destination, func() error, error)

// ReceiverOptions configure a Receiver.
type ReceiverOptions struct {
	Store       Store
	Connections connection.Store
	Keys        *credential.Keyring
	Open        OpenDestination
	Catalog     *catalog.Catalog // nil: catalog.Default()
	Metrics     *metrics.Webhooks
	Logger      *slog.Logger
	Now         func() time.Time
}

// Receiver takes POST /webhooks/{connection}: a public route, whose
// deliveries prove themselves by their signature. It answers
//
//   - 413 to a body over MaxBody, 404 for a connection that does not exist
//     or is not live, 401 when no secret of the connection's webhooks signs
//     the body (nothing is changed), 400 for a body that is not a delivery;
//   - 204 once the change is committed to the destination (or when the
//     delivery is about a type the connection does not sync);
//   - 503 when the destination cannot take it now.
//
// Outreach treats every answer as delivered and does not send it again;
// the scheduled runs and the check's catch-up runs bring what was lost.
type Receiver struct {
	o       ReceiverOptions
	streams map[string]*connection.Stream // by JSON:API type

	mu    sync.Mutex
	dests map[string]*openDest // by connection id
}

type openDest struct {
	url, ns  string
	dst      connection.Destination
	close    func() error
	mu       sync.Mutex
	prepared map[string]bool
}

// NewReceiver returns a Receiver; Close it to release the destinations
// it opened.
func NewReceiver(o ReceiverOptions) (*Receiver, error) {
	if o.Store == nil || o.Connections == nil || o.Keys == nil || o.Open == nil {
		return nil, errors.New("webhooks: Store, Connections, Keys and Open are required")
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
	r := &Receiver{o: o, streams: map[string]*connection.Stream{}, dests: map[string]*openDest{}}
	for _, s := range syncer.Streams(o.Catalog) {
		r.streams[s.Type] = s
	}
	return r, nil
}

// Close closes the destinations the receiver opened.
func (r *Receiver) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for id, d := range r.dests {
		errs = append(errs, d.close())
		delete(r.dests, id)
	}
	return errors.Join(errs...)
}

func (r *Receiver) reject(w http.ResponseWriter, status int, reason, msg string) {
	if r.o.Metrics != nil {
		r.o.Metrics.Rejected(reason)
	}
	http.Error(w, msg, status)
}

// ServeHTTP handles a delivery; the connection id is the path value
// "connection" (pattern POST /webhooks/{connection}).
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ctx := req.Context()
	id := req.PathValue("connection")
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			r.reject(w, http.StatusRequestEntityTooLarge, metrics.RejectTooLarge, "delivery larger than 1 MiB")
			return
		}
		r.reject(w, http.StatusBadRequest, metrics.RejectMalformed, "the body could not be read")
		return
	}
	c, err := r.o.Connections.GetConnection(ctx, id)
	if errors.Is(err, connection.ErrNotFound) || (err == nil && !c.Live) {
		r.reject(w, http.StatusNotFound, metrics.RejectUnknownConnection, "no live connection here")
		return
	}
	if err != nil {
		r.o.Logger.Error("webhook: read the connection", "err", err)
		http.Error(w, "the app database does not answer; try again", http.StatusServiceUnavailable)
		return
	}
	if r.o.Metrics != nil {
		r.o.Metrics.Received(c.Name)
	}
	sub, err := r.verify(ctx, c.ID, req.Header, body)
	if err != nil {
		r.o.Logger.Error("webhook: read the connection's webhooks", "connection", c.Name, "err", err)
		http.Error(w, "the app database does not answer; try again", http.StatusServiceUnavailable)
		return
	}
	if sub == nil {
		r.o.Logger.Warn("webhook delivery refused: bad signature", "connection", c.Name, "remote", req.RemoteAddr)
		r.reject(w, http.StatusUnauthorized, metrics.RejectBadSignature, "the signature does not match")
		return
	}
	d, err := syncer.ParseDelivery(body)
	if err != nil {
		r.reject(w, http.StatusBadRequest, metrics.RejectMalformed, err.Error())
		return
	}
	s, ok := r.streams[d.Type]
	if !ok || (c.Streams != nil && !slices.Contains(c.Streams, s.Name)) {
		w.WriteHeader(http.StatusNoContent) // a type this connection does not sync
		return
	}
	now := r.o.Now()
	ev, err := d.Event(s, now)
	if err != nil {
		r.reject(w, http.StatusBadRequest, metrics.RejectMalformed, err.Error())
		return
	}
	outcome, err := r.apply(ctx, c, s, ev)
	if err != nil {
		r.o.Logger.Error("webhook: apply", "connection", c.Name, "stream", s.Name, "id", d.ID, "err", err)
		http.Error(w, "the destination cannot take the change now", http.StatusServiceUnavailable)
		return
	}
	if err := r.o.Store.Delivered(ctx, c.ID, sub.WebhookID, now); err != nil {
		r.o.Logger.Warn("webhook: record the delivery", "connection", c.Name, "err", err)
	}
	if r.o.Metrics != nil {
		r.o.Metrics.Applied(c.Name, s.Name, string(outcome), r.o.Now().Sub(d.DeliveredAt), !d.DeliveredAt.IsZero())
	}
	r.o.Logger.Debug("webhook applied", "connection", c.Name, "stream", s.Name, "id", d.ID, "action", d.Action, "outcome", outcome)
	w.WriteHeader(http.StatusNoContent)
}

// verify returns the subscription whose secret signs body (the one the
// Outreach-Webhook-Id header names, else any of the connection's), or nil.
func (r *Receiver) verify(ctx context.Context, connectionID string, h http.Header, body []byte) (*Subscription, error) {
	got, err := hex.DecodeString(h.Get(SignatureHeader))
	if err != nil || len(got) != sha256.Size {
		return nil, nil
	}
	subs, err := r.o.Store.Subscriptions(ctx, connectionID)
	if err != nil {
		return nil, err
	}
	if hook, err := strconv.ParseInt(h.Get("Outreach-Webhook-Id"), 10, 64); err == nil {
		if i := slices.IndexFunc(subs, func(s *Subscription) bool { return s.WebhookID == hook }); i >= 0 {
			subs = subs[i : i+1]
		}
	}
	for _, s := range subs {
		secret, err := open(r.o.Keys, s)
		if err != nil {
			r.o.Logger.Error("webhook: a secret does not decrypt (was the key file replaced?)", "connection", connectionID, "webhook", s.WebhookID)
			continue
		}
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		if hmac.Equal(mac.Sum(nil), got) {
			return s, nil
		}
	}
	return nil, nil
}

// apply applies ev through the connection's destination, opened once and
// kept while the connection's destination stays the same.
func (r *Receiver) apply(ctx context.Context, c *connection.Connection, s *connection.Stream, ev connection.Event) (connection.Applied, error) {
	d, err := r.dest(ctx, c)
	if err != nil {
		return "", err
	}
	a, ok := d.dst.(connection.Applier)
	if !ok {
		return "", &connection.CannotApplyError{Connection: c.Name}
	}
	d.mu.Lock()
	if !d.prepared[s.Name] {
		if err := d.dst.Prepare(ctx, s); err != nil {
			d.mu.Unlock()
			return "", err
		}
		d.prepared[s.Name] = true
	}
	d.mu.Unlock()
	return a.Apply(ctx, s, ev)
}

func (r *Receiver) dest(ctx context.Context, c *connection.Connection) (*openDest, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d, ok := r.dests[c.ID]; ok {
		if d.url == c.DestinationURL && d.ns == c.Namespace {
			return d, nil
		}
		d.close()
		delete(r.dests, c.ID)
	}
	dst, closeDst, err := r.o.Open(ctx, c.DestinationURL, c.Namespace)
	if err != nil {
		return nil, err
	}
	if closeDst == nil {
		closeDst = func() error { return nil }
	}
	d := &openDest{url: c.DestinationURL, ns: c.Namespace, dst: dst, close: closeDst, prepared: map[string]bool{}}
	r.dests[c.ID] = d
	return d, nil
}
