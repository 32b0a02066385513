package sqlstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
)

// ErrSealed is the error of a connection whose destination URL holds a
// password that this store cannot seal or open: it has no keyring, or
// not the key the password was sealed with.
var ErrSealed = errors.New("sqlstore: the destination URL's password is sealed, and this process does not have its key")

// A destination URL's password is never stored in clear: the column
// destination_url holds the URL with the password redacted
// (connection.RedactedURL), and destination_sealed the whole URL sealed
// with the keyring (base64), bound to the connection's id. A URL without
// a password is stored as it is, destination_sealed empty.

// destinationAAD binds a sealed destination URL to its connection.
func destinationAAD(id string) []byte { return []byte("connection:" + id + ":destination_url") }

// hasSecret reports whether a destination URL carries something that
// must not be stored in clear.
func hasSecret(raw string) bool { return connection.RedactedURL(raw) != raw }

// sealDestination returns the columns destination_url and
// destination_sealed of c.
func (s *Connections) sealDestination(c *connection.Connection) (clear, sealed string, err error) {
	if !hasSecret(c.DestinationURL) {
		return c.DestinationURL, "", nil
	}
	redacted := connection.RedactedURL(c.DestinationURL)
	if s.keys == nil {
		return "", "", fmt.Errorf("connection %q: destination %s holds a password, and the store has no keyring to seal it: %w",
			c.Name, redacted, ErrSealed)
	}
	blob, err := s.keys.Seal([]byte(c.DestinationURL), destinationAAD(c.ID))
	if err != nil {
		return "", "", fmt.Errorf("connection %q: seal the destination URL: %w", c.Name, err)
	}
	return redacted, base64.StdEncoding.EncodeToString(blob), nil
}

// openDestination returns the destination URL of connection id from its
// columns: the clear one, or the sealed one opened.
func (s *Connections) openDestination(id, name, clear, sealed string) (string, error) {
	if sealed == "" {
		return clear, nil // no password, or a row written before sealing (SealDestinations)
	}
	blob, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return "", fmt.Errorf("connection %q: the sealed destination URL is not base64: %w", name, err)
	}
	if s.keys == nil {
		return "", fmt.Errorf("connection %q: destination %s: %w; open the app database with its key file (--key-file or %s)",
			name, clear, ErrSealed, credential.KeysEnv)
	}
	plain, err := s.keys.Open(blob, destinationAAD(id))
	if err != nil {
		key, _ := credential.KeyIDOf(blob)
		return "", fmt.Errorf("connection %q: destination %s: %w (sealed with key %q: %v); use the key file it was sealed with (--key-file or %s)",
			name, clear, ErrSealed, key, err, credential.KeysEnv)
	}
	return string(plain), nil
}

// SealDestinations seals the destination URL of every connection whose
// password is still stored in clear (rows written before sealing), and
// seals again with the keyring's current key those sealed with an older
// one (after `credentials rotate-key`). A row changed meanwhile by
// another process is left to it. It returns how many rows it sealed;
// without a keyring it does nothing.
func (s *Connections) SealDestinations(ctx context.Context) (int, error) {
	if s.keys == nil {
		return 0, nil
	}
	type row struct{ id, name, clear, sealed string }
	rows, err := queryAll(ctx, s.db, `SELECT id, name, destination_url, destination_sealed FROM connections ORDER BY name`,
		nil, func(sc scanner) (row, error) {
			var r row
			return r, sc.Scan(&r.id, &r.name, &r.clear, &r.sealed)
		})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rows {
		if r.sealed == "" && !hasSecret(r.clear) {
			continue
		}
		if r.sealed != "" {
			if blob, err := base64.StdEncoding.DecodeString(r.sealed); err == nil {
				if key, _ := credential.KeyIDOf(blob); key == s.keys.Current() {
					continue
				}
			}
		}
		full, err := s.openDestination(r.id, r.name, r.clear, r.sealed)
		if err != nil {
			return n, err
		}
		clear, sealed, err := s.sealDestination(&connection.Connection{ID: r.id, Name: r.name, DestinationURL: full})
		if err != nil {
			return n, err
		}
		res, err := s.db.ExecContext(ctx, `UPDATE connections SET destination_url = $2, destination_sealed = $3
			WHERE id = $1 AND destination_url = $4 AND destination_sealed = $5`, r.id, clear, sealed, r.clear, r.sealed)
		if err != nil {
			return n, fmt.Errorf("connection %q: seal the destination URL: %w", r.name, err)
		}
		if k, err := res.RowsAffected(); err == nil && k > 0 {
			n++
		}
	}
	return n, nil
}

// SealedKeyIDs returns the ids of the keys that sealed the secrets this
// database holds (credentials' client secrets and tokens, destination
// passwords, webhook signing secrets), sorted; none when it holds no
// sealed secret. A process opening the database checks it before making
// a new key: a new key could never open them.
func (s *Store) SealedKeyIDs(ctx context.Context) ([]string, error) {
	ids := map[string]bool{}
	add := func(blob []byte) {
		if id, ok := credential.KeyIDOf(blob); ok {
			ids[id] = true
		}
	}
	for _, q := range []string{
		`SELECT client_secret FROM credentials`,
		`SELECT tokens FROM credentials WHERE tokens IS NOT NULL`,
		`SELECT secret FROM webhook_subscriptions`,
	} {
		blobs, err := queryAll(ctx, s.db, q, nil, func(sc scanner) ([]byte, error) {
			var b []byte
			return b, sc.Scan(&b)
		})
		if err != nil {
			return nil, fmt.Errorf("read the sealed secrets: %w", err)
		}
		for _, b := range blobs {
			add(b)
		}
	}
	sealed, err := queryAll(ctx, s.db, `SELECT destination_sealed FROM connections WHERE destination_sealed <> ''`, nil,
		func(sc scanner) (string, error) {
			var v string
			return v, sc.Scan(&v)
		})
	if err != nil {
		return nil, fmt.Errorf("read the sealed secrets: %w", err)
	}
	for _, v := range sealed {
		if b, err := base64.StdEncoding.DecodeString(v); err == nil {
			add(b)
		}
	}
	out := make([]string, 0, len(ids))
	for id := range ids {
		out = append(out, id)
	}
	sort.Strings(out)
	return out, nil
}
