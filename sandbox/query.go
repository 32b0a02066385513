package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
)

// listQuery is a parsed collection request.
type listQuery struct {
	res     *catalog.Resource
	filters []filter
	sort    []sortKey // always ends with id
	after   *cursor   // cursor mode: resume strictly after this position
	size    int       // page size
	cursor  bool      // cursor mode (page[size] given) or offset mode
	offset  int       // offset mode
	count   bool
	fields  map[string][]string // sparse fieldsets by type
	include [][]string          // relationship paths
}

type sortKey struct {
	attr int // attribute index, or -1 for id
	desc bool
}

type filter struct {
	attr   int // attribute index, or -1 for id, -2 for a relationship
	rel    int // relationship index when attr == -2
	relKey string
	// Exactly one of the following describes the condition.
	values  []any // any of (equality)
	lo, hi  any   // inclusive range; nil means unbounded
	isRange bool
	null    int // 1: must be null, 2: must not be null
}

// cursor is the keyset position of the last record of a page. It is sent
// to clients as opaque base64 JSON shaped like Outreach's own cursors.
type cursor struct {
	Controller string            `json:"cn"`
	SortProp   string            `json:"sp"`
	SortValues []json.RawMessage `json:"sv"`
	ID         int64             `json:"id"`
	Version    int               `json:"v"`
}

const (
	defaultPageSize = 50
	maxPageSize     = 1000
	maxOffset       = 10000
	countCap        = 2000000
)

type queryError struct {
	status int
	id     string
	title  string
	detail string
	param  string
}

func (e *queryError) Error() string { return e.detail }

func badParam(param, format string, args ...any) *queryError {
	return &queryError{status: 400, id: "badRequest", title: "Bad Request", detail: fmt.Sprintf(format, args...), param: param}
}

// queryRules are the options that change how queries are read.
type queryRules struct {
	countByDefault bool // meta.count without count=true
	strictSort     bool // only attributes badged sortable
}

// parseListQuery parses the query string of GET /<path>.
func parseListQuery(res *catalog.Resource, cat *catalog.Catalog, q url.Values, rules queryRules) (*listQuery, error) {
	lq := &listQuery{res: res, size: defaultPageSize, count: rules.countByDefault, fields: map[string][]string{}}
	newSyntax := q.Get("newFilterSyntax") == "true"
	for key, vals := range q {
		switch {
		case key == "page[size]":
			n, err := strconv.Atoi(vals[0])
			if err != nil || n < 1 || n > maxPageSize {
				return nil, badParam(key, "page[size] must be an integer between 1 and %d, got %q.", maxPageSize, vals[0])
			}
			lq.size, lq.cursor = n, true
		case key == "page[limit]":
			n, err := strconv.Atoi(vals[0])
			if err != nil || n < 1 || n > maxPageSize {
				return nil, badParam(key, "page[limit] must be an integer between 1 and %d, got %q.", maxPageSize, vals[0])
			}
			if !q.Has("page[size]") {
				lq.size = n
			}
		case key == "page[offset]":
			n, err := strconv.Atoi(vals[0])
			if err != nil || n < 0 || n > maxOffset {
				return nil, badParam(key, "page[offset] must be an integer between 0 and %d, got %q; use cursor pagination (page[size]) for larger collections.", maxOffset, vals[0])
			}
			lq.offset = n
		case key == "page[after]":
			c, err := decodeCursor(vals[0])
			if err != nil {
				return nil, badParam(key, "page[after] is not a valid cursor.")
			}
			lq.after = c
		case key == "count":
			lq.count = vals[0] == "true"
		case key == "sort":
			keys, err := parseSort(res, vals[0], rules.strictSort)
			if err != nil {
				return nil, err
			}
			lq.sort = keys
		case strings.HasPrefix(key, "fields[") && strings.HasSuffix(key, "]"):
			typ := key[len("fields[") : len(key)-1]
			target, ok := cat.ByType(typ)
			if !ok {
				return nil, badParam(key, "fields[%s]: unknown resource type %q.", typ, typ)
			}
			var names []string
			for _, f := range strings.Split(vals[0], ",") {
				if f == "" {
					continue
				}
				if _, ok := target.Attribute(f); !ok {
					if _, ok := target.Relationship(f); !ok {
						return nil, badParam(key, "fields[%s]: %q is not an attribute or relationship of %s.", typ, f, typ)
					}
				}
				names = append(names, f)
			}
			lq.fields[typ] = names
		case key == "include":
			paths, err := parseInclude(res, cat, vals[0])
			if err != nil {
				return nil, err
			}
			lq.include = paths
		case strings.HasPrefix(key, "filter["):
			f, err := parseFilter(res, key, vals, newSyntax)
			if err != nil {
				return nil, err
			}
			lq.filters = append(lq.filters, f...)
		}
	}
	if lq.cursor && q.Has("page[offset]") {
		return nil, badParam("page[offset]", "page[offset] cannot be combined with page[size]; follow links.next instead.")
	}
	if !lq.cursor && lq.after != nil {
		return nil, badParam("page[after]", "page[after] requires page[size].")
	}
	if n := len(lq.sort); n == 0 || lq.sort[n-1].attr != -1 {
		lq.sort = append(lq.sort, sortKey{attr: -1})
	}
	if lq.after != nil && lq.after.SortProp != sortProp(res, lq.sort) {
		return nil, badParam("page[after]", "page[after] was issued for sort %q, not %q.", lq.after.SortProp, sortProp(res, lq.sort))
	}
	return lq, nil
}

