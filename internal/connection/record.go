package connection

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// Record is one row: values by column index of its stream. A value is
// nil, string, int64, float64, bool, or (for json columns) the JSON text
// as a string.
type Record struct {
	ID     int64
	Cursor string // the cursor field's value as Outreach sent it; "" when none
	Values []any
}

// AppendJSON writes r as one JSON object: null values left out, json
// columns embedded as JSON rather than as strings, text cleaned (Clean).
// The bytes are those encoding/json writes for the same values.
func (s *Stream) AppendJSON(w *bytes.Buffer, r Record) error {
	r = s.Clean(r)
	w.WriteByte('{')
	first := true
	out := w.AvailableBuffer()
	for i, c := range s.Columns {
		v := r.Values[i]
		if v == nil {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = appendJSONString(out, c.Name)
		out = append(out, ':')
		switch v := v.(type) {
		case string:
			if c.Type == ColJSON && json.Valid([]byte(v)) {
				out = append(out, v...)
			} else {
				out = appendJSONString(out, v)
			}
		case int64:
			out = strconv.AppendInt(out, v, 10)
		case bool:
			out = strconv.AppendBool(out, v)
		default:
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			out = append(out, b...)
		}
	}
	w.Write(out)
	w.WriteByte('}')
	return nil
}

// appendJSONString appends s quoted as encoding/json does: HTML-safe,
// invalid UTF-8 as U+FFFD, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
