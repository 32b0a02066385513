package sandbox

import (
	"slices"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
)

// TestGeneratedStringsAreValid draws many records of every type and checks
// each string against the attribute's maxLength and the values its
// description names.
func TestGeneratedStringsAreValid(t *testing.T) {
	cat := catalog.Default()
	n := counts(2000, cat)
	to := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	plans := newPlans(cat, 7, n, to.AddDate(-6, 0, 0), to)
	for _, res := range cat.Resources() {
		p := plans[res.Type]
		if p == nil {
			continue
		}
		for id := int64(1); id <= 500; id++ {
			rec := p.generate(id)
			for i, a := range res.Attributes {
				var vals []string
				switch v := rec.attrs[i].(type) {
				case string:
					if a.Type == catalog.TypeString {
						vals = []string{v}
					}
				case []string:
					vals = v
				}
				for _, v := range vals {
					if a.MaxLength > 0 && utf8.RuneCountInString(v) > a.MaxLength {
						t.Fatalf("%s %d: %s = %q is longer than maxLength %d", res.Type, id, a.Name, v, a.MaxLength)
					}
					if len(a.Values) > 0 && !slices.Contains(a.Values, v) {
						t.Fatalf("%s %d: %s = %q, not one of %v", res.Type, id, a.Name, v, a.Values)
					}
					if v == "null" {
						t.Fatalf("%s %d: %s is the string \"null\"", res.Type, id, a.Name)
					}
				}
			}
		}
	}
}
