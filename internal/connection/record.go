package connection

import (
	"encoding/json"
	"math"
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

// AppendJSON appends r to b as one JSON object: null values left out, json
// columns embedded as JSON rather than as strings, text cleaned (Clean).
// The bytes are those encoding/json writes for the same cleaned values.
func (s *Stream) AppendJSON(b []byte, r Record) ([]byte, error) {
	b = append(b, '{')
	first := true
	for i, c := range s.Columns {
		v := r.Values[i]
		if v == nil {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, c.Name, false)
		b = append(b, ':')
		switch v := v.(type) {
		case string:
			if c.Type == ColJSON {
				if v = CleanJSON(v); json.Valid([]byte(v)) {
					b = append(b, v...)
					continue
				}
			}
			b = appendJSONString(b, v, true)
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case bool:
			b = strconv.AppendBool(b, v)
		case float64:
			if math.IsInf(v, 0) || math.IsNaN(v) {
				return b, &json.UnsupportedValueError{Str: strconv.FormatFloat(v, 'g', -1, 64)}
			}
			b = appendFloat(b, v)
		default:
			enc, err := json.Marshal(v)
			if err != nil {
				return b, err
			}
			b = append(b, enc...)
		}
	}
	return append(b, '}'), nil
}

// appendFloat appends f as encoding/json writes a float64: the shortest
// representation, in exponent form below 1e-6 and from 1e21 on.
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' { // e-07 → e-7, as encoding/json writes it
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// AppendJSONString appends s quoted as encoding/json quotes a string.
func AppendJSONString(b []byte, s string) []byte { return appendJSONString(b, s, false) }

// appendJSONString appends s quoted as encoding/json does: HTML-safe,
// invalid UTF-8 as U+FFFD, U+2028 and U+2029 escaped. With clean it
// appends CleanText(s) so quoted instead: U+0000 and each invalid byte
// written as the character U+FFFD, not escaped.
func appendJSONString(b []byte, s string, clean bool) []byte {
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
			case 0:
				if clean {
					b = append(b, "\uFFFD"...)
					break
				}
				fallthrough
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
			if clean {
				b = append(b, "\uFFFD"...)
			} else {
				b = append(b, `\ufffd`...)
			}
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
