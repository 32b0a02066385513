package connection

import (
	"slices"
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
