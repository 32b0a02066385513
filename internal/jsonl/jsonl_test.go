package jsonl_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/connection/connectiontest"
	"github.com/outreach-connector/outreach-connector/internal/jsonl"
)

func TestSyncDestination(t *testing.T) {
	connectiontest.RunDestination(t, func(t *testing.T) connectiontest.Harness {
		return harness(t, t.TempDir(), "")
	})
}

// harness opens namespace ns of the directory dir for the suite.
func harness(t *testing.T, dir, ns string) connectiontest.Harness {
	d, err := jsonl.OpenNamespace(dir, ns)
	if err != nil {
		t.Fatal(err)
	}
	return connectiontest.Harness{Dest: d, InNamespace: ns, Rows: func(t *testing.T, s *connection.Stream) map[int64]map[string]string {
		rows, err := d.Latest(s.Name)
		if err != nil {
			t.Fatal(err)
		}
		out := map[int64]map[string]string{}
		for id, row := range rows {
			if _, gone := row[connection.DeletedColumn]; gone {
				continue
			}
			m := map[string]string{}
			for k, raw := range row {
				var s string
				if json.Unmarshal(raw, &s) == nil {
					m[k] = s
				} else {
					m[k] = string(raw)
				}
			}
			out[id] = m
		}
		return out
	}, Namespace: func(t *testing.T, ns string) connectiontest.Harness { return harness(t, dir, ns) }}
}

func TestPrepareCutsAHalfWrittenLine(t *testing.T) {
	dir := t.TempDir()
	d, _ := jsonl.Open(dir)
	s := connectiontest.TestStream("widgets")
	path := filepath.Join(dir, "widgets.jsonl")
	os.WriteFile(path, []byte("{\"id\":1,\"name\":\"a\"}\n{\"id\":2,\"na"), 0o644)
	if err := d.Prepare(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	rows, err := d.Latest("widgets")
	if err != nil || len(rows) != 1 {
		t.Errorf("after repair: %d rows, %v; want the one complete line", len(rows), err)
	}
}
