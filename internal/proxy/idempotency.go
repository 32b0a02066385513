package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"time"
)

// IdempotencyTTL is how long the answer to a write sent with an
// Idempotency-Key is kept.
const IdempotencyTTL = 24 * time.Hour

// Stored is a kept answer.
type Stored struct {
	Status int
	Header http.Header
	Body   []byte
	// Started is when the claim was made; Begin sets it with InProgress,
	// so that a claim whose process died can be told from a running one.
	Started time.Time
}

// Claim is what Begin finds for an (owner, key).
type Claim int

// The outcomes of Begin.
const (
	// Claimed: no answer is kept; the caller now holds the key and must
	// Finish or Abandon it.
	Claimed Claim = iota + 1
	// Done: an answer is kept (returned with it).
	Done
	// InProgress: another request with the key has not finished (the
	// Stored returned holds only Started).
	InProgress
	// Mismatch: the key was used for another request (method, path or
	// body differ).
	Mismatch
)

// ErrIdempotencyLost says that Finish found the claim gone.
var ErrIdempotencyLost = errors.New("the idempotency claim is gone")

// IdempotencyStore keeps the answers of keyed writes (sqlstore.Idempotency
// implements it on the app database, so that every node shares them).
type IdempotencyStore interface {
	// Begin claims (owner, key) for a request of the given fingerprint, or
	// reports what holds it; an expired entry is dropped first.
	Begin(ctx context.Context, owner, key, fingerprint string, now, expires time.Time) (Claim, *Stored, error)
	// Finish keeps the answer for the claim.
	Finish(ctx context.Context, owner, key string, s *Stored) error
	// Abandon drops the claim: the request never reached Outreach.
	Abandon(ctx context.Context, owner, key string) error
}

// fingerprint binds a key to one request.
func fingerprint(method, path string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}
