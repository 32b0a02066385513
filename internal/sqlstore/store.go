// Package sqlstore implements credential.Store and connection.Store
// (Connections) over database/sql with SQL that SQLite and PostgreSQL both
// run ($n placeholders, RETURNING, ON CONFLICT). The sqlite and postgres
// packages open the database and hand it here with their migrations;
// nothing here knows which one it is.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/credential"
)

// Store is a credential.Store on a SQL database.
type Store struct {
	db       *sql.DB
	isUnique func(error) bool
}

// Dialect is what the store needs to know of its database.
type Dialect struct {
	// IsUnique tells a unique violation from other errors.
	IsUnique func(error) bool
	// BeginMigrations starts the transaction that applies migrations and
	// makes a second process wait for it to end, so that processes opening
	// a new database at once migrate one after another ("BEGIN IMMEDIATE";
	// "BEGIN" and a transaction-scoped advisory lock). Unset, "BEGIN".
	BeginMigrations []string
}

// New returns a store on db after applying migrations (files named
// NNN_name.sql, applied in order, once each).
func New(ctx context.Context, db *sql.DB, migrations fs.FS, d Dialect) (*Store, error) {
	if err := migrate(ctx, db, migrations, d.BeginMigrations); err != nil {
		return nil, err
	}
	return &Store{db: db, isUnique: d.IsUnique}, nil
}

// DB returns the database.
func (s *Store) DB() *sql.DB { return s.db }

// migrate applies the migrations not yet recorded in schema_migrations, in
// one transaction begun by begin. A database with all of them applied is
// only read.
func migrate(ctx context.Context, db *sql.DB, migrations fs.FS, begin []string) error {
	names, err := fs.Glob(migrations, "*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	if applied(ctx, db, names) {
		return nil
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if len(begin) == 0 {
		begin = []string{"BEGIN"}
	}
	for _, stmt := range begin {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
			return fmt.Errorf("begin migrations: %w", err)
		}
	}
	if err := migrateIn(ctx, conn, migrations, names); err != nil {
		conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit migrations: %w", err)
	}
	return nil
}

// applied says whether schema_migrations records every one of names.
func applied(ctx context.Context, db *sql.DB, names []string) bool {
	rows, err := db.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return false // none yet, or the next statements will say why
	}
	defer rows.Close()
	done := map[string]bool{}
	for rows.Next() {
		var v string
		if rows.Scan(&v) != nil {
			return false
		}
		done[v] = true
	}
	if rows.Err() != nil {
		return false
	}
	for _, n := range names {
		if !done[n] {
			return false
		}
	}
	return true
}

func migrateIn(ctx context.Context, conn *sql.Conn, migrations fs.FS, names []string) error {
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, name := range names {
		var n int
		if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, name).Scan(&n); err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		if n > 0 {
			continue
		}
		body, err := fs.ReadFile(migrations, name)
		if err != nil {
			return err
		}
		for _, stmt := range strings.Split(string(body), ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migration %s: %w", name, err)
			}
		}
		if _, err := conn.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, name, time.Now().UnixMilli()); err != nil {
			return fmt.Errorf("record migration %s: %w", name, err)
		}
	}
	return nil
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

const credentialColumns = `id, name, description, client_id, client_secret, scopes, environment, api_base_url, redirect_uri,
status, outreach_user_id, outreach_user_email, outreach_org, tokens, token_expires_at, last_refresh_at, last_error,
created_at, updated_at`

func scanRecord(row scanner) (*credential.Record, error) {
	var r credential.Record
	var scopes, env, status string
	var expires, refreshed, created, updated int64
	err := row.Scan(&r.ID, &r.Name, &r.Description, &r.ClientID, &r.ClientSecret, &scopes, &env, &r.APIBaseURL, &r.RedirectURI,
		&status, &r.OutreachUserID, &r.OutreachUserEmail, &r.OutreachOrg, &r.Tokens, &expires, &refreshed, &r.LastError,
		&created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, credential.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(scopes), &r.Scopes); err != nil {
		return nil, fmt.Errorf("credential %s: scopes: %w", r.ID, err)
	}
	r.Environment, r.Status = credential.Environment(env), credential.Status(status)
	r.TokenExpiresAt, r.LastRefreshAt, r.CreatedAt, r.UpdatedAt = fromMS(expires), fromMS(refreshed), fromMS(created), fromMS(updated)
	return &r, nil
}

