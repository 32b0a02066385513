package sandbox

import (
	"cmp"
	"slices"
	"sort"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
)

// listResult is one page of a collection.
type listResult struct {
	records []*record
	more    bool
	total   int // only when counting
	capped  bool
}

// list runs lq against the store. The caller holds s.mu for reading.
func (s *store) list(lq *listQuery) (*listResult, error) {
	var after []any
	if lq.after != nil {
		k, err := lq.afterKeys()
		if err != nil {
			return nil, err
		}
		after = k
	}
	res := &listResult{}
	skip := 0
	if !lq.cursor {
		skip = lq.offset
	}
	s.ordered(lq, after, func(rec *record) bool {
		if skip > 0 {
			skip--
			return true
		}
		if len(res.records) == lq.size {
			res.more = true
			return false
		}
		res.records = append(res.records, rec)
		return true
	})
	if lq.count {
		n := 0
		s.ordered(lq, nil, func(*record) bool {
			n++
			return n < countCap
		})
		res.total, res.capped = n, n >= countCap
	}
	return res, nil
}

// ordered calls yield with every record that matches lq, in lq's order,
// starting strictly after the keys in after (when not nil).
func (s *store) ordered(lq *listQuery, after []any, yield func(*record) bool) {
	c := s.cols[lq.res.Type]
	emit := func(rec *record) bool {
		if after != nil && lq.compareKeys(lq.sortValues(rec), after) <= 0 {
			return true
		}
		if !lq.matches(s, rec) {
			return true
		}
		return yield(rec)
	}
	primary := lq.sort[0]
	switch {
	case lq.relFilter() != nil:
		s.orderedByParent(lq, c, emit)
	case len(lq.sort) == 1 || (len(lq.sort) == 2 && primary.attr == c.res.AttributeIndex("createdAt") && !primary.desc):
		s.orderedByID(lq, c, after, primary.desc, emit)
	case len(lq.sort) == 2 && primary.attr >= 0 && primary.attr == c.res.AttributeIndex("updatedAt") && c.plan != nil:
		s.orderedByUpdated(lq, c, after, primary.desc, emit)
	default:
		s.orderedInMemory(lq, c, emit)
	}
}

// seededMayMatch rejects seeded record id cheaply, from the plan's
// formulas, when a filter on id, createdAt, updatedAt or a to-one
// relationship id cannot match.
func (lq *listQuery) seededMayMatch(c *collection, id int64) bool {
	p := c.plan
	for i := range lq.filters {
		f := &lq.filters[i]
		var v any
		switch {
		case f.attr == -1:
			v = id
		case f.attr >= 0 && f.attr == p.created:
			v = p.createdAt(id)
		case f.attr >= 0 && f.attr == p.updated:
			v = p.updatedAt(id)
		case f.attr == -2 && f.relKey == "id" && !c.res.Relationships[f.rel].ToMany:
			rid := p.relIDFor(f.rel, id)
			if rid == 0 {
				if f.null == 1 {
					continue
				}
				return false
			}
			v = rid
		default:
			continue
		}
		if !f.test(v) {
			return false
		}
	}
	return true
}

func (s *store) orderedByID(lq *listQuery, c *collection, after []any, desc bool, yield func(*record) bool) {
	last := c.nextID - 1
	at := func(id int64) (*record, bool) {
		if r, ok := c.overlay[id]; ok {
			return r, true
		}
		if id <= c.seeded && !c.deleted[id] && lq.seededMayMatch(c, id) {
			return c.plan.generate(id), true
		}
		return nil, false
	}
	if desc {
		start := last
		if lq.after != nil {
			start = min(start, lq.after.ID-1)
		}
		for id := start; id >= 1; id-- {
			if r, ok := at(id); ok && !yield(r) {
				return
			}
		}
		return
	}
	start := int64(1)
	if lq.after != nil {
		start = lq.after.ID + 1
	}
	// Seeded createdAt grows with id: skip straight to the lower bound.
	if c.plan != nil && c.plan.created >= 0 {
		if lo, _ := lq.rangeOn(c.plan.created); lo != nil {
			if t, ok := lo.(timestamp); ok {
				first := int64(sort.Search(int(c.seeded), func(i int) bool { return c.plan.createdAt(int64(i+1)) >= t })) + 1
				start = max(start, first)
			}
		}
	}
	for id := start; id <= last; id++ {
		if r, ok := at(id); ok && !yield(r) {
			return
		}
	}
}

