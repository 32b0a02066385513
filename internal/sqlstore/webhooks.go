package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/webhooks"
)

// Webhooks is the webhooks.Store on the app database (table
// webhook_subscriptions, migration 006).
type Webhooks struct{ db *sql.DB }

// Webhooks returns the subscription store on s's database.
func (s *Store) Webhooks() *Webhooks { return &Webhooks{db: s.db} }

var _ webhooks.Store = (*Webhooks)(nil)

const subscriptionColumns = `connection_id, webhook_id, resource, url, secret, created_at, last_delivery_at, disabled_reason, disabled_since`

// AddSubscription implements webhooks.Store.
func (w *Webhooks) AddSubscription(ctx context.Context, s *webhooks.Subscription) error {
	_, err := w.db.ExecContext(ctx, `INSERT INTO webhook_subscriptions (`+subscriptionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		s.ConnectionID, s.WebhookID, s.Resource, s.URL, s.Secret, ms(s.CreatedAt), ms(s.LastDeliveryAt), s.DisabledReason, ms(s.DisabledSince))
	return err
}

// Subscriptions implements webhooks.Store.
func (w *Webhooks) Subscriptions(ctx context.Context, connectionID string) ([]*webhooks.Subscription, error) {
	q := `SELECT ` + subscriptionColumns + ` FROM webhook_subscriptions`
	var args []any
	if connectionID != "" {
		q += ` WHERE connection_id = $1`
		args = append(args, connectionID)
	}
	rows, err := w.db.QueryContext(ctx, q+` ORDER BY connection_id, resource, webhook_id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*webhooks.Subscription
	for rows.Next() {
		var s webhooks.Subscription
		var created, last, since int64
		if err := rows.Scan(&s.ConnectionID, &s.WebhookID, &s.Resource, &s.URL, &s.Secret, &created, &last, &s.DisabledReason, &since); err != nil {
			return nil, err
		}
		s.CreatedAt, s.LastDeliveryAt, s.DisabledSince = fromMS(created), fromMS(last), fromMS(since)
		out = append(out, &s)
	}
	return out, rows.Err()
}

// UpdateSubscription implements webhooks.Store.
func (w *Webhooks) UpdateSubscription(ctx context.Context, s *webhooks.Subscription) error {
	_, err := w.db.ExecContext(ctx, `UPDATE webhook_subscriptions SET resource = $3, url = $4, secret = $5, created_at = $6,
		last_delivery_at = $7, disabled_reason = $8, disabled_since = $9 WHERE connection_id = $1 AND webhook_id = $2`,
		s.ConnectionID, s.WebhookID, s.Resource, s.URL, s.Secret, ms(s.CreatedAt), ms(s.LastDeliveryAt), s.DisabledReason, ms(s.DisabledSince))
	return err
}

// DeleteSubscription implements webhooks.Store.
func (w *Webhooks) DeleteSubscription(ctx context.Context, connectionID string, webhookID int64) error {
	_, err := w.db.ExecContext(ctx, `DELETE FROM webhook_subscriptions WHERE connection_id = $1 AND webhook_id = $2`, connectionID, webhookID)
	return err
}

// Delivered implements webhooks.Store; the time only moves forward.
func (w *Webhooks) Delivered(ctx context.Context, connectionID string, webhookID int64, at time.Time) error {
	_, err := w.db.ExecContext(ctx, `UPDATE webhook_subscriptions SET last_delivery_at = $3
		WHERE connection_id = $1 AND webhook_id = $2 AND last_delivery_at < $3`, connectionID, webhookID, ms(at))
	return err
}
