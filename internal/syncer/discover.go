package syncer

import (
	"context"
	"errors"
	"fmt"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/outreach"
)

// Discover returns the catalog with the org's custom objects, which only
// /api/v2/schema.json describes. When the schema cannot be read with the
// credential's scopes, the standard catalog is returned with the reason.
func Discover(ctx context.Context, c *outreach.Client) (*catalog.Catalog, error) {
	base := catalog.Default()
	types, err := c.Schema(ctx)
	if err != nil {
		var auth *outreach.AuthError
		if errors.As(err, &auth) || errors.Is(err, outreach.ErrNotFound) {
			return base, fmt.Errorf("custom objects not discovered: %w", err)
		}
		return nil, err
	}
	var custom []catalog.Resource
	for _, t := range types {
		if !t.Custom || t.Path == "" {
			continue
		}
		r := catalog.Resource{Type: t.Type, Path: t.Path, Custom: true,
			Ops: catalog.Operations{List: true, Get: true, Create: t.Creatable, Update: t.Updatable}}
		for _, a := range t.Attributes {
			r.Attributes = append(r.Attributes, discoveredAttribute(a))
		}
		for _, rel := range t.Relationships {
			r.Relationships = append(r.Relationships, catalog.Relationship{Name: rel.Name, Targets: rel.Targets, ToMany: rel.ToMany,
				LinksOnly: rel.LinksOnly, ReadOnly: rel.ReadOnly})
		}
		custom = append(custom, r)
	}
	return base.With(custom...)
}

// discoveredAttribute maps an attribute read from schema.json to the
// catalog's types: Schema reports Outreach's {"type": "number", "format":
// "integer"} as integer, date and date-time strings take their format as
// type, and a type the catalog does not know is kept as a string.
func discoveredAttribute(a outreach.SchemaAttribute) catalog.Attribute {
	out := catalog.Attribute{Name: a.Name, Type: schemaType(a.Type, a.Format), Nullable: true, Filterable: a.Filterable,
		Sortable: a.Sortable, ReadOnly: a.ReadOnly, WriteOnly: a.WriteOnly, MaxLength: a.MaxLength}
	if out.Type == catalog.TypeArray && a.Items != "" {
		out.Items = schemaType(a.Items, "")
	}
	if a.Format == "email" || a.Format == "float" {
		out.Format = a.Format
	}
	return out
}

func schemaType(typ, format string) catalog.Type {
	switch t := catalog.Type(typ); {
	case format == "date-time" || format == "date":
		return catalog.Type(format)
	case t == catalog.TypeNumber && format == "integer":
		return catalog.TypeInteger
	case t == catalog.TypeInteger, t == catalog.TypeNumber, t == catalog.TypeBoolean, t == catalog.TypeArray, t == catalog.TypeObject:
		return t
	}
	return catalog.TypeString
}
