package connection

import (
	"bytes"
	"encoding/json"
	"testing"
)

// AppendJSON writes exactly the bytes encoding/json writes for the same
// object.
func FuzzAppendJSONMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{"plain", "<a href=\"x\">&amp;</a>", "tab\tnew\nline\r\b\f\x01\x1f", "\u2028\u2029é😀", "bad \xff\xfe utf8",
		`back\slash`, "nul\x00", `{"a":[1,2]}`, "[1,", ""} {
		f.Add(s, int64(-42), 3.5e21, true)
		f.Add(s, int64(0), -1.25e-7, false)
	}
	f.Fuzz(func(t *testing.T, str string, n int64, x float64, ok bool) {
		s := &Stream{Columns: []Column{{Name: "id", Type: ColInteger}, {Name: "s<&>" + str, Type: ColString}, {Name: "j", Type: ColJSON},
			{Name: "n", Type: ColNumber}, {Name: "b", Type: ColBoolean}, {Name: "none", Type: ColString}}}
		r := Record{ID: n, Values: []any{n, str, str, x, ok, nil}}
		got, err := s.AppendJSON([]byte("prefix"), r)
		clean := s.Clean(r)
		_, merr := json.Marshal(x)
		if (err == nil) != (merr == nil) {
			t.Fatalf("AppendJSON error %v, encoding/json error %v", err, merr)
		}
		if err != nil {
			return
		}
		// The same object the slow way: json.Marshal of every name and value.
		var want bytes.Buffer
		want.WriteByte('{')
		for i, c := range s.Columns {
			v := clean.Values[i]
			if v == nil {
				continue
			}
			if want.Len() > 1 {
				want.WriteByte(',')
			}
			name, _ := json.Marshal(c.Name)
			want.Write(name)
			want.WriteByte(':')
			if str, isStr := v.(string); isStr && c.Type == ColJSON && json.Valid([]byte(str)) {
				want.WriteString(str)
				continue
			}
			b, _ := json.Marshal(v)
			want.Write(b)
		}
		want.WriteByte('}')
		if string(got) != "prefix"+want.String() {
			t.Fatalf("AppendJSON\n%s\nencoding/json\nprefix%s", got, want.String())
		}
	})
}
