package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// sandboxLockPath is the file whose lock says a process uses the
// "sandbox" credential of the app database db (sync --sandbox for its run,
// serve --sandbox while it serves): beside a SQLite file, or in the
// temporary directory for a PostgreSQL app database.
func sandboxLockPath(db string) string {
	if strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://") {
		sum := sha256.Sum256([]byte(db))
		return filepath.Join(os.TempDir(), "outreach-connector-sandbox-"+hex.EncodeToString(sum[:8])+".lock")
	}
	return strings.TrimPrefix(db, "sqlite:") + ".sandbox.lock"
}

// errSandboxBusy says another process holds the sandbox lock.
var errSandboxBusy = errors.New("busy")

// lockSandbox takes the sandbox lock of the app database db, or says which
// other process holds it. The lock goes with the process (kill -9
// included): the returned function releases it sooner, and empties the
// file, which stays (removing it could let two processes lock two files
// of one name).
func lockSandbox(db string) (func(), error) {
	path := sandboxLockPath(db)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sandbox lock %s: %w", path, err)
	}
	if err := tryLock(f); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, errSandboxBusy) {
			who := strings.TrimSpace(string(holder))
			if who == "" {
				who = "another process"
			}
			return nil, fmt.Errorf("%s uses the \"sandbox\" credential of the app database %s; wait for it to end, "+
				"or give this run an app database of its own with --db (and its data another --to)", who, db)
		}
		return nil, fmt.Errorf("sandbox lock %s: %w", path, err)
	}
	f.Truncate(0)
	fmt.Fprintf(f, "process %d (%s)\n", os.Getpid(), strings.Join(os.Args[1:], " "))
	return func() {
		f.Truncate(0) // no longer names a holder
		f.Close()
	}, nil
}
