package outreach_test

import (
	"bytes"
	"slices"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/outreach-connector/outreach-connector/outreach"
)

// FuzzLayoutDecodePage holds the slot decoder to DecodePage (which
// FuzzDecodeDocument holds to encoding/json): the same errors, and every
// resource's type, id, attributes and relationships, slotted or not.
func FuzzLayoutDecodePage(f *testing.F) {
	for _, seed := range []string{
		`{"data":[{"type":"prospect","id":1,"attributes":{"a":1,"b":"x","c":null},"relationships":{"r":{"data":{"type":"t","id":2}}}},` +
			`{"type":"prospect","id":2,"attributes":{"a":2,"c":[1],"b":"y","z":{}}},{"id":3,"attributes":{"b":"\u00e9","a":3,"a":4}}],"links":{"next":"n"},"meta":{"count":3}}`,
		`{"data":[{"attributes":{"a":1},"attributes":null},null,{"relationships":{"r":{"data":[{"type":"t","id":1}]},"q":{"data":null}},"relationships":null}]}`,
		`{"data":[{"attributes":{"a":1}}],"included":[{"type":"x","id":1,"attributes":{"a":2}}],"data":null}`,
		`{"data":[{"relationships":{"r":{"data":"oops"}}}]}`, `{"data":[],"meta":{"count":0}}`, `[]`, `null`, `{`,
		"{\"dAtA\":[{\"ATTRIBUTES\":{\"\xd3\":1,\"a\\u0062\":2}}]}",
	} {
		f.Add([]byte(seed), "a,b", "r")
	}
	f.Fuzz(func(t *testing.T, b []byte, attrs, rels string) {
		want, wantErr := outreach.DecodePage(b)
		split := func(s string) []string {
			var out []string
			for _, n := range bytes.Split([]byte(s), []byte(",")) {
				if len(n) > 0 && !slices.Contains(out, string(n)) {
					out = append(out, string(n))
				}
			}
			return out
		}
		l := outreach.NewLayout(split(attrs), split(rels))
		got, err := l.DecodePage(b)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("Layout.DecodePage error %v, DecodePage error %v, on %q", err, wantErr, b)
		}
		if err != nil {
			return
		}
		if got.Next != want.Next || !cmp.Equal(got.Count, want.Count) || len(got.Rows) != len(want.Resources) {
			t.Fatalf("next %q/%q, count %v/%v, %d/%d rows on %q", got.Next, want.Next, got.Count, want.Count, len(got.Rows), len(want.Resources), b)
		}
		an, rn := split(attrs), split(rels)
		for i, r := range want.Resources {
			row := got.Rows[i]
			if r == nil {
				if !row.Null {
					t.Fatalf("resource %d: null, row %+v", i, row)
				}
				continue
			}
			if row.Null || row.Type != r.Type || row.ID != r.ID {
				t.Fatalf("resource %d: %s %d, row %+v", i, r.Type, r.ID, row)
			}
			back := map[string]string{}
			for j, v := range row.Attrs {
				if v != nil {
					back[an[j]] = string(v)
				}
			}
			for _, m := range row.Extra {
				if slices.Contains(an, m.Name) {
					t.Fatalf("resource %d: slotted attribute %q among the extras", i, m.Name)
				}
				back[m.Name] = string(m.Value)
			}
			attrsWant := map[string]string{}
			for k, v := range r.Attributes {
				attrsWant[k] = string(v)
			}
			if diff := cmp.Diff(attrsWant, back, cmpopts.EquateEmpty()); diff != "" {
				keys := make([]string, 0, len(back))
				for k := range back {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				t.Fatalf("resource %d attributes on %q (-DecodePage +rows):\n%s", i, b, diff)
			}
			for j, name := range rn {
				want := r.Relationships[name]
				want.Related, want.Count = "", nil // checked, not kept
				if diff := cmp.Diff(want, row.Rels[j], cmpopts.EquateEmpty()); diff != "" {
					t.Fatalf("resource %d relationship %s on %q:\n%s", i, name, b, diff)
				}
			}
		}
	})
}
