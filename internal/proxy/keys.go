package proxy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"time"
)

// KeyPrefix starts every API key, so that a key is recognisable in a
// secret scanner and told apart from an Outreach token.
const KeyPrefix = "ock_"

// Key is an API key as stored: never the key itself, only its hash.
type Key struct {
	ID   string
	Name string
	// Hash is the hex SHA-256 of the key.
	Hash string
	// Credentials are the ids of the credentials the key may use.
	Credentials []string
	Created     time.Time
	LastUsed    time.Time // zero: never used
	Revoked     time.Time // zero: live
}

// Allows reports whether the key may use the credential with the given id.
func (k *Key) Allows(credentialID string) bool {
	return k.Revoked.IsZero() && slices.Contains(k.Credentials, credentialID)
}

// Errors of a KeyStore.
var (
	ErrKeyNotFound = errors.New("no such API key")
	ErrKeyExists   = errors.New("an API key of that name exists")
)

// KeyStore keeps API keys (sqlstore.APIKeys implements it).
type KeyStore interface {
	CreateKey(ctx context.Context, k *Key) error
	// KeyByHash returns the key with the hash, revoked or not, or
	// ErrKeyNotFound.
	KeyByHash(ctx context.Context, hash string) (*Key, error)
	ListKeys(ctx context.Context) ([]*Key, error)
	// RevokeKey revokes the key of that name (again is not an error).
	RevokeKey(ctx context.Context, name string, at time.Time) error
	// TouchKey records a use.
	TouchKey(ctx context.Context, id string, at time.Time) error
}

var keyName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// NewKey makes a key for the named caller and the credentials (ids): it
// returns the key, to be shown once, and its record.
func NewKey(name string, credentials []string, now time.Time) (string, *Key, error) {
	if !keyName.MatchString(name) {
		return "", nil, fmt.Errorf("key name %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	if len(credentials) == 0 {
		return "", nil, errors.New("a key needs at least one credential it may use")
	}
	b := make([]byte, 32)
	rand.Read(b)
	secret := KeyPrefix + base64.RawURLEncoding.EncodeToString(b)
	id := make([]byte, 8)
	rand.Read(id)
	return secret, &Key{ID: "key_" + hex.EncodeToString(id), Name: name, Hash: HashKey(secret), Credentials: credentials, Created: now.UTC()}, nil
}

// HashKey is how a key is stored and looked up.
func HashKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// keyFrom returns the API key a request presents: "Authorization: Bearer
// ock_..." or "X-Api-Key: ock_...".
func keyFrom(r *http.Request) (string, bool) {
	if v := r.Header.Get("X-Api-Key"); v != "" {
		return v, true
	}
	v := r.Header.Get("Authorization")
	if len(v) > 7 && (v[:7] == "Bearer " || v[:7] == "bearer ") {
		return v[7:], true
	}
	return "", false
}
