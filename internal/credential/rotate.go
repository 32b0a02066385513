package credential

import (
	"context"
	"fmt"
)

// ReencryptAll seals every credential's client secret and tokens with the
// manager's current key, so an old key can later be dropped. The keyring
// must still hold the old keys (see Keyring.Rotated). Each credential is
// re-encrypted under its refresh lease, so no concurrent refresh is
// overwritten. It returns how many credentials it re-encrypted.
func (m *Manager) ReencryptAll(ctx context.Context) (int, error) {
	recs, err := m.store.ListCredentials(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range recs {
		if err := m.reencrypt(ctx, r.ID); err != nil {
			return n, fmt.Errorf("credential %s: re-encrypt: %w", r.Name, err)
		}
		n++
	}
	return n, nil
}

func (m *Manager) reencrypt(ctx context.Context, id string) error {
	return m.withLease(ctx, id, func(rec *Record) error {
		t, secret, err := m.open(rec)
		if err != nil {
			return err
		}
		if rec.ClientSecret, err = m.keys.Seal([]byte(secret), aad(rec.ID, "client_secret")); err != nil {
			return err
		}
		if t != nil {
			if rec.Tokens, err = m.sealTokens(rec.ID, t); err != nil {
				return err
			}
		}
		rec.UpdatedAt = m.now().UTC()
		return m.store.UpdateCredential(ctx, rec)
	})
}
