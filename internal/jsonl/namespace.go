package jsonl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

// owner is DIR/_owner.json.
type owner struct {
	Org          string `json:"org"`
	CredentialID string `json:"credential_id"`
	Credential   string `json:"credential"`
	Connection   string `json:"connection,omitempty"`
	ClaimedAt    string `json:"claimed_at"`
}

// Claim implements syncer.Claimer with DIR/_owner.json, written under the
// directory's advisory lock.
func (d *Dir) Claim(_ context.Context, o connection.Owner) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	unguard, err := d.guard()
	if err != nil {
		return err
	}
	defer unguard()
	path := filepath.Join(d.path, "_owner.json")
	raw, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("jsonl: %w", err)
	}
	rec := owner{Org: o.Org, CredentialID: o.CredentialID, Credential: o.Credential, Connection: o.Connection,
		ClaimedAt: time.Now().UTC().Format(time.RFC3339)}
	if err == nil {
		var held owner
		if err := json.Unmarshal(raw, &held); err != nil {
			return fmt.Errorf("jsonl: %s: %w", path, err)
		}
		h := connection.Owner{Org: held.Org, CredentialID: held.CredentialID, Credential: held.Credential, Connection: held.Connection}
		if !h.Same(o) {
			return &connection.OwnedError{Namespace: d.ns, Where: d.where, Holder: h}
		}
		if held.Org != "" || o.Org == "" {
			return nil
		}
		rec = held
		rec.Org = o.Org
	}
	out, _ := json.MarshalIndent(rec, "", "  ")
	return d.replaceFile(path, out)
}

// ResetStreams implements syncer.Resetter: the streams leave _state.json;
// their files stay.
func (d *Dir) ResetStreams(_ context.Context, streams []string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	unguard, err := d.guard()
	if err != nil {
		return err
	}
	defer unguard()
	m, err := d.readState()
	if err != nil {
		return err
	}
	for _, s := range streams {
		delete(m, s)
	}
	raw, _ := json.MarshalIndent(m, "", "  ")
	return d.replaceFile(filepath.Join(d.path, "_state.json"), raw)
}

// DropNamespace implements syncer.Dropper: a namespace's subdirectory is
// removed whole; in the default namespace, the stream, lock, state and
// owner files go, and the subdirectories of other namespaces stay.
func (d *Dir) DropNamespace(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ns != "" {
		if err := os.RemoveAll(d.path); err != nil {
			return fmt.Errorf("jsonl: %w", err)
		}
		return nil
	}
	entries, err := os.ReadDir(d.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("jsonl: %w", err)
	}
	for _, e := range entries {
		n := e.Name()
		ours := strings.HasSuffix(n, ".jsonl") || strings.HasSuffix(n, ".lock") || strings.HasSuffix(n, ".tmp") ||
			slices.Contains([]string{"_state.json", "_owner.json", "_locks"}, n)
		if e.IsDir() || !ours {
			continue
		}
		if err := os.Remove(filepath.Join(d.path, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("jsonl: %w", err)
		}
	}
	return nil
}

// Inspect implements syncer.Inspector: a stream per DIR/<stream>.jsonl,
// with its cursor from _state.json and its live records.
func (d *Dir) Inspect(context.Context) ([]connection.StreamInfo, error) {
	d.mu.Lock()
	m, err := d.readState()
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(d.path, "*.jsonl"))
	if err != nil {
		return nil, err
	}
	var out []connection.StreamInfo
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".jsonl")
		rows, err := d.Latest(name)
		if err != nil {
			return nil, err
		}
		si := connection.StreamInfo{Stream: name, Cursor: m[name].Cursor}
		for _, row := range rows {
			if _, gone := row[connection.DeletedColumn]; !gone {
				si.Rows++
			}
		}
		out = append(out, si)
	}
	slices.SortFunc(out, func(a, b connection.StreamInfo) int { return strings.Compare(a.Stream, b.Stream) })
	return out, nil
}

var (
	_ connection.Claimer   = (*Dir)(nil)
	_ connection.Resetter  = (*Dir)(nil)
	_ connection.Dropper   = (*Dir)(nil)
	_ connection.Inspector = (*Dir)(nil)
)