// parseSort reads sort=a,-b. Strict, only attributes the OpenAPI document
// badges sortable are accepted. Otherwise any attribute of the type is,
// and updatedAt on a type without one sorts as createdAt (records that
// never change), or as id when the type has no createdAt either.
func parseSort(res *catalog.Resource, s string, strict bool) ([]sortKey, error) {
	var keys []sortKey
	for _, part := range strings.Split(s, ",") {
		desc := strings.HasPrefix(part, "-")
		name := strings.TrimPrefix(part, "-")
		i := res.AttributeIndex(name)
		if !strict && i < 0 && name == "updatedAt" {
			name = "createdAt"
			i = res.AttributeIndex(name)
			if i < 0 {
				name = "id"
			}
		}
		if name == "id" {
			keys = append(keys, sortKey{attr: -1, desc: desc})
			return keys, nil // id is unique: nothing after it matters
		}
		if strings.Contains(name, ".") {
			return nil, badParam("sort", "Sorting by a relationship's attribute (%q) is not supported; include the relationship and sort locally.", name)
		}
		if i < 0 || (strict && !res.Attributes[i].Sortable) {
			return nil, badParam("sort", "%q is not a sortable attribute of %s.", name, res.Type)
		}
		keys = append(keys, sortKey{attr: i, desc: desc})
	}
	return keys, nil
}

func sortProp(res *catalog.Resource, keys []sortKey) string {
	var parts []string
	for _, k := range keys {
		name := "id"
		if k.attr >= 0 {
			name = res.Attributes[k.attr].Name
		}
		if k.desc {
			name = "-" + name
		}
		parts = append(parts, name)
	}
	return strings.Join(parts, ",")
}

func parseInclude(res *catalog.Resource, cat *catalog.Catalog, s string) ([][]string, error) {
	var out [][]string
	for _, p := range strings.Split(s, ",") {
		if p == "" {
			continue
		}
		path := strings.Split(p, ".")
		cur := res
		for _, name := range path {
			rel, ok := cur.Relationship(name)
			if !ok || rel.LinksOnly {
				return nil, badParam("include", "%q cannot be included: %s has no relationship %q with data.", p, cur.Type, name)
			}
			next, ok := cat.ByType(rel.Target())
			if !ok {
				return nil, badParam("include", "%q cannot be included: the target of %s.%s is not a single known type.", p, cur.Type, name)
			}
			cur = next
		}
		out = append(out, path)
	}
	return out, nil
}

