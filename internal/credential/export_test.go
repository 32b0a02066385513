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
	return m.saveFresh(ctx, rec, &tokens{Access: access, Refresh: refresh, Expiry: expiry}, false)
}
