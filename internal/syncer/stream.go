// Package syncer copies Outreach streams into a Destination incrementally:
// bounded updatedAt windows read in order, records upserted by id, and the
// stream's cursor committed in the same transaction as the records it
// covers, so a run can stop at any instant and the next one loses nothing.
package syncer

import (
	"slices"
	"sort"
	"strings"
	"unicode"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
)

// Replication is how a stream is read.
type Replication string

// The replication methods.
const (
	Incremental Replication = "incremental" // on CursorField, in windows
	FullRefresh Replication = "full_refresh"
)

// ColumnType is the kind of value a column holds.
type ColumnType string

// The column types destinations map to their own.
const (
	ColString    ColumnType = "string"
	ColInteger   ColumnType = "integer"
	ColNumber    ColumnType = "number"
	ColBoolean   ColumnType = "boolean"
	ColTimestamp ColumnType = "timestamp" // ISO 8601 text as Outreach sends it
	ColDate      ColumnType = "date"
	ColJSON      ColumnType = "json" // arrays, objects, to-many id arrays, extras
)

// Column is one column of a stream's table.
type Column struct {
	Name string
	Type ColumnType
	// Attribute is the Outreach attribute the column holds, or "".
	Attribute string
	// Relationship is the Outreach relationship the column holds, or "".
	Relationship string
	ToMany       bool
}

// ExtrasColumn holds, as a JSON object, the attributes the catalog does
// not know.
const ExtrasColumn = "_extras"

// DeletedColumn holds when reconciliation found the record gone from
// Outreach (ISO 8601), or null.
const DeletedColumn = "_deleted_at"

// Stream is one Outreach collection as a table.
type Stream struct {
	Name        string // tap-outreach style: "prospects", "sequence_states"
	Path        string // API collection path: "sequenceStates"
	Type        string // JSON:API type: "sequenceState"
	Replication Replication
	CursorField string // "updatedAt" or "createdAt"; "" for full refresh
	Columns     []Column
	// PageSize is the page size to start with (1000; mailings 100).
	PageSize int
	Custom   bool
	// Skip names attributes and relationships left out on purpose (a
	// Singer catalog deselected them): no column, and not in the extras.
	Skip map[string]bool
}

// Without returns a copy of s without the named columns; id and the
// cursor field always stay.
func (s *Stream) Without(columns []string) *Stream {
	c := *s
	c.Skip = map[string]bool{}
	for k := range s.Skip {
		c.Skip[k] = true
	}
	c.Columns = nil
	for _, col := range s.Columns {
		drop := col.Name != "id" && col.Name != s.CursorField && slices.Contains(columns, col.Name)
		if !drop {
			c.Columns = append(c.Columns, col)
			continue
		}
		if col.Attribute != "" {
			c.Skip[col.Attribute] = true
		}
		if col.Relationship != "" {
			c.Skip[col.Relationship] = true
		}
	}
	return &c
}

// Column returns the column called name.
func (s *Stream) Column(name string) (*Column, bool) {
	for i := range s.Columns {
		if s.Columns[i].Name == name {
			return &s.Columns[i], true
		}
	}
	return nil, false
}

// snake turns "sequenceStates" into "sequence_states".
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		if r == '/' {
			r = '_'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Streams returns a stream for every listable collection of the catalog,
// custom objects included, sorted by name.
func Streams(cat *catalog.Catalog) []*Stream {
	var out []*Stream
	for _, r := range cat.Resources() {
		if !r.Ops.List {
			continue
		}
		out = append(out, streamOf(r))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func streamOf(r *catalog.Resource) *Stream {
	name := snake(r.Path)
	if r.Custom {
		name = CleanText(snake(r.Type)) // customObjects/project → project
	}
	s := &Stream{Name: name, Path: r.Path, Type: r.Type, Replication: FullRefresh, PageSize: 1000, Custom: r.Custom}
	if r.Type == "mailing" {
		s.PageSize = 100 // bodies make 1000-record pages fail at Outreach's gateway
	}
	for _, field := range []string{"updatedAt", "createdAt", "timestamp"} {
		if a, ok := r.Attribute(field); ok && a.Filterable && a.Sortable && a.Type == catalog.TypeDateTime {
			s.Replication, s.CursorField = Incremental, field
			break
		}
	}
	s.Columns = append(s.Columns, Column{Name: "id", Type: ColInteger})
	used := map[string]bool{"id": true, ExtrasColumn: true, DeletedColumn: true}
	for _, a := range r.Attributes {
		if a.WriteOnly {
			continue
		}
		used[CleanText(a.Name)] = true
		s.Columns = append(s.Columns, Column{Name: CleanText(a.Name), Type: columnType(a), Attribute: a.Name})
	}
	for _, rel := range r.Relationships {
		if rel.LinksOnly {
			continue
		}
		base := CleanText(rel.Name)
		name := base + "Id"
		if rel.ToMany {
			name = base + "Ids"
		}
		if used[name] { // e.g. an attribute followUpSequenceId beside relationship followUpSequence
			name = base + "RelationshipId"
			if rel.ToMany {
				name = base + "RelationshipIds"
			}
		}
		used[name] = true
		typ := ColInteger
		if rel.ToMany {
			typ = ColJSON
		}
		s.Columns = append(s.Columns, Column{Name: name, Type: typ, Relationship: rel.Name, ToMany: rel.ToMany})
	}
	s.Columns = append(s.Columns, Column{Name: ExtrasColumn, Type: ColJSON}, Column{Name: DeletedColumn, Type: ColTimestamp})
	return s
}

func columnType(a catalog.Attribute) ColumnType {
	switch a.Type {
	case catalog.TypeInteger:
		return ColInteger
	case catalog.TypeNumber:
		return ColNumber
	case catalog.TypeBoolean:
		return ColBoolean
	case catalog.TypeDateTime:
		return ColTimestamp
	case catalog.TypeDate:
		return ColDate
	case catalog.TypeArray, catalog.TypeObject:
		return ColJSON
	}
	return ColString
}
