package load

import (
	"encoding/json"
	"fmt"
	"math"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/outreach"
)

type targetKind int

const (
	kindAttr   targetKind = iota // an attribute of the type
	kindID                       // the record's Outreach id (match by id)
	kindRelID                    // rel.id: a relationship by the related record's id
	kindLookup                   // rel.attr: a relationship by a lookup of the related record
)

// target is where one source column goes.
type target struct {
	column string
	name   string // as mapped: "title", "owner.email", "custom1"
	kind   targetKind
	attr   *catalog.Attribute // kindAttr; the looked-up attribute for kindLookup
	rel    *catalog.Relationship
	relRes *catalog.Resource // the relationship's target type
	// picklist holds the values an org's custom field allows (inclusion
	// fields of /types), nil when unknown.
	picklist []string
	label    string // the custom field's label, for messages
}

// mapping is how source columns become a write of res.
type mapping struct {
	res     *catalog.Resource
	targets []*target
	match   []*target // the targets of --match, in order
}

// buildMapping resolves every source column (renamed by m, skipped when
// mapped to "") to an attribute, relationship or id of res, and the match
// attributes to columns. labels are the org's custom fields by label.
func buildMapping(cat *catalog.Catalog, res *catalog.Resource, columns []string, m map[string]string, match []string,
	fields []outreach.CustomField) (*mapping, error) {
	for col := range m {
		if !slices.Contains(columns, col) {
			return nil, configErr("--map %s=%s: the source has no column %q (its columns: %s)", col, m[col], col, strings.Join(columns, ", "))
		}
	}
	object := strings.ToUpper(res.Type[:1]) + res.Type[1:]
	custom := map[string]outreach.CustomField{}
	for _, f := range fields {
		if f.Object == object {
			custom[f.Field] = f
		}
	}
	mp := &mapping{res: res}
	var unknown []string
	for _, col := range columns {
		name, renamed := m[col]
		if !renamed {
			name = col
		}
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		t, err := resolveTarget(cat, res, col, name, custom)
		if err != nil {
			if _, ok := err.(*unknownTarget); ok && !renamed {
				unknown = append(unknown, col)
				continue
			}
			return nil, err
		}
		for _, o := range mp.targets {
			if o.name == t.name {
				return nil, configErr("columns %q and %q both go to %s: map one of them elsewhere, or skip it with --map %s=", o.column, col, t.name, col)
			}
		}
		mp.targets = append(mp.targets, t)
	}
	if len(unknown) > 0 {
		return nil, configErr("column %s: not an attribute or relationship of %s; map each with --map COLUMN=ATTRIBUTE (or rel.attr such as owner.email, or a custom field's label), or skip it with --map COLUMN=",
			strings.Join(quoteAll(unknown), ", "), res.Type)
	}
	if len(match) == 0 {
		return nil, configErr("--match: name the attribute(s) that identify a %s (such as emails for prospects, domain for accounts, or id); a load cannot be exact without one", res.Type)
	}
	for _, name := range match {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(mp.targets, func(t *target) bool { return t.name == name || (t.kind == kindAttr && t.attr.Name == name) })
		if i < 0 {
			return nil, configErr("--match %s: no source column goes to %s; add one or map one with --map COLUMN=%s", name, name, name)
		}
		t := mp.targets[i]
		switch {
		case t.kind == kindID:
		case t.kind == kindAttr && t.attr.Filterable:
		default:
			return nil, configErr("--match %s: Outreach cannot filter %s by %s, so records cannot be found by it; match on a filterable attribute (%s) or id",
				name, res.Path, name, strings.Join(filterable(res), ", "))
		}
		mp.match = append(mp.match, t)
	}
	return mp, nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

func filterable(res *catalog.Resource) []string {
	var out []string
	for _, a := range res.Attributes {
		if a.Filterable && !a.ReadOnly {
			out = append(out, a.Name)
		}
	}
	return out
}

type unknownTarget struct{ msg string }

func (e *unknownTarget) Error() string { return e.msg }

func resolveTarget(cat *catalog.Catalog, res *catalog.Resource, col, name string, custom map[string]outreach.CustomField) (*target, error) {
	t := &target{column: col, name: name}
	if name == "id" {
		t.kind = kindID
		return t, nil
	}
	if rel, attr, ok := strings.Cut(name, "."); ok {
		r, found := res.Relationship(rel)
		if !found {
			return nil, configErr("column %q → %s: %s has no relationship %q", col, name, res.Type, rel)
		}
		if r.ToMany || r.ReadOnly || r.Target() == "" {
			return nil, configErr("column %q → %s: relationship %s of %s cannot be written (only writable to-one relationships to one type can)", col, name, rel, res.Type)
		}
		target, found := cat.ByType(r.Target())
		if !found {
			return nil, configErr("column %q → %s: the catalog does not know type %s", col, name, r.Target())
		}
		t.rel, t.relRes = r, target
		if attr == "id" {
			t.kind = kindRelID
			return t, nil
		}
		a, found := target.Attribute(attr)
		if !found || !a.Filterable || !target.Ops.List {
			return nil, configErr("column %q → %s: %s cannot be looked up by %s (Outreach filters %s by %s)", col, name, target.Path, attr,
				target.Path, strings.Join(filterable(target), ", "))
		}
		t.kind, t.attr = kindLookup, a
		return t, nil
	}
	a, found := res.Attribute(name)
	if !found {
		for field, f := range custom {
			if strings.EqualFold(f.Label, name) {
				a, found = res.Attribute(field)
				t.label = f.Label
				break
			}
		}
	}
	if !found {
		return nil, &unknownTarget{msg: fmt.Sprintf("column %q → %s: not an attribute of %s", col, name, res.Type)}
	}
	if a.ReadOnly {
		return nil, configErr("column %q → %s: %s.%s is read-only in Outreach; skip the column with --map %s=", col, name, res.Type, a.Name, col)
	}
	t.kind, t.attr, t.name = kindAttr, a, a.Name
	if f, ok := custom[a.Name]; ok {
		t.label = f.Label
		if f.Type == "inclusion" || f.Type == "multi_inclusion" {
			var vals []string
			if json.Unmarshal(f.Definition, &vals) == nil && len(vals) > 0 {
				t.picklist = vals
			}
		}
	}
	return t, nil
}

// describe names the target in a message: "custom1 (Tier)".
func (t *target) describe() string {
	if t.label != "" {
		return t.name + " (" + t.label + ")"
	}
	return t.name
}

// isEmail reports whether the attribute holds email addresses.
func isEmail(a *catalog.Attribute) bool {
	return a.Format == "email" || a.Name == "email" || a.Name == "emails"
}

// convert turns a source value into the JSON value of attribute a, or
// says why it cannot.
func convert(t *target, a *catalog.Attribute, v any) (any, string) {
	if v == nil {
		if !a.Nullable {
			return nil, fmt.Sprintf("%s cannot be empty", t.describe())
		}
		return nil, ""
	}
	switch a.Type {
	case catalog.TypeString:
		s := asString(v)
		if a.MaxLength > 0 && utf8.RuneCountInString(s) > a.MaxLength {
			return nil, fmt.Sprintf("%d characters; %s allows at most %d", utf8.RuneCountInString(s), t.describe(), a.MaxLength)
		}
		if isEmail(a) {
			if why := checkEmail(s); why != "" {
				return nil, why
			}
		}
		if t.picklist != nil {
			i := slices.IndexFunc(t.picklist, func(p string) bool { return strings.EqualFold(p, s) })
			if i < 0 {
				return nil, fmt.Sprintf("%q is not one of %s's values (%s)", s, t.describe(), strings.Join(t.picklist, ", "))
			}
			s = t.picklist[i]
		}
		return s, ""
	case catalog.TypeInteger:
		switch x := v.(type) {
		case int64:
			return x, ""
		case float64:
			if x == math.Trunc(x) {
				return int64(x), ""
			}
		case bool:
		default:
			if n, err := strconv.ParseInt(strings.TrimSpace(asString(v)), 10, 64); err == nil {
				return n, ""
			}
		}
		return nil, fmt.Sprintf("%q is not an integer (%s)", asString(v), t.describe())
	case catalog.TypeNumber:
		switch x := v.(type) {
		case float64:
			return x, ""
		case int64:
			return float64(x), ""
		case bool:
		default:
			if f, err := strconv.ParseFloat(strings.TrimSpace(asString(v)), 64); err == nil {
				return f, ""
			}
		}
		return nil, fmt.Sprintf("%q is not a number (%s)", asString(v), t.describe())
	case catalog.TypeBoolean:
		if b, ok := v.(bool); ok {
			return b, ""
		}
		switch strings.ToLower(strings.TrimSpace(asString(v))) {
		case "true", "t", "yes", "y", "1":
			return true, ""
		case "false", "f", "no", "n", "0":
			return false, ""
		}
		return nil, fmt.Sprintf("%q is not true or false (%s)", asString(v), t.describe())
	case catalog.TypeDateTime:
		tm, ok := asTime(v)
		if !ok {
			return nil, fmt.Sprintf("%q is not a date-time such as 2026-03-01T12:00:00Z (%s)", asString(v), t.describe())
		}
		return tm.UTC().Format(outreach.TimeFormat), ""
	case catalog.TypeDate:
		tm, ok := asTime(v)
		if !ok {
			return nil, fmt.Sprintf("%q is not a date such as 2026-03-01 (%s)", asString(v), t.describe())
		}
		return tm.Format(time.DateOnly), ""
	case catalog.TypeArray:
		if a.Items == catalog.TypeString {
			items, ok := asStrings(v)
			if !ok {
				return nil, fmt.Sprintf("%q is not a list (give a JSON array, or values separated by ;) (%s)", asString(v), t.describe())
			}
			for _, s := range items {
				if a.MaxLength > 0 && utf8.RuneCountInString(s) > a.MaxLength {
					return nil, fmt.Sprintf("%d characters in %q; %s allows at most %d each", utf8.RuneCountInString(s), s, t.describe(), a.MaxLength)
				}
				if isEmail(a) {
					if why := checkEmail(s); why != "" {
						return nil, why
					}
				}
			}
			return items, ""
		}
		fallthrough
	default:
		raw, ok := asJSON(v)
		if !ok {
			return nil, fmt.Sprintf("%q is not JSON (%s)", asString(v), t.describe())
		}
		return raw, ""
	}
}

// checkEmail says why s is not a plain email address, or "".
func checkEmail(s string) string {
	addr, err := mail.ParseAddress(s)
	at := strings.LastIndexByte(s, '@')
	if err != nil || addr.Address != s || at <= 0 || !strings.Contains(s[at+1:], ".") || strings.ContainsAny(s, " <>") {
		return fmt.Sprintf("%q is not an email address", s)
	}
	return ""
}

func asString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case []any, map[string]any:
		b, _ := json.Marshal(x)
		return string(b)
	}
	return fmt.Sprint(v)
}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05", time.DateOnly}

