package outreach_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

func TestDiscovery(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Prospects: 50, CustomObjects: []sandbox.CustomObject{{
		Name:          "vehicle",
		Attributes:    []sandbox.CustomAttribute{{Name: "plate", Type: "string", Filterable: true}, {Name: "seats", Type: "integer"}},
		Relationships: map[string]string{"account": "account"},
		Records:       7,
	}}})
	c := newClient(t, srv, nil)
	ctx := context.Background()
	types, err := c.Schema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var vehicle, prospect *outreach.SchemaType
	for i := range types {
		switch types[i].Type {
		case "vehicle":
			vehicle = &types[i]
		case "prospect":
			prospect = &types[i]
		}
	}
	if vehicle == nil || !vehicle.Custom || vehicle.Path != "customObjects/vehicle" || len(vehicle.Attributes) != 4 || len(vehicle.Relationships) != 1 {
		t.Fatalf("custom object vehicle = %+v", vehicle)
	}
	if prospect == nil || prospect.Custom || prospect.Path != "prospects" {
		t.Fatalf("prospect = %+v", prospect)
	}
	for _, a := range prospect.Attributes {
		if a.Name == "updatedAt" && (!a.Filterable || !a.Sortable || !a.ReadOnly || a.Format != "date-time") {
			t.Errorf("prospect.updatedAt = %+v, want filterable, sortable, read-only date-time", a)
		}
	}
	recs := collect(t, c, vehicle.Path, &outreach.ListOptions{Filters: []outreach.Filter{outreach.Gte("updatedAt", "2000-01-01")}, Sort: []string{"updatedAt"}})
	if len(recs) != 7 || recs[0].Type != "vehicle" || recs[0].RelID("account") == 0 {
		t.Errorf("vehicles = %d, first %+v", len(recs), recs[0])
	}
	fields, err := c.CustomFields(ctx)
	if err != nil || len(fields) == 0 || fields[0].Object == "" || fields[0].Label == "" {
		t.Errorf("CustomFields = %+v, %v", fields, err)
	}
	limited, _, _ := srv.IssueToken(2, "prospects.read")
	_, err = newClient(t, srv, outreach.StaticToken(limited)).Do(ctx, "GET", vehicle.Path, nil)
	if err == nil {
		t.Error("custom object records without the customObjectRecords scope: no error")
	}
}

// TestDiscoveryMatchesCatalog reads the sandbox's schema.json, which is
// served in Outreach's shape, and checks every type against the catalog
// the sandbox serves: relationship targets whether named by $ref, by
// items.$ref or by anyOf, and attribute types, integers written as
// {"type": "number", "format": "integer"} included.
func TestDiscoveryMatchesCatalog(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Prospects: 10, CustomObjects: []sandbox.CustomObject{{
		Name:          "vehicle",
		Attributes:    []sandbox.CustomAttribute{{Name: "plate", Type: "string", Filterable: true}, {Name: "seats", Type: "integer", Sortable: true}, {Name: "weight", Type: "number"}},
		Relationships: map[string]string{"account": "account", "driver": "user"},
		Records:       2,
	}}})
	types, err := newClient(t, srv, nil).Schema(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byType := map[string]outreach.SchemaType{}
	for _, st := range types {
		byType[st.Type] = st
	}
	cat := catalog.Default()
	for _, res := range cat.Resources() {
		st, ok := byType[res.Type]
		if !ok {
			t.Errorf("%s: missing from Schema", res.Type)
			continue
		}
		checkSchemaType(t, res, st)
	}
	vehicle := byType["vehicle"]
	want := catalog.Resource{Type: "vehicle", Custom: true,
		Attributes: []catalog.Attribute{{Name: "plate", Type: catalog.TypeString, Filterable: true}, {Name: "seats", Type: catalog.TypeInteger, Sortable: true},
			{Name: "weight", Type: catalog.TypeNumber}},
		Relationships: []catalog.Relationship{{Name: "account", Targets: []string{"account"}}, {Name: "driver", Targets: []string{"user"}}}}
	var rels []outreach.SchemaRelationship
	for _, r := range vehicle.Relationships {
		if r.Name == "account" || r.Name == "driver" {
			rels = append(rels, r)
		}
	}
	vehicle.Relationships = rels
	var attrs []outreach.SchemaAttribute
	for _, a := range vehicle.Attributes {
		if a.Name == "plate" || a.Name == "seats" || a.Name == "weight" {
			attrs = append(attrs, a)
		}
	}
	vehicle.Attributes = attrs
	checkSchemaType(t, &want, vehicle)
}

