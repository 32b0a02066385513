package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
)

// MaxRunsKept is how many runs of each connection the history keeps;
// FinishRun deletes the older ones.
const MaxRunsKept = 200

// Connections is a connection.Store on the same database as the
// credentials (tables connections and connection_runs). A destination
// URL's password is sealed with its keyring (see sealed.go).
type Connections struct {
	db       *sql.DB
	isUnique func(error) bool
	keys     *credential.Keyring
}

// Connections returns the connection store on s's database without a
// keyring: a destination URL with a password can be neither stored nor
// read (ErrSealed). The app opens it with ConnectionsSealedBy.
func (s *Store) Connections() *Connections { return s.ConnectionsSealedBy(nil) }

// ConnectionsSealedBy returns the connection store on s's database that
// seals destination URLs' passwords with keys, the credentials' keyring.
func (s *Store) ConnectionsSealedBy(keys *credential.Keyring) *Connections {
	return &Connections{db: s.db, isUnique: s.isUnique, keys: keys}
}

var _ connection.Store = (*Connections)(nil)

// NamespaceKey is what makes two connections clash: the namespace with
// the destination URL normalised (spaces trimmed; the scheme lowercased;
// for PostgreSQL postgresql:// read as postgres://, the password and the
// host's case ignored and the query sorted; for sqlite: and jsonl: the
// path cleaned). Two connections with one key write into the same tables.
func NamespaceKey(destinationURL, namespace string) string {
	return namespace + " " + normaliseDestination(destinationURL)
}

func normaliseDestination(raw string) string {
	raw = strings.TrimSpace(raw)
	scheme, rest, ok := strings.Cut(raw, ":")
	if !ok {
		return raw
	}
	scheme = strings.ToLower(scheme)
	switch scheme {
	case "sqlite", "jsonl":
		p := strings.TrimPrefix(rest, "//")
		if p == "" {
			return scheme + ":"
		}
		return scheme + ":" + path.Clean(p)
	case "postgres", "postgresql":
		u, err := url.Parse(raw)
		if err != nil {
			return raw
		}
		u.Scheme = "postgres"
		if u.User != nil {
			u.User = url.User(u.User.Username())
		}
		u.Host = strings.ToLower(u.Host)
		q := u.Query()
		q.Del("password")
		u.RawQuery = q.Encode()
		u.Fragment, u.RawFragment = "", ""
		return u.String()
	}
	return scheme + ":" + rest
}

const connectionColumns = `id, name, credential_id, direction, destination_url, destination_sealed, namespace, namespace_key,
streams, schedule, start_date, page_size, quota_share, paused, notify_url, created_at, updated_at, live, load_spec`

func (s *Connections) connectionArgs(c *connection.Connection) ([]any, error) {
	streams, err := json.Marshal(c.Streams) // nil stays null: every readable stream
	if err != nil {
		return nil, err
	}
	clear, sealed, err := s.sealDestination(c)
	if err != nil {
		return nil, err
	}
	spec := ""
	if c.Load != nil {
		b, err := json.Marshal(c.Load)
		if err != nil {
			return nil, err
		}
		spec = string(b)
	}
	return []any{c.ID, c.Name, c.CredentialID, string(c.Direction), clear, sealed, c.Namespace,
		NamespaceKey(c.DestinationURL, c.Namespace), string(streams), c.Schedule.String(), ms(c.StartDate), c.PageSize,
		c.QuotaShare, c.Paused, c.NotifyURL, ms(c.CreatedAt), ms(c.UpdatedAt), c.Live, spec}, nil
}

func (s *Connections) scanConnection(row scanner) (*connection.Connection, error) {
	var c connection.Connection
	var direction, clear, sealed, key, streams, schedule, spec string
	var start, created, updated int64
	err := row.Scan(&c.ID, &c.Name, &c.CredentialID, &direction, &clear, &sealed, &c.Namespace, &key, &streams, &schedule,
		&start, &c.PageSize, &c.QuotaShare, &c.Paused, &c.NotifyURL, &created, &updated, &c.Live, &spec)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, connection.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if c.DestinationURL, err = s.openDestination(c.ID, c.Name, clear, sealed); err != nil {
		return nil, err
	}
	c.Direction = connection.Direction(direction)
	if err := json.Unmarshal([]byte(streams), &c.Streams); err != nil {
		return nil, fmt.Errorf("connection %s: streams: %w", c.ID, err)
	}
	if spec != "" {
		c.Load = &connection.LoadSpec{}
		if err := json.Unmarshal([]byte(spec), c.Load); err != nil {
			return nil, fmt.Errorf("connection %s: load: %w", c.ID, err)
		}
	}
	if c.Schedule, err = connection.ParseSchedule(schedule); err != nil {
		return nil, fmt.Errorf("connection %s: %w", c.ID, err)
	}
	c.StartDate, c.CreatedAt, c.UpdatedAt = fromMS(start), fromMS(created), fromMS(updated)
	return &c, nil
}

