package outreach

import (
	"context"
	"encoding/json"
	"fmt"
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
	Custom        bool
	Attributes    []SchemaAttribute
	Relationships []SchemaRelationship
}

// SchemaAttribute is one attribute of a SchemaType.
type SchemaAttribute struct {
	Name, Type, Format                        string
	Filterable, Sortable, ReadOnly, WriteOnly bool
	MaxLength                                 int
}

// SchemaRelationship is one relationship of a SchemaType.
type SchemaRelationship struct {
	Name      string
	Targets   []string
	ToMany    bool
	LinksOnly bool
	ReadOnly  bool
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
			Definitions map[string]struct {
				Type       any    `json:"type"`
				Format     string `json:"format"`
				Filterable bool   `json:"filterable"`
				Sortable   bool   `json:"sortable"`
				ReadOnly   bool   `json:"readOnly"`
				WriteOnly  bool   `json:"writeOnly"`
				MaxLength  int    `json:"maxLength"`
				Data       *bool  `json:"data"`
				Links      *bool  `json:"links"`
				AnyOf      []struct {
					Ref string `json:"$ref"`
				} `json:"anyOf"`
			} `json:"definitions"`
			Links []struct {
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
			if l.Rel == "instances" && l.Method == "GET" {
				st.Path = strings.TrimPrefix(strings.TrimPrefix(l.Href, "/api/v2/"), "/")
			}
		}
		st.Custom = strings.HasPrefix(st.Path, "customObjects/")
		for member, d := range def.Definitions {
			if d.Data != nil || d.Links != nil || len(d.AnyOf) > 0 {
				rel := SchemaRelationship{Name: member, ReadOnly: d.ReadOnly, ToMany: d.Type == "array", LinksOnly: d.Data != nil && !*d.Data}
				for _, a := range d.AnyOf {
					rel.Targets = append(rel.Targets, strings.TrimPrefix(a.Ref, "#/definitions/"))
				}
				st.Relationships = append(st.Relationships, rel)
				continue
			}
			typ, _ := d.Type.(string)
			st.Attributes = append(st.Attributes, SchemaAttribute{Name: member, Type: typ, Format: d.Format, Filterable: d.Filterable,
				Sortable: d.Sortable, ReadOnly: d.ReadOnly, WriteOnly: d.WriteOnly, MaxLength: d.MaxLength})
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
