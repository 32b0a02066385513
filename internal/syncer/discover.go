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
		r := catalog.Resource{Type: t.Type, Path: t.Path, Custom: true, Ops: catalog.Operations{List: true, Get: true}}
		for _, a := range t.Attributes {
			typ := catalog.Type(a.Type)
			if a.Format == "date-time" || a.Format == "date" {
				typ = catalog.Type(a.Format)
			}
			r.Attributes = append(r.Attributes, catalog.Attribute{Name: a.Name, Type: typ, Nullable: true, Filterable: a.Filterable,
				Sortable: a.Sortable, ReadOnly: a.ReadOnly, WriteOnly: a.WriteOnly, MaxLength: a.MaxLength})
		}
		for _, rel := range t.Relationships {
			r.Relationships = append(r.Relationships, catalog.Relationship{Name: rel.Name, Targets: rel.Targets, ToMany: rel.ToMany,
				LinksOnly: rel.LinksOnly, ReadOnly: rel.ReadOnly})
		}
		custom = append(custom, r)
	}
	return base.With(custom...)
}
