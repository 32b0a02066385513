package jsonl

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/connection/connectiontest"
)

// A failed write or fsync of the new state must leave the old state file
// in place: the records it would cover may not be on disk.
func TestFailedSyncKeepsTheState(t *testing.T) {
	ctx := context.Background()
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := connectiontest.TestStream("widgets")
	if err := d.Prepare(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(ctx, s, nil, connection.State{Cursor: "old"}); err != nil {
		t.Fatal(err)
	}
	full := errors.New("no space left on device")
	d.sync = func(f *os.File) error {
		if filepath.Base(f.Name()) == "_state.json.tmp" {
			return full
		}
		return f.Sync()
	}
	if err := d.Write(ctx, s, nil, connection.State{Cursor: "new"}); !errors.Is(err, full) {
		t.Errorf("Write with a failing fsync = %v, want %v", err, full)
	}
	if st, err := d.State(ctx, "widgets"); err != nil || st.Cursor != "old" {
		t.Errorf("state after the failed write = %+v, %v; want the old cursor", st, err)
	}
	if _, err := os.Stat(filepath.Join(d.path, "_state.json.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary state file is left behind: %v", err)
	}
}
