// Package catalog describes every resource type of the Outreach REST API v2:
// attributes, relationships, operations and OAuth scopes.
//
// The data is generated from Outreach's published OpenAPI document by the
// program in ./gen and committed as catalog_gen.go, so building never needs
// the OpenAPI file. The sandbox, the client and the sync engine all read this
// catalog; nothing else keeps its own field list.
//
// A Catalog is immutable after construction and safe for concurrent use.
package catalog

//go:generate go run ./gen -spec ../../../shared/outreach/openapi.json -out catalog_gen.go

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Type is the JSON type of an attribute value.
type Type string

// The attribute types the OpenAPI document uses.
const (
	TypeString   Type = "string"
	TypeInteger  Type = "integer"
	TypeNumber   Type = "number"
	TypeBoolean  Type = "boolean"
	TypeDateTime Type = "date-time" // RFC 3339 string, UTC, millisecond precision
	TypeDate     Type = "date"      // YYYY-MM-DD string
	TypeArray    Type = "array"
	TypeObject   Type = "object"
)

// Attribute is one member of a resource's "attributes" object.
type Attribute struct {
	Name string
	Type Type
	// Items is the element type of an array attribute: TypeString,
	// TypeObject, or TypeArray for contactHistogram (an array of
	// [inbound, outbound] integer pairs).
	Items Type
	// Format is the OpenAPI format where it adds meaning ("email", "float").
	Format     string
	Nullable   bool
	MaxLength  int // 0 means no limit declared
	ReadOnly   bool
	WriteOnly  bool
	Filterable bool
	Sortable   bool
	// Values lists the values the description names for string attributes
	// such as call.direction ("inbound", "outbound"). It is a hint for
	// realistic data, not a validation rule: Outreach does not publish
	// enumerations.
	Values []string
}

// Relationship is one member of a resource's "relationships" object.
type Relationship struct {
	Name string
	// Targets are the resource types the relationship points at; usually
	// one, several for polymorphic relationships, none when the OpenAPI
	// document does not say.
	Targets []string
	ToMany  bool
	// LinksOnly relationships carry only links.related, never data.
	LinksOnly bool
	ReadOnly  bool
	// FilterBy lists the attributes of the target that filter[<rel>][attr]
	// accepts; nil means the relationship cannot be used as a filter, and
	// ["*"] means any filterable attribute of the target.
	FilterBy []string
}

// Target returns the relationship's single target type, or "" when it is
// polymorphic or unknown.
func (r *Relationship) Target() string {
	if len(r.Targets) == 1 {
		return r.Targets[0]
	}
	return ""
}

// Filterable reports whether filter[<rel>][attr] may be used with attr.
func (r *Relationship) Filterable(attr string) bool {
	return slices.Contains(r.FilterBy, attr) || slices.Contains(r.FilterBy, "*")
}

// Operations are the HTTP operations a resource's paths offer.
type Operations struct {
	List   bool // GET /<path>
	Get    bool // GET /<path>/{id}
	Create bool // POST /<path>
	Update bool // PATCH /<path>/{id}
	Delete bool // DELETE /<path>/{id}
}

// Resource is one resource type, such as "prospect" served at /prospects.
type Resource struct {
	Type string // singular JSON:API type, e.g. "sequenceState"
	Path string // plural path segment under /api/v2, e.g. "sequenceStates"
	// Summary is the OpenAPI description of the resource type.
	Summary           string
	Ops               Operations
	MemberActions     []string // POST /<path>/{id}/actions/<name>
	CollectionActions []string // POST /<path>/actions/<name>
	Attributes        []Attribute
	Relationships     []Relationship
	// Custom marks an org's custom object, served at
	// /api/v2/customObjects/<name> and covered by the customObjectRecords
	// scopes. Custom objects are not in the OpenAPI document; they are
	// discovered at run time from /api/v2/schema.json.
	Custom bool
}

// CustomObjectPathPrefix starts the Path of custom objects.
const CustomObjectPathPrefix = "customObjects/"

// Attribute returns the attribute called name.
func (r *Resource) Attribute(name string) (*Attribute, bool) {
	i := sort.Search(len(r.Attributes), func(i int) bool { return r.Attributes[i].Name >= name })
	if i < len(r.Attributes) && r.Attributes[i].Name == name {
		return &r.Attributes[i], true
	}
	return nil, false
}

// AttributeIndex returns the position of the attribute called name in
// r.Attributes, or -1.
func (r *Resource) AttributeIndex(name string) int {
	i := sort.Search(len(r.Attributes), func(i int) bool { return r.Attributes[i].Name >= name })
	if i < len(r.Attributes) && r.Attributes[i].Name == name {
		return i
	}
	return -1
}

