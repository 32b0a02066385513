// Package sqldest is the sync destination on a SQL database: a table per
// stream (typed columns, id primary key, an index on the cursor field),
// _sync_state, _sync_locks and _sync_owner. Its SQL ($n placeholders, ON
// CONFLICT, RETURNING, temporary tables) runs on SQLite and PostgreSQL
// alike; a Dialect says what differs. The sqlite and postgres packages
// wire it.
//
// A destination works in one namespace. The default one ("") is the
// layout of earlier versions: the tables in the database's current schema.
// Namespace NS is, where the dialect has schemas (PostgreSQL), the schema
// NS, created on first use, holding the same tables; elsewhere (SQLite)
// every table of the layout with NS__ before its name (NS__prospects,
// NS___sync_state). Namespaces share nothing: rows, cursors, locks and the
// owner are each namespace's own.
package sqldest

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

// Dialect is what differs between databases.
type Dialect struct {
	// ColumnType maps a column type to the database's.
	ColumnType func(connection.ColumnType) string
	// ColumnsQuery lists a table's column names; its parameters are the
	// table name and, when Schemas, the schema ("" for the current one).
	ColumnsQuery string
	// Schemas says a namespace is a schema; otherwise it is a table-name
	// prefix.
	Schemas bool
	// KeyColumn, when set, is the definition of a new table's id column
	// after its name, replacing the column type and PRIMARY KEY. SQLite
	// wants "BIGINT NOT NULL PRIMARY KEY": an INTEGER PRIMARY KEY is the
	// rowid, which stores rows in id order, and a sync writes them in
	// updatedAt order, ids in no order, splitting pages all over the table
	// (measured: a third of a prospects sync's CPU); with its own key
	// index the rows are appended and only the small index is not.
	KeyColumn string
	// MaxParams is the most bind parameters one statement may hold.
	MaxParams int
	// RowAtATime upserts with one prepared single-row statement per page
	// instead of multi-row statements. SQLite wants it: a 1000-row VALUES
	// list of 240 columns makes its statement compiler crawl (measured 180
	// times slower than a reused prepared statement).
	RowAtATime bool
	// Placeholder writes bind parameter i (from 1) of the hot statements:
	// "?" for SQLite, whose driver binds "$N" names more slowly.
	Placeholder func(i int) string
	// Copy, when set, writes pages of records through the database's bulk
	// path on one connection: CopyPage says what to run, in one
	// transaction (PostgreSQL: COPY into a temporary table, then one merge
	// a page; measured against multi-row upserts in docs/benchmarks.md).
	Copy func(ctx context.Context, conn *sql.Conn, p CopyPage) error
}

// Destination implements syncer.Destination on a SQL database.
type Destination struct {
	db    *sql.DB
	d     Dialect
	ns    string
	where string

	mu    sync.Mutex // guards ready
	ready bool       // the namespace's tables exist
}

// New returns a destination on db in the default namespace.
func New(db *sql.DB, d Dialect) *Destination { return &Destination{db: db, d: d} }

// NewIn returns a destination on db in namespace ns ("" the default; else
// see connection.ValidateNamespace); where names the database in messages
// and must hold no password.
func NewIn(db *sql.DB, d Dialect, ns, where string) (*Destination, error) {
	if ns != "" {
		if err := connection.ValidateNamespace(ns); err != nil {
			return nil, err
		}
	}
	return &Destination{db: db, d: d, ns: ns, where: where}, nil
}

// Namespace returns the destination's namespace ("" the default).
func (s *Destination) Namespace() string { return s.ns }

func quote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// name returns the name a table (or index) of the layout has in the
// namespace, unquoted and without a schema.
func (s *Destination) name(n string) string {
	if s.ns != "" && !s.d.Schemas {
		return s.ns + "__" + n
	}
	return n
}

// table returns the quoted, schema-qualified name of a table of the layout.
func (s *Destination) table(n string) string {
	if s.ns != "" && s.d.Schemas {
		return quote(s.ns) + "." + quote(n)
	}
	return quote(s.name(n))
}

// The tables beside the streams'.
const (
	stateTable = "_sync_state"
	locksTable = "_sync_locks"
	ownerTable = "_sync_owner"
)

func (s *Destination) setup(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready {
		return nil
	}
	if err := s.createTables(ctx); err != nil {
		return err
	}
	s.ready = true
	return nil
}

// stateColumns are the columns added to the _sync_state of earlier
// versions (stream, cursor, updated_at).
var stateColumns = []string{"page_size BIGINT NOT NULL DEFAULT 0"}

// lockColumns are the lease columns added to the _sync_locks of earlier
// versions (stream, owner, expires_at); owner holds the run id.
var lockColumns = []string{"host TEXT NOT NULL DEFAULT ''", "pid BIGINT NOT NULL DEFAULT 0", "acquired_at BIGINT NOT NULL DEFAULT 0"}

