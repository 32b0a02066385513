// Package syncer copies Outreach streams into a Destination incrementally:
// bounded updatedAt windows read in order, records upserted by id, and the
// stream's cursor committed in the same transaction as the records it
// covers, so a run can stop at any instant and the next one loses nothing.
package syncer

import (
	"sort"
	"strings"
	"unicode"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/connection"
)

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
func Streams(cat *catalog.Catalog) []*connection.Stream {
	var out []*connection.Stream
	for _, r := range cat.Resources() {
		if !r.Ops.List {
			continue
		}
		out = append(out, streamOf(r))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func streamOf(r *catalog.Resource) *connection.Stream {
	name := snake(r.Path)
	if r.Custom {
		name = connection.CleanText(snake(r.Type)) // customObjects/project → project
	}
	s := &connection.Stream{Name: name, Path: r.Path, Type: r.Type, Replication: connection.FullRefresh, PageSize: 1000, Custom: r.Custom}
	if r.Type == "mailing" {
		s.PageSize = 100 // bodies make 1000-record pages fail at Outreach's gateway
	}
	for _, field := range []string{"updatedAt", "createdAt", "timestamp"} {
		if a, ok := r.Attribute(field); ok && a.Filterable && a.Sortable && a.Type == catalog.TypeDateTime {
			s.Replication, s.CursorField = connection.Incremental, field
			break
		}
	}
	s.Columns = append(s.Columns, connection.Column{Name: "id", Type: connection.ColInteger})
	used := map[string]bool{"id": true, connection.ExtrasColumn: true, connection.DeletedColumn: true}
	for _, name := range secretAttributes(r.Type) {
		if s.Skip == nil {
			s.Skip = map[string]bool{}
		}
		s.Skip[name] = true
	}
	for _, a := range r.Attributes {
		if a.WriteOnly || s.Skip[a.Name] {
			continue
		}
		used[connection.CleanText(a.Name)] = true
		s.Columns = append(s.Columns, connection.Column{Name: connection.CleanText(a.Name), Type: columnType(a), Attribute: a.Name})
	}
	for _, rel := range r.Relationships {
		if rel.LinksOnly {
			continue
		}
		base := connection.CleanText(rel.Name)
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
		typ := connection.ColInteger
		if rel.ToMany {
			typ = connection.ColJSON
		}
		s.Columns = append(s.Columns, connection.Column{Name: name, Type: typ, Relationship: rel.Name, ToMany: rel.ToMany})
	}
	s.Columns = append(s.Columns, connection.Column{Name: connection.ExtrasColumn, Type: connection.ColJSON}, connection.Column{Name: connection.DeletedColumn, Type: connection.ColTimestamp})
	return s
}

func columnType(a catalog.Attribute) connection.ColumnType {
	switch a.Type {
	case catalog.TypeInteger:
		return connection.ColInteger
	case catalog.TypeNumber:
		return connection.ColNumber
	case catalog.TypeBoolean:
		return connection.ColBoolean
	case catalog.TypeDateTime:
		return connection.ColTimestamp
	case catalog.TypeDate:
		return connection.ColDate
	case catalog.TypeArray, catalog.TypeObject:
		return connection.ColJSON
	}
	return connection.ColString
}

// secretAttributes are attributes a sync never copies: a webhook's
// signing secret and cleanup token, which Outreach shows to the app that
// made the webhook (this connector, for a live connection's webhooks);
// in a destination anyone who reads it could forge deliveries.
func secretAttributes(typ string) []string {
	if typ == "webhook" {
		return []string{"secret", "cleanupToken"}
	}
	return nil
}