// Relationship returns the relationship called name.
func (r *Resource) Relationship(name string) (*Relationship, bool) {
	for i := range r.Relationships {
		if r.Relationships[i].Name == name {
			return &r.Relationships[i], true
		}
	}
	return nil, false
}

// HasMemberAction reports whether POST /<path>/{id}/actions/<name> exists.
func (r *Resource) HasMemberAction(name string) bool { return slices.Contains(r.MemberActions, name) }

// Scope levels. Outreach scopes are "<path>.<level>"; "all" grants every
// level and the levels are not additive (write does not grant read).
const (
	LevelRead   = "read"
	LevelWrite  = "write"
	LevelDelete = "delete"
	LevelAll    = "all"
)

// Scope returns the scope name for a level of access to r, such as
// "prospects.read".
func (r *Resource) Scope(level string) string {
	if r.Custom {
		return "customObjectRecords." + level
	}
	return r.Path + "." + level
}

// Scopes returns the scopes that exist for r, derived from the operations
// its paths offer: read for list and get, write for create, update and
// actions, delete for delete, and all whenever there is more than one level.
func (r *Resource) Scopes() []string {
	var levels []string
	if r.Ops.List || r.Ops.Get {
		levels = append(levels, LevelRead)
	}
	if r.Ops.Create || r.Ops.Update || len(r.MemberActions) > 0 || len(r.CollectionActions) > 0 {
		levels = append(levels, LevelWrite)
	}
	if r.Ops.Delete {
		levels = append(levels, LevelDelete)
	}
	if len(levels) > 1 {
		levels = append([]string{LevelAll}, levels...)
	}
	out := make([]string, len(levels))
	for i, l := range levels {
		out[i] = r.Scope(l)
	}
	return out
}

// Catalog is the set of all resource types.
type Catalog struct {
	resources []Resource
	byType    map[string]int
	byPath    map[string]int
}

// New builds a catalog from resource descriptions. Resources are sorted by
// type and their attributes by name; duplicate types or paths are an error.
func New(resources []Resource) (*Catalog, error) {
	c := &Catalog{
		resources: slices.Clone(resources),
		byType:    make(map[string]int, len(resources)),
		byPath:    make(map[string]int, len(resources)),
	}
	slices.SortFunc(c.resources, func(a, b Resource) int { return strings.Compare(a.Type, b.Type) })
	for i := range c.resources {
		r := &c.resources[i]
		slices.SortFunc(r.Attributes, func(a, b Attribute) int { return strings.Compare(a.Name, b.Name) })
		if _, dup := c.byType[r.Type]; dup {
			return nil, fmt.Errorf("catalog: duplicate resource type %q", r.Type)
		}
		if _, dup := c.byPath[r.Path]; dup {
			return nil, fmt.Errorf("catalog: duplicate resource path %q", r.Path)
		}
		c.byType[r.Type] = i
		c.byPath[r.Path] = i
	}
	return c, nil
}

// Default returns the catalog generated from Outreach's OpenAPI document.
// Each call builds a fresh catalog; callers keep the one they need.
func Default() *Catalog {
	c, err := New(generated())
	if err != nil {
		panic(err) // the generated data is checked by tests
	}
	return c
}

// Resources returns every resource type, sorted by type.
func (c *Catalog) Resources() []*Resource {
	out := make([]*Resource, len(c.resources))
	for i := range c.resources {
		out[i] = &c.resources[i]
	}
	return out
}

// ByType returns the resource whose JSON:API type is typ ("prospect").
func (c *Catalog) ByType(typ string) (*Resource, bool) {
	i, ok := c.byType[typ]
	if !ok {
		return nil, false
	}
	return &c.resources[i], true
}

// ByPath returns the resource served at /api/v2/<path> ("prospects").
func (c *Catalog) ByPath(path string) (*Resource, bool) {
	i, ok := c.byPath[path]
	if !ok {
		return nil, false
	}
	return &c.resources[i], true
}

// Scopes returns every scope of every resource, sorted, each once.
func (c *Catalog) Scopes() []string {
	var out []string
	for i := range c.resources {
		out = append(out, c.resources[i].Scopes()...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// With returns a catalog of c's resources and extra ones, such as an
// org's custom objects.
func (c *Catalog) With(extra ...Resource) (*Catalog, error) {
	return New(append(slices.Clone(c.resources), extra...))
}
