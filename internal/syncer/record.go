package syncer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unsafe"

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
	// The stream's layout: pages decode straight into its slots.
	layout     *outreach.Layout
	attrCol    []int // attribute slot → column index
	relCol     []int // relationship slot → column index
	cursorSlot int   // the cursor attribute's slot, or -1
	// Scratch of extrasJSON, reused for every record.
	members []outreach.Member
	buf     []byte
}

func newConverter(s *connection.Stream) *converter {
	c := &converter{s: s, attrs: map[string]int{}, rels: map[string]int{}, cursor: s.CursorField, cursorSlot: -1}
	var attrNames, relNames []string
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
	// Slots in column order, one per name (the maps above keep, of a name
	// two columns share, the last, as convert does).
	for i, col := range s.Columns {
		switch {
		case col.Attribute != "" && c.attrs[col.Attribute] == i:
			if col.Attribute == c.cursor {
				c.cursorSlot = len(attrNames)
			}
			attrNames, c.attrCol = append(attrNames, col.Attribute), append(c.attrCol, i)
		case col.Relationship != "" && c.rels[col.Relationship] == i:
			relNames, c.relCol = append(relNames, col.Relationship), append(c.relCol, i)
		}
	}
	c.layout = outreach.NewLayout(attrNames, relNames)
	return c
}

// convertPage makes the records of a page decoded against c.layout, as
// convert makes them from resources; their values share one allocation.
func (c *converter) convertPage(rows []outreach.Row) ([]connection.Record, error) {
	n := len(c.s.Columns)
	vals := make([]any, len(rows)*n)
	var strs stringArena
	recs := make([]connection.Record, len(rows))
	for k := range rows {
		r := &rows[k]
		if r.Null {
			return nil, fmt.Errorf("%s: a null resource in the page", c.s.Type)
		}
		rec := connection.Record{ID: r.ID, Values: vals[k*n : (k+1)*n : (k+1)*n]}
		rec.Values[0] = r.ID
		for slot, raw := range r.Attrs {
			if raw == nil {
				continue
			}
			v, err := value(c.s.Columns[c.attrCol[slot]].Type, raw, &strs)
			if err != nil {
				return nil, fmt.Errorf("%s %d: attribute %s: %w", c.s.Type, r.ID, c.s.Columns[c.attrCol[slot]].Attribute, err)
			}
			rec.Values[c.attrCol[slot]] = v
			if slot == c.cursorSlot {
				rec.Cursor, _ = v.(string)
			}
		}
		for slot, rel := range r.Rels {
			if !rel.HasData {
				continue
			}
			i := c.relCol[slot]
			if c.s.Columns[i].ToMany {
				rec.Values[i] = idList(rel.Data)
			} else if id := rel.ID(); id != 0 {
				rec.Values[i] = id
			}
		}
		if len(r.Extra) > 0 {
			b, err := c.extrasJSON(r.Extra)
			if err != nil {
				return nil, fmt.Errorf("%s %d: %w", c.s.Type, r.ID, err)
			}
			if b != nil {
				rec.Values[c.extras] = strs.string(b)
			}
		}
		recs[k] = rec
	}
	return recs, nil
}

// extrasJSON returns the JSON object of the members the stream does not
// skip, byte for byte as json.Marshal writes them as a
// map[string]json.RawMessage: names sorted, of a name sent twice the last,
// values compact and HTML-escaped. nil when every member is skipped. The
// bytes are the converter's, valid until its next call.
func (c *converter) extrasJSON(members []outreach.Member) ([]byte, error) {
	kept := c.members[:0]
	for _, m := range members {
		if !c.s.Skip[m.Name] {
			kept = append(kept, m)
		}
	}
	c.members = kept
	if len(kept) == 0 {
		return nil, nil
	}
	slices.SortStableFunc(kept, func(a, b outreach.Member) int { return strings.Compare(a.Name, b.Name) })
	b := append(c.buf[:0], '{')
	for i, m := range kept {
		if i+1 < len(kept) && kept[i+1].Name == m.Name {
			continue // a later one of the name counts (the sort kept the order sent)
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(connection.AppendJSONString(b, m.Name), ':')
		if plainJSON(m.Value) {
			b = append(b, m.Value...)
		} else {
			v, err := json.Marshal(m.Value)
			if err != nil {
				return nil, fmt.Errorf("attribute %s: %w", m.Name, err)
			}
			b = append(b, v...)
		}
	}
	c.buf = append(b, '}')
	return c.buf, nil
}

// plainJSON reports whether json.Marshal writes the (valid) JSON value v as
// it is: no whitespace between tokens, no HTML characters and nothing that
// might be U+2028 or U+2029 in its strings.
func plainJSON(v []byte) bool {
	in := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case in && c == '\\':
			i++
		case c == '"':
			in = !in
		case c == '<', c == '>', c == '&', c == 0xE2:
			return false
		case !in && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return false
		}
	}
	return true
}

// idList is the JSON array of the ids, as json.Marshal writes []int64.
func idList(data []outreach.ResourceID) string {
	b := make([]byte, 0, 2+len(data)*8)
	b = append(b, '[')
	for i, d := range data {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, d.ID, 10)
	}
	return string(append(b, ']'))
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
		v, err := value(c.s.Columns[i].Type, raw, nil)
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

// stringArena hands out strings cut from shared chunks: one allocation for
// a few thousand strings instead of one each (a page of prospects holds
// about 45,000). A string keeps its chunk alive; a page's records are
// written and dropped together.
type stringArena struct{ chunk []byte }

const arenaChunk = 256 << 10

// string returns a string holding b's bytes; nil a makes it alone.
func (a *stringArena) string(b []byte) string {
	if a == nil || len(b) == 0 || len(b) > arenaChunk/4 {
		return string(b)
	}
	if cap(a.chunk)-len(a.chunk) < len(b) {
		a.chunk = make([]byte, 0, arenaChunk)
	}
	start := len(a.chunk)
	a.chunk = append(a.chunk, b...) // never overwrites a byte a string holds
	return unsafe.String(&a.chunk[start], len(b))
}

// smallInt reads a JSON integer of at most 18 digits (no conversion to a
// string, which strconv would need); ok false for anything else.
func smallInt(raw []byte) (n int64, ok bool) {
	digits := raw
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 || (digits[0] == '0' && len(digits) > 1) {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if len(digits) < len(raw) {
		n = -n
	}
	return n, true
}

// value converts one raw JSON attribute value for a column type, its
// strings cut from strs (nil: allocated alone).
func value(t connection.ColumnType, raw json.RawMessage, strs *stringArena) (any, error) {
	if len(raw) == 0 || bytes.Equal(raw, null) {
		return nil, nil
	}
	switch t {
	case connection.ColString, connection.ColTimestamp, connection.ColDate:
		if raw[0] != '"' {
			return strs.string(raw), nil // a number or boolean where a string was declared: keep its text
		}
		if bytes.IndexByte(raw, '\\') < 0 {
			return strs.string(raw[1 : len(raw)-1]), nil
		}
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case connection.ColInteger:
		if n, ok := smallInt(raw); ok {
			return n, nil
		}
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
	return strs.string(raw), nil
}
