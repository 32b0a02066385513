package sqlstore_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/proxy"
	"github.com/outreach-connector/outreach-connector/internal/sqlstore"
)

// TestAPIKeys: a key is found by its hash only, keeps its credentials,
// records its last use, and stays findable (as revoked) once revoked; a
// name is taken once; on SQLite and PostgreSQL.
func TestAPIKeys(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			keys := b.open(t).(interface{ APIKeys() *sqlstore.APIKeys }).APIKeys()
			now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			secret, k, err := proxy.NewKey("billing", []string{"cred_a", "cred_b"}, now)
			if err != nil {
				t.Fatal(err)
			}
			if err := keys.CreateKey(ctx, k); err != nil {
				t.Fatal(err)
			}
			_, again, _ := proxy.NewKey("billing", []string{"cred_a"}, now)
			if err := keys.CreateKey(ctx, again); !errors.Is(err, proxy.ErrKeyExists) {
				t.Fatalf("second key of the same name: %v; want ErrKeyExists", err)
			}
			if _, err := keys.KeyByHash(ctx, proxy.HashKey(secret+"x")); !errors.Is(err, proxy.ErrKeyNotFound) {
				t.Fatalf("wrong key: %v; want ErrKeyNotFound", err)
			}
			got, err := keys.KeyByHash(ctx, proxy.HashKey(secret))
			if err != nil || got.Name != "billing" || !got.Allows("cred_b") || got.Allows("cred_c") || !got.LastUsed.IsZero() {
				t.Fatalf("KeyByHash: %+v, %v", got, err)
			}
			if err := keys.TouchKey(ctx, k.ID, now.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := keys.RevokeKey(ctx, "billing", now.Add(2*time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := keys.RevokeKey(ctx, "nobody", now); !errors.Is(err, proxy.ErrKeyNotFound) {
				t.Fatalf("revoke unknown: %v", err)
			}
			list, err := keys.ListKeys(ctx)
			if err != nil || len(list) != 1 {
				t.Fatalf("ListKeys: %v, %v", list, err)
			}
			if !list[0].LastUsed.Equal(now.Add(time.Minute)) || !list[0].Revoked.Equal(now.Add(2*time.Minute)) || list[0].Allows("cred_a") {
				t.Fatalf("listed %+v; want last use, revocation and no credential allowed", list[0])
			}
		})
	}
}

// TestIdempotency: the first Begin claims, a repeat while pending is in
// progress, after Finish it gets the kept answer, another request with the
// key is a mismatch, Abandon frees the key, and an expired entry is gone.
func TestIdempotency(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			s := b.open(t).(interface{ Idempotency() *sqlstore.Idempotency }).Idempotency()
			now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			exp := now.Add(proxy.IdempotencyTTL)
			begin := func(key, fp string, at time.Time) (proxy.Claim, *proxy.Stored) {
				t.Helper()
				c, st, err := s.Begin(ctx, "key_1", key, fp, at, at.Add(proxy.IdempotencyTTL))
				if err != nil {
					t.Fatal(err)
				}
				return c, st
			}
			if c, _ := begin("k1", "fp", now); c != proxy.Claimed {
				t.Fatalf("first Begin: %v", c)
			}
			if c, st := begin("k1", "fp", now.Add(time.Minute)); c != proxy.InProgress || !st.Started.Equal(now) {
				t.Fatalf("Begin while pending: %v %+v; want in progress since the claim", c, st)
			}
			if err := s.Finish(ctx, "key_1", "k1", &proxy.Stored{Status: 201, Header: http.Header{"Content-Type": {"application/vnd.api+json"}}, Body: []byte(`{"data":{}}`)}); err != nil {
				t.Fatal(err)
			}
			c, st := begin("k1", "fp", now.Add(time.Hour))
			if c != proxy.Done || st.Status != 201 || string(st.Body) != `{"data":{}}` || st.Header.Get("Content-Type") != "application/vnd.api+json" {
				t.Fatalf("Begin after Finish: %v %+v", c, st)
			}
			if c, _ := begin("k1", "other", now); c != proxy.Mismatch {
				t.Fatalf("Begin with another fingerprint: %v", c)
			}
			if c, _, _ := s.Begin(ctx, "key_2", "k1", "other", now, exp); c != proxy.Claimed {
				t.Fatalf("the same key of another owner: %v; want its own claim", c)
			}
			if c, _ := begin("k2", "fp", now); c != proxy.Claimed {
				t.Fatal(c)
			}
			if err := s.Abandon(ctx, "key_1", "k2"); err != nil {
				t.Fatal(err)
			}
			if c, _ := begin("k2", "fp", now); c != proxy.Claimed {
				t.Fatalf("Begin after Abandon: %v", c)
			}
			if c, _ := begin("k1", "other", exp.Add(time.Second)); c != proxy.Claimed {
				t.Fatalf("Begin after expiry: %v; want a fresh claim", c)
			}
		})
	}
}
