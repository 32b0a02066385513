// Package webhooks keeps live connections live: it subscribes a connection
// at Outreach (one webhook per resource type the connection syncs, each
// with its own random secret, sealed with the credential keyring), takes
// the deliveries at POST /webhooks/{connection} (Receiver: signature,
// size, decoding, then the destination's connection.Applier), and watches
// the webhooks (Manager.Check): one Outreach disabled is re-enabled or made
// again, and a catch-up run covers what it missed.
package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/credential"
)

// Subscription is one webhook made at Outreach for a live connection.
type Subscription struct {
	ConnectionID string
	// WebhookID is the webhook's id at Outreach.
	WebhookID int64
	// Resource is the webhook's resource type ("prospect"; "*" for all).
	Resource string
	URL      string
	// Secret is the signing secret sealed with the keyring (see Seal);
	// the clear secret never leaves this package's functions.
	Secret    []byte
	CreatedAt time.Time
	// LastDeliveryAt is when the last signed delivery arrived (zero:
	// none yet).
	LastDeliveryAt time.Time
	// DisabledReason and DisabledSince are what Outreach said when the
	// check loop last found the webhook disabled (empty when it never
	// was); kept for the UI and the log.
	DisabledReason string
	DisabledSince  time.Time
}

// Store keeps the subscriptions; sqlstore implements it on the app
// database (table webhook_subscriptions).
type Store interface {
	AddSubscription(ctx context.Context, s *Subscription) error
	// Subscriptions returns the connection's subscriptions, or every
	// subscription when connectionID is "".
	Subscriptions(ctx context.Context, connectionID string) ([]*Subscription, error)
	// UpdateSubscription replaces the fields of the subscription
	// (ConnectionID, WebhookID).
	UpdateSubscription(ctx context.Context, s *Subscription) error
	// DeleteSubscription removes one; no error when it is gone.
	DeleteSubscription(ctx context.Context, connectionID string, webhookID int64) error
	// Delivered records a delivery's arrival.
	Delivered(ctx context.Context, connectionID string, webhookID int64, at time.Time) error
}

// aad binds a sealed secret to its connection, so it cannot be moved to
// another row. (Not to the webhook id: a secret is sealed before Outreach
// assigns the id.)
func aad(connectionID string) []byte { return []byte("webhook_secret:" + connectionID) }

// newSecret returns a random signing secret: 32 bytes as hex.
func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// seal seals a clear secret for connection id.
func seal(keys *credential.Keyring, connectionID, secret string) ([]byte, error) {
	return keys.Seal([]byte(secret), aad(connectionID))
}

// open returns the clear secret of s.
func open(keys *credential.Keyring, s *Subscription) ([]byte, error) {
	return keys.Open(s.Secret, aad(s.ConnectionID))
}

// Reseal seals every subscription's secret with the keyring's current key
// (after `credentials rotate-key`); the keyring must still hold the old
// keys. It returns how many it re-sealed.
func Reseal(ctx context.Context, st Store, keys *credential.Keyring) (int, error) {
	subs, err := st.Subscriptions(ctx, "")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range subs {
		plain, err := open(keys, s)
		if err != nil {
			return n, fmt.Errorf("webhook %d of connection %s: %w", s.WebhookID, s.ConnectionID, err)
		}
		if s.Secret, err = keys.Seal(plain, aad(s.ConnectionID)); err != nil {
			return n, err
		}
		if err := st.UpdateSubscription(ctx, s); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
