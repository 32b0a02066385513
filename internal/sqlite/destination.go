package sqlite

import (
	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/sqldest"
)

// The sync destination shares the database file with the credentials.
var _ connection.Destination = (*DB)(nil)

func sqlType(t connection.ColumnType) string {
	switch t {
	case connection.ColInteger, connection.ColBoolean:
		return "INTEGER"
	case connection.ColNumber:
		return "REAL"
	}
	return "TEXT"
}

func dialect() sqldest.Dialect {
	return sqldest.Dialect{ColumnType: sqlType, ColumnsQuery: `SELECT name FROM pragma_table_info($1)`, MaxParams: 32766, RowAtATime: true,
		Placeholder: func(int) string { return "?" }}
}