func (s *Store) args(r *credential.Record) ([]any, error) {
	scopes, err := json.Marshal(r.Scopes)
	if err != nil {
		return nil, err
	}
	if r.Scopes == nil {
		scopes = []byte("[]")
	}
	return []any{r.ID, r.Name, r.Description, r.ClientID, r.ClientSecret, string(scopes), string(r.Environment), r.APIBaseURL,
		r.RedirectURI, string(r.Status), r.OutreachUserID, r.OutreachUserEmail, r.OutreachOrg, r.Tokens, ms(r.TokenExpiresAt),
		ms(r.LastRefreshAt), r.LastError, ms(r.CreatedAt), ms(r.UpdatedAt)}, nil
}

// CreateCredential implements credential.Store.
func (s *Store) CreateCredential(ctx context.Context, r *credential.Record) error {
	args, err := s.args(r)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO credentials (`+credentialColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`, args...)
	if err != nil && s.isUnique(err) {
		return credential.ErrNameTaken
	}
	return err
}

// GetCredential implements credential.Store.
func (s *Store) GetCredential(ctx context.Context, id string) (*credential.Record, error) {
	return scanRecord(s.db.QueryRowContext(ctx, `SELECT `+credentialColumns+` FROM credentials WHERE id = $1`, id))
}

// GetCredentialByName implements credential.Store.
func (s *Store) GetCredentialByName(ctx context.Context, name string) (*credential.Record, error) {
	return scanRecord(s.db.QueryRowContext(ctx, `SELECT `+credentialColumns+` FROM credentials WHERE name = $1`, name))
}

// ListCredentials implements credential.Store.
func (s *Store) ListCredentials(ctx context.Context) ([]*credential.Record, error) {
	return queryAll(ctx, s.db, `SELECT `+credentialColumns+` FROM credentials ORDER BY name`, nil, scanRecord)
}

// UpdateCredential implements credential.Store.
func (s *Store) UpdateCredential(ctx context.Context, r *credential.Record) error {
	args, err := s.args(r)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE credentials SET name = $2, description = $3, client_id = $4, client_secret = $5,
		scopes = $6, environment = $7, api_base_url = $8, redirect_uri = $9, status = $10, outreach_user_id = $11,
		outreach_user_email = $12, outreach_org = $13, tokens = $14, token_expires_at = $15, last_refresh_at = $16,
		last_error = $17, created_at = $18, updated_at = $19 WHERE id = $1`, args...)
	if err != nil {
		if s.isUnique(err) {
			return credential.ErrNameTaken
		}
		return err
	}
	return exactlyOne(res, credential.ErrNotFound)
}

// SaveTokens implements credential.Store.
func (s *Store) SaveTokens(ctx context.Context, id string, u credential.TokenUpdate) error {
	res, err := s.db.ExecContext(ctx, `UPDATE credentials SET tokens = $2, token_expires_at = $3, last_refresh_at = $4,
		status = $5, last_error = $6, updated_at = $7,
		outreach_user_id = CASE WHEN $8 = '' THEN outreach_user_id ELSE $8 END,
		outreach_user_email = CASE WHEN $9 = '' THEN outreach_user_email ELSE $9 END,
		outreach_org = CASE WHEN $10 = '' THEN outreach_org ELSE $10 END
		WHERE id = $1`,
		id, u.Tokens, ms(u.TokenExpiresAt), ms(u.LastRefreshAt), string(u.Status), u.LastError, ms(u.UpdatedAt),
		u.OutreachUserID, u.OutreachUserEmail, u.OutreachOrg)
	if err != nil {
		return err
	}
	return exactlyOne(res, credential.ErrNotFound)
}

// SaveIdentity implements credential.Store.
func (s *Store) SaveIdentity(ctx context.Context, id, userID, email, org string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE credentials SET outreach_user_id = $2, outreach_user_email = $3, outreach_org = $4
		WHERE id = $1`, id, userID, email, org)
	if err != nil {
		return err
	}
	return exactlyOne(res, credential.ErrNotFound)
}

