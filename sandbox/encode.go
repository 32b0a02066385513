package sandbox

import (
	"maps"
	"net/url"
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
	st      *store
	layouts map[string]*layout
	apiURL  string              // absolute base, e.g. http://127.0.0.1:8080/api/v2
	fields  map[string][]string // sparse fieldsets by type
	quoted  []byte              // apiURL as the start of a JSON string: "http://...
	viewer  string              // client id of the requesting app
}

// layout holds the parts of a resource's JSON that never change: quoted
// member names and the paths of related links.
type layout struct {
	attrKeys    [][]byte // `"name":`
	relKeys     [][]byte
	relatedPath []string // "/mailings?filter%5Bprospect%5D%5Bid%5D=" for to-many relationships
	back        []int    // index of the target's to-one relationship pointing back, or -1
	selfPath    string   // "/prospects/"
}

func newLayouts(cat *catalog.Catalog) map[string]*layout {
	out := map[string]*layout{}
	for _, res := range cat.Resources() {
		l := &layout{selfPath: "/" + res.Path + "/"}
		for _, a := range res.Attributes {
			l.attrKeys = append(l.attrKeys, append(appendString(nil, a.Name), ':'))
		}
		for _, rel := range res.Relationships {
			l.relKeys = append(l.relKeys, append(appendString(nil, rel.Name), ':'))
			path, back, backIdx := rel.Name, res.Type, -1
			if t, ok := cat.ByType(rel.Target()); ok {
				path = t.Path
				if i := inverseRel(t, res.Type, ""); i >= 0 {
					back, backIdx = t.Relationships[i].Name, i
				}
			}
			l.relatedPath = append(l.relatedPath, "/"+path+"?filter%5B"+url.QueryEscape(back)+"%5D%5Bid%5D=")
			l.back = append(l.back, backIdx)
		}
		out[res.Type] = l
	}
	return out
}

func newEncoder(st *store, layouts map[string]*layout, apiURL string, fields map[string][]string) *encoder {
	q := appendString(nil, apiURL)
	return &encoder{st: st, layouts: layouts, apiURL: apiURL, fields: fields, quoted: q[:len(q)-1]}
}

// appendURL appends apiURL+path+id as a JSON string.
func (e *encoder) appendURL(b []byte, path string, id int64) []byte {
	b = append(b, e.quoted...)
	b = append(b, path...)
	b = strconv.AppendInt(b, id, 10)
	return append(b, '"')
}

func (e *encoder) wants(typ, name string) bool {
	if len(e.fields) == 0 {
		return true
	}
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
	l := e.layouts[res.Type]
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
		b = append(b, l.attrKeys[i]...)
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
		v := rec.extra[k]
		if k == "cleanupToken" && rec.extra["creatorAppId"] != e.viewer {
			v = nil // shown only to the app that created the webhook
		}
		b = appendValue(b, v)
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
		b = append(b, l.relKeys[i]...)
		b = e.appendRelationship(b, res, l, rec, i)
	}
	b = append(b, `},"links":{"self":`...)
	b = e.appendURL(b, l.selfPath, rec.id)
	return append(b, "}}"...)
}

func (e *encoder) appendRelationship(b []byte, res *catalog.Resource, l *layout, rec *record, i int) []byte {
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
	if rel.LinksOnly {
		b = append(b, `{"links":{"related":`...)
		b = e.appendURL(b, l.relatedPath[i], rec.id)
		return append(b, "}}"...)
	}
	b = append(b, `{"data":[`...)
	n := 0
	e.st.relatedMany(res, l.back[i], rec, i, func(ref relRef) bool {
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
	b = e.appendURL(b, l.relatedPath[i], rec.id)
	b = append(b, `},"meta":{"count":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, "}}"...)
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
			e.st.relatedMany(res, e.layouts[res.Type].back[i], rec, i, func(ref relRef) bool {
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
