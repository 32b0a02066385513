package singer_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/connection/connectiontest"
	"github.com/outreach-connector/outreach-connector/internal/singer"
)

func TestSyncDestination(t *testing.T) {
	connectiontest.RunDestination(t, func(t *testing.T) connectiontest.Harness {
		var out bytes.Buffer
		w, err := singer.New(&out, nil)
		if err != nil {
			t.Fatal(err)
		}
		return connectiontest.Harness{Dest: w, Rows: func(t *testing.T, s *connection.Stream) map[int64]map[string]string {
			return replay(t, out.Bytes(), s.Name)
		}}
	})
}

// replay applies RECORD messages of a stream: the newest per id wins.
func replay(t *testing.T, out []byte, stream string) map[int64]map[string]string {
	t.Helper()
	rows := map[int64]map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var msg struct {
			Type   string                     `json:"type"`
			Stream string                     `json:"stream"`
			Record map[string]json.RawMessage `json:"record"`
		}
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
			t.Fatalf("not JSON: %s", sc.Text())
		}
		if msg.Type != "RECORD" || msg.Stream != stream {
			continue
		}
		row := map[string]string{}
		var id int64
		for k, raw := range msg.Record {
			var s string
			if json.Unmarshal(raw, &s) == nil {
				row[k] = s
			} else {
				row[k] = string(raw)
			}
		}
		json.Unmarshal(msg.Record["id"], &id)
		rows[id] = row
	}
	return rows
}

func TestResumesFromState(t *testing.T) {
	tests := []struct {
		state, want string
	}{
		{`{"bookmarks": {"widgets": {"updatedAt": "2026-01-01T00:00:00Z"}}}`, "2026-01-01T00:00:00Z"},
		{`{"bookmarks": {"widgets": "2025-01-01T00:00:00Z"}}`, "2025-01-01T00:00:00Z"},
		{`{"bookmarks": {"widgets": {"page_size": 25, "updatedAt": "2026-02-01T00:00:00Z"}}}`, "2026-02-01T00:00:00Z"},
		{``, ""},
	}
	for _, tt := range tests {
		w, err := singer.New(&bytes.Buffer{}, []byte(tt.state))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := w.State(t.Context(), "widgets")
		if st.Cursor != tt.want {
			t.Errorf("state %s: cursor %q, want %q", tt.state, st.Cursor, tt.want)
		}
	}
	if _, err := singer.New(&bytes.Buffer{}, []byte(`[1,2]`)); err == nil {
		t.Error("a state that is not Singer state was accepted")
	}
}

// TestKeepsTheSettledPageSize: a stream whose reads settled below the
// wanted page size keeps that size in its bookmark beside the cursor, and
// a writer resumed from the emitted state gives it back, so the next run
// starts there.
func TestKeepsTheSettledPageSize(t *testing.T) {
	var out bytes.Buffer
	w, err := singer.New(&out, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := &connection.Stream{Name: "mailings", CursorField: "updatedAt", Columns: []connection.Column{{Name: "subject", Type: connection.ColString}}}
	if err := w.Write(t.Context(), st, nil, connection.State{Cursor: "2026-03-01T00:00:00Z", PageSize: 25}); err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	var msg struct {
		Type  string
		Value json.RawMessage
	}
	if err := json.Unmarshal(lines[len(lines)-1], &msg); err != nil || msg.Type != "STATE" {
		t.Fatalf("last line %s: %v", lines[len(lines)-1], err)
	}
	resumed, err := singer.New(&bytes.Buffer{}, msg.Value)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := resumed.State(t.Context(), "mailings")
	if want := (connection.State{Cursor: "2026-03-01T00:00:00Z", PageSize: 25}); got != want {
		t.Fatalf("state %s resumed as %+v; want %+v", msg.Value, got, want)
	}
	if got, _ := w.State(t.Context(), "mailings"); got.PageSize != 25 {
		t.Fatalf("the writer's own state: %+v", got)
	}
}
