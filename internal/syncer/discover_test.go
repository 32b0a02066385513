package syncer_test

import (
	"context"
	"slices"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// TestDiscoverCustomObjectTypes checks that a custom object discovered
// from schema.json, which writes integers as {"type": "number", "format":
// "integer"}, keeps each attribute's type and relationship target, and
// that its stream gets an integer column for an integer attribute.
func TestDiscoverCustomObjectTypes(t *testing.T) {
	e := newEnv(t, sandbox.Options{Prospects: 10, CustomObjects: []sandbox.CustomObject{{
		Name: "vehicle",
		Attributes: []sandbox.CustomAttribute{{Name: "plate", Type: "string", Filterable: true, MaxLength: 16}, {Name: "seats", Type: "integer"},
			{Name: "weight", Type: "number"}, {Name: "sold", Type: "boolean"}, {Name: "builtOn", Type: "date"}, {Name: "seenAt", Type: "date-time"}},
		Relationships: map[string]string{"account": "account", "driver": "user"},
		Records:       3,
	}}})
	cat, err := syncer.Discover(context.Background(), e.client)
	if err != nil {
		t.Fatal(err)
	}
	res, ok := cat.ByType("vehicle")
	if !ok {
		t.Fatal("custom object vehicle not discovered")
	}
	wantTypes := map[string]catalog.Type{"plate": catalog.TypeString, "seats": catalog.TypeInteger, "weight": catalog.TypeNumber,
		"sold": catalog.TypeBoolean, "builtOn": catalog.TypeDate, "seenAt": catalog.TypeDateTime}
	for name, want := range wantTypes {
		if a, ok := res.Attribute(name); !ok || a.Type != want {
			t.Errorf("vehicle.%s = %+v, want type %s", name, a, want)
		}
	}
	if a, _ := res.Attribute("plate"); a == nil || a.MaxLength != 16 || !a.Filterable {
		t.Errorf("vehicle.plate = %+v, want filterable, max length 16", a)
	}
	for name, target := range map[string]string{"account": "account", "driver": "user"} {
		i := slices.IndexFunc(res.Relationships, func(r catalog.Relationship) bool { return r.Name == name })
		if i < 0 || !slices.Equal(res.Relationships[i].Targets, []string{target}) {
			t.Errorf("vehicle relationship %s: %+v, want target %s", name, res.Relationships, target)
		}
	}
	var stream *connection.Stream
	for _, s := range syncer.Streams(cat) {
		if s.Type == "vehicle" {
			stream = s
		}
	}
	if stream == nil {
		t.Fatal("no stream for vehicle")
	}
	for name, want := range map[string]connection.ColumnType{"seats": connection.ColInteger, "weight": connection.ColNumber, "builtOn": connection.ColDate,
		"seenAt": connection.ColTimestamp, "accountId": connection.ColInteger} {
		if c, ok := stream.Column(name); !ok || c.Type != want {
			t.Errorf("vehicle column %s = %+v, want type %s", name, c, want)
		}
	}
}
