package load

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Row is one source row: its values by column, and its position.
type Row struct {
	Line   int            // from 1, in source order
	Values map[string]any // string, json.Number, float64, int64, bool, time.Time, []any, map[string]any or nil
}

// Source yields rows. Next returns io.EOF after the last row.
type Source interface {
	// Columns are the source's column names, known before the first row
	// (for JSONL, the keys of the first object).
	Columns() []string
	Next(ctx context.Context) (Row, error)
	Close() error
	// Name is the source as the user named it, without secrets; it is part
	// of the load's id.
	Name() string
}

// OpenSource opens a source named as csv:PATH, jsonl:PATH,
// sqlite:PATH?query=SQL or postgres://...?query=SQL. A mistake the user
// must correct (a missing file, a query the database refuses) is a
// *ConfigError; an unreachable database is not.
func OpenSource(ctx context.Context, spec string) (Source, error) {
	return openSource(ctx, spec, false)
}

// CheckSource opens the source named by spec as OpenSource does and closes
// it again; a SQL source's query is only prepared, not run, so nothing is
// read. A destination connection's source is checked when it is added.
func CheckSource(ctx context.Context, spec string) error {
	src, err := openSource(ctx, spec, true)
	if err != nil {
		return err
	}
	return src.Close()
}

func openSource(ctx context.Context, spec string, prepareOnly bool) (Source, error) {
	kind, rest, _ := strings.Cut(spec, ":")
	switch strings.ToLower(kind) {
	case "csv":
		return openCSV(rest)
	case "jsonl":
		return openJSONL(rest)
	case "sqlite":
		path, query := cutQuery(rest)
		if strings.TrimSpace(query) == "" {
			return nil, configErr("--from sqlite:%s: add ?query=SELECT ... (the rows to load)", path)
		}
		abs, _ := filepath.Abs(path)
		if _, err := os.Stat(path); err != nil {
			return nil, configErr("--from sqlite:%s: %v", path, err)
		}
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
		if err != nil {
			return nil, err
		}
		return openSQL(ctx, db, "sqlite:"+abs+"?query="+query, query, prepareOnly)
	case "postgres", "postgresql":
		dsn, query := cutQuery(spec)
		if strings.TrimSpace(query) == "" {
			return nil, configErr("--from %s: add ?query=SELECT ... (the rows to load), last in the URL", redact(spec))
		}
		u, err := url.Parse(dsn)
		if err != nil {
			return nil, configErr("--from: %s is not a PostgreSQL URL", redact(dsn))
		}
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, configErr("--from %s: %v", redact(dsn), err)
		}
		u.User = nil
		return openSQL(ctx, db, u.String()+"?query="+query, query, prepareOnly)
	}
	return nil, configErr("--from %q: use csv:PATH, jsonl:PATH, sqlite:PATH?query=SQL or postgres://...?query=SQL", redact(spec))
}

func redact(spec string) string {
	if u, err := url.Parse(spec); err == nil && u.User != nil {
		u.User = url.User(u.User.Username())
		return u.String()
	}
	return spec
}

// cutQuery splits "BASE?query=SQL" (or "BASE?a=b&query=SQL"): the SQL is
// everything after query=, taken literally so it may hold spaces, & and
// %; a query without spaces is read as URL-encoded.
func cutQuery(s string) (base, query string) {
	i := strings.Index(s, "?query=")
	if i < 0 {
		i = strings.Index(s, "&query=")
	}
	if i < 0 {
		return s, ""
	}
	base, query = s[:i], s[i+len("?query="):]
	if !strings.Contains(query, " ") {
		if q, err := url.QueryUnescape(query); err == nil {
			query = q
		}
	}
	return base, query
}

type csvSource struct {
	f    *os.File
	r    *csv.Reader
	cols []string
	line int
	name string
}

func openCSV(path string) (Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--from csv:%s: %w", path, err)
	}
	r := csv.NewReader(bufio.NewReader(f))
	r.FieldsPerRecord = -1
	head, err := r.Read()
	if err != nil {
		f.Close()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("--from csv:%s: the file is empty; its first line must name the columns", path)
		}
		return nil, fmt.Errorf("--from csv:%s: %w", path, err)
	}
	for i := range head {
		head[i] = strings.TrimSpace(strings.TrimPrefix(head[i], "\ufeff"))
	}
	abs, _ := filepath.Abs(path)
	return &csvSource{f: f, r: r, cols: head, name: "csv:" + abs}, nil
}

func (s *csvSource) Columns() []string { return s.cols }
func (s *csvSource) Name() string      { return s.name }
func (s *csvSource) Close() error      { return s.f.Close() }

func (s *csvSource) Next(ctx context.Context) (Row, error) {
	rec, err := s.r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Row{}, io.EOF
		}
		return Row{}, fmt.Errorf("%s: %w", s.name, err)
	}
	s.line++
	vals := make(map[string]any, len(s.cols))
	for i, c := range s.cols {
		if i < len(rec) && rec[i] != "" {
			vals[c] = rec[i]
		} else {
			vals[c] = nil
		}
	}
	return Row{Line: s.line, Values: vals}, nil
}

