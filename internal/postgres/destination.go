package postgres

import (
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
	return sqldest.Dialect{ColumnType: sqlType, MaxParams: 65535, Schemas: true,
		ColumnsQuery: `SELECT column_name FROM information_schema.columns
			WHERE table_schema = COALESCE(NULLIF($2::text, ''), current_schema()) AND table_name = $1`}
}
