package load

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/postgres/pgtest"
)

// TestSourceMistakesAreConfigErrors: what only a change of the query or
// the URL mends is a *ConfigError (nobody retries it); an unreachable
// database is not. CheckSource finds the same mistakes without running
// the query.
func TestSourceMistakesAreConfigErrors(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wh.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE signups (email TEXT)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := closed.Addr().String()
	closed.Close()

	pgDSN := pgtest.DSN(t)
	tests := []struct {
		name, spec string
		config     bool   // a *ConfigError
		want       string // in the message
	}{
		{"sqlite column", "sqlite:" + path + "?query=SELECT emial FROM signups", true, "no such column: emial"},
		{"sqlite table", "sqlite:" + path + "?query=SELECT email FROM signup", true, "no such table: signup"},
		{"sqlite syntax", "sqlite:" + path + "?query=SELEC email FROM signups", true, "syntax error"},
		{"sqlite file", "sqlite:" + path + ".missing?query=SELECT 1", true, "no such file"},
		{"postgres table", pgDSN + "&query=SELECT email FROM no_such_table_here", true, "no_such_table_here"},
		{"postgres unreachable", "postgres://" + deadPort + "/test?query=SELECT 1", false, "connect"},
	}
	for _, tt := range tests {
		for _, check := range []bool{false, true} {
			var err error
			if check {
				err = CheckSource(ctx, tt.spec)
			} else {
				var src Source
				if src, err = OpenSource(ctx, tt.spec); err == nil {
					src.Close()
				}
			}
			var cfg *ConfigError
			if err == nil || errors.As(err, &cfg) != tt.config || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s (check %v): %v; want a config error %v saying %q", tt.name, check, err, tt.config, tt.want)
			}
		}
	}
	if err := CheckSource(ctx, "sqlite:"+path+"?query=SELECT email FROM signups"); err != nil {
		t.Fatalf("a good query: %v", err)
	}
}
