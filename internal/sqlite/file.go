package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// OpenFile opens a pool on the SQLite file at path, creating it (0600,
// whatever the umask; SQLite gives its -wal and -shm files the same mode)
// when missing. Every connection gets the pragmas; extra adds parameters to
// the data source name (_txlock). The first connection is made here.
//
// Processes opening a new file at once all switch it to WAL, and SQLite
// answers a switch that meets another one SQLITE_BUSY at once, without
// waiting out the busy timeout: that first connection is tried again until
// the busy timeout has passed.
func OpenFile(ctx context.Context, path string, extra url.Values) (*sql.DB, error) {
	if err := createPrivate(path); err != nil {
		return nil, fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	for k, vs := range extra {
		q[k] = append(q[k], vs...)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	deadline := time.Now().Add(busyTimeout)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err = db.PingContext(ctx)
		if err == nil {
			return db, nil
		}
		if !isBusy(err) || time.Now().Add(wait).After(deadline) {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			db.Close()
			return nil, fmt.Errorf("sqlite: open %s: %w", path, ctx.Err())
		case <-t.C:
		}
	}
	db.Close()
	return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
}

// busyTimeout is the pragmas' busy_timeout.
const busyTimeout = 10 * time.Second

func isBusy(err error) bool {
	var se *msqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// createPrivate creates an empty file at path with mode 0600 unless a file
// is there already.
func createPrivate(path string) error {
	if path == "" || strings.HasPrefix(path, ":memory:") {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
