package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/sqldest"
)

// The sync destination: bigint, double precision, boolean, timestamptz,
// date and jsonb columns.
var _ connection.Destination = (*DB)(nil)

func sqlType(t connection.ColumnType) string {
	switch t {
	case connection.ColInteger:
		return "BIGINT"
	case connection.ColNumber:
		return "DOUBLE PRECISION"
	case connection.ColBoolean:
		return "BOOLEAN"
	case connection.ColTimestamp:
		return "TIMESTAMPTZ"
	case connection.ColDate:
		return "DATE"
	case connection.ColJSON:
		return "JSONB"
	}
	return "TEXT"
}

func dialect() sqldest.Dialect {
	return sqldest.Dialect{ColumnType: sqlType, MaxParams: 65535, Schemas: true, Copy: copyPage,
		ColumnsQuery: `SELECT column_name FROM information_schema.columns
			WHERE table_schema = COALESCE(NULLIF($2::text, ''), current_schema()) AND table_name = $1`}
}

// copyPage writes a page with COPY (pgx's binary protocol) inside one
// transaction on conn.
func copyPage(ctx context.Context, conn *sql.Conn, p sqldest.CopyPage) error {
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("postgres: not a pgx connection: %T", dc)
		}
		tx, err := c.Conn().Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		for _, q := range p.Before {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{p.Temp}, p.Columns, pgx.CopyFromRows(p.Rows)); err != nil {
			return err
		}
		for _, q := range p.After {
			if _, err := tx.Exec(ctx, q.SQL, q.Args...); err != nil {
				return err
			}
		}
		return tx.Commit(ctx)
	})
}