// parseFilter parses one filter[...] parameter.
func parseFilter(res *catalog.Resource, key string, vals []string, newSyntax bool) ([]filter, error) {
	parts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(key, "filter["), "]"), "][")
	name := parts[0]
	f := filter{attr: -1}
	var typ catalog.Type = catalog.TypeInteger
	rest := parts[1:]
	switch {
	case name == "id":
	case res.AttributeIndex(name) >= 0:
		f.attr = res.AttributeIndex(name)
		a := &res.Attributes[f.attr]
		if !a.Filterable {
			return nil, badParam(key, "%q is not a filterable attribute of %s.", name, res.Type)
		}
		typ = a.Type
		if a.Type == catalog.TypeArray {
			typ = a.Items
		}
	default:
		rel, ok := res.Relationship(name)
		if !ok {
			return nil, badParam(key, "%q is not an attribute or relationship of %s.", name, res.Type)
		}
		if len(rest) == 0 {
			return nil, badParam(key, "Filter by relationship %q needs an attribute, as in filter[%s][id]=1.", name, name)
		}
		if !rel.Filterable(rest[0]) {
			if rel.FilterBy == nil {
				return nil, badParam(key, "Relationship %s cannot be used as a filter.", name)
			}
			return nil, badParam(key, "Relationship %s can be filtered by %s only.", name, strings.Join(rel.FilterBy, ", "))
		}
		f.attr, f.rel, f.relKey = -2, relIndex(res, name), rest[0]
		rest = rest[1:]
		if f.relKey != "id" {
			typ = catalog.TypeString
		}
	}
	op := ""
	if len(rest) == 1 {
		op = rest[0]
	} else if len(rest) > 1 {
		return nil, badParam(key, "Unsupported filter %q.", key)
	}
	if op != "" && !newSyntax {
		return nil, badParam(key, "Filter operators such as %q need newFilterSyntax=true.", key)
	}
	parse := func(s string) (any, error) { return parseFilterValue(typ, s, key) }
	switch op {
	case "":
		if strings.HasSuffix(key, "[]") {
			return withValues(f, vals, parse)
		}
		if newSyntax {
			// Values are taken literally; commas and ".." are not special.
			if len(vals) == 1 && strings.Contains(vals[0], "..") && typ == catalog.TypeDateTime {
				return nil, &queryError{status: 422, id: "filterParameter.invalidDatetimeFormat", title: "Invalid Datetime Format",
					detail: fmt.Sprintf("%s: ranges with '..' cannot be used with newFilterSyntax=true; use [gte] and [lte].", key), param: key}
			}
			return withValues(f, vals, parse)
		}
		return classic(f, vals[0], key, parse)
	case "gte", "lte":
		v, err := parse(vals[0])
		if err != nil {
			return nil, err
		}
		f.isRange = true
		if op == "gte" {
			f.lo = v
		} else {
			f.hi = v
		}
		return []filter{f}, nil
	}
	if strings.HasSuffix(key, "[]") {
		return withValues(f, vals, parse)
	}
	return nil, badParam(key, "Unsupported filter operator %q; use gte, lte or [].", op)
}

func withValues(f filter, vals []string, parse func(string) (any, error)) ([]filter, error) {
	for _, s := range vals {
		v, err := parse(s)
		if err != nil {
			return nil, err
		}
		f.values = append(f.values, v)
	}
	return []filter{f}, nil
}

// classic parses the legacy syntax: "a,b,c", "lo..hi" with inf/neginf,
// "__null__" and "__notnull__".
func classic(f filter, s, key string, parse func(string) (any, error)) ([]filter, error) {
	switch s {
	case "__null__":
		f.null = 1
		return []filter{f}, nil
	case "__notnull__":
		f.null = 2
		return []filter{f}, nil
	}
	if lo, hi, ok := strings.Cut(s, ".."); ok {
		f.isRange = true
		if lo != "neginf" && lo != "" {
			v, err := parse(lo)
			if err != nil {
				return nil, err
			}
			f.lo = v
		}
		if hi != "inf" && hi != "" {
			v, err := parse(hi)
			if err != nil {
				return nil, err
			}
			f.hi = v
		}
		return []filter{f}, nil
	}
	return withValues(f, strings.Split(s, ","), parse)
}

func parseFilterValue(typ catalog.Type, s, key string) (any, error) {
	switch typ {
	case catalog.TypeInteger:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, badParam(key, "%s: %q is not an integer.", key, s)
		}
		return n, nil
	case catalog.TypeNumber:
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, badParam(key, "%s: %q is not a number.", key, s)
		}
		return n, nil
	case catalog.TypeBoolean:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, badParam(key, "%s: %q is not true or false.", key, s)
		}
		return b, nil
	case catalog.TypeDateTime:
		t, ok := parseTime(s)
		if !ok {
			return nil, &queryError{status: 422, id: "filterParameter.invalidDatetimeFormat", title: "Invalid Datetime Format",
				detail: fmt.Sprintf("%s: %q is not a date or an ISO 8601 date-time.", key, s), param: key}
		}
		return ts(t), nil
	}
	return s, nil
}

func parseTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func encodeCursor(c *cursor) string {
	raw, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(raw)
}

func decodeCursor(s string) (*cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, err
	}
	var c cursor
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// sortValues returns the sort key values of rec, for cursors.
func (lq *listQuery) sortValues(rec *record) []any {
	out := make([]any, 0, len(lq.sort))
	for _, k := range lq.sort {
		if k.attr < 0 {
			out = append(out, rec.id)
		} else {
			out = append(out, rec.attrs[k.attr])
		}
	}
	return out
}

// compareRecords orders records by the query's sort keys.
func (lq *listQuery) compareRecords(a, b *record) int {
	return lq.compareKeys(lq.sortValues(a), lq.sortValues(b))
}