// checkSchemaType compares what Schema read of one type with the catalog
// resource it was served from.
func checkSchemaType(t *testing.T, res *catalog.Resource, st outreach.SchemaType) {
	t.Helper()
	if len(st.Relationships) != len(res.Relationships) {
		t.Errorf("%s: %d relationships, want %d: %+v", res.Type, len(st.Relationships), len(res.Relationships), st.Relationships)
	}
	for _, want := range res.Relationships {
		i := slices.IndexFunc(st.Relationships, func(r outreach.SchemaRelationship) bool { return r.Name == want.Name })
		if i < 0 {
			t.Errorf("%s.%s: relationship missing (read as attribute?)", res.Type, want.Name)
			continue
		}
		got := st.Relationships[i]
		if !slices.Equal(got.Targets, want.Targets) || got.ToMany != want.ToMany || got.LinksOnly != want.LinksOnly || got.ReadOnly != want.ReadOnly {
			t.Errorf("%s.%s = %+v, want targets %v, to-many %v, links-only %v, read-only %v", res.Type, want.Name, got,
				want.Targets, want.ToMany, want.LinksOnly, want.ReadOnly)
		}
	}
	if len(st.Attributes) != len(res.Attributes) {
		t.Errorf("%s: %d attributes, want %d", res.Type, len(st.Attributes), len(res.Attributes))
	}
	for _, want := range res.Attributes {
		i := slices.IndexFunc(st.Attributes, func(a outreach.SchemaAttribute) bool { return a.Name == want.Name })
		if i < 0 {
			t.Errorf("%s.%s: attribute missing", res.Type, want.Name)
			continue
		}
		got := st.Attributes[i]
		typ, format := string(want.Type), want.Format
		if want.Type == catalog.TypeDateTime || want.Type == catalog.TypeDate {
			typ, format = "string", string(want.Type)
		}
		if want.Type == catalog.TypeInteger {
			format = "integer"
		}
		if got.Type != typ || got.Format != format || got.Items != string(want.Items) || got.Filterable != want.Filterable ||
			got.Sortable != want.Sortable || got.ReadOnly != want.ReadOnly || got.WriteOnly != want.WriteOnly {
			t.Errorf("%s.%s = %+v, want %+v", res.Type, want.Name, got, want)
		}
	}
}

// TestSchemaFixture reads a small hand-written schema.json in the shape
// Outreach serves: integers as number/integer, formats, flags of string
// arrays on items, relationships named by $ref, anyOf, items.$ref and
// items.anyOf, a relationship missing from properties, a helper definition
// that is no member, and the older plain "integer" type.
func TestSchemaFixture(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("testdata", "schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v2/schema.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/schema+json")
		w.Write(doc)
	}))
	t.Cleanup(srv.Close)
	c, err := outreach.NewClient(outreach.WithBaseURL(srv.URL+"/api/v2"), outreach.WithTokenSource(outreach.StaticToken("t")))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Schema(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []outreach.SchemaType{
		{Type: "crate", Path: "customObjects/crate", Custom: true,
			Attributes: []outreach.SchemaAttribute{
				{Name: "code", Type: "string", Filterable: true, Sortable: true, MaxLength: 64},
				{Name: "slots", Type: "integer", Format: "integer", Filterable: true, Sortable: true},
			},
			Relationships: []outreach.SchemaRelationship{
				{Name: "gadgets", Targets: []string{"gadget"}, ToMany: true},
				{Name: "widget", Targets: []string{"widget"}},
			}},
		{Type: "gadget", Attributes: []outreach.SchemaAttribute{
			{Name: "name", Type: "string", Filterable: true, Sortable: true},
			{Name: "size", Type: "integer"},
		}},
		{Type: "widget", Path: "widgets",
			Attributes: []outreach.SchemaAttribute{
				{Name: "contact", Type: "string", Format: "email", Filterable: true},
				{Name: "count", Type: "integer", Format: "integer", Filterable: true, ReadOnly: true},
				{Name: "label", Type: "string", Filterable: true, Sortable: true},
				{Name: "madeAt", Type: "string", Format: "date-time", Filterable: true, Sortable: true, ReadOnly: true},
				{Name: "notes", Type: "array", Items: "object"},
				{Name: "pairs", Type: "array", Items: "array", ReadOnly: true},
				{Name: "score", Type: "number", Format: "float", Sortable: true},
				{Name: "secret", Type: "string", WriteOnly: true},
				{Name: "tags", Type: "array", Items: "string", Format: "email", Filterable: true},
			},
			Relationships: []outreach.SchemaRelationship{
				{Name: "holders", Targets: []string{"gadget", "crate"}, ToMany: true},
				{Name: "maker", Targets: []string{"gadget"}, ReadOnly: true},
				{Name: "origin", Targets: []string{"crate", "gadget"}, ReadOnly: true},
				{Name: "owner", Targets: []string{"gadget"}},
				{Name: "parts", Targets: []string{"gadget"}, ToMany: true, LinksOnly: true, ReadOnly: true},
				{Name: "subject", Targets: []string{"gadget", "crate"}},
			}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Schema (-want +got):\n%s", diff)
	}
}
