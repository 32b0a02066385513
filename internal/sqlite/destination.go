package sqlite

import (
	"github.com/outreach-connector/outreach-connector/internal/sqldest"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
)

// The sync destination shares the database file with the credentials.
var _ syncer.Destination = (*DB)(nil)

func sqlType(t syncer.ColumnType) string {
	switch t {
	case syncer.ColInteger, syncer.ColBoolean:
		return "INTEGER"
	case syncer.ColNumber:
		return "REAL"
	}
	return "TEXT"
}

func dialect() sqldest.Dialect {
	return sqldest.Dialect{ColumnType: sqlType, ColumnsQuery: `SELECT name FROM pragma_table_info($1)`, MaxParams: 32766, RowAtATime: true,
		Placeholder: func(int) string { return "?" }}
}
