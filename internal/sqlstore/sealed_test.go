package sqlstore_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/sqlstore"
)

func testKeys(t *testing.T) *credential.Keyring {
	t.Helper()
	k, err := credential.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// onlyCurrent is k without its older keys.
func onlyCurrent(t *testing.T, k *credential.Keyring) *credential.Keyring {
	t.Helper()
	first, _, _ := strings.Cut(k.Export(), ",")
	only, err := credential.ParseKeys(first)
	if err != nil {
		t.Fatal(err)
	}
	return only
}

// rawDestination reads the stored columns of connection id.
func rawDestination(t *testing.T, db appDB, id string) (clear, sealed string) {
	t.Helper()
	err := db.DB().QueryRowContext(context.Background(), `SELECT destination_url, destination_sealed FROM connections WHERE id = $1`, id).
		Scan(&clear, &sealed)
	if err != nil {
		t.Fatal(err)
	}
	return clear, sealed
}

const secretURL = "postgres://u:hunter2@db.example:5432/warehouse?sslmode=disable"

// withSecretConnection creates connection name into secretURL in db, with
// a store that seals by new keys.
func withSecretConnection(t *testing.T, db appDB, name string) (appDB, *credential.Keyring, *sqlstore.Connections, *connection.Connection) {
	t.Helper()
	keys := testKeys(t)
	s := db.ConnectionsSealedBy(keys)
	c := newConn(t, db, name)
	c.DestinationURL = secretURL
	if err := s.CreateConnection(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return db, keys, s, c
}

// A destination URL's password is stored sealed, the URL in clear only
// redacted; the store gives the whole URL back, and a store without the
// key refuses with ErrSealed rather than a URL without its password.
func TestDestinationPasswordSealed(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db, _, s, c := withSecretConnection(t, b.open(t), "secret")
			plain := newConn(t, db, "plain")
			plain.DestinationURL = "sqlite:./plain.db"
			if err := db.Connections().CreateConnection(ctx, plain); err != nil {
				t.Fatalf("a URL without a password needs no key: %v", err)
			}
			clear, sealed := rawDestination(t, db, c.ID)
			if strings.Contains(clear, "hunter2") || strings.Contains(sealed, "hunter2") || sealed == "" ||
				clear != "postgres://u:xxxxx@db.example:5432/warehouse?sslmode=disable" {
				t.Fatalf("stored destination_url %q, destination_sealed %q: want the redacted URL and a sealed one", clear, sealed)
			}
			if clear, sealed := rawDestination(t, db, plain.ID); clear != "sqlite:./plain.db" || sealed != "" {
				t.Fatalf("a URL without a password stored as %q, %q", clear, sealed)
			}
			got, err := s.GetConnection(ctx, c.ID)
			if err != nil || got.DestinationURL != secretURL {
				t.Fatalf("GetConnection = %v, %v; want the whole URL", got, err)
			}
			list, err := s.ListConnections(ctx)
			if err != nil || len(list) != 2 || list[1].DestinationURL != secretURL {
				t.Fatalf("ListConnections = %v, %v", list, err)
			}

			// Without the key: a clear error, never a broken URL.
			for name, other := range map[string]*sqlstore.Connections{"no keyring": db.Connections(), "another key": db.ConnectionsSealedBy(testKeys(t))} {
				if _, err := other.GetConnectionByName(ctx, "secret"); !errors.Is(err, sqlstore.ErrSealed) || strings.Contains(err.Error(), "hunter2") {
					t.Errorf("%s: GetConnectionByName: %v, want ErrSealed", name, err)
				}
				if _, err := other.ListConnections(ctx); !errors.Is(err, sqlstore.ErrSealed) {
					t.Errorf("%s: ListConnections: %v, want ErrSealed", name, err)
				}
				if got, err := other.GetConnection(ctx, plain.ID); err != nil || got.DestinationURL != "sqlite:./plain.db" {
					t.Errorf("%s: a connection without a password: %v, %v", name, got, err)
				}
			}
			again := newConn(t, db, "again")
			again.DestinationURL = "postgres://u:pw2@db.example/other"
			if err := db.Connections().CreateConnection(ctx, again); !errors.Is(err, sqlstore.ErrSealed) || strings.Contains(err.Error(), "pw2") {
				t.Fatalf("create with a password and no keyring: %v, want ErrSealed", err)
			}
			if _, err := s.GetConnection(ctx, again.ID); !errors.Is(err, connection.ErrNotFound) {
				t.Fatalf("the refused create left a row: %v", err)
			}

			// An update seals again (a new URL, a new password).
			got.DestinationURL = "postgres://u:swordfish@db.example:5432/warehouse"
			if err := s.UpdateConnection(ctx, got); err != nil {
				t.Fatal(err)
			}
			if clear, _ := rawDestination(t, db, c.ID); strings.Contains(clear, "swordfish") {
				t.Fatalf("updated destination_url %q holds the password", clear)
			}
			if got, err := s.GetConnection(ctx, c.ID); err != nil || got.DestinationURL != "postgres://u:swordfish@db.example:5432/warehouse" {
				t.Fatalf("after update: %v, %v", got, err)
			}
		})
	}
}

