package load

// The SQL sources' drivers: SQLite (pure Go) and PostgreSQL (pgx).
import (
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)
