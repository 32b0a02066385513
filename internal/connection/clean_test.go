package connection_test

import (
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

func TestCleanText(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"plain é ✓", "plain é ✓"},
		{"a\xffb", "a\uFFFDb"},
		{"\xe2\x82", "\uFFFD\uFFFD"}, // one replacement per byte, as encoding/json decodes
		{"nul\x00", "nul\uFFFD"},
		{"", ""},
	} {
		if got := connection.CleanText(tt.in); got != tt.want {
			t.Errorf("CleanText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCleanJSON(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`{"b":[1,2.50,"\u003c"],"a":null}`, `{"b":[1,2.50,"\u003c"],"a":null}`}, // nothing to do: kept as it is
		{"[\"x\xff\"]", `["x` + "\uFFFD" + `"]`},
		{`{"k\u0000":"\ud800"}`, `{"k` + "\uFFFD" + `":"` + "\uFFFD" + `"}`},
		{`{"n":12345678901234567890,"s":"\u0000<"}`, `{"n":12345678901234567890,"s":"` + "\uFFFD" + `<"}`},
		{"not json \xff", "not json \uFFFD"},
	} {
		if got := connection.CleanJSON(tt.in); got != tt.want {
			t.Errorf("CleanJSON(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A custom object's attribute named with bytes no database takes still
// gets a column.
