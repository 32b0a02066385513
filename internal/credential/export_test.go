package credential

import (
	"context"
	"time"
)

// SetTokensForTest stores tokens as if an authorization had produced them.
func (m *Manager) SetTokensForTest(ctx context.Context, id, access, refresh string, expiry time.Time) error {
	rec, err := m.store.GetCredential(ctx, id)
	if err != nil {
		return err
	}
	return m.saveFresh(ctx, rec, &tokens{Access: access, Refresh: refresh, Expiry: expiry})
}

// RefreshTokenForTest returns the stored refresh token, so a test can
// revoke it at the sandbox as Outreach would.
func (m *Manager) RefreshTokenForTest(ctx context.Context, id string) (string, error) {
	rec, err := m.store.GetCredential(ctx, id)
	if err != nil {
		return "", err
	}
	t, _, err := m.open(rec)
	if err != nil || t == nil {
		return "", err
	}
	return t.Refresh, nil
}