func (s *store) orderedByUpdated(lq *listQuery, c *collection, after []any, desc bool, yield func(*record) bool) {
	idx := c.updatedIndex()
	upd := c.plan.updated
	var over []keyID
	for id, r := range c.overlay {
		if t, ok := r.attrs[upd].(timestamp); ok {
			over = append(over, keyID{t, id})
		} else {
			over = append(over, keyID{-1 << 62, id})
		}
	}
	less := func(a, b keyID) int { return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.id, b.id)) }
	slices.SortFunc(over, less)
	lo, hi := lq.rangeOn(upd)
	// Seek the seeded index to the first candidate.
	var from keyID
	hasFrom := false
	if t, ok := lo.(timestamp); ok && !desc {
		from, hasFrom = keyID{t, 0}, true
	}
	if t, ok := hi.(timestamp); ok && desc {
		from, hasFrom = keyID{t, 1 << 62}, true
	}
	if after != nil {
		if t, ok := after[0].(timestamp); ok {
			k := keyID{t, lq.after.ID}
			if !hasFrom || (!desc && less(k, from) > 0) || (desc && less(k, from) < 0) {
				from, hasFrom = k, true
			}
		}
	}
	seeded := func(e keyID) (*record, bool) {
		if c.deleted[e.id] {
			return nil, false
		}
		if _, ok := c.overlay[e.id]; ok {
			return nil, false
		}
		if !lq.seededMayMatch(c, e.id) {
			return nil, false
		}
		return c.plan.generate(e.id), true
	}
	beyond := func(k timestamp) bool {
		if desc {
			t, ok := lo.(timestamp)
			return ok && k < t
		}
		t, ok := hi.(timestamp)
		return ok && k > t
	}
	if !desc {
		i := 0
		if hasFrom {
			i = sort.Search(len(idx), func(i int) bool { return less(idx[i], from) >= 0 })
		}
		j := 0
		for i < len(idx) || j < len(over) {
			if j < len(over) && (i >= len(idx) || less(over[j], idx[i]) < 0) {
				if beyond(over[j].key) {
					return
				}
				if !yield(c.overlay[over[j].id]) {
					return
				}
				j++
				continue
			}
			if beyond(idx[i].key) {
				i = len(idx)
				continue
			}
			if r, ok := seeded(idx[i]); ok && !yield(r) {
				return
			}
			i++
		}
		return
	}
	i := len(idx) - 1
	if hasFrom {
		i = sort.Search(len(idx), func(i int) bool { return less(idx[i], from) > 0 }) - 1
	}
	j := len(over) - 1
	for i >= 0 || j >= 0 {
		if j >= 0 && (i < 0 || less(over[j], idx[i]) > 0) {
			if beyond(over[j].key) {
				return
			}
			if !yield(c.overlay[over[j].id]) {
				return
			}
			j--
			continue
		}
		if beyond(idx[i].key) {
			i = -1
			continue
		}
		if r, ok := seeded(idx[i]); ok && !yield(r) {
			return
		}
		i--
	}
}

func (s *store) orderedByParent(lq *listQuery, c *collection, yield func(*record) bool) {
	f := lq.relFilter()
	var recs []*record
	seen := map[int64]bool{}
	for _, v := range f.values {
		parent, _ := v.(int64)
		s.children(c.res.Type, f.rel, parent, false, func(r *record) bool {
			if !seen[r.id] {
				seen[r.id] = true
				recs = append(recs, r)
			}
			return true
		})
	}
	slices.SortFunc(recs, lq.compareRecords)
	for _, r := range recs {
		if !yield(r) {
			return
		}
	}
}

func (s *store) orderedInMemory(lq *listQuery, c *collection, yield func(*record) bool) {
	var recs []*record
	for id := int64(1); id < c.nextID; id++ {
		if r, ok := c.overlay[id]; ok {
			if lq.matches(s, r) {
				recs = append(recs, r)
			}
			continue
		}
		if id <= c.seeded && !c.deleted[id] && lq.seededMayMatch(c, id) {
			if r := c.plan.generate(id); lq.matches(s, r) {
				recs = append(recs, r)
			}
		}
	}
	slices.SortStableFunc(recs, lq.compareRecords)
	for _, r := range recs {
		if !yield(r) {
			return
		}
	}
}

// relatedMany calls yield with the members of to-many relationship rel of
// rec, computed from the to-one relationship back (of the target type)
// that points at rec, in id order. back < 0 means there is none.
func (s *store) relatedMany(res *catalog.Resource, back int, rec *record, rel int, yield func(relRef) bool) {
	if back < 0 {
		return
	}
	target := res.Relationships[rel].Target()
	s.children(target, back, rec.id, true, func(child *record) bool {
		return yield(relRef{typ: target, id: child.id})
	})
}
