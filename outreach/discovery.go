package outreach

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// SchemaType is one resource type as /api/v2/schema.json describes it.
type SchemaType struct {
	Type string
	// Path is the collection path under the API base ("prospects",
	// "customObjects/project"); "" when the type has no collection.
	Path string
	// Custom reports an org custom object.
	Custom bool
	// Creatable and Updatable report the "create" (POST) and "update"
	// (PATCH) links of the type.
	Creatable, Updatable bool
	Attributes           []SchemaAttribute
	Relationships        []SchemaRelationship
}

// SchemaAttribute is one attribute of a SchemaType.
type SchemaAttribute struct {
	Name string
	// Type is the attribute's JSON type: string, integer, number, boolean,
	// array or object. Outreach writes integers as {"type": "number",
	// "format": "integer"}; Schema reports them as "integer" (as it does
	// the plain "integer" of older documents).
	Type string
	// Format is the format as served ("date-time", "date", "email",
	// "float", "integer"); for an array, the format of its elements.
	Format string
	// Items is the element type of an array attribute: "string",
	// "object", "array" (contactHistogram's pairs), "integer", ...
	Items string
	// Filterable and Sortable are read from the items of an array of
	// strings, where Outreach puts them.
	Filterable, Sortable, ReadOnly, WriteOnly bool
	MaxLength                                 int
}

// SchemaRelationship is one relationship of a SchemaType.
type SchemaRelationship struct {
	Name string
	// Targets are the types the relationship points at, in the order the
	// schema names them, from $ref or anyOf (items.$ref or items.anyOf for
	// to-many relationships); several for polymorphic relationships, none
	// when the schema names none.
	Targets   []string
	ToMany    bool
	LinksOnly bool
	ReadOnly  bool
}

// schemaMember is one member of a type's definitions in schema.json: an
// attribute, a relationship (it has data or links), or a helper definition
// that other members refer to (not listed in the type's properties).
type schemaMember struct {
	Type       any            `json:"type"` // a name, or a list of names such as ["string", "null"]
	Format     string         `json:"format"`
	Filterable bool           `json:"filterable"`
	Sortable   bool           `json:"sortable"`
	ReadOnly   bool           `json:"readOnly"`
	WriteOnly  bool           `json:"writeOnly"`
	MaxLength  int            `json:"maxLength"`
	Data       *bool          `json:"data"`
	Links      *bool          `json:"links"`
	Ref        string         `json:"$ref"`
	AnyOf      []schemaMember `json:"anyOf"`
	Items      *schemaMember  `json:"items"`
}

// jsonType returns the member's JSON type, "integer" for Outreach's
// number/integer and "array" for its "number[]".
func (m *schemaMember) jsonType() string {
	var typ string
	switch t := m.Type.(type) {
	case string:
		typ = t
	case []any:
		for _, v := range t {
			if s, ok := v.(string); ok && s != "null" {
				typ = s
				break
			}
		}
	}
	switch {
	case typ == "number" && m.Format == "integer":
		return "integer"
	case strings.HasSuffix(typ, "[]"):
		return "array"
	case typ == "" && (m.Ref != "" || len(m.AnyOf) > 0):
		return "object" // a reference to a helper definition
	}
	return typ
}