func (lq *listQuery) compareKeys(a, b []any) int {
	for i, k := range lq.sort {
		c := compare(a[i], b[i])
		if k.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// cursorFor builds the cursor that resumes after rec.
func (lq *listQuery) cursorFor(rec *record) *cursor {
	c := &cursor{Controller: "ApiV2::" + strings.ToUpper(lq.res.Path[:1]) + lq.res.Path[1:] + "Controller",
		SortProp: sortProp(lq.res, lq.sort), ID: rec.id, Version: 1}
	for _, v := range lq.sortValues(rec) {
		c.SortValues = append(c.SortValues, appendValue(nil, v))
	}
	return c
}

// afterKeys decodes the cursor's sort values into attribute values.
func (lq *listQuery) afterKeys() ([]any, error) {
	if len(lq.after.SortValues) != len(lq.sort) {
		return nil, badParam("page[after]", "page[after] does not match the sort order.")
	}
	out := make([]any, len(lq.sort))
	for i, k := range lq.sort {
		raw := lq.after.SortValues[i]
		if string(raw) == "null" {
			continue
		}
		var typ catalog.Type = catalog.TypeInteger
		if k.attr >= 0 {
			typ = lq.res.Attributes[k.attr].Type
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			s = string(raw)
		}
		switch typ {
		case catalog.TypeDateTime:
			t, ok := parseTime(s)
			if !ok {
				return nil, badParam("page[after]", "page[after] is not a valid cursor.")
			}
			out[i] = ts(t)
		case catalog.TypeInteger:
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, badParam("page[after]", "page[after] is not a valid cursor.")
			}
			out[i] = n
		case catalog.TypeNumber:
			f, _ := strconv.ParseFloat(s, 64)
			out[i] = f
		case catalog.TypeBoolean:
			out[i] = s == "true"
		default:
			out[i] = s
		}
	}
	return out, nil
}

// matches reports whether rec passes every filter.
func (lq *listQuery) matches(s *store, rec *record) bool {
	for i := range lq.filters {
		if !lq.filters[i].match(s, lq.res, rec) {
			return false
		}
	}
	return true
}

func (f *filter) match(s *store, res *catalog.Resource, rec *record) bool {
	switch f.attr {
	case -1:
		return f.test(rec.id)
	case -2:
		rel := &res.Relationships[f.rel]
		if rel.ToMany {
			found := false
			back := -1
			if t, ok := s.cat.ByType(rel.Target()); ok {
				back = inverseRel(t, res.Type, "")
			}
			s.relatedMany(res, back, rec, f.rel, func(ref relRef) bool {
				if f.testRelated(s, ref) {
					found = true
					return false
				}
				return true
			})
			return found
		}
		ref := rec.rels[f.rel]
		if ref.id == 0 {
			return f.null == 1
		}
		return f.testRelated(s, ref)
	}
	v := rec.attrs[f.attr]
	if list, ok := v.([]string); ok {
		if f.null != 0 {
			return (len(list) == 0) == (f.null == 1)
		}
		return slices.ContainsFunc(list, func(e string) bool { return f.test(e) })
	}
	return f.test(v)
}

func (f *filter) testRelated(s *store, ref relRef) bool {
	if f.relKey == "id" {
		return f.test(ref.id)
	}
	target, ok := s.get(ref.typ, ref.id)
	if !ok {
		return false
	}
	tres, _ := s.cat.ByType(ref.typ)
	i := tres.AttributeIndex(f.relKey)
	if i < 0 {
		return false
	}
	v := target.attrs[i]
	if list, ok := v.([]string); ok {
		return slices.ContainsFunc(list, func(e string) bool { return f.test(e) })
	}
	if v != nil {
		v = string(appendValue(nil, v))
		if s, err := strconv.Unquote(v.(string)); err == nil {
			v = s
		}
	}
	return f.test(v)
}

func (f *filter) test(v any) bool {
	switch {
	case f.null == 1:
		return v == nil
	case f.null == 2:
		return v != nil
	case f.isRange:
		if v == nil {
			return false
		}
		if f.lo != nil && compare(v, f.lo) < 0 {
			return false
		}
		if f.hi != nil && compare(v, f.hi) > 0 {
			return false
		}
		return true
	}
	if v == nil {
		return false
	}
	return slices.ContainsFunc(f.values, func(w any) bool { return compare(v, w) == 0 })
}

// rangeOn returns the inclusive bounds the filters put on attribute attr.
func (lq *listQuery) rangeOn(attr int) (lo, hi any) {
	for _, f := range lq.filters {
		if f.attr == attr && f.isRange {
			if f.lo != nil && (lo == nil || compare(f.lo, lo) > 0) {
				lo = f.lo
			}
			if f.hi != nil && (hi == nil || compare(f.hi, hi) < 0) {
				hi = f.hi
			}
		}
	}
	return lo, hi
}

// relFilter returns the first id-filter on a to-one relationship.
func (lq *listQuery) relFilter() *filter {
	for i := range lq.filters {
		f := &lq.filters[i]
		if f.attr == -2 && f.relKey == "id" && len(f.values) > 0 && !lq.res.Relationships[f.rel].ToMany {
			return f
		}
	}
	return nil
}
