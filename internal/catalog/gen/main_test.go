package main

import (
	"slices"
	"testing"
)

func TestValues(t *testing.T) {
	tests := []struct {
		desc string
		want []string
	}{
		{`A string ("opted_in", "opted_out", "null") that represents...`, []string{"opted_in", "opted_out"}}, // "null" is JSON null
		{`The current state of the task. Can be 'pending', 'incomplete', or 'complete'.`, []string{"pending", "incomplete", "complete"}},
		{`The sequence share type must be either "private", "read_only" or "shared".`, []string{"private", "read_only", "shared"}},
		{`must be one of "read_only," "private," or "shared".`, []string{"read_only", "private", "shared"}},
		{`The prospect's name (e.g. "Sally").`, nil},
		{`<img src=https://developers.outreach.io/badges/readonly.svg> No values here.`, nil},
	}
	for _, tt := range tests {
		if got := values(tt.desc); !slices.Equal(got, tt.want) {
			t.Errorf("values(%q) = %q, want %q", tt.desc, got, tt.want)
		}
	}
}

func TestNamedValuesOverruleAContradictingMaxLength(t *testing.T) {
	got := toAttribute("primaryReplyAction", &schema{Type: "string", MaxLength: 4, Nullable: true,
		Description: `The action to take. Must be one of "finish", "continue", or "pause".`})
	if got.MaxLength != 0 || !slices.Equal(got.Values, []string{"finish", "continue", "pause"}) {
		t.Errorf("toAttribute = %+v, want the three values and no maxLength", got)
	}
	fits := toAttribute("recipientType", &schema{Type: "string", MaxLength: 3, Description: `Either "to", "cc" or "bcc".`})
	if fits.MaxLength != 3 {
		t.Errorf("values that fit: maxLength %d, want 3 kept", fits.MaxLength)
	}
	float := toAttribute("score", &schema{Type: "number", Format: "float"})
	if float.Format != "float" {
		t.Errorf("number format %q, want float kept (schema.json serves it)", float.Format)
	}
}

func TestRelationshipFilters(t *testing.T) {
	data := &schema{Type: "object", Properties: map[string]*schema{"type": {Enum: []string{"account"}}}}
	tests := []struct {
		desc         string
		wantFilterBy []string
		wantReadOnly bool
	}{
		{"The account. You can use attributes id, customId, name and updatedAt to filter prospects by account (e.g. filter[account][id]=X).", []string{"id", "customId", "name", "updatedAt"}, false},
		{"<img src=https://developers.outreach.io/badges/readonly.svg>\n\nThe creator. Relationship creator cannot be used as a filter.", nil, true},
		{"You can use only the attribute id to filter calls by account (e.g. filter[account][id]=X).", []string{"id"}, false},
		{"You can use any filterable attribute of account.", []string{"*"}, false},
		{"Nothing said.", []string{"id"}, false},
	}
	for _, tt := range tests {
		got := toRelationship("account", &schema{Description: tt.desc, Properties: map[string]*schema{"data": data}}, nil)
		if !slices.Equal(got.FilterBy, tt.wantFilterBy) || got.ReadOnly != tt.wantReadOnly || got.ToMany || !slices.Equal(got.Targets, []string{"account"}) {
			t.Errorf("toRelationship(%q) = %+v, want FilterBy %q, ReadOnly %v, to-one account", tt.desc, got, tt.wantFilterBy, tt.wantReadOnly)
		}
	}
}

func TestAttributeBadges(t *testing.T) {
	s := &schema{Type: "string", Format: "date-time", Nullable: true,
		Description: "<img src=https://developers.outreach.io/badges/readonly.svg> <img src=https://developers.outreach.io/badges/filterable.svg> <img src=https://developers.outreach.io/badges/sortable.svg>\n\nWhen."}
	got := toAttribute("updatedAt", s)
	want := attribute{Name: "updatedAt", Type: "date-time", Nullable: true, ReadOnly: true, Filterable: true, Sortable: true}
	if got.Name != want.Name || got.Type != want.Type || got.ReadOnly != want.ReadOnly || got.Filterable != want.Filterable || got.Sortable != want.Sortable || got.WriteOnly {
		t.Errorf("toAttribute = %+v, want %+v", got, want)
	}
}
