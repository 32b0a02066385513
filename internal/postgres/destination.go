package postgres

import (
	"github.com/outreach-connector/outreach-connector/internal/sqldest"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
)

// The sync destination: bigint, double precision, boolean, timestamptz,
// date and jsonb columns.
var _ syncer.Destination = (*DB)(nil)

func sqlType(t syncer.ColumnType) string {
	switch t {
	case syncer.ColInteger:
		return "BIGINT"
	case syncer.ColNumber:
		return "DOUBLE PRECISION"
	case syncer.ColBoolean:
		return "BOOLEAN"
	case syncer.ColTimestamp:
		return "TIMESTAMPTZ"
	case syncer.ColDate:
		return "DATE"
	case syncer.ColJSON:
		return "JSONB"
	}
	return "TEXT"
}

func dialect() sqldest.Dialect {
	return sqldest.Dialect{ColumnType: sqlType, MaxParams: 65535, Schemas: true,
		ColumnsQuery: `SELECT column_name FROM information_schema.columns
			WHERE table_schema = COALESCE(NULLIF($2::text, ''), current_schema()) AND table_name = $1`}
}
