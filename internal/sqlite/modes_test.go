//go:build unix

package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/connection/connectiontest"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
)

// The database file and its -wal and -shm files are the user's alone,
// whatever the umask.
func TestFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "private.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := connectiontest.TestStream("widgets")
	if err := db.Prepare(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := db.Write(ctx, s, nil, connection.State{Cursor: "c"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(name)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(name), err)
			continue
		}
		if got := info.Mode().Perm(); got != 0o600 {
			t.Errorf("%s mode = %v, want -rw-------", filepath.Base(name), got)
		}
	}
}
