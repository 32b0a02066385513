package load

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Rejection is a row the load did not write, and why.
type Rejection struct {
	Line   int    `json:"line"`
	Key    string `json:"key,omitempty"`
	Column string `json:"column,omitempty"` // the source column at fault, when one is
	// Reason is the load's own finding or Outreach's error detail.
	Reason string `json:"reason"`
	// ErrorID and Pointer are Outreach's, when Outreach refused the write
	// (validationError, /data/attributes/title).
	ErrorID string         `json:"error_id,omitempty"`
	Pointer string         `json:"pointer,omitempty"`
	Row     map[string]any `json:"row"`
}

func (r Rejection) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "line %d", r.Line)
	if r.Column != "" {
		fmt.Fprintf(&b, ", column %s", r.Column)
	}
	b.WriteString(": ")
	b.WriteString(r.Reason)
	if r.Pointer != "" {
		fmt.Fprintf(&b, " (Outreach: %s at %s)", r.ErrorID, r.Pointer)
	}
	return b.String()
}

// WriteRejects writes rejections to path as CSV (line, column, reason,
// error_id, pointer, then the source's columns) or, when path ends in
// .jsonl or .json, as JSON Lines. The file is created with mode 0600.
func WriteRejects(path string, columns []string, rs []Rejection) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("--rejects: %w", err)
	}
	if strings.HasSuffix(path, ".jsonl") || strings.HasSuffix(path, ".json") || strings.HasSuffix(path, ".ndjson") {
		err = writeRejectsJSONL(f, rs)
	} else {
		err = writeRejectsCSV(f, columns, rs)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("--rejects %s: %w", path, err)
	}
	return nil
}

func writeRejectsJSONL(w io.Writer, rs []Rejection) error {
	enc := json.NewEncoder(w)
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

func writeRejectsCSV(w io.Writer, columns []string, rs []Rejection) error {
	cols := slices.Clone(columns)
	for _, r := range rs { // columns of rows from an earlier run's source
		for k := range r.Row {
			if !slices.Contains(cols, k) {
				cols = append(cols, k)
			}
		}
	}
	cw := csv.NewWriter(w)
	cw.Write(append([]string{"line", "column", "reason", "error_id", "pointer"}, cols...))
	for _, r := range rs {
		rec := []string{strconv.Itoa(r.Line), r.Column, r.Reason, r.ErrorID, r.Pointer}
		for _, c := range cols {
			v := r.Row[c]
			if v == nil {
				rec = append(rec, "")
			} else {
				rec = append(rec, asString(v))
			}
		}
		cw.Write(rec)
	}
	cw.Flush()
	return cw.Error()
}
