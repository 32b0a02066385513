package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/proxy"
)

// APIKeys keeps the proxy's API keys (table api_keys, migration 005).
type APIKeys struct {
	db       *sql.DB
	isUnique func(error) bool
}

// APIKeys returns the API key store on s's database.
func (s *Store) APIKeys() *APIKeys { return &APIKeys{db: s.db, isUnique: s.isUnique} }

var _ proxy.KeyStore = (*APIKeys)(nil)

// CreateKey stores a new key; a taken name is proxy.ErrKeyExists.
func (k *APIKeys) CreateKey(ctx context.Context, key *proxy.Key) error {
	_, err := k.db.ExecContext(ctx, `INSERT INTO api_keys (id, name, hash, credentials, created_at) VALUES ($1, $2, $3, $4, $5)`,
		key.ID, key.Name, key.Hash, strings.Join(key.Credentials, ","), ms(key.Created))
	if err != nil && k.isUnique != nil && k.isUnique(err) {
		return fmt.Errorf("%w: %s", proxy.ErrKeyExists, key.Name)
	}
	return err
}

const keyColumns = `id, name, hash, credentials, created_at, last_used, revoked_at`

func scanKey(row scanner) (*proxy.Key, error) {
	var k proxy.Key
	var creds string
	var created, used, revoked int64
	if err := row.Scan(&k.ID, &k.Name, &k.Hash, &creds, &created, &used, &revoked); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, proxy.ErrKeyNotFound
		}
		return nil, err
	}
	if creds != "" {
		k.Credentials = strings.Split(creds, ",")
	}
	k.Created, k.LastUsed, k.Revoked = fromMS(created), fromMS(used), fromMS(revoked)
	return &k, nil
}

// KeyByHash returns the key with the hash.
func (k *APIKeys) KeyByHash(ctx context.Context, hash string) (*proxy.Key, error) {
	return scanKey(k.db.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE hash = $1`, hash))
}

// ListKeys returns every key by name.
func (k *APIKeys) ListKeys(ctx context.Context) ([]*proxy.Key, error) {
	rows, err := k.db.QueryContext(ctx, `SELECT `+keyColumns+` FROM api_keys ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*proxy.Key
	for rows.Next() {
		key, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, key)
	}
	return out, rows.Err()
}

// RevokeKey revokes the named key; it keeps the first revocation time.
func (k *APIKeys) RevokeKey(ctx context.Context, name string, at time.Time) error {
	res, err := k.db.ExecContext(ctx, `UPDATE api_keys SET revoked_at = CASE WHEN revoked_at = 0 THEN $2 ELSE revoked_at END WHERE name = $1`,
		name, ms(at))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %s", proxy.ErrKeyNotFound, name)
	}
	return nil
}

// TouchKey records the key's latest use.
func (k *APIKeys) TouchKey(ctx context.Context, id string, at time.Time) error {
	_, err := k.db.ExecContext(ctx, `UPDATE api_keys SET last_used = $2 WHERE id = $1 AND last_used < $2`, id, ms(at))
	return err
}

// Idempotency keeps the answers of keyed proxy writes (table
// proxy_idempotency, migration 005).
type Idempotency struct {
	db       *sql.DB
	isUnique func(error) bool
}

// Idempotency returns the store of kept answers on s's database.
func (s *Store) Idempotency() *Idempotency { return &Idempotency{db: s.db, isUnique: s.isUnique} }

var _ proxy.IdempotencyStore = (*Idempotency)(nil)

// Begin claims (owner, key) or reports what holds it.
func (s *Idempotency) Begin(ctx context.Context, owner, key, fp string, now, expires time.Time) (proxy.Claim, *proxy.Stored, error) {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM proxy_idempotency WHERE expires_at < $1`, ms(now)); err != nil {
		return 0, nil, err
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO proxy_idempotency (owner, idem_key, fingerprint, state, created_at, expires_at)
		VALUES ($1, $2, $3, 'pending', $4, $5)`, owner, key, fp, ms(now), ms(expires))
	if err == nil {
		return proxy.Claimed, nil, nil
	}
	if s.isUnique == nil || !s.isUnique(err) {
		return 0, nil, err
	}
	var gotFP, state, header string
	var status int
	var body []byte
	var created int64
	err = s.db.QueryRowContext(ctx, `SELECT fingerprint, state, status, header, body, created_at FROM proxy_idempotency WHERE owner = $1 AND idem_key = $2`,
		owner, key).Scan(&gotFP, &state, &status, &header, &body, &created)
	if errors.Is(err, sql.ErrNoRows) {
		// Abandoned between our insert and read: try once more.
		return s.Begin(ctx, owner, key, fp, now, expires)
	}
	if err != nil {
		return 0, nil, err
	}
	switch {
	case gotFP != fp:
		return proxy.Mismatch, nil, nil
	case state != "done":
		return proxy.InProgress, &proxy.Stored{Started: fromMS(created)}, nil
	}
	st := &proxy.Stored{Status: status, Body: body, Header: http.Header{}}
	if header != "" {
		if err := json.Unmarshal([]byte(header), &st.Header); err != nil {
			return 0, nil, fmt.Errorf("kept answer of idempotency key: %w", err)
		}
	}
	return proxy.Done, st, nil
}

// Finish keeps the answer.
func (s *Idempotency) Finish(ctx context.Context, owner, key string, st *proxy.Stored) error {
	h, err := json.Marshal(st.Header)
	if err != nil {
		return err
	}
	body := st.Body
	if body == nil {
		body = []byte{}
	}
	res, err := s.db.ExecContext(ctx, `UPDATE proxy_idempotency SET state = 'done', status = $3, header = $4, body = $5
		WHERE owner = $1 AND idem_key = $2 AND state = 'pending'`, owner, key, st.Status, string(h), body)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return proxy.ErrIdempotencyLost
	}
	return nil
}

// Abandon drops a pending claim.
func (s *Idempotency) Abandon(ctx context.Context, owner, key string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM proxy_idempotency WHERE owner = $1 AND idem_key = $2 AND state = 'pending'`, owner, key)
	return err
}
