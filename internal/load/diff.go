package load

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/outreach"
)

// Change is one attribute or relationship a write sets: its value before
// (JSON, "null" for none; empty on a create) and after.
type Change struct {
	Name   string `json:"name"`
	Column string `json:"column"`
	Before string `json:"before,omitempty"`
	After  string `json:"after"`
}

// same reports whether the value a row wants equals the record's, as
// Outreach stores it: date-times to the second, numbers as numbers, lists
// of strings in any order (emails in any case).
func same(a *catalog.Attribute, want any, have json.RawMessage) bool {
	if len(have) == 0 || string(have) == "null" {
		if want == nil {
			return true
		}
		if ss, ok := want.([]string); ok && len(ss) == 0 {
			return true
		}
		if s, ok := want.(string); ok && s == "" {
			return false
		}
		return false
	}
	if want == nil {
		if a.Type == catalog.TypeArray {
			var xs []json.RawMessage
			return json.Unmarshal(have, &xs) == nil && len(xs) == 0
		}
		return false
	}
	switch a.Type {
	case catalog.TypeString, catalog.TypeDate:
		var s string
		return json.Unmarshal(have, &s) == nil && s == want
	case catalog.TypeInteger, catalog.TypeNumber:
		var f float64
		if json.Unmarshal(have, &f) != nil {
			return false
		}
		switch w := want.(type) {
		case int64:
			return f == float64(w)
		case float64:
			return f == w
		}
		return false
	case catalog.TypeBoolean:
		var b bool
		return json.Unmarshal(have, &b) == nil && b == want
	case catalog.TypeDateTime:
		var s string
		if json.Unmarshal(have, &s) != nil {
			return false
		}
		h, err1 := time.Parse(time.RFC3339Nano, s)
		w, err2 := time.Parse(time.RFC3339Nano, want.(string))
		return err1 == nil && err2 == nil && h.Truncate(time.Second).Equal(w.Truncate(time.Second))
	case catalog.TypeArray:
		if ws, ok := want.([]string); ok {
			var hs []string
			if json.Unmarshal(have, &hs) != nil {
				return false
			}
			norm := func(ss []string) []string {
				out := slices.Clone(ss)
				for i := range out {
					if isEmail(a) {
						out[i] = strings.ToLower(out[i])
					}
				}
				slices.Sort(out)
				return out
			}
			return slices.Equal(norm(ws), norm(hs))
		}
	}
	wb, _ := json.Marshal(want)
	var x, y bytes.Buffer
	json.Compact(&x, wb)
	json.Compact(&y, have)
	return bytes.Equal(x.Bytes(), y.Bytes())
}

// diff compares a planned row with the record that exists and returns the
// attributes and relationships to send, and the changes for the plan.
func diff(m *mapping, p *planned, rec *outreach.Resource) (map[string]any, map[string]outreach.Relationship, []Change) {
	attrs := map[string]any{}
	rels := map[string]outreach.Relationship{}
	var changes []Change
	for _, t := range m.targets {
		switch t.kind {
		case kindAttr:
			want, ok := p.attrs[t.attr.Name]
			if !ok {
				continue
			}
			have := rec.Attributes[t.attr.Name]
			if same(t.attr, want, have) {
				continue
			}
			attrs[t.attr.Name] = want
			changes = append(changes, Change{Name: t.describe(), Column: t.column, Before: shortJSON(have), After: jsonOf(want)})
		case kindRelID, kindLookup:
			id, ok := p.rels[t.rel.Name]
			if !ok {
				continue
			}
			have := rec.Relationships[t.rel.Name]
			if have.ID() == id {
				continue
			}
			rels[t.rel.Name] = outreach.ToOne(t.relRes.Type, id)
			changes = append(changes, Change{Name: t.rel.Name, Column: t.column, Before: idString(have.ID()), After: idString(id)})
		}
	}
	return attrs, rels, changes
}

// creation is what a create sends: every mapped value, empty ones as
// null, so that Outreach's defaults (a new record's owner is the token's
// user) do not make the record differ from its row.
func creation(m *mapping, p *planned) (map[string]any, map[string]outreach.Relationship, []Change) {
	attrs := map[string]any{}
	rels := map[string]outreach.Relationship{}
	var changes []Change
	for _, t := range m.targets {
		switch t.kind {
		case kindAttr:
			if v, ok := p.attrs[t.attr.Name]; ok {
				attrs[t.attr.Name] = v
				if v != nil {
					changes = append(changes, Change{Name: t.describe(), Column: t.column, After: jsonOf(v)})
				}
			}
		case kindRelID, kindLookup:
			if id, ok := p.rels[t.rel.Name]; ok {
				rels[t.rel.Name] = outreach.ToOne(t.relRes.Type, id)
				if id != 0 {
					changes = append(changes, Change{Name: t.rel.Name, Column: t.column, After: idString(id)})
				}
			}
		}
	}
	return attrs, rels, changes
}

func idString(id int64) string {
	if id == 0 {
		return "null"
	}
	return fmt.Sprint(id)
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return shortJSON(b)
}

func shortJSON(b json.RawMessage) string {
	if len(b) == 0 {
		return "null"
	}
	s := string(b)
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
