// Package jsonl is the JSON Lines sync destination: one file per stream
// (DIR/<stream>.jsonl), one record per line, the newest line of an id
// winning; deletes found by reconciliation are appended as tombstones
// ({"id": N, "_deleted_at": "..."}). Stream state lives in
// DIR/_state.json, replaced atomically after the page it covers is
// written and synced to disk.
//
// A namespace NS is the subdirectory DIR/NS with the same files; the
// default namespace ("") is DIR itself. DIR/_owner.json (DIR/NS/_owner.json)
// names the org that owns the namespace.
package jsonl

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

// Dir is a directory of JSONL files.
type Dir struct {
	path  string
	ns    string     // "" the default namespace
	where string     // the destination, for messages
	mu    sync.Mutex // guards the state file and the lock files
	// sync flushes a file to disk (f.Sync); tests make it fail.
	sync func(f *os.File) error
	// pages holds the buffers pages are encoded into, so a page's
	// megabytes are not allocated and cleared again for the next (a
	// sync.Pool would drop them at every collection; a page makes several).
	pageMu sync.Mutex
	pages  [][]byte
}

// maxPages is how many page buffers a Dir keeps: one a stream written at
// once, as many as a sync's streams run together.
const maxPages = 4

func (d *Dir) takePage() []byte {
	d.pageMu.Lock()
	defer d.pageMu.Unlock()
	if n := len(d.pages); n > 0 {
		b := d.pages[n-1]
		d.pages = d.pages[:n-1]
		return b[:0]
	}
	return nil
}

func (d *Dir) putPage(b []byte) {
	d.pageMu.Lock()
	defer d.pageMu.Unlock()
	if len(d.pages) < maxPages {
		d.pages = append(d.pages, b)
	}
}

// Open uses (creating, private to the user) the directory dir. The files
// it creates are readable by the user only (0600).
func Open(dir string) (*Dir, error) { return OpenNamespace(dir, "") }

// OpenNamespace uses the directory dir in namespace ns: the subdirectory
// dir/ns (created, private to the user), or dir itself when ns is "".
func OpenNamespace(dir, ns string) (*Dir, error) {
	path := dir
	if ns != "" {
		if err := connection.ValidateNamespace(ns); err != nil {
			return nil, err
		}
		path = filepath.Join(dir, ns)
	}
	d := &Dir{path: path, ns: ns, where: "jsonl:" + dir, sync: (*os.File).Sync}
	if err := d.ensure(); err != nil {
		return nil, err
	}
	return d, nil
}

// ensure creates the namespace's directory (again, after DropNamespace).
func (d *Dir) ensure() error {
	if err := os.MkdirAll(d.path, 0o700); err != nil {
		return fmt.Errorf("jsonl: %w", err)
	}
	return nil
}

// openPrivate opens path with flag, creating it readable and writable by
// the user only whatever the umask; with os.O_TRUNC the file is made
// anew.
func openPrivate(path string, flag int) (*os.File, error) {
	if flag&os.O_TRUNC != 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, flag|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return os.OpenFile(path, flag, 0)
	}
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (d *Dir) file(stream string) string { return filepath.Join(d.path, stream+".jsonl") }

// Prepare implements syncer.Destination: it creates the file, and cuts a
// last line a crash left half-written.
func (d *Dir) Prepare(_ context.Context, s *connection.Stream) error {
	if err := d.ensure(); err != nil {
		return err
	}
	f, err := openPrivate(d.file(s.Name), os.O_RDWR)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || info.Size() == 0 {
		return err
	}
	// Find the last newline and drop anything after it.
	size := info.Size()
	buf := make([]byte, 4096)
	for end := size; end > 0; {
		start := max(end-int64(len(buf)), 0)
		n, err := f.ReadAt(buf[:end-start], start)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			if cut := start + int64(i) + 1; cut != size {
				return f.Truncate(cut)
			}
			return nil
		}
		end = start
	}
	return f.Truncate(0)
}

func (d *Dir) readState() (map[string]connection.State, error) {
	raw, err := os.ReadFile(filepath.Join(d.path, "_state.json"))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]connection.State{}, nil
	}
	if err != nil {
		return nil, err
	}
	var m map[string]connection.State
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("jsonl: _state.json: %w", err)
	}
	return m, nil
}

// State implements syncer.Destination.
func (d *Dir) State(_ context.Context, stream string) (connection.State, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m, err := d.readState()
	return m[stream], err
}

