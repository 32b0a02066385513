package syncer

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/outreach"
)

// smallInt reads what strconv.ParseInt reads, or declines.
func TestSmallIntAgreesWithStrconv(t *testing.T) {
	cases := []string{"0", "-0", "7", "-7", "007", "123456789012345678", "-123456789012345678", "999999999999999999",
		"1234567890123456789", "9223372036854775807", "-9223372036854775808", "", "-", "1e3", "1.0", "+1", " 1", "1 ", "0x10", "--1"}
	for _, c := range cases {
		n, ok := smallInt([]byte(c))
		want, err := strconv.ParseInt(c, 10, 64)
		if ok && (err != nil || n != want) {
			t.Errorf("smallInt(%q) = %d, strconv says %d, %v", c, n, want, err)
		}
		if !ok && err == nil && len(c) <= 18 && c != "-0" && c[0] != '0' && c[0] != '+' {
			t.Errorf("smallInt(%q) declined a plain integer", c)
		}
		// Declined or not, value makes what strconv makes.
		v, verr := value(connection.ColInteger, []byte(c), nil)
		if err == nil && (verr != nil || v != any(want)) {
			t.Errorf("value(%q) = %v, %v; want %d", c, v, verr, want)
		}
	}
}

// Strings cut from an arena keep their bytes while later strings fill it
// and its next chunks.
func TestStringArenaKeepsEveryString(t *testing.T) {
	var a stringArena
	var got []string
	for i := range 20000 {
		got = append(got, a.string(fmt.Appendf(nil, "string %d of the page", i)))
	}
	big := make([]byte, arenaChunk)
	for i := range big {
		big[i] = 'x'
	}
	long := a.string(big)
	big[0] = 'y'
	for i, s := range got {
		if want := fmt.Sprintf("string %d of the page", i); s != want {
			t.Fatalf("string %d = %q, want %q", i, s, want)
		}
	}
	if long[0] != 'x' || len(long) != arenaChunk {
		t.Error("a string longer than a chunk shares its caller's bytes")
	}
	if s := (*stringArena)(nil).string([]byte("alone")); s != "alone" {
		t.Errorf("nil arena: %q", s)
	}
}

// extrasJSON writes what json.Marshal writes for the map of the members
// the stream does not skip.
func FuzzExtrasJSONMatchesEncodingJSON(f *testing.F) {
	f.Add("accountName", `"Soylent Corp"`, "smsOptStatus", `"opted_out"`, "zeta", `null`)
	f.Add("b", `{ "x" : [1, 2 ,"a b"] }`, "a", `"<a href=\"x\">&amp;</a>"`, "b", `"later wins"`)
	f.Add("s<&>", "\"\u2028\u2029é\"", "skipped", `1`, "k\"\\", `"esc \" \\ \n"`)
	f.Add("bad\xff", "\"\xff\xfe\"", "", `true`, "x\ty", "-1.5e3")
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2, n3, v3 string) {
		members := []outreach.Member{{Name: n1, Value: []byte(v1)}, {Name: n2, Value: []byte(v2)}, {Name: n3, Value: []byte(v3)}}
		for _, m := range members {
			if !json.Valid(m.Value) {
				return // the decoder only hands over valid values
			}
		}
		c := &converter{s: &connection.Stream{Skip: map[string]bool{"skipped": true}}}
		got, err := c.extrasJSON(members)
		want := map[string]json.RawMessage{}
		for _, m := range members {
			if !c.s.Skip[m.Name] {
				want[m.Name] = m.Value
			}
		}
		if len(want) == 0 {
			if got != nil || err != nil {
				t.Fatalf("nothing kept: got %q, %v", got, err)
			}
			return
		}
		wantJSON, werr := json.Marshal(want)
		if (err == nil) != (werr == nil) || string(got) != string(wantJSON) {
			t.Fatalf("extrasJSON %q, %v\njson.Marshal %q, %v", got, err, wantJSON, werr)
		}
	})
}
