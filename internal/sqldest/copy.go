package sqldest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

// CopyPage is one page written through a dialect's bulk path (Dialect.Copy):
// in one transaction, run Before, copy Rows into the temporary table Temp
// (columns Columns), then run After, then commit.
type CopyPage struct {
	Before  []string
	Temp    string
	Columns []string
	Rows    [][]any
	After   []Statement
}

// Statement is SQL with its arguments.
type Statement struct {
	SQL  string
	Args []any
}

// copyType is the temporary table's type of a column: the column's own
// where a copy can carry the Go value as it is, text where the database
// parses the text into its type when merging (as it does a text
// parameter of a multi-row INSERT).
func copyType(t connection.ColumnType, dbType string) (string, bool) {
	switch t {
	case connection.ColInteger, connection.ColNumber, connection.ColBoolean:
		return dbType, false
	}
	return "TEXT", dbType != "TEXT"
}

// writeCopy writes a page through the dialect's Copy: the records into a
// temporary table of the page (one column more: the row's place, so that
// of an id sent twice the last row wins), then one INSERT ... SELECT ...
// ON CONFLICT merges them into the stream's table, and the state is
// upserted, all in one transaction.
func (s *Destination) writeCopy(ctx context.Context, st *connection.Stream, recs []connection.Record, state connection.State) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	const temp = "_sync_page"
	var defs, names, sel, sets []string
	copyCols := make([]string, 0, len(st.Columns)+1)
	for _, c := range st.Columns {
		typ, cast := copyType(c.Type, s.d.ColumnType(c.Type))
		defs = append(defs, quote(c.Name)+" "+typ)
		copyCols = append(copyCols, c.Name)
		names = append(names, quote(c.Name))
		v := quote(c.Name)
		if cast {
			v += "::" + s.d.ColumnType(c.Type)
		}
		sel = append(sel, v)
		if c.Name != "id" {
			sets = append(sets, quote(c.Name)+" = excluded."+quote(c.Name))
		}
	}
	copyCols = append(copyCols, "_sync_place")
	rows := make([][]any, len(recs))
	for i, r := range recs {
		v := st.Clean(r).Values
		row := make([]any, len(v)+1)
		copy(row, v)
		row[len(v)] = int64(i)
		rows[i] = row
	}
	p := CopyPage{
		Before: []string{`CREATE TEMPORARY TABLE ` + temp + ` (` + strings.Join(defs, ", ") + `, _sync_place BIGINT) ON COMMIT DROP`},
		Temp:   temp, Columns: copyCols, Rows: rows,
		After: []Statement{
			{SQL: `INSERT INTO ` + s.table(st.Name) + ` AS t (` + strings.Join(names, ", ") + `) SELECT DISTINCT ON (id) ` + strings.Join(sel, ", ") +
				` FROM ` + temp + ` ORDER BY id, _sync_place DESC ON CONFLICT (id) DO UPDATE SET ` + strings.Join(sets, ", ") + notOlder(st)},
			s.stateStatement(st.Name, state),
		},
	}
	if err := s.d.Copy(ctx, conn, p); err != nil {
		return fmt.Errorf("copy into %s: %w", st.Name, err)
	}
	return nil
}

// stateStatement upserts a stream's state.
func (s *Destination) stateStatement(stream string, state connection.State) Statement {
	return Statement{SQL: `INSERT INTO ` + s.table(stateTable) + ` (stream, cursor, updated_at, page_size) VALUES ($1, $2, $3, $4)
		ON CONFLICT (stream) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at, page_size = excluded.page_size`,
		Args: []any{stream, state.Cursor, time.Now().UTC().Format(time.RFC3339), int64(state.PageSize)}}
}
