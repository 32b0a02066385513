package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/sqlstore"
	"github.com/outreach-connector/outreach-connector/internal/web"
)

var _ web.SessionStore = (*sqlstore.Sessions)(nil)

// TestSessions: a session is found until it is deleted, with its expiry;
// creating one forgets those that have ended; on SQLite and PostgreSQL.
func TestSessions(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			s := b.open(t).(interface{ Sessions() *sqlstore.Sessions }).Sessions()
			later := time.Now().Add(time.Hour).Truncate(time.Millisecond)
			if err := s.CreateSession(ctx, "ended", time.Now(), time.Now().Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := s.CreateSession(ctx, "a", time.Now(), later); err != nil {
				t.Fatal(err)
			}
			if exp, ok, err := s.SessionExpiry(ctx, "a"); err != nil || !ok || !exp.Equal(later) {
				t.Fatalf("session a: %v %v %v; want it until %v", exp, ok, err, later)
			}
			if _, ok, err := s.SessionExpiry(ctx, "ended"); err != nil || ok {
				t.Errorf("an ended session outlived the next sign-in: %v %v", ok, err)
			}
			if err := s.DeleteSession(ctx, "a"); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := s.SessionExpiry(ctx, "a"); err != nil || ok {
				t.Errorf("a deleted session is still found: %v %v", ok, err)
			}
		})
	}
}
