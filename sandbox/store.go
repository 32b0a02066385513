package sandbox

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
)

// relRef is the value of a to-one relationship: a target type and id, or
// the zero value for null.
type relRef struct {
	typ string
	id  int64
}

// record is one resource object. attrs and rels are indexed like the
// catalog's Attributes and Relationships of the record's type; to-many
// relationships are computed when read, from the to-one side.
type record struct {
	id    int64
	attrs []any
	rels  []relRef
	// extra holds attributes the catalog does not list, as real Outreach
	// payloads do (prospect accountName, smsOptStatus, ...).
	extra map[string]any
}

func (r *record) clone() *record {
	return &record{id: r.id, attrs: slices.Clone(r.attrs), rels: slices.Clone(r.rels), extra: maps.Clone(r.extra)}
}

// collection holds the records of one type: a seeded population that is
// generated on demand, and an overlay of records created or changed since.
type collection struct {
	res     *catalog.Resource
	plan    *plan             // nil when nothing is seeded
	seeded  int64             // seeded ids are 1..seeded
	nextID  int64             // id of the next created record
	overlay map[int64]*record // created or modified records
	deleted map[int64]bool    // seeded ids that were deleted

	updOnce  sync.Once
	updIndex []keyID // seeded (updatedAt, id), ascending
}

type keyID struct {
	key timestamp
	id  int64
}

func (c *collection) updatedIndex() []keyID {
	c.updOnce.Do(func() {
		if c.plan == nil || c.plan.updated < 0 {
			return
		}
		idx := make([]keyID, c.seeded)
		for i := range idx {
			id := int64(i + 1)
			idx[i] = keyID{c.plan.updatedAt(id), id}
		}
		slices.SortFunc(idx, func(a, b keyID) int {
			return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.id, b.id))
		})
		c.updIndex = idx
	})
	return c.updIndex
}

// store is the sandbox's data. Readers hold mu.RLock, writers mu.Lock.
type store struct {
	mu    sync.RWMutex
	cat   *catalog.Catalog
	cols  map[string]*collection
	email map[string]int64 // emails of overlay prospects
}

func newStore(cat *catalog.Catalog, plans map[string]*plan) *store {
	s := &store{cat: cat, cols: map[string]*collection{}, email: map[string]int64{}}
	for _, r := range cat.Resources() {
		c := &collection{res: r, overlay: map[int64]*record{}, deleted: map[int64]bool{}, nextID: 1}
		if p := plans[r.Type]; p != nil {
			c.plan, c.seeded, c.nextID = p, p.count, p.count+1
		}
		s.cols[r.Type] = c
	}
	return s
}

// get returns record id of type typ. The caller must not modify it.
func (s *store) get(typ string, id int64) (*record, bool) {
	c := s.cols[typ]
	if c == nil || id <= 0 {
		return nil, false
	}
	if r, ok := c.overlay[id]; ok {
		return r, true
	}
	if id <= c.seeded && !c.deleted[id] {
		return c.plan.generate(id), true
	}
	return nil, false
}

func (s *store) exists(typ string, id int64) bool {
	c := s.cols[typ]
	if c == nil || id <= 0 {
		return false
	}
	if _, ok := c.overlay[id]; ok {
		return true
	}
	return id <= c.seeded && !c.deleted[id]
}

// put stores rec, creating it or replacing the previous version.
func (s *store) put(typ string, rec *record) {
	c := s.cols[typ]
	if old, ok := s.get(typ, rec.id); ok && typ == "prospect" {
		s.unindexEmails(c.res, old)
	}
	c.overlay[rec.id] = rec
	if rec.id >= c.nextID {
		c.nextID = rec.id + 1
	}
	if typ == "prospect" {
		if i := c.res.AttributeIndex("emails"); i >= 0 {
			if emails, ok := rec.attrs[i].([]string); ok {
				for _, e := range emails {
					s.email[strings.ToLower(e)] = rec.id
				}
			}
		}
	}
}

