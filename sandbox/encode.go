package sandbox

import (
	"maps"
	"slices"
	"strconv"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
)

// maxToManyData caps the resource identifiers rendered in one to-many
// relationship's data; meta.count still tells how many there are.
const maxToManyData = 100

// encoder writes JSON:API documents the way Outreach does: integer ids,
// every attribute present (null when empty), relationships in their three
// shapes, and absolute links.
type encoder struct {
	st     *store
	apiURL string              // absolute base, e.g. http://127.0.0.1:8080/api/v2
	fields map[string][]string // sparse fieldsets by type
}

func (e *encoder) wants(typ, name string) bool {
	f, ok := e.fields[typ]
	return !ok || slices.Contains(f, name)
}

// appendResource appends one resource object.
func (e *encoder) appendResource(b []byte, res *catalog.Resource, rec *record) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, res.Type)
	b = append(b, `,"id":`...)
	b = strconv.AppendInt(b, rec.id, 10)
	b = append(b, `,"attributes":{`...)
	first := true
	for i := range res.Attributes {
		a := &res.Attributes[i]
		if a.WriteOnly || !e.wants(res.Type, a.Name) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, a.Name)
		b = append(b, ':')
		b = appendValue(b, rec.attrs[i])
	}
	for _, k := range slices.Sorted(maps.Keys(rec.extra)) {
		if !e.wants(res.Type, k) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, k)
		b = append(b, ':')
		b = appendValue(b, rec.extra[k])
	}
	b = append(b, `},"relationships":{`...)
	first = true
	for i := range res.Relationships {
		rel := &res.Relationships[i]
		if !e.wants(res.Type, rel.Name) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, rel.Name)
		b = append(b, ':')
		b = e.appendRelationship(b, res, rec, i)
	}
	b = append(b, `},"links":{"self":`...)
	b = appendString(b, e.apiURL+"/"+res.Path+"/"+strconv.FormatInt(rec.id, 10))
	return append(b, "}}"...)
}

func (e *encoder) appendRelationship(b []byte, res *catalog.Resource, rec *record, i int) []byte {
	rel := &res.Relationships[i]
	if !rel.ToMany {
		ref := rec.rels[i]
		if ref.id == 0 {
			return append(b, `{"data":null}`...)
		}
		b = append(b, `{"data":{"type":`...)
		b = appendString(b, ref.typ)
		b = append(b, `,"id":`...)
		b = strconv.AppendInt(b, ref.id, 10)
		return append(b, "}}"...)
	}
	related := e.relatedURL(res, rec, rel)
	if rel.LinksOnly {
		b = append(b, `{"links":{"related":`...)
		b = appendString(b, related)
		return append(b, "}}"...)
	}
	b = append(b, `{"data":[`...)
	n := 0
	e.st.relatedMany(res, rec, i, func(ref relRef) bool {
		if n < maxToManyData {
			if n > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"type":`...)
			b = appendString(b, ref.typ)
			b = append(b, `,"id":`...)
			b = strconv.AppendInt(b, ref.id, 10)
			b = append(b, '}')
		}
		n++
		return n < 10*maxToManyData
	})
	b = append(b, `],"links":{"related":`...)
	b = appendString(b, related)
	b = append(b, `},"meta":{"count":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, "}}"...)
}

// relatedURL is the collection URL that lists a to-many relationship's
// members, e.g. .../mailings?filter%5Bprospect%5D%5Bid%5D=1.
func (e *encoder) relatedURL(res *catalog.Resource, rec *record, rel *catalog.Relationship) string {
	path, back := rel.Name, res.Type
	if t, ok := e.st.cat.ByType(rel.Target()); ok {
		path = t.Path
		if i := inverseRel(t, res.Type, ""); i >= 0 {
			back = t.Relationships[i].Name
		}
	}
	return e.apiURL + "/" + path + "?filter%5B" + back + "%5D%5Bid%5D=" + strconv.FormatInt(rec.id, 10)
}

// appendIncluded appends the records that the include paths reach from
// recs, each once, as a JSON array.
func (e *encoder) appendIncluded(b []byte, res *catalog.Resource, recs []*record, include [][]string) []byte {
	type key struct {
		typ string
		id  int64
	}
	seen := map[key]bool{}
	for _, r := range recs {
		seen[key{res.Type, r.id}] = true
	}
	b = append(b, '[')
	first := true
	var walk func(res *catalog.Resource, rec *record, path []string)
	walk = func(res *catalog.Resource, rec *record, path []string) {
		if len(path) == 0 {
			return
		}
		i := relIndex(res, path[0])
		rel := &res.Relationships[i]
		var refs []relRef
		if rel.ToMany {
			e.st.relatedMany(res, rec, i, func(ref relRef) bool {
				refs = append(refs, ref)
				return len(refs) < maxToManyData
			})
		} else if rec.rels[i].id != 0 {
			refs = []relRef{rec.rels[i]}
		}
		for _, ref := range refs {
			tres, ok := e.st.cat.ByType(ref.typ)
			if !ok {
				continue
			}
			target, ok := e.st.get(ref.typ, ref.id)
			if !ok {
				continue
			}
			if k := (key{ref.typ, ref.id}); !seen[k] {
				seen[k] = true
				if !first {
					b = append(b, ',')
				}
				first = false
				b = e.appendResource(b, tres, target)
			}
			walk(tres, target, path[1:])
		}
	}
	for _, r := range recs {
		for _, p := range include {
			walk(res, r, p)
		}
	}
	return append(b, ']')
}