// writeError maps a failed insert or update of connection c. When both
// the name and the namespace clash, the name is reported (whichever index
// the database checked first).
func (s *Connections) writeError(ctx context.Context, err error, c *connection.Connection) error {
	switch {
	case s.isUnique(err) && strings.Contains(err.Error(), "namespace_key"):
		var n int
		if qerr := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM connections WHERE name = $1 AND id <> $2`, c.Name, c.ID).Scan(&n); qerr == nil && n > 0 {
			return connection.ErrNameTaken
		}
		return connection.ErrNamespaceTaken
	case s.isUnique(err) && strings.Contains(err.Error(), "name"):
		return connection.ErrNameTaken
	case isForeignKey(err):
		return fmt.Errorf("connection %q: credential %s: %w", c.Name, c.CredentialID, credential.ErrNotFound)
	}
	return err
}

// isForeignKey tells a foreign key violation: SQLite's message, or
// PostgreSQL's SQLSTATE 23503 (which pgx puts in the message).
func isForeignKey(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "FOREIGN KEY constraint failed") || strings.Contains(err.Error(), "SQLSTATE 23503"))
}

// CreateConnection implements connection.Store. The unique indexes on the
// name and the namespace key decide clashes, so two concurrent creates
// cannot both win. A credential id that does not exist gives
// credential.ErrNotFound.
func (s *Connections) CreateConnection(ctx context.Context, c *connection.Connection) error {
	args, err := s.connectionArgs(c)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO connections (`+connectionColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`, args...)
	if err != nil {
		return s.writeError(ctx, err, c)
	}
	return nil
}

// GetConnection implements connection.Store.
func (s *Connections) GetConnection(ctx context.Context, id string) (*connection.Connection, error) {
	return s.scanConnection(s.db.QueryRowContext(ctx, `SELECT `+connectionColumns+` FROM connections WHERE id = $1`, id))
}

// GetConnectionByName implements connection.Store.
func (s *Connections) GetConnectionByName(ctx context.Context, name string) (*connection.Connection, error) {
	return s.scanConnection(s.db.QueryRowContext(ctx, `SELECT `+connectionColumns+` FROM connections WHERE name = $1`, name))
}

// ListConnections implements connection.Store.
func (s *Connections) ListConnections(ctx context.Context) ([]*connection.Connection, error) {
	return queryAll(ctx, s.db, `SELECT `+connectionColumns+` FROM connections ORDER BY name`, nil, s.scanConnection)
}

// UpdateConnection implements connection.Store.
func (s *Connections) UpdateConnection(ctx context.Context, c *connection.Connection) error {
	args, err := s.connectionArgs(c)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE connections SET name = $2, credential_id = $3, direction = $4,
		destination_url = $5, destination_sealed = $6, namespace = $7, namespace_key = $8, streams = $9, schedule = $10,
		start_date = $11, page_size = $12, quota_share = $13, paused = $14, notify_url = $15, created_at = $16, updated_at = $17,
		live = $18, load_spec = $19 WHERE id = $1`, args...)
	if err != nil {
		return s.writeError(ctx, err, c)
	}
	return exactlyOne(res, connection.ErrNotFound)
}

// DeleteConnection implements connection.Store: the connection and its
// runs go in one transaction.
func (s *Connections) DeleteConnection(ctx context.Context, id string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM connection_runs WHERE connection_id = $1`, id); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_subscriptions WHERE connection_id = $1`, id); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM connections WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if err := exactlyOne(res, connection.ErrNotFound); err != nil {
		return err
	}
	return tx.Commit()
}

// runStream is the stored form of connection.StreamStats (JSON).
type runStream struct {
	Stream    string `json:"stream"`
	Records   int64  `json:"records,omitempty"`
	Pages     int64  `json:"pages,omitempty"`
	Requests  int64  `json:"requests,omitempty"`
	Deletions int64  `json:"deletions,omitempty"`
	Error     string `json:"error,omitempty"`
	Created   int64  `json:"created,omitempty"`
	Updated   int64  `json:"updated,omitempty"`
	Unchanged int64  `json:"unchanged,omitempty"`
	Rejected  int64  `json:"rejected,omitempty"`
}

func runJSON(r *connection.Run) (streams, log string, err error) {
	var st []runStream
	if r.Streams != nil {
		st = make([]runStream, 0, len(r.Streams))
	}
	for _, v := range r.Streams {
		st = append(st, runStream(v))
	}
	b, err := json.Marshal(st)
	if err != nil {
		return "", "", err
	}
	l, err := json.Marshal(r.Log)
	if err != nil {
		return "", "", err
	}
	return string(b), string(l), nil
}

const runColumns = `id, connection_id, run_trigger, attempt, started_at, ended_at, outcome, error_message, streams, log, due_at`

