package load

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
)

// TestConvert: values are checked against the catalog before any request,
// each refusal naming what is wrong.
func TestConvert(t *testing.T) {
	res, _ := catalog.Default().ByType("prospect")
	attr := func(name string) *catalog.Attribute { a, _ := res.Attribute(name); return a }
	tier := &target{column: "tier", name: "custom1", label: "Tier", picklist: []string{"Gold", "Silver"}}
	for _, tc := range []struct {
		t    *target
		a    *catalog.Attribute
		in   any
		want string // JSON of the value, or the start of the refusal
	}{
		{&target{name: "title"}, attr("title"), "CEO", `"CEO"`},
		{&target{name: "title"}, attr("title"), strings.Repeat("é", 256), "256 characters; title allows at most 255"},
		{&target{name: "emails"}, attr("emails"), "a@x.example; B@y.example", `["a@x.example","B@y.example"]`},
		{&target{name: "emails"}, attr("emails"), `["a@x.example"]`, `["a@x.example"]`},
		{&target{name: "emails"}, attr("emails"), "not-an-email", `"not-an-email" is not an email address`},
		{&target{name: "emails"}, attr("emails"), "a@b", `"a@b" is not an email address`},
		{&target{name: "emails"}, attr("emails"), "Ann <a@x.example>", `"Ann <a@x.example>" is not an email address`},
		{&target{name: "optedOut"}, attr("optedOut"), "yes", `true`},
		{&target{name: "optedOut"}, attr("optedOut"), "maybe", `"maybe" is not true or false`},
		{&target{name: "dateOfBirth"}, attr("dateOfBirth"), "1990-02-03", `"1990-02-03"`},
		{&target{name: "availableAt"}, attr("availableAt"), "2026-03-01 12:30:00", `"2026-03-01T12:30:00.000Z"`},
		{&target{name: "availableAt"}, attr("availableAt"), "soon", `"soon" is not a date-time`},
		{tier, attr("custom1"), "gold", `"Gold"`},
		{tier, attr("custom1"), "Platinum", `"Platinum" is not one of custom1 (Tier)'s values (Gold, Silver)`},
		{&target{name: "title"}, attr("title"), nil, `null`},
	} {
		if tc.a == nil {
			t.Fatalf("%s: no such prospect attribute in the catalog", tc.t.name)
		}
		v, why := convert(tc.t, tc.a, tc.in)
		got := why
		if why == "" {
			b, _ := json.Marshal(v)
			got = string(b)
		}
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("convert(%s, %v) = %s; want %s", tc.t.name, tc.in, got, tc.want)
		}
	}
}

// TestSame: a row's value equals the record's as Outreach stores it, so an
// unchanged row costs no write.
func TestSame(t *testing.T) {
	res, _ := catalog.Default().ByType("prospect")
	attr := func(name string) *catalog.Attribute { a, _ := res.Attribute(name); return a }
	for _, tc := range []struct {
		a    string
		want any
		have string
		same bool
	}{
		{"title", "CEO", `"CEO"`, true},
		{"title", "CEO", `"Ceo"`, false},
		{"title", nil, `null`, true},
		{"title", nil, `"CEO"`, false},
		{"emails", []string{"B@x.example", "a@x.example"}, `["a@x.example","b@x.example"]`, true},
		{"emails", []string{"a@x.example"}, `["a@x.example","b@x.example"]`, false},
		{"emails", nil, `[]`, true},
		{"availableAt", "2026-03-01T12:30:00.000Z", `"2026-03-01T12:30:00.000Z"`, true},
		{"availableAt", "2026-03-01T12:30:00.400Z", `"2026-03-01T12:30:00.000Z"`, true},
		{"availableAt", "2026-03-01T12:31:00.000Z", `"2026-03-01T12:30:00.000Z"`, false},
		{"optedOut", true, `true`, true},
		{"optedOut", false, `null`, false},
	} {
		if got := same(attr(tc.a), tc.want, json.RawMessage(tc.have)); got != tc.same {
			t.Errorf("same(%s, %v, %s) = %v; want %v", tc.a, tc.want, tc.have, got, tc.same)
		}
	}
}
