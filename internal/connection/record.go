package connection

import (
	"bytes"
	"encoding/json"
)

// Record is one row: values by column index of its stream. A value is
// nil, string, int64, float64, bool, or (for json columns) the JSON text
// as a string.
type Record struct {
	ID     int64
	Cursor string // the cursor field's value as Outreach sent it; "" when none
	Values []any
}

// AppendJSON writes r as one JSON object: null values left out, json
// columns embedded as JSON rather than as strings, text cleaned (Clean).
func (s *Stream) AppendJSON(w *bytes.Buffer, r Record) error {
	r = s.Clean(r)
	w.WriteByte('{')
	first := true
	for i, c := range s.Columns {
		v := r.Values[i]
		if v == nil {
			continue
		}
		if !first {
			w.WriteByte(',')
		}
		first = false
		name, _ := json.Marshal(c.Name)
		w.Write(name)
		w.WriteByte(':')
		if c.Type == ColJSON {
			if str, ok := v.(string); ok && json.Valid([]byte(str)) {
				w.WriteString(str)
				continue
			}
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		w.Write(b)
	}
	w.WriteByte('}')
	return nil
}
