package syncer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/outreach"
)

// converter turns resources of one stream into records.
type converter struct {
	s      *connection.Stream
	attrs  map[string]int // attribute → column index
	rels   map[string]int // relationship → column index
	extras int
	cursor string
}

func newConverter(s *connection.Stream) *converter {
	c := &converter{s: s, attrs: map[string]int{}, rels: map[string]int{}, cursor: s.CursorField}
	for i, col := range s.Columns {
		switch {
		case col.Attribute != "":
			c.attrs[col.Attribute] = i
		case col.Relationship != "":
			c.rels[col.Relationship] = i
		case col.Name == connection.ExtrasColumn:
			c.extras = i
		}
	}
	return c
}

var null = []byte("null")

// convert makes a record; attributes the stream has no column for go to
// the extras column, nothing is dropped.
func (c *converter) convert(r *outreach.Resource) (connection.Record, error) {
	rec := connection.Record{ID: r.ID, Values: make([]any, len(c.s.Columns))}
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
func value(t connection.ColumnType, raw json.RawMessage) (any, error) {
	if len(raw) == 0 || bytes.Equal(raw, null) {
		return nil, nil
	}
	switch t {
	case connection.ColString, connection.ColTimestamp, connection.ColDate:
		if raw[0] != '"' {
			return string(raw), nil // a number or boolean where a string was declared: keep its text
		}
		if bytes.IndexByte(raw, '\\') < 0 {
			return string(raw[1 : len(raw)-1]), nil
		}
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case connection.ColInteger:
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
	case connection.ColNumber:
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return nil, fmt.Errorf("not a number: %.40s", raw)
		}
		return f, nil
	case connection.ColBoolean:
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
