package catalog_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
)

func TestDefaultCoversTheAPI(t *testing.T) {
	c := catalog.Default()
	if got, want := len(c.Resources()), 51; got != want {
		t.Errorf("len(Resources()) = %d, want %d", got, want)
	}
	for _, typ := range []string{"account", "prospect", "opportunity", "sequenceState", "mailing", "call", "event", "duty", "webhook", "auditLog", "user"} {
		if _, ok := c.ByType(typ); !ok {
			t.Errorf("ByType(%q) missing", typ)
		}
	}
}

func TestAttributes(t *testing.T) {
	c := catalog.Default()
	tests := []struct {
		typ, attr string
		want      catalog.Attribute
	}{
		{"prospect", "updatedAt", catalog.Attribute{Name: "updatedAt", Type: catalog.TypeDateTime, Nullable: true, ReadOnly: true, Filterable: true, Sortable: true}},
		{"prospect", "emails", catalog.Attribute{Name: "emails", Type: catalog.TypeArray, Items: catalog.TypeString, Format: "email", Nullable: true, Filterable: true}},
		{"prospect", "contactHistogram", catalog.Attribute{Name: "contactHistogram", Type: catalog.TypeArray, Items: catalog.TypeArray, Nullable: true, ReadOnly: true}},
		{"prospect", "custom150", catalog.Attribute{Name: "custom150", Type: catalog.TypeString, Nullable: true, MaxLength: 32000}},
		{"event", "payload", catalog.Attribute{Name: "payload", Type: catalog.TypeObject, Nullable: true}},
		{"call", "direction", catalog.Attribute{Name: "direction", Type: catalog.TypeString, Nullable: true, Values: []string{"inbound", "outbound"}}},
		{"mailbox", "password", catalog.Attribute{Name: "password", Type: catalog.TypeString, Nullable: true, WriteOnly: true, MaxLength: 65535}},
	}
	for _, tt := range tests {
		t.Run(tt.typ+"."+tt.attr, func(t *testing.T) {
			r, ok := c.ByType(tt.typ)
			if !ok {
				t.Fatalf("ByType(%q) missing", tt.typ)
			}
			got, ok := r.Attribute(tt.attr)
			if !ok {
				t.Fatalf("Attribute(%q) missing", tt.attr)
			}
			if diff := cmp.Diff(tt.want, *got); diff != "" {
				t.Errorf("Attribute(%q) mismatch (-want +got):\n%s", tt.attr, diff)
			}
		})
	}
}

func TestRelationships(t *testing.T) {
	c := catalog.Default()
	tests := []struct {
		typ, rel string
		want     catalog.Relationship
	}{
		{"prospect", "account", catalog.Relationship{Name: "account", Targets: []string{"account"}, FilterBy: []string{"id", "customId", "name", "named", "updatedAt"}}},
		{"prospect", "calls", catalog.Relationship{Name: "calls", Targets: []string{"call"}, ToMany: true, LinksOnly: true, ReadOnly: true}},
		{"sequenceState", "creator", catalog.Relationship{Name: "creator", Targets: []string{"user"}, ReadOnly: true}},
		{"sequenceState", "sequence", catalog.Relationship{Name: "sequence", Targets: []string{"sequence"}, FilterBy: []string{"*"}}},
		{"sequenceState", "activeStepTasks", catalog.Relationship{Name: "activeStepTasks", Targets: []string{"task"}, ToMany: true, ReadOnly: true}},
	}
	for _, tt := range tests {
		t.Run(tt.typ+"."+tt.rel, func(t *testing.T) {
			r, _ := c.ByType(tt.typ)
			got, ok := r.Relationship(tt.rel)
			if !ok {
				t.Fatalf("Relationship(%q) missing", tt.rel)
			}
			if diff := cmp.Diff(tt.want, *got); diff != "" {
				t.Errorf("Relationship(%q) mismatch (-want +got):\n%s", tt.rel, diff)
			}
		})
	}
}

func TestOperationsAndScopes(t *testing.T) {
	c := catalog.Default()
	tests := []struct {
		path        string
		wantOps     catalog.Operations
		wantActions []string
		wantScopes  []string
	}{
		{"prospects", catalog.Operations{List: true, Get: true, Create: true, Update: true, Delete: true}, nil,
			[]string{"prospects.all", "prospects.read", "prospects.write", "prospects.delete"}},
		{"sequenceStates", catalog.Operations{List: true, Get: true, Create: true, Delete: true}, []string{"finish", "pause", "resume"},
			[]string{"sequenceStates.all", "sequenceStates.read", "sequenceStates.write", "sequenceStates.delete"}},
		{"mailings", catalog.Operations{List: true, Get: true, Create: true}, nil,
			[]string{"mailings.all", "mailings.read", "mailings.write"}},
		{"duties", catalog.Operations{List: true}, nil, []string{"duties.read"}},
		{"auditLogs", catalog.Operations{List: true}, nil, []string{"auditLogs.read"}},
		{"users", catalog.Operations{List: true, Get: true, Create: true, Update: true}, nil,
			[]string{"users.all", "users.read", "users.write"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r, ok := c.ByPath(tt.path)
			if !ok {
				t.Fatalf("ByPath(%q) missing", tt.path)
			}
			if r.Ops != tt.wantOps {
				t.Errorf("Ops = %+v, want %+v", r.Ops, tt.wantOps)
			}
			if !slices.Equal(r.MemberActions, tt.wantActions) {
				t.Errorf("MemberActions = %v, want %v", r.MemberActions, tt.wantActions)
			}
			if got := r.Scopes(); !slices.Equal(got, tt.wantScopes) {
				t.Errorf("Scopes() = %v, want %v", got, tt.wantScopes)
			}
		})
	}
}

func TestEveryRelationshipTargetExistsOrIsUnpublished(t *testing.T) {
	c := catalog.Default()
	known := 0
	for _, r := range c.Resources() {
		if _, ok := r.Attribute("id"); ok {
			t.Errorf("%s: id must not be an attribute", r.Type)
		}
		for _, rel := range r.Relationships {
			for _, target := range rel.Targets {
				if _, ok := c.ByType(target); ok {
					known++
				}
			}
		}
	}
	if known < 200 {
		t.Errorf("only %d relationship targets resolve to catalog types, want at least 200", known)
	}
}

func TestNewRejectsDuplicates(t *testing.T) {
	_, err := catalog.New([]catalog.Resource{{Type: "a", Path: "as"}, {Type: "a", Path: "bs"}})
	if err == nil {
		t.Fatal("New with duplicate types: got nil error, want one")
	}
}