func (s *Destination) createTables(ctx context.Context) error {
	var stmts []string
	if s.ns != "" && s.d.Schemas {
		stmts = append(stmts, `CREATE SCHEMA IF NOT EXISTS `+quote(s.ns))
	}
	stmts = append(stmts,
		`CREATE TABLE IF NOT EXISTS `+s.table(stateTable)+` (stream TEXT PRIMARY KEY, cursor TEXT NOT NULL, updated_at TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS `+s.table(locksTable)+` (stream TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at BIGINT NOT NULL, `+
			strings.Join(lockColumns, ", ")+`)`,
		`CREATE TABLE IF NOT EXISTS `+s.table(ownerTable)+` (slot INTEGER PRIMARY KEY, org TEXT NOT NULL, credential_id TEXT NOT NULL, `+
			`credential TEXT NOT NULL, connection TEXT NOT NULL, claimed_at TEXT NOT NULL)`)
	for i, stmt := range stmts {
		if _, err := s.db.ExecContext(ctx, stmt); err != nil && !isDuplicate(err) {
			if i == 0 && s.ns != "" && s.d.Schemas {
				return fmt.Errorf("create schema %s for namespace %s (the database user needs the CREATE privilege on the database, "+
					"or an administrator can create the schema for it): %w", s.ns, s.ns, err)
			}
			return err
		}
	}
	for table, defs := range map[string][]string{locksTable: lockColumns, stateTable: stateColumns} {
		existing, err := s.columns(ctx, table)
		if err != nil {
			return err
		}
		for _, def := range defs {
			name, _, _ := strings.Cut(def, " ")
			if existing[name] {
				continue
			}
			if _, err := s.db.ExecContext(ctx, `ALTER TABLE `+s.table(table)+` ADD COLUMN `+def); err != nil && !isDuplicate(err) {
				return err
			}
		}
	}
	return nil
}

// columns returns the names of the columns of a table of the layout.
func (s *Destination) columns(ctx context.Context, table string) (map[string]bool, error) {
	args := []any{s.name(table)}
	if s.d.Schemas {
		args = append(args, s.ns)
	}
	rows, err := s.db.QueryContext(ctx, s.d.ColumnsQuery, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out[n] = true
	}
	return out, rows.Err()
}

// isDuplicate tells a lost race to create the same object from a failure.
func isDuplicate(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "already exists") || strings.Contains(msg, "duplicate key") || strings.Contains(msg, "23505") ||
		strings.Contains(msg, "duplicate column")
}

