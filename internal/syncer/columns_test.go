package syncer_test

import (
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
)

func TestColumnNamesAreClean(t *testing.T) {
	cat, err := catalog.Default().With(catalog.Resource{Type: "gizmo", Path: "customObjects/gizmo", Custom: true,
		Ops: catalog.Operations{List: true}, Attributes: []catalog.Attribute{
			{Name: "size\xff", Type: catalog.TypeString}, {Name: "na\x00me", Type: catalog.TypeString}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range syncer.Streams(cat) {
		if s.Name != "gizmo" {
			continue
		}
		for _, want := range []string{"size\uFFFD", "na\uFFFDme"} {
			if _, ok := s.Column(want); !ok {
				t.Errorf("no column %q in %v", want, s.Columns)
			}
		}
		return
	}
	t.Fatal("no stream gizmo")
}
