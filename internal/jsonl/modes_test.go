//go:build unix

package jsonl_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/connection/connectiontest"
	"github.com/outreach-connector/outreach-connector/internal/jsonl"
)

// Every file the destination makes is the user's alone, whatever the
// umask.
func TestFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "out")
	d, err := jsonl.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := connectiontest.TestStream("widgets")
	now := time.Now()
	host, _ := os.Hostname()
	if err := d.Lock(ctx, s.Name, connection.Lease{Host: host, PID: os.Getpid(), RunID: "r", Acquired: now, Expires: now.Add(time.Minute)}, now); err != nil {
		t.Fatal(err)
	}
	if err := d.Prepare(ctx, s); err != nil {
		t.Fatal(err)
	}
	rec := connection.Record{ID: 1, Values: make([]any, len(s.Columns))}
	rec.Values[0] = int64(1)
	if err := d.Write(ctx, s, []connection.Record{rec}, connection.State{Cursor: "c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.MarkDeleted(ctx, s, nil, "2026-01-01T00:00:00Z"); err != nil {
		t.Fatal(err)
	}
	want := map[string]os.FileMode{"": 0o700, "widgets.jsonl": 0o600, "_state.json": 0o600, "widgets.lock": 0o600, "_locks": 0o600}
	for name, mode := range want {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := info.Mode().Perm(); got != mode {
			t.Errorf("%s mode = %v, want %v", name, got, mode)
		}
	}
}
