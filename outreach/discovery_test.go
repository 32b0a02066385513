package outreach_test

import (
	"context"
	"testing"

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