// Write implements syncer.Destination: append and sync the records, then
// replace the state.
func (d *Dir) Write(_ context.Context, s *connection.Stream, recs []connection.Record, st connection.State) error {
	if len(recs) > 0 {
		buf := d.takePage()
		defer func() { d.putPage(buf) }()
		for _, r := range recs {
			var err error
			if buf, err = s.AppendJSON(buf, r); err != nil {
				return fmt.Errorf("jsonl: encode %s %d: %w", s.Name, r.ID, err)
			}
			buf = append(buf, '\n')
		}
		if err := d.appendSync(d.file(s.Name), buf); err != nil {
			return err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	unguard, err := d.guard() // other processes write other streams' state
	if err != nil {
		return err
	}
	defer unguard()
	m, err := d.readState()
	if err != nil {
		return err
	}
	m[s.Name] = st
	raw, _ := json.MarshalIndent(m, "", "  ")
	return d.replaceFile(filepath.Join(d.path, "_state.json"), raw)
}

func (d *Dir) appendSync(path string, b []byte) error {
	f, err := openPrivate(path, os.O_WRONLY|os.O_APPEND)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := d.sync(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// replaceFile replaces path with b atomically: b is written and synced to
// a temporary file first, which replaces path only when all went well.
func (d *Dir) replaceFile(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := openPrivate(tmp, os.O_WRONLY|os.O_TRUNC)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = d.sync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("jsonl: write %s: %w", filepath.Base(path), err)
	}
	return os.Rename(tmp, path)
}

// Lock implements syncer.Locker with a lease file per stream,
// DIR/<stream>.lock; the processes sharing the directory take turns
// through an advisory lock on DIR/_locks.
func (d *Dir) Lock(_ context.Context, stream string, l connection.Lease, now time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	unguard, err := d.guard()
	if err != nil {
		return err
	}
	defer unguard()
	path := filepath.Join(d.path, stream+".lock")
	if raw, err := os.ReadFile(path); err == nil {
		var h connection.Lease // a lock of an earlier version reads as expired
		if json.Unmarshal(raw, &h) == nil && h.RunID != l.RunID && !h.Stale(now) {
			return &connection.LockedError{Stream: stream, Holder: h}
		}
	}
	raw, _ := json.Marshal(l)
	return d.replaceFile(path, raw)
}

// Unlock implements syncer.Locker.
func (d *Dir) Unlock(_ context.Context, stream, runID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	unguard, err := d.guard()
	if err != nil {
		return err
	}
	defer unguard()
	path := filepath.Join(d.path, stream+".lock")
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var h connection.Lease
	if json.Unmarshal(raw, &h) == nil && h.RunID == runID {
		return os.Remove(path)
	}
	return nil
}

// guard takes DIR/_locks, waiting for other processes; the returned
// function lets it go.
func (d *Dir) guard() (func(), error) {
	if err := d.ensure(); err != nil {
		return nil, err
	}
	f, err := openPrivate(filepath.Join(d.path, "_locks"), os.O_RDWR)
	if err != nil {
		return nil, fmt.Errorf("jsonl: %w", err)
	}
	if err := flock(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("jsonl: lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}

// Latest replays a stream's file: the newest line of every id, deleted
// ones included (with _deleted_at set).
func (d *Dir) Latest(stream string) (map[int64]map[string]json.RawMessage, error) {
	f, err := os.Open(d.file(stream))
	if errors.Is(err, os.ErrNotExist) {
		return map[int64]map[string]json.RawMessage{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[int64]map[string]json.RawMessage{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var row map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			return nil, fmt.Errorf("jsonl: %s: %w", stream, err)
		}
		id, err := strconv.ParseInt(string(row["id"]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("jsonl: %s: a line without an integer id", stream)
		}
		if _, deleted := row[connection.DeletedColumn]; deleted && len(row) == 2 {
			if prev, ok := out[id]; ok {
				prev[connection.DeletedColumn] = row[connection.DeletedColumn]
			}
			continue
		}
		out[id] = row
	}
	return out, sc.Err()
}

// MarkDeleted implements syncer.Destination by appending tombstones.
func (d *Dir) MarkDeleted(_ context.Context, s *connection.Stream, live []int64, at string) (int, error) {
	rows, err := d.Latest(s.Name)
	if err != nil {
		return 0, err
	}
	keep := make(map[int64]bool, len(live))
	for _, id := range live {
		keep[id] = true
	}
	var buf bytes.Buffer
	n := 0
	for id, row := range rows {
		if _, gone := row[connection.DeletedColumn]; gone || keep[id] {
			continue
		}
		fmt.Fprintf(&buf, `{"id":%d,%q:%q}`+"\n", id, connection.DeletedColumn, at)
		n++
	}
	if n == 0 {
		return 0, nil
	}
	return n, d.appendSync(d.file(s.Name), buf.Bytes())
}

var (
	_ connection.Destination = (*Dir)(nil)
	_ connection.Locker      = (*Dir)(nil)
)
