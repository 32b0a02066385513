package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Sessions keeps the web UI's sign-in sessions (web.SessionStore).
type Sessions struct{ db *sql.DB }

// Sessions returns the store's sessions.
func (s *Store) Sessions() *Sessions { return &Sessions{db: s.db} }

// CreateSession keeps a session until expires, and forgets the ones that
// ended before now.
func (s *Sessions) CreateSession(ctx context.Context, hash string, now, expires time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM web_sessions WHERE expires_at < $1`, now.UnixMilli()); err != nil {
		return fmt.Errorf("sessions: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO web_sessions (id_hash, expires_at) VALUES ($1, $2)`, hash, expires.UnixMilli()); err != nil {
		return fmt.Errorf("sessions: %w", err)
	}
	return nil
}

// SessionExpiry returns when the session ends; ok false when there is none.
func (s *Sessions) SessionExpiry(ctx context.Context, hash string) (time.Time, bool, error) {
	var ms int64
	err := s.db.QueryRowContext(ctx, `SELECT expires_at FROM web_sessions WHERE id_hash = $1`, hash).Scan(&ms)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("sessions: %w", err)
	}
	return time.UnixMilli(ms), true, nil
}

// DeleteSession ends a session.
func (s *Sessions) DeleteSession(ctx context.Context, hash string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM web_sessions WHERE id_hash = $1`, hash); err != nil {
		return fmt.Errorf("sessions: %w", err)
	}
	return nil
}