type jsonlSource struct {
	f     *os.File
	sc    *bufio.Scanner
	cols  []string
	first *Row
	line  int
	name  string
}

func openJSONL(path string) (Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--from jsonl:%s: %w", path, err)
	}
	abs, _ := filepath.Abs(path)
	s := &jsonlSource{f: f, sc: bufio.NewScanner(f), name: "jsonl:" + abs}
	s.sc.Buffer(make([]byte, 1<<20), 64<<20)
	row, err := s.read()
	if err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, err
	}
	if err == nil {
		s.first = &row
		for k := range row.Values {
			s.cols = append(s.cols, k)
		}
		slices.Sort(s.cols)
	}
	return s, nil
}

func (s *jsonlSource) read() (Row, error) {
	for s.sc.Scan() {
		s.line++
		b := bytes.TrimSpace(s.sc.Bytes())
		if len(b) == 0 {
			continue
		}
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			return Row{}, fmt.Errorf("%s line %d: not a JSON object: %v", s.name, s.line, err)
		}
		return Row{Line: s.line, Values: m}, nil
	}
	if err := s.sc.Err(); err != nil {
		return Row{}, fmt.Errorf("%s: %w", s.name, err)
	}
	return Row{}, io.EOF
}

func (s *jsonlSource) Columns() []string { return s.cols }
func (s *jsonlSource) Name() string      { return s.name }
func (s *jsonlSource) Close() error      { return s.f.Close() }

func (s *jsonlSource) Next(ctx context.Context) (Row, error) {
	if s.first != nil {
		r := *s.first
		s.first = nil
		return r, nil
	}
	return s.read()
}

// SQLSource reads the rows of query on db; NewSQLSource runs the query.
type sqlSource struct {
	db   *sql.DB
	rows *sql.Rows
	cols []string
	line int
	name string
}

func openSQL(ctx context.Context, db *sql.DB, name, query string, prepareOnly bool) (Source, error) {
	if prepareOnly {
		st, err := db.PrepareContext(ctx, query)
		if err != nil {
			db.Close()
			return nil, queryErr(query, err)
		}
		st.Close()
		return &sqlSource{db: db, name: name}, nil
	}
	s, err := NewSQLSource(ctx, db, name, query)
	if err != nil {
		db.Close()
		return nil, err
	}
	s.(*sqlSource).db = db
	return s, nil
}

// queryErr is the error of a query the database refused or could not
// run: a *ConfigError when only a change of the query or the URL mends it
// (a syntax error, a missing table or column, no such database, a refused
// password), so nobody retries it.
func queryErr(query string, err error) error {
	if permanentSQL(err) {
		return configErr("--from query %q: %v; correct the query or the source URL", query, err)
	}
	return fmt.Errorf("--from query %q: %w", query, err)
}

func permanentSQL(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_ERROR, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_AUTH, sqlite3.SQLITE_PERM:
			return true
		}
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Classes 42 (syntax, undefined object, privilege), 22 (data),
		// 28 (authorization), 3D (no such database), 3F (no such schema).
		for _, class := range []string{"42", "22", "28", "3D", "3F"} {
			if strings.HasPrefix(pe.Code, class) {
				return true
			}
		}
	}
	return false
}

// NewSQLSource runs query on db and yields its rows; name is how the load
// names the source (and part of its id). Closing the source does not close
// db.
func NewSQLSource(ctx context.Context, db *sql.DB, name, query string) (Source, error) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return nil, queryErr(query, err)
	}
	cols, err := rows.Columns()
	if err != nil {
		rows.Close()
		return nil, err
	}
	return &sqlSource{rows: rows, cols: cols, name: name}, nil
}

func (s *sqlSource) Columns() []string { return s.cols }
func (s *sqlSource) Name() string      { return s.name }

func (s *sqlSource) Close() error {
	var err error
	if s.rows != nil {
		err = s.rows.Close()
	}
	if s.db != nil {
		s.db.Close()
	}
	return err
}

func (s *sqlSource) Next(ctx context.Context) (Row, error) {
	if !s.rows.Next() {
		if err := s.rows.Err(); err != nil {
			return Row{}, err
		}
		return Row{}, io.EOF
	}
	vals := make([]any, len(s.cols))
	ptrs := make([]any, len(s.cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := s.rows.Scan(ptrs...); err != nil {
		return Row{}, err
	}
	s.line++
	m := make(map[string]any, len(s.cols))
	for i, c := range s.cols {
		switch v := vals[i].(type) {
		case []byte:
			m[c] = string(v)
		case int32:
			m[c] = int64(v)
		case float32:
			m[c] = float64(v)
		case time.Time:
			m[c] = v
		default:
			m[c] = v
		}
	}
	return Row{Line: s.line, Values: m}, nil
}
