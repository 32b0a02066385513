package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

// SessionStore keeps the UI's sign-in sessions. The app database's
// (sqlstore) lets every node behind one load balancer know a session,
// and a restart sign nobody out; without one they live in this process.
// A session is named by the SHA-256 of its cookie, so the store holds
// nothing a browser could present.
type SessionStore interface {
	// CreateSession keeps a session until expires, and may forget those
	// ended before now.
	CreateSession(ctx context.Context, hash string, now, expires time.Time) error
	// SessionExpiry returns when the session ends; ok false for none.
	SessionExpiry(ctx context.Context, hash string) (expires time.Time, ok bool, err error)
	DeleteSession(ctx context.Context, hash string) error
}

// sessionHash names the session of cookie value sid in a SessionStore.
func sessionHash(sid string) string {
	sum := sha256.Sum256([]byte(sid))
	return hex.EncodeToString(sum[:])
}

// csrfFor is the form token of session sid: an HMAC keyed with the
// session's own secret, so every node computes the same without a shared
// key, and nobody without the session cookie can.
func csrfFor(sid string) string {
	mac := hmac.New(sha256.New, []byte(sid))
	mac.Write([]byte("outreach-connector csrf"))
	return hex.EncodeToString(mac.Sum(nil))
}

// memSessions is a SessionStore in this process.
type memSessions struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func newMemSessions() *memSessions { return &memSessions{m: map[string]time.Time{}} }

func (s *memSessions) CreateSession(_ context.Context, hash string, now, expires time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, exp := range s.m {
		if now.After(exp) {
			delete(s.m, h)
		}
	}
	s.m[hash] = expires
	return nil
}

func (s *memSessions) SessionExpiry(_ context.Context, hash string) (time.Time, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.m[hash]
	return exp, ok, nil
}

func (s *memSessions) DeleteSession(_ context.Context, hash string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, hash)
	return nil
}