// DeleteCredential implements credential.Store.
func (s *Store) DeleteCredential(ctx context.Context, id string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{`DELETE FROM credential_leases WHERE credential_id = $1`, `DELETE FROM oauth_states WHERE credential_id = $1`,
		`DELETE FROM credential_events WHERE credential_id = $1`} {
		if _, err := tx.ExecContext(ctx, q, id); err != nil {
			return err
		}
	}
	// Connections reference their credential (a foreign key without
	// cascade): the check names them (rolling back the deletes above),
	// the key settles a race with a concurrent create. It comes after a
	// write so that SQLite's transaction already holds the write lock.
	names, err := connectionNames(ctx, tx, id)
	if err != nil {
		return err
	}
	if len(names) > 0 {
		return inUse(names)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM credentials WHERE id = $1`, id)
	if isForeignKey(err) {
		tx.Rollback()
		if names, nerr := connectionNames(ctx, s.db, id); nerr == nil && len(names) > 0 {
			return inUse(names)
		}
		return credential.ErrInUse
	}
	if err != nil {
		return err
	}
	if err := exactlyOne(res, credential.ErrNotFound); err != nil {
		return err
	}
	return tx.Commit()
}

// AcquireLease implements credential.Store: one statement that inserts
// the lease, or takes it over when it expired or is already owner's.
func (s *Store) AcquireLease(ctx context.Context, id, owner string, now, expires time.Time) (bool, error) {
	rows, err := s.db.QueryContext(ctx, `INSERT INTO credential_leases (credential_id, owner, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (credential_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		WHERE credential_leases.expires_at <= $4 OR credential_leases.owner = excluded.owner
		RETURNING owner`, id, owner, ms(expires), ms(now))
	if err != nil {
		return false, err
	}
	defer rows.Close()
	got := rows.Next()
	return got, rows.Err()
}

// ReleaseLease implements credential.Store.
func (s *Store) ReleaseLease(ctx context.Context, id, owner string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM credential_leases WHERE credential_id = $1 AND owner = $2`, id, owner)
	return err
}

// SaveState implements credential.Store.
func (s *Store) SaveState(ctx context.Context, st *credential.State) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO oauth_states (hash, credential_id, browser, verifier, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		st.Hash, st.CredentialID, st.Browser, st.Verifier, ms(st.ExpiresAt))
	return err
}

// TakeState implements credential.Store.
func (s *Store) TakeState(ctx context.Context, hash, browser string) (*credential.State, error) {
	st := credential.State{Hash: hash, Browser: browser}
	var expires int64
	err := s.db.QueryRowContext(ctx, `DELETE FROM oauth_states WHERE hash = $1 AND browser = $2 RETURNING credential_id, verifier, expires_at`,
		hash, browser).Scan(&st.CredentialID, &st.Verifier, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, credential.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	st.ExpiresAt = fromMS(expires)
	return &st, nil
}

// AddEvent implements credential.Store.
func (s *Store) AddEvent(ctx context.Context, e credential.Event) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO credential_events (credential_id, at, kind, message) VALUES ($1, $2, $3, $4)`,
		e.CredentialID, ms(e.At), e.Kind, e.Message)
	return err
}

// ListEvents implements credential.Store.
func (s *Store) ListEvents(ctx context.Context, credentialID string, limit int) ([]credential.Event, error) {
	return queryAll(ctx, s.db, `SELECT at, kind, message FROM credential_events WHERE credential_id = $1 ORDER BY id DESC LIMIT $2`,
		[]any{credentialID, limit}, func(row scanner) (credential.Event, error) {
			e := credential.Event{CredentialID: credentialID}
			var at int64
			err := row.Scan(&at, &e.Kind, &e.Message)
			e.At = fromMS(at)
			return e, err
		})
}

var _ credential.Store = (*Store)(nil)
