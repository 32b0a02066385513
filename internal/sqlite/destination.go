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
		KeyColumn:   "BIGINT NOT NULL PRIMARY KEY",
		Placeholder: func(int) string { return "?" }}
}

// pragmas are set on every connection. Beside WAL, a busy timeout and
// foreign keys, for bulk writes (a sync page is about a thousand rows of
// 240 columns, in one transaction): synchronous NORMAL (WAL stays crash
// safe; a commit waits for no fsync), a 4 MiB page cache per connection
// (the default 2 MiB spills a page's B-tree pages to the WAL and reads
// them back), and a WAL checkpointed every 16 MiB rather than every 4.
// Memory-mapped I/O is left off: the mapped pages of the file count in the
// process's resident memory, which grew with the file (392 MiB at 100,000
// prospects) instead of staying flat.
var pragmas = []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(NORMAL)",
	"cache_size(-4096)", "wal_autocheckpoint(4096)"}