func asTime(v any) (time.Time, bool) {
	if tm, ok := v.(time.Time); ok {
		return tm, true
	}
	s := strings.TrimSpace(asString(v))
	for _, l := range timeLayouts {
		if tm, err := time.Parse(l, s); err == nil {
			return tm, true
		}
	}
	return time.Time{}, false
}

func asStrings(v any) ([]string, bool) {
	switch x := v.(type) {
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if e != nil {
				out = append(out, asString(e))
			}
		}
		return out, true
	case string:
		s := strings.TrimSpace(x)
		if strings.HasPrefix(s, "[") {
			var out []string
			if json.Unmarshal([]byte(s), &out) != nil {
				return nil, false
			}
			return out, true
		}
		var out []string
		for _, p := range strings.Split(s, ";") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out, true
	}
	return []string{asString(v)}, true
}

func asJSON(v any) (json.RawMessage, bool) {
	if s, ok := v.(string); ok {
		if !json.Valid([]byte(s)) {
			return nil, false
		}
		return json.RawMessage(s), true
	}
	b, err := json.Marshal(v)
	return b, err == nil
}

// keyPart is the canonical form of one match value: emails lowercased.
func keyPart(t *target, v any) string {
	switch x := v.(type) {
	case []string:
		if len(x) == 0 {
			return ""
		}
		return strings.ToLower(x[0])
	case string:
		if t.attr != nil && isEmail(t.attr) {
			return strings.ToLower(x)
		}
		return x
	case nil:
		return ""
	}
	return asString(v)
}
