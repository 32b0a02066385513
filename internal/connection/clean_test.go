package connection_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

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
		{`{"n":12345678901234567890,"s":"\u0000<"}`, `{"n":12345678901234567890,"s":"` + "\uFFFD" + `\u003c"}`},
		// Names that clean alike both stay, in the order sent (a map
		// would keep one of them, a different one from run to run).
		{`{"\u0000":1,"\ufffd":2, "a\u0000" : 3,"a\ufffd":4}`, `{"` + "\uFFFD" + `":1,"\ufffd":2, "a` + "\uFFFD" + `" : 3,"a\ufffd":4}`},
		{`{"z":"\ud83d\ude00 \" \\","a":"\u0000"}`, `{"z":"` + "\U0001F600" + ` \" \\","a":"` + "\uFFFD" + `"}`},
		{"not json \xff", "not json \uFFFD"},
	} {
		if got := connection.CleanJSON(tt.in); got != tt.want {
			t.Errorf("CleanJSON(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A custom object's attribute named with bytes no database takes still
// gets a column.

// CleanJSON of valid JSON is valid JSON, and of anything, text with
// nothing left to clean (the same text again).
func FuzzCleanJSON(f *testing.F) {
	for _, s := range []string{`{"a":"\u0000","\ud800":[1,"x\udfff"]}`, "[\"\xff\"]", `"\\u0000"`, "nul\x00", `{"a":1}`, `[1,`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := connection.CleanJSON(s)
		if json.Valid([]byte(s)) && !json.Valid([]byte(got)) {
			t.Fatalf("CleanJSON(%q) = %q: valid JSON in, not out", s, got)
		}
		if !utf8.ValidString(got) || strings.IndexByte(got, 0) >= 0 || connection.CleanJSON(got) != got {
			t.Fatalf("CleanJSON(%q) = %q: not clean", s, got)
		}
		if json.Valid([]byte(s)) {
			var v any
			if err := json.Unmarshal([]byte(got), &v); err != nil || strings.Contains(fmt.Sprint(v), "\x00") {
				t.Fatalf("CleanJSON(%q) = %q: %v, or U+0000 left", s, got, err)
			}
		}
	})
}