// targets returns the resource types the member refers to with $ref or
// anyOf, its items' included; references to helper definitions
// ("#/definitions/auditLog/definitions/changesList") are not types.
func (m *schemaMember) targets() []string {
	var out []string
	add := func(ref string) {
		name, ok := strings.CutPrefix(ref, "#/definitions/")
		if ok && name != "" && !strings.Contains(name, "/") && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	for _, x := range []*schemaMember{m, m.Items} {
		if x == nil {
			continue
		}
		add(x.Ref)
		for _, a := range x.AnyOf {
			add(a.Ref)
		}
	}
	return out
}

// Schema fetches /api/v2/schema.json, which lists every type, the org's
// custom objects included (they are absent from the published OpenAPI).
func (c *Client) Schema(ctx context.Context) ([]SchemaType, error) {
	body, err := c.Do(ctx, "GET", "schema.json", nil)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Definitions map[string]struct {
			Definitions map[string]schemaMember `json:"definitions"`
			Properties  map[string]any          `json:"properties"`
			Links       []struct {
				Href   string `json:"href"`
				Method string `json:"method"`
				Rel    string `json:"rel"`
			} `json:"links"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("outreach: decode schema.json: %w", err)
	}
	var out []SchemaType
	for name, def := range doc.Definitions {
		st := SchemaType{Type: name}
		for _, l := range def.Links {
			switch {
			case l.Rel == "instances" && l.Method == "GET":
				st.Path = strings.TrimPrefix(strings.TrimPrefix(l.Href, "/api/v2/"), "/")
			case l.Rel == "create" && l.Method == "POST":
				st.Creatable = true
			case l.Rel == "update" && l.Method == "PATCH":
				st.Updatable = true
			}
		}
		st.Custom = strings.HasPrefix(st.Path, "customObjects/")
		for member, d := range def.Definitions {
			targets := d.targets()
			if d.Data != nil || d.Links != nil || len(targets) > 0 {
				st.Relationships = append(st.Relationships, SchemaRelationship{Name: member, Targets: targets, ReadOnly: d.ReadOnly,
					ToMany: d.jsonType() == "array", LinksOnly: d.Data != nil && !*d.Data})
				continue
			}
			if _, listed := def.Properties[member]; !listed && len(def.Properties) > 0 {
				continue // a helper definition, such as auditLog's changesList
			}
			a := SchemaAttribute{Name: member, Type: d.jsonType(), Format: d.Format, Filterable: d.Filterable, Sortable: d.Sortable,
				ReadOnly: d.ReadOnly, WriteOnly: d.WriteOnly, MaxLength: d.MaxLength}
			if a.Type == "array" && d.Items != nil {
				a.Items = d.Items.jsonType()
				if a.Format == "" {
					a.Format = d.Items.Format
				}
				a.Filterable = a.Filterable || d.Items.Filterable
				a.Sortable = a.Sortable || d.Items.Sortable
			}
			st.Attributes = append(st.Attributes, a)
		}
		sort.Slice(st.Attributes, func(i, j int) bool { return st.Attributes[i].Name < st.Attributes[j].Name })
		sort.Slice(st.Relationships, func(i, j int) bool { return st.Relationships[i].Name < st.Relationships[j].Name })
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out, nil
}

// CustomField is the definition of one customN field of a standard
// object, from /api/v2/types.
type CustomField struct {
	Object   string // "Prospect"
	Field    string // "custom1"
	Type     string // boolean, currency, date, date_time, inclusion, multi_inclusion, numerical, percentage, phone_number, string, url
	Label    string
	Required bool
	// Definition is the pick list of inclusion types, the currency of
	// currency types, or null.
	Definition json.RawMessage
}

// CustomFields fetches the org's custom-field definitions.
func (c *Client) CustomFields(ctx context.Context) ([]CustomField, error) {
	body, err := c.Do(ctx, "GET", "types", nil)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Data []struct {
			Type string `json:"type"`
			Meta struct {
				Validations map[string]struct {
					Type       string          `json:"type"`
					Required   bool            `json:"required"`
					Label      string          `json:"label"`
					Definition json.RawMessage `json:"definition"`
				} `json:"validations"`
			} `json:"meta"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("outreach: decode /types: %w", err)
	}
	var out []CustomField
	for _, d := range doc.Data {
		for field, v := range d.Meta.Validations {
			out = append(out, CustomField{Object: d.Type, Field: field, Type: v.Type, Label: v.Label, Required: v.Required, Definition: v.Definition})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Object != out[j].Object {
			return out[i].Object < out[j].Object
		}
		return out[i].Field < out[j].Field
	})
	return out, nil
}