func (s *store) unindexEmails(res *catalog.Resource, rec *record) {
	if i := res.AttributeIndex("emails"); i >= 0 {
		if emails, ok := rec.attrs[i].([]string); ok {
			for _, e := range emails {
				if s.email[strings.ToLower(e)] == rec.id {
					delete(s.email, strings.ToLower(e))
				}
			}
		}
	}
}

func (s *store) remove(typ string, id int64) bool {
	c := s.cols[typ]
	old, ok := s.get(typ, id)
	if !ok {
		return false
	}
	if typ == "prospect" {
		s.unindexEmails(c.res, old)
	}
	delete(c.overlay, id)
	if id <= c.seeded {
		c.deleted[id] = true
	}
	return true
}

func (s *store) newID(typ string) int64 {
	c := s.cols[typ]
	id := c.nextID
	c.nextID++
	return id
}

// prospectWithEmail returns the id of a live prospect that has email.
func (s *store) prospectWithEmail(email string) (int64, bool) {
	email = strings.ToLower(email)
	if id, ok := s.email[email]; ok {
		return id, true
	}
	// Seeded emails end in ".<id>@<domain>": check that prospect.
	at := strings.LastIndexByte(email, '@')
	dot := strings.LastIndexByte(email[:max(at, 0)], '.')
	if at < 0 || dot < 0 {
		return 0, false
	}
	id, err := strconv.ParseInt(email[dot+1:at], 10, 64)
	if err != nil {
		return 0, false
	}
	c := s.cols["prospect"]
	if _, modified := c.overlay[id]; modified || id > c.seeded || c.deleted[id] {
		return 0, false
	}
	rec := c.plan.generate(id)
	if i := c.res.AttributeIndex("emails"); i >= 0 {
		if emails, ok := rec.attrs[i].([]string); ok && slices.ContainsFunc(emails, func(e string) bool { return strings.EqualFold(e, email) }) {
			return id, true
		}
	}
	return 0, false
}

// children calls yield with the ids of live records of type typ whose
// to-one relationship rel points at parent, in increasing id order.
//
// When the seeded inverse has no formula, seeded records are scanned unless
// overlayOnly is set (used to render to-many data without a full scan).
func (s *store) children(typ string, rel int, parent int64, overlayOnly bool, yield func(*record) bool) {
	c := s.cols[typ]
	var ids []int64
	for id, r := range c.overlay {
		if r.rels[rel].id == parent {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	seededOK := c.plan != nil && c.plan.inverse(rel, parent, func(int64) bool { return false })
	next := func(yieldID func(int64) bool) {
		if seededOK {
			c.plan.inverse(rel, parent, func(id int64) bool {
				if c.deleted[id] {
					return true
				}
				if _, ok := c.overlay[id]; ok {
					return true
				}
				if c.plan.relIDFor(rel, id) != parent {
					return true
				}
				return yieldID(id)
			})
			return
		}
		if overlayOnly {
			return
		}
		for id := int64(1); id <= c.seeded; id++ {
			if c.deleted[id] {
				continue
			}
			if _, ok := c.overlay[id]; ok {
				continue
			}
			if c.plan.relIDFor(rel, id) == parent && !yieldID(id) {
				return
			}
		}
	}
	// Merge seeded ids with overlay ids, both ascending.
	i := 0
	stopped := false
	next(func(id int64) bool {
		for i < len(ids) && ids[i] < id {
			if !yield(c.overlay[ids[i]]) {
				stopped = true
				return false
			}
			i++
		}
		if !yield(c.plan.generate(id)) {
			stopped = true
			return false
		}
		return true
	})
	for ; !stopped && i < len(ids); i++ {
		if !yield(c.overlay[ids[i]]) {
			return
		}
	}
}

// inverseRel returns the index of the to-one relationship of type child
// that points back at type parent, preferring one named like the parent.
func inverseRel(child *catalog.Resource, parent string, hint string) int {
	best := -1
	for i, rel := range child.Relationships {
		if rel.ToMany || rel.Target() != parent {
			continue
		}
		if rel.Name == parent || rel.Name == hint {
			return i
		}
		if best < 0 {
			best = i
		}
	}
	return best
}
