package sandbox

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Attribute values are held in these Go types:
//
//	nil             JSON null
//	string          string attributes and dates ("2024-02-16")
//	int64, float64  integer and number attributes
//	bool            boolean attributes
//	timestamp       date-time attributes
//	[]string        arrays of strings (emails, tags, phones)
//	histogram       prospect.contactHistogram
//	json.RawMessage objects and other JSON written by clients
type (
	timestamp int64 // Unix milliseconds, UTC
	histogram [][2]int64
)

const timeLayout = "2006-01-02T15:04:05.000Z"

func ts(t time.Time) timestamp { return timestamp(t.UnixMilli()) }

func (t timestamp) Time() time.Time { return time.UnixMilli(int64(t)).UTC() }

// appendValue appends v as JSON.
func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return appendString(b, v)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return append(b, "null"...)
		}
		return strconv.AppendFloat(b, v, 'f', -1, 64)
	case bool:
		return strconv.AppendBool(b, v)
	case timestamp:
		b = append(b, '"')
		b = v.Time().AppendFormat(b, timeLayout)
		return append(b, '"')
	case []string:
		b = append(b, '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		return append(b, ']')
	case histogram:
		b = append(b, '[')
		for i, m := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			b = strconv.AppendInt(b, m[0], 10)
			b = append(b, ',')
			b = strconv.AppendInt(b, m[1], 10)
			b = append(b, ']')
		}
		return append(b, ']')
	case json.RawMessage:
		return append(b, v...)
	default:
		raw, err := json.Marshal(v)
		if err != nil {
			return append(b, "null"...)
		}
		return append(b, raw...)
	}
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, replacing invalid UTF-8.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
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
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// compare orders two attribute values of the same attribute; nil sorts
// first. It returns -1, 0 or +1.
func compare(a, b any) int {
	if a == nil || b == nil {
		switch {
		case a == nil && b == nil:
			return 0
		case a == nil:
			return -1
		default:
			return 1
		}
	}
	switch a := a.(type) {
	case string:
		if b, ok := b.(string); ok {
			return cmp3(a, b)
		}
	case int64:
		switch b := b.(type) {
		case int64:
			return cmp3(a, b)
		case float64:
			return cmp3(float64(a), b)
		}
	case float64:
		switch b := b.(type) {
		case float64:
			return cmp3(a, b)
		case int64:
			return cmp3(a, float64(b))
		}
	case bool:
		if b, ok := b.(bool); ok {
			switch {
			case a == b:
				return 0
			case !a:
				return -1
			default:
				return 1
			}
		}
	case timestamp:
		if b, ok := b.(timestamp); ok {
			return cmp3(a, b)
		}
	}
	return cmp3(string(appendValue(nil, a)), string(appendValue(nil, b)))
}

func cmp3[T int64 | float64 | string | timestamp](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