// Prepare implements syncer.Destination.
func (s *Destination) Prepare(ctx context.Context, st *connection.Stream) error {
	if err := s.setup(ctx); err != nil {
		return err
	}
	// A row in the state table names the stream's table for Inspect and
	// DropNamespace before its first page is written.
	if _, err := s.db.ExecContext(ctx, `INSERT INTO `+s.table(stateTable)+` (stream, cursor, updated_at) VALUES ($1, '', $2)
		ON CONFLICT (stream) DO NOTHING`, st.Name, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	var cols []string
	for _, c := range st.Columns {
		def := quote(c.Name) + " " + s.d.ColumnType(c.Type)
		switch {
		case c.Name == "id" && s.d.KeyColumn != "":
			def = quote(c.Name) + " " + s.d.KeyColumn
		case c.Name == "id":
			def += " PRIMARY KEY"
		}
		cols = append(cols, def)
	}
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+s.table(st.Name)+` (`+strings.Join(cols, ", ")+`)`); err != nil && !isDuplicate(err) {
		return err
	}
	existing, err := s.columns(ctx, st.Name)
	if err != nil {
		return err
	}
	for _, c := range st.Columns {
		if !existing[c.Name] {
			if _, err := s.db.ExecContext(ctx, `ALTER TABLE `+s.table(st.Name)+` ADD COLUMN `+quote(c.Name)+` `+s.d.ColumnType(c.Type)); err != nil && !isDuplicate(err) {
				return fmt.Errorf("add column %s: %w", c.Name, err)
			}
		}
	}
	if st.CursorField != "" {
		if _, err := s.db.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS `+quote(s.name(st.Name+"_by_"+st.CursorField))+` ON `+s.table(st.Name)+
			` (`+quote(st.CursorField)+`)`); err != nil && !isDuplicate(err) {
			return err
		}
	}
	return nil
}

// State implements syncer.Destination.
func (s *Destination) State(ctx context.Context, stream string) (connection.State, error) {
	if err := s.setup(ctx); err != nil {
		return connection.State{}, err
	}
	var st connection.State
	var size int64
	err := s.db.QueryRowContext(ctx, `SELECT cursor, page_size FROM `+s.table(stateTable)+` WHERE stream = $1`, stream).Scan(&st.Cursor, &size)
	st.PageSize = int(size)
	if errors.Is(err, sql.ErrNoRows) {
		return connection.State{}, nil
	}
	return st, err
}

// multiInsert runs head VALUES (...),(...) tail over rows of n values
// each, in as few statements as the parameter limit allows.
func (s *Destination) multiInsert(ctx context.Context, tx interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, head, tail string, rows [][]any, n int) error {
	per := max(s.d.MaxParams/n, 1)
	for start := 0; start < len(rows); start += per {
		batch := rows[start:min(start+per, len(rows))]
		var b strings.Builder
		b.WriteString(head)
		b.WriteString(" VALUES ")
		args := make([]any, 0, len(batch)*n)
		p := 1
		for i, r := range batch {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('(')
			for j := range n {
				if j > 0 {
					b.WriteByte(',')
				}
				b.WriteString(s.placeholder(p))
				p++
			}
			b.WriteByte(')')
			args = append(args, r...)
		}
		b.WriteString(tail)
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

func (s *Destination) placeholder(i int) string {
	if s.d.Placeholder != nil {
		return s.d.Placeholder(i)
	}
	return "$" + strconv.Itoa(i)
}

// upsert writes rows of n values with the dialect's preferred
// statements, in tx on conn.
//
// Row at a time (SQLite), one statement prepared for the page runs on the
// driver's connection itself, its arguments in one slice reused for every
// row: through database/sql every row's arguments were checked and copied
// into a new slice. And a column empty in every row of the page is written
// as a literal NULL rather than bound row after row: a page of prospects
// leaves about 150 of its 249 columns (custom fields nobody uses) empty in
// every row, and binding them was a fifth of a SQLite sync's CPU. The rows
// written are the same.
func (s *Destination) upsert(ctx context.Context, conn *sql.Conn, tx *sql.Tx, head, tail string, rows [][]any, n int) error {
	if !s.d.RowAtATime {
		return s.multiInsert(ctx, tx, head, tail, rows, n)
	}
	bound := make([]int, 0, n) // the columns some row has a value for
	for j := range n {
		for _, r := range rows {
			if r[j] != nil {
				bound = append(bound, j)
				break
			}
		}
	}
	var b strings.Builder
	b.WriteString(head)
	b.WriteString(" VALUES (")
	for j, p := 0, 0; j < n; j++ {
		if j > 0 {
			b.WriteByte(',')
		}
		if p < len(bound) && bound[p] == j {
			p++
			b.WriteString(s.placeholder(p))
		} else {
			b.WriteString("NULL")
		}
	}
	b.WriteString(")")
	b.WriteString(tail)
	return conn.Raw(func(dc any) error {
		pc, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return fmt.Errorf("sqldest: the driver's connection (%T) cannot prepare a statement with a context", dc)
		}
		ps, err := pc.PrepareContext(ctx, b.String())
		if err != nil {
			return err
		}
		defer ps.Close()
		ex, ok := ps.(driver.StmtExecContext)
		if !ok {
			return fmt.Errorf("sqldest: the driver's statement (%T) cannot run with a context", ps)
		}
		args := make([]driver.NamedValue, len(bound))
		for i := range args {
			args[i].Ordinal = i + 1
		}
		for _, r := range rows {
			for i, j := range bound {
				if args[i].Value, err = driverValue(r[j]); err != nil {
					return fmt.Errorf("column %d: %w", j+1, err)
				}
			}
			if _, err := ex.ExecContext(ctx, args); err != nil {
				return err
			}
		}
		return nil
	})
}

// driverValue is v as a driver takes it, as database/sql would convert it.
func driverValue(v any) (driver.Value, error) {
	switch v.(type) {
	case nil, int64, float64, bool, string, []byte, time.Time:
		return v, nil
	}
	return driver.DefaultParameterConverter.ConvertValue(v)
}

// Write implements syncer.Destination: the page upserted and the state,
// in one transaction.
func (s *Destination) Write(ctx context.Context, st *connection.Stream, recs []connection.Record, state connection.State) error {
	if s.d.Copy != nil && len(recs) > 0 {
		return s.writeCopy(ctx, st, recs, state)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if len(recs) > 0 {
		var names, sets []string
		for _, c := range st.Columns {
			names = append(names, quote(c.Name))
			if c.Name != "id" {
				sets = append(sets, quote(c.Name)+" = excluded."+quote(c.Name))
			}
		}
		rows := make([][]any, len(recs))
		for i, r := range recs {
			rows[i] = st.Clean(r).Values
		}
		head := `INSERT INTO ` + s.table(st.Name) + ` AS t (` + strings.Join(names, ", ") + `)`
		tail := ` ON CONFLICT (id) DO UPDATE SET ` + strings.Join(sets, ", ") + notOlder(st)
		if err := s.upsert(ctx, conn, tx, head, tail, rows, len(st.Columns)); err != nil {
			return fmt.Errorf("upsert into %s: %w", st.Name, err)
		}
	}
	upsert := s.stateStatement(st.Name, state)
	if _, err := tx.ExecContext(ctx, upsert.SQL, upsert.Args...); err != nil {
		return err
	}
	return tx.Commit()
}

// notOlder is the condition of an upsert that never replaces a row by an
// older version of its record (a page read before a webhook delivery
// applied a later change, then written after it): the row's updatedAt
// must not be later than the incoming one. Streams without updatedAt
// replace unconditionally.
func notOlder(st *connection.Stream) string {
	if st.CursorField != "updatedAt" {
		return ""
	}
	if _, ok := st.Column("updatedAt"); !ok {
		return ""
	}
	c := quote("updatedAt")
	return ` WHERE excluded.` + c + ` IS NULL OR t.` + c + ` IS NULL OR t.` + c + ` <= excluded.` + c
}

// Lock implements syncer.Locker: one statement takes a free, expired or
// own lease; a lease whose holder is gone is taken over by an update
// conditional on its run id.
func (s *Destination) Lock(ctx context.Context, stream string, l connection.Lease, now time.Time) error {
	if err := s.setup(ctx); err != nil {
		return err
	}
	args := []any{stream, l.RunID, l.Host, int64(l.PID), l.Acquired.UnixMilli(), l.Expires.UnixMilli()}
	for range 3 {
		rows, err := s.db.QueryContext(ctx, `INSERT INTO `+s.table(locksTable)+` AS l (stream, owner, host, pid, acquired_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (stream) DO UPDATE SET owner = excluded.owner, host = excluded.host,
			pid = excluded.pid, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
			WHERE l.owner = excluded.owner OR l.expires_at <= $7 RETURNING owner`, append(args, now.UnixMilli())...)
		if err != nil {
			return err
		}
		took := rows.Next()
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if took {
			return nil
		}
		var h connection.Lease
		var pid, acquired, expires int64
		err = s.db.QueryRowContext(ctx, `SELECT owner, host, pid, acquired_at, expires_at FROM `+s.table(locksTable)+` WHERE stream = $1`, stream).
			Scan(&h.RunID, &h.Host, &pid, &acquired, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			continue // released meanwhile
		}
		if err != nil {
			return err
		}
		h.PID, h.Acquired, h.Expires = int(pid), time.UnixMilli(acquired), time.UnixMilli(expires)
		if h.Host == "" {
			h = legacyLease(h)
		}
		if !h.Stale(now) {
			return &connection.LockedError{Stream: stream, Holder: h}
		}
		res, err := s.db.ExecContext(ctx, `UPDATE `+s.table(locksTable)+` SET owner = $2, host = $3, pid = $4, acquired_at = $5, expires_at = $6
			WHERE stream = $1 AND owner = $7`, append(args, h.RunID)...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
	}
	return fmt.Errorf("stream %s: the lock changed hands three times while taking it; try again", stream)
}

// legacyLease reads the holder from the owner of an earlier version's
// lock, "host/pid/nanoseconds".
func legacyLease(h connection.Lease) connection.Lease {
	parts := strings.Split(h.RunID, "/")
	if len(parts) != 3 {
		return h
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil {
		return h
	}
	h.Host, h.PID = parts[0], pid
	if ns, err := strconv.ParseInt(parts[2], 10, 64); err == nil {
		h.Acquired = time.Unix(0, ns)
	}
	return h
}

// Unlock implements syncer.Locker.
func (s *Destination) Unlock(ctx context.Context, stream, runID string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM `+s.table(locksTable)+` WHERE stream = $1 AND owner = $2`, stream, runID)
	return err
}

// MarkDeleted implements syncer.Destination: the live ids go into a
// temporary table of one connection, and one UPDATE marks the rest.
func (s *Destination) MarkDeleted(ctx context.Context, st *connection.Stream, live []int64, at string) (int, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TEMPORARY TABLE IF NOT EXISTS _live (id BIGINT PRIMARY KEY)`); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM _live`); err != nil {
		return 0, err
	}
	rows := make([][]any, len(live))
	for i, id := range live {
		rows[i] = []any{id}
	}
	if err := s.upsert(ctx, conn, tx, `INSERT INTO _live (id)`, ` ON CONFLICT DO NOTHING`, rows, 1); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `UPDATE `+s.table(st.Name)+` SET `+quote(connection.DeletedColumn)+` = $1 WHERE `+
		quote(connection.DeletedColumn)+` IS NULL AND id NOT IN (SELECT id FROM _live)`, at)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	return int(n), tx.Commit()
}

var (
	_ connection.Destination = (*Destination)(nil)
	_ connection.Locker      = (*Destination)(nil)
)