// Rows written before sealing are sealed by SealDestinations (the first
// open with the key); after a key rotation it seals them again with the
// new key, so the old one can go.
func TestSealDestinationsMigratesAndRotates(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db, keys, s, c := withSecretConnection(t, b.open(t), "legacy")
			// As an earlier version stored it: the whole URL in clear.
			if _, err := db.DB().ExecContext(ctx, `UPDATE connections SET destination_url = $2, destination_sealed = '' WHERE id = $1`,
				c.ID, secretURL); err != nil {
				t.Fatal(err)
			}
			if got, err := db.Connections().GetConnection(ctx, c.ID); err != nil || got.DestinationURL != secretURL {
				t.Fatalf("a row not yet sealed reads as it is: %v, %v", got, err)
			}
			if n, err := db.Connections().SealDestinations(ctx); n != 0 || err != nil {
				t.Fatalf("SealDestinations without a keyring = %d, %v; want 0, nil", n, err)
			}
			if n, err := s.SealDestinations(ctx); n != 1 || err != nil {
				t.Fatalf("SealDestinations = %d, %v; want 1", n, err)
			}
			clear, sealed := rawDestination(t, db, c.ID)
			if strings.Contains(clear, "hunter2") || sealed == "" {
				t.Fatalf("after sealing: destination_url %q, destination_sealed %q", clear, sealed)
			}
			if n, err := s.SealDestinations(ctx); n != 0 || err != nil {
				t.Fatalf("SealDestinations again = %d, %v; want 0 (nothing left)", n, err)
			}

			rotated, err := keys.Rotated()
			if err != nil {
				t.Fatal(err)
			}
			if n, err := db.ConnectionsSealedBy(rotated).SealDestinations(ctx); n != 1 || err != nil {
				t.Fatalf("SealDestinations after rotation = %d, %v; want 1", n, err)
			}
			newOnly := onlyCurrent(t, rotated)
			if got, err := db.ConnectionsSealedBy(newOnly).GetConnection(ctx, c.ID); err != nil || got.DestinationURL != secretURL {
				t.Fatalf("with the new key alone: %v, %v", got, err)
			}
			if _, err := s.GetConnection(ctx, c.ID); !errors.Is(err, sqlstore.ErrSealed) {
				t.Fatalf("with the old key alone: %v, want ErrSealed", err)
			}
		})
	}
}

// SealedKeyIDs names the keys that sealed what the database holds: none
// in a new database, then the key of a sealed destination password and
// of a credential's client secret.
func TestSealedKeyIDs(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db := b.open(t)
			if ids, err := db.SealedKeyIDs(ctx); len(ids) != 0 || err != nil {
				t.Fatalf("a new database: %v, %v; want none", ids, err)
			}
			_, keys, _, _ := withSecretConnection(t, db, "secret")
			if ids, err := db.SealedKeyIDs(ctx); err != nil || !slices.Equal(ids, []string{keys.Current()}) {
				t.Fatalf("with a sealed destination password: %v, %v; want [%s]", ids, err, keys.Current())
			}
			other := testKeys(t)
			m, err := credential.NewManager(credential.Options{Store: db, Keyring: other})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.Create(ctx, credential.NewCredential{Name: "c", ClientID: "id", ClientSecret: "s3cret", RedirectURI: "http://127.0.0.1/cb"}); err != nil {
				t.Fatal(err)
			}
			want := []string{keys.Current(), other.Current()}
			slices.Sort(want)
			if ids, err := db.SealedKeyIDs(ctx); err != nil || !slices.Equal(ids, want) {
				t.Fatalf("with a credential too: %v, %v; want %v", ids, err, want)
			}
		})
	}
}
