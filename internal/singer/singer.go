// Package singer is the Singer destination: SCHEMA, RECORD and STATE
// messages (https://github.com/singer-io/getting-started, SPEC) on a
// writer, so outreach-connector can stand in for tap-outreach in Meltano
// and Stitch pipelines. State follows tap-outreach's bookmarks:
// {"bookmarks": {"<stream>": {"<cursor field>": "<value>"}}}.
package singer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

// Writer writes Singer messages. It is safe for concurrent use; messages
// of different streams interleave, each whole.
type Writer struct {
	mu        sync.Mutex
	w         *bufio.Writer
	bookmarks map[string]map[string]any
	schemas   map[string]bool
	now       func() time.Time
	buf       []byte // one RECORD message, reused (guarded by mu)
}

// New returns a writer on w, resuming from state (Singer state JSON; nil
// or empty for none).
func New(w io.Writer, state []byte) (*Writer, error) {
	s := &Writer{w: bufio.NewWriter(w), bookmarks: map[string]map[string]any{}, schemas: map[string]bool{}, now: time.Now}
	if len(bytes.TrimSpace(state)) > 0 {
		var st struct {
			Bookmarks map[string]json.RawMessage `json:"bookmarks"`
		}
		if err := json.Unmarshal(state, &st); err != nil {
			return nil, fmt.Errorf("singer: the state is not Singer state JSON: %w", err)
		}
		for stream, raw := range st.Bookmarks {
			var m map[string]any
			if json.Unmarshal(raw, &m) != nil {
				var v string // an older flat bookmark: "stream": "cursor"
				if err := json.Unmarshal(raw, &v); err != nil {
					return nil, fmt.Errorf("singer: bookmark of %s: %w", stream, err)
				}
				m = map[string]any{"updatedAt": v}
			}
			s.bookmarks[stream] = m
		}
	}
	return s, nil
}

func (s *Writer) emit(msg any) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	s.w.Write(b)
	s.w.WriteByte('\n')
	return nil
}

// Schema returns the JSON Schema of a stream's records.
func Schema(st *connection.Stream) map[string]any {
	props := map[string]any{}
	for _, c := range st.Columns {
		var p map[string]any
		switch c.Type {
		case connection.ColInteger:
			p = map[string]any{"type": []string{"null", "integer"}}
		case connection.ColNumber:
			p = map[string]any{"type": []string{"null", "number"}}
		case connection.ColBoolean:
			p = map[string]any{"type": []string{"null", "boolean"}}
		case connection.ColTimestamp:
			p = map[string]any{"type": []string{"null", "string"}, "format": "date-time"}
		case connection.ColDate:
			p = map[string]any{"type": []string{"null", "string"}, "format": "date"}
		case connection.ColJSON:
			p = map[string]any{"type": []string{"null", "array", "object"}}
		default:
			p = map[string]any{"type": []string{"null", "string"}}
		}
		props[c.Name] = p
	}
	props["id"] = map[string]any{"type": []string{"integer"}}
	return map[string]any{"type": []string{"null", "object"}, "additionalProperties": false, "properties": props}
}

// Prepare implements syncer.Destination: the stream's SCHEMA message.
func (s *Writer) Prepare(_ context.Context, st *connection.Stream) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.schemas[st.Name] {
		return nil
	}
	s.schemas[st.Name] = true
	msg := map[string]any{"type": "SCHEMA", "stream": st.Name, "schema": Schema(st), "key_properties": []string{"id"}}
	if st.CursorField != "" {
		msg["bookmark_properties"] = []string{st.CursorField}
	}
	if err := s.emit(msg); err != nil {
		return err
	}
	return s.w.Flush()
}

// pageSizeKey is the bookmark's key of the page size a stream's reads
// settled at, beside its cursor, when Outreach failed larger pages (so a
// run from this state does not learn it again from failures).
const pageSizeKey = "page_size"

// State implements syncer.Destination from the bookmarks.
func (s *Writer) State(_ context.Context, stream string) (connection.State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st connection.State
	for k, v := range s.bookmarks[stream] {
		switch v := v.(type) {
		case string:
			if k != pageSizeKey {
				st.Cursor = v
			}
		case float64: // from the state file
			if k == pageSizeKey && v > 0 && v == float64(int(v)) {
				st.PageSize = int(v)
			}
		case int: // from this run
			if k == pageSizeKey && v > 0 {
				st.PageSize = v
			}
		}
	}
	return st, nil
}

// Write implements syncer.Destination: RECORD messages, then a STATE
// message with every bookmark, flushed together.
func (s *Writer) Write(_ context.Context, st *connection.Stream, recs []connection.Record, state connection.State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, _ := json.Marshal(st.Name)
	head := `{"type":"RECORD","stream":` + string(name) + `,"record":`
	tail := `,"time_extracted":"` + s.now().UTC().Format(time.RFC3339) + `"}` + "\n"
	for _, r := range recs {
		buf, err := st.AppendJSON(append(s.buf[:0], head...), r)
		s.buf = append(buf, tail...)
		if err != nil {
			return err
		}
		s.w.Write(s.buf)
	}
	if st.CursorField != "" && state.Cursor != "" {
		b := map[string]any{st.CursorField: state.Cursor}
		if state.PageSize > 0 {
			b[pageSizeKey] = state.PageSize
		}
		s.bookmarks[st.Name] = b
	}
	if err := s.emit(map[string]any{"type": "STATE", "value": map[string]any{"bookmarks": s.bookmarks}}); err != nil {
		return err
	}
	return s.w.Flush()
}

var _ connection.Destination = (*Writer)(nil)