// StartRun implements connection.Store; ErrNotFound when the connection
// does not exist.
func (s *Connections) StartRun(ctx context.Context, r *connection.Run) error {
	streams, log, err := runJSON(r)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO connection_runs (`+runColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		r.ID, r.ConnectionID, string(r.Trigger), r.Attempt, ms(r.StartedAt), ms(r.EndedAt), string(r.Outcome), r.Error, streams, log, ms(r.DueAt))
	if isForeignKey(err) {
		return fmt.Errorf("run of connection %s: %w", r.ConnectionID, connection.ErrNotFound)
	}
	return err
}

// UpdateRun implements connection.Store.
func (s *Connections) UpdateRun(ctx context.Context, r *connection.Run) error {
	streams, log, err := runJSON(r)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE connection_runs SET streams = $3, log = $4 WHERE id = $1 AND connection_id = $2 AND outcome = ''`,
		r.ID, r.ConnectionID, streams, log)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return err
	}
	// Finished (left as it is), or not stored.
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM connection_runs WHERE id = $1 AND connection_id = $2`, r.ID, r.ConnectionID).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("run %s: %w", r.ID, connection.ErrNotFound)
	}
	return nil
}

// FinishRun implements connection.Store: it writes every field of the run
// and keeps the connection's newest MaxRunsKept runs (by start), deleting
// older ones, in one transaction. ErrNotFound when the run is not
// stored (its connection was deleted meanwhile).
func (s *Connections) FinishRun(ctx context.Context, r *connection.Run) error {
	streams, log, err := runJSON(r)
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE connection_runs SET run_trigger = $3, attempt = $4, started_at = $5, ended_at = $6,
		outcome = $7, error_message = $8, streams = $9, log = $10, due_at = $11 WHERE id = $1 AND connection_id = $2`,
		r.ID, r.ConnectionID, string(r.Trigger), r.Attempt, ms(r.StartedAt), ms(r.EndedAt), string(r.Outcome), r.Error, streams, log, ms(r.DueAt))
	if err != nil {
		return err
	}
	if err := exactlyOne(res, connection.ErrNotFound); err != nil {
		return fmt.Errorf("run %s: %w", r.ID, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM connection_runs WHERE connection_id = $1 AND seq NOT IN
		(SELECT seq FROM connection_runs WHERE connection_id = $1 ORDER BY started_at DESC, seq DESC LIMIT $2)`,
		r.ConnectionID, MaxRunsKept); err != nil {
		return fmt.Errorf("prune the runs of connection %s: %w", r.ConnectionID, err)
	}
	return tx.Commit()
}

// ListRuns implements connection.Store: newest first (by start, then by
// insertion), at most limit.
func (s *Connections) ListRuns(ctx context.Context, connectionID string, limit int) ([]*connection.Run, error) {
	if limit <= 0 {
		return nil, nil
	}
	return queryAll(ctx, s.db, `SELECT `+runColumns+` FROM connection_runs WHERE connection_id = $1
		ORDER BY started_at DESC, seq DESC LIMIT $2`, []any{connectionID, limit}, scanRun)
}

func scanRun(row scanner) (*connection.Run, error) {
	var r connection.Run
	var trigger, outcome, streams, log string
	var started, ended, due int64
	if err := row.Scan(&r.ID, &r.ConnectionID, &trigger, &r.Attempt, &started, &ended, &outcome, &r.Error, &streams, &log, &due); err != nil {
		return nil, err
	}
	r.Trigger, r.Outcome = connection.Trigger(trigger), connection.Outcome(outcome)
	r.StartedAt, r.EndedAt, r.DueAt = fromMS(started), fromMS(ended), fromMS(due)
	var st []runStream
	if err := json.Unmarshal([]byte(streams), &st); err != nil {
		return nil, fmt.Errorf("run %s: streams: %w", r.ID, err)
	}
	if st != nil {
		r.Streams = make([]connection.StreamStats, 0, len(st))
	}
	for _, v := range st {
		r.Streams = append(r.Streams, connection.StreamStats(v))
	}
	if err := json.Unmarshal([]byte(log), &r.Log); err != nil {
		return nil, fmt.Errorf("run %s: log: %w", r.ID, err)
	}
	return &r, nil
}

// CredentialConnections returns the names of the connections that use
// credential id, sorted. A credential with connections cannot be deleted
// (DeleteCredential refuses with credential.ErrInUse); callers that do
// more than delete (revoking the tokens first) ask this before.
func (s *Store) CredentialConnections(ctx context.Context, id string) ([]string, error) {
	return connectionNames(ctx, s.db, id)
}

func connectionNames(ctx context.Context, q querier, credentialID string) ([]string, error) {
	return queryAll(ctx, q, `SELECT name FROM connections WHERE credential_id = $1 ORDER BY name`, []any{credentialID},
		func(row scanner) (string, error) {
			var n string
			return n, row.Scan(&n)
		})
}

// inUse is the error of deleting a credential that connections use.
func inUse(names []string) error {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = fmt.Sprintf("%q", n)
	}
	return fmt.Errorf("%w: %s", credential.ErrInUse, strings.Join(quoted, ", "))
}
