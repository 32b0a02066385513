package outreach_test

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/outreach-connector/outreach-connector/outreach"
)

func TestDecodeRelationshipShapes(t *testing.T) {
	doc := `{"data":[{"type":"prospect","id":1,"attributes":{"firstName":"Sally","mystery":{"a":1}},
	"relationships":{"account":{"data":{"type":"account","id":7}},"stage":{"data":null},
	"emailAddresses":{"data":[{"type":"emailAddress","id":5},{"type":"emailAddress","id":6}],"links":{"related":"x"},"meta":{"count":2}},
	"mailings":{"links":{"related":"https://api.outreach.io/api/v2/mailings?filter%5Bprospect%5D%5Bid%5D=1"}},
	"batches":{"meta":{"count":0}}}}],"links":{"next":"n"}}`
	d, err := outreach.DecodeDocument([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := d.Resources()
	if err != nil || len(rs) != 1 {
		t.Fatalf("resources: %v %d", err, len(rs))
	}
	r := rs[0]
	tests := []struct {
		name                  string
		rel                   string
		wantID                int64
		wantIDs               int
		wantHasData, wantMany bool
	}{
		{"to-one", "account", 7, 1, true, false},
		{"null to-one", "stage", 0, 0, true, false},
		{"to-many", "emailAddresses", 0, 2, true, true},
		{"links only", "mailings", 0, 0, false, false},
		{"meta only", "batches", 0, 0, false, false},
	}
	for _, tt := range tests {
		rel := r.Relationships[tt.rel]
		if rel.ID() != tt.wantID || len(rel.IDs()) != tt.wantIDs || rel.HasData != tt.wantHasData || rel.ToMany != tt.wantMany {
			t.Errorf("%s: got id %d ids %v hasData %v toMany %v", tt.name, rel.ID(), rel.IDs(), rel.HasData, rel.ToMany)
		}
	}
	if string(r.Attributes["mystery"]) != `{"a":1}` || r.String("firstName") != "Sally" || d.Links.Next != "n" {
		t.Errorf("attributes or links lost: %s %q %q", r.Attributes["mystery"], r.String("firstName"), d.Links.Next)
	}
	// Unknown attributes go back out unchanged.
	out, _ := json.Marshal(r)
	var back outreach.Resource
	if err := json.Unmarshal(out, &back); err != nil || string(back.Attributes["mystery"]) != `{"a":1}` {
		t.Errorf("round trip lost the unknown attribute: %s", out)
	}
}

// FuzzDecodeDocument checks that any input either decodes or fails with an
// error, never a panic; that the fast page decoder agrees with
// encoding/json on every input; and that decoded resources survive
// re-encoding.
func FuzzDecodeDocument(f *testing.F) {
	for _, seed := range []string{
		`{"data":[{"type":"prospect","id":1,"attributes":{"a":null},"relationships":{"r":{"data":null}}}]}`,
		`{"data":{"type":"account","id":2,"relationships":{"r":{"data":[{"type":"x","id":1}]}}}}`,
		`{"errors":[{"id":"validationError","detail":"x","source":{"pointer":"/data"}}]}`,
		`{"data":[],"meta":{"count":0}}`, `{"data":[{"relationships":{"r":{"data":"oops"}}}]}`, `[]`, `null`, `{`,
		"{\"dAtA\":[{\"relAtionships\":{\"\xd3\":{}}}]}", // an invalid UTF-8 member name
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, fastErr := outreach.DecodePage(b)
		d, err := outreach.DecodeDocument(b)
		var rs []*outreach.Resource
		if err == nil {
			rs, err = d.Resources()
		}
		if (fastErr == nil) != (err == nil) {
			t.Fatalf("DecodePage error %v, encoding/json error %v, on %q", fastErr, err, b)
		}
		if err != nil {
			return
		}
		if diff := cmp.Diff(rs, fast.Resources, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("DecodePage disagrees with encoding/json on %q (-json +fast):\n%s", b, diff)
		}
		if fast.Next != d.Links.Next || !cmp.Equal(fast.Count, d.Meta.Count) {
			t.Fatalf("links.next %q vs %q or meta.count differ on %q", fast.Next, d.Links.Next, b)
		}
		for _, r := range rs {
			if r == nil {
				continue
			}
			out, err := json.Marshal(r)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", r, err)
			}
			var back outreach.Resource
			if err := json.Unmarshal(out, &back); err != nil {
				t.Fatalf("decode re-encoded %s: %v", out, err)
			}
		}
	})
}

// TestDecodeStringsAtEveryOffset puts escapes, multi-byte and invalid
// UTF-8, control characters and a missing end at every offset of member
// names and string values, as the decoder reads strings eight bytes at a
// time: each decodes as encoding/json decodes it, or fails where it fails.
func TestDecodeStringsAtEveryOffset(t *testing.T) {
	pieces := []string{`a`, `é`, `\"`, `\\`, `\/`, `\u00e9`, `\ud83d\ude00`, `\n`, "\x7f", "\xff", "\xe2\x80\xa8", "\x01", "\x1f", `\x`, `\u12`}
	for pre := range 18 {
		for _, piece := range pieces {
			for _, post := range []int{0, 1, 7, 8, 9} {
				s := strings.Repeat("x", pre) + piece + strings.Repeat("y", post)
				doc := `{"data":[{"type":"prospect","id":1,"attributes":{"` + s + `":"` + s + `"},` +
					`"relationships":{"owner":{"data":{"type":"user","id":2},"links":{"related":"` + s + `"}}}}]}`
				var want struct {
					Data []struct {
						Attributes map[string]string
					}
				}
				wantErr := json.Unmarshal([]byte(doc), &want)
				p, err := outreach.DecodePage([]byte(doc))
				if (err == nil) != (wantErr == nil) {
					t.Fatalf("%q: DecodePage error %v, encoding/json error %v", s, err, wantErr)
				}
				if err != nil {
					continue
				}
				got := map[string]string{}
				for name, raw := range p.Resources[0].Attributes {
					var v string
					if err := json.Unmarshal(raw, &v); err != nil {
						t.Fatalf("%q: attribute %q: %v", s, name, err)
					}
					got[name] = v
				}
				if !maps.Equal(got, want.Data[0].Attributes) {
					t.Fatalf("%q: decoded %q, encoding/json %q", s, got, want.Data[0].Attributes)
				}
			}
		}
	}
}
