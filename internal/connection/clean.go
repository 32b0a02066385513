package connection

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// Destinations store text every database accepts: each byte of an invalid
// UTF-8 sequence becomes U+FFFD (as encoding/json decodes it), and so does
// U+0000, which PostgreSQL cannot hold in text or jsonb. A value that once
// failed a page would fail it on every run.

// CleanText returns s with invalid UTF-8 bytes and U+0000 replaced by
// U+FFFD; s itself when there is nothing to replace.
func CleanText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == 0 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// CleanJSON returns the JSON text s with its strings (member names
// included) cleaned as by CleanText, escaped U+0000 and lone surrogates
// included; s itself when there is nothing to replace. Only the strings
// that change are written again (quoted as encoding/json quotes them);
// everything else, member order and names sent twice included, stays as
// sent, so two names that clean alike both stay, in order. Text that is
// not JSON is cleaned as text.
func CleanJSON(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 && !badEscape(s) { // JSON holds no raw U+0000; text might
		return s
	}
	if !json.Valid([]byte(s)) {
		return CleanText(s)
	}
	out := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		if s[i] != '"' {
			out = append(out, s[i])
			i++
			continue
		}
		// A string token of valid JSON: up to the quote no backslash
		// escapes.
		j := i + 1
		for s[j] != '"' {
			if s[j] == '\\' {
				j++
			}
			j++
		}
		tok := s[i : j+1]
		i = j + 1
		if utf8.ValidString(tok) && !badEscape(tok) {
			out = append(out, tok...)
			continue
		}
		var text string
		json.Unmarshal([]byte(tok), &text) // valid: invalid UTF-8 and lone surrogates read as U+FFFD
		out = appendJSONString(out, CleanText(text), false)
	}
	return string(out)
}

// badEscape reports whether s may hold \u0000 or a \uD800-\uDFFF escape.
func badEscape(s string) bool {
	for {
		i := strings.Index(s, `\u`)
		if i < 0 || i+6 > len(s) {
			return false
		}
		hex := strings.ToLower(s[i+2 : i+6])
		if hex == "0000" || (hex[0] == 'd' && hex[1] >= '8') {
			return true
		}
		s = s[i+2:]
	}
}

// Clean returns r with every string value cleaned (CleanJSON for json
// columns, CleanText for the others); r itself when all are clean.
func (s *Stream) Clean(r Record) Record {
	copied := false
	for i, v := range r.Values {
		str, ok := v.(string)
		if !ok {
			continue
		}
		c := CleanText(str)
		if i < len(s.Columns) && s.Columns[i].Type == ColJSON {
			c = CleanJSON(str)
		}
		if c == str {
			continue
		}
		if !copied {
			r.Values = append([]any(nil), r.Values...)
			copied = true
		}
		r.Values[i] = c
	}
	return r
}
