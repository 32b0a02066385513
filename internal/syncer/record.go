package syncer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/outreach-connector/outreach-connector/outreach"
)

// Record is one row: values by column index of its stream. A value is
// nil, string, int64, float64, bool, or (for json columns) the JSON text
// as a string.
type Record struct {
	ID     int64
	Cursor string // the cursor field's value as Outreach sent it; "" when none
	Values []any
}

// converter turns resources of one stream into records.
type converter struct {
	s      *Stream
	attrs  map[string]int // attribute → column index
	rels   map[string]int // relationship → column index
	extras int
	cursor string
}

func newConverter(s *Stream) *converter {
	c := &converter{s: s, attrs: map[string]int{}, rels: map[string]int{}, cursor: s.CursorField}
	for i, col := range s.Columns {
		switch {
		case col.Attribute != "":
			c.attrs[col.Attribute] = i
		case col.Relationship != "":
			c.rels[col.Relationship] = i
		case col.Name == ExtrasColumn:
			c.extras = i
		}
	}
	return c
}

var null = []byte("null")

// convert makes a record; attributes the stream has no column for go to
// the extras column, nothing is dropped.
func (c *converter) convert(r *outreach.Resource) (Record, error) {
	rec := Record{ID: r.ID, Values: make([]any, len(c.s.Columns))}
	rec.Values[0] = r.ID
	var extras map[string]json.RawMessage
	for name, raw := range r.Attributes {
		i, ok := c.attrs[name]
		if !ok {
			if c.s.Skip[name] {
				continue
			}
			if extras == nil {
				extras = map[string]json.RawMessage{}
			}
			extras[name] = raw
			continue
		}
		v, err := value(c.s.Columns[i].Type, raw)
		if err != nil {
			return rec, fmt.Errorf("%s %d: attribute %s: %w", c.s.Type, r.ID, name, err)
		}
		rec.Values[i] = v
		if name == c.cursor {
			rec.Cursor, _ = v.(string)
		}
	}
	for name, rel := range r.Relationships {
		i, ok := c.rels[name]
		if !ok || !rel.HasData {
			continue
		}
		if c.s.Columns[i].ToMany {
			ids, _ := json.Marshal(rel.IDs())
			rec.Values[i] = string(ids)
		} else if id := rel.ID(); id != 0 {
			rec.Values[i] = id
		}
	}
	if extras != nil {
		b, err := json.Marshal(extras)
		if err != nil {
			return rec, err
		}
		rec.Values[c.extras] = string(b)
	}
	return rec, nil
}

// value converts one raw JSON attribute value for a column type.
func value(t ColumnType, raw json.RawMessage) (any, error) {
	if len(raw) == 0 || bytes.Equal(raw, null) {
		return nil, nil
	}
	switch t {
	case ColString, ColTimestamp, ColDate:
		if raw[0] != '"' {
			return string(raw), nil // a number or boolean where a string was declared: keep its text
		}
		if bytes.IndexByte(raw, '\\') < 0 {
			return string(raw[1 : len(raw)-1]), nil
		}
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case ColInteger:
		if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			return n, nil
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return nil, fmt.Errorf("not an integer: %.40s", raw)
		}
		if f == float64(int64(f)) {
			return int64(f), nil
		}
		return f, nil
	case ColNumber:
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return nil, fmt.Errorf("not a number: %.40s", raw)
		}
		return f, nil
	case ColBoolean:
		switch string(raw) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, fmt.Errorf("not a boolean: %.40s", raw)
	}
	return string(raw), nil
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
