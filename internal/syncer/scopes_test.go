package syncer_test

import (
	"slices"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
)

func TestSplitByScopes(t *testing.T) {
	cat := catalog.Default()
	custom, err := cat.With(catalog.Resource{Type: "project", Path: "customObjects/project", Custom: true,
		Ops: catalog.Operations{List: true, Get: true, Create: true}})
	if err != nil {
		t.Fatal(err)
	}
	streams := syncer.Streams(custom)
	names := func(ss []*connection.Stream) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.Name)
		}
		return out
	}
	tests := []struct {
		name         string
		granted      []string
		readable     []string // a subset that must be readable
		unreadable   map[string][]string
		readableOnly []string // when set, exactly these are readable
	}{
		{name: "all implies read", granted: []string{"prospects.all"}, readableOnly: []string{"prospects"},
			unreadable: map[string][]string{"sequences": {"sequences.read", "sequences.all"}, "audit_logs": {"auditLogs.read"},
				"project": {"customObjectRecords.read", "customObjectRecords.all"}}},
		{name: "read", granted: []string{"auditLogs.read", "customObjectRecords.read", "accounts.read"}, readableOnly: []string{"accounts", "audit_logs", "project"}},
		{name: "write and delete do not read", granted: []string{"prospects.write", "prospects.delete"}, readableOnly: []string{}},
		{name: "an all scope that does not exist does not read", granted: []string{"auditLogs.all"}, readableOnly: []string{}},
		{name: "the default scopes", granted: credential.DefaultScopes(),
			readable:   []string{"accounts", "opportunities", "prospects", "profiles", "tasks", "teams", "stages", "users", "opportunity_stages"},
			unreadable: map[string][]string{"sequence_states": {"sequenceStates.read", "sequenceStates.all"}, "mailings": {"mailings.read", "mailings.all"}}},
		{name: "every scope", granted: custom.Scopes(), readable: names(streams), unreadable: map[string][]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			readable, unreadable := syncer.SplitByScopes(custom, streams, tt.granted)
			if len(readable)+len(unreadable) != len(streams) {
				t.Fatalf("%d readable + %d unreadable, want %d streams", len(readable), len(unreadable), len(streams))
			}
			got := names(readable)
			if tt.readableOnly != nil {
				slices.Sort(got)
				want := slices.Clone(tt.readableOnly)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("readable = %v, want %v", got, want)
				}
			}
			for _, name := range tt.readable {
				if !slices.Contains(got, name) {
					t.Errorf("%s not readable with %v", name, tt.granted)
				}
			}
			if tt.unreadable != nil && len(tt.unreadable) == 0 && len(unreadable) > 0 {
				t.Errorf("unreadable = %v, want none", unreadable[0].Stream.Name)
			}
			for name, scopes := range tt.unreadable {
				i := slices.IndexFunc(unreadable, func(u syncer.Unreadable) bool { return u.Stream.Name == name })
				if i < 0 {
					t.Errorf("%s readable with %v", name, tt.granted)
					continue
				}
				if !slices.Equal(unreadable[i].Scopes, scopes) {
					t.Errorf("%s needs %v, want %v", name, unreadable[i].Scopes, scopes)
				}
			}
		})
	}
	// The least scopes that read every stream read every stream.
	least := syncer.ScopesToRead(custom, streams)
	if r, u := syncer.SplitByScopes(custom, streams, least); len(u) > 0 || len(r) != len(streams) {
		t.Errorf("ScopesToRead = %v leaves %d streams unreadable", least, len(u))
	}
	for _, sc := range least {
		if !slices.Contains(custom.Scopes(), sc) {
			t.Errorf("ScopesToRead gives %s, not a scope of the catalog", sc)
		}
	}
}
