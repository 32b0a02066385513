package outreach

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// A single-pass decoder for the JSON:API documents Outreach sends. It
// validates the JSON as it goes and decodes resources straight into
// Resource: attribute values stay as the exact bytes Outreach sent
// (json.RawMessage sub-slices of the input, which the Resources keep
// alive), member names are interned, and nothing is scanned twice. It
// accepts exactly what encoding/json accepts for the same types; the fuzz
// test holds it to that.

type decoder struct {
	b     []byte
	i     int
	names map[string]string // interned attribute and relationship names
	// Sizes of the last resource's maps: records of a page are alike, so
	// the next maps are made that big at once.
	attrHint, relHint int
	// lean decoders (Layout's) keep of a relationship its data only, the
	// ids cut from idSlab (one allocation for many relationships);
	// links.related and meta.count are checked, not kept.
	lean    bool
	idSlab  []ResourceID
	scratch []ResourceID // a to-many relationship's ids while decoding
}

// keepIDs returns a copy of ids cut from the decoder's slab.
func (d *decoder) keepIDs(ids ...ResourceID) []ResourceID {
	if len(ids) == 0 {
		return []ResourceID{}
	}
	if len(d.idSlab) < len(ids) {
		d.idSlab = make([]ResourceID, max(1024, len(ids)))
	}
	out := d.idSlab[:len(ids):len(ids)]
	copy(out, ids)
	d.idSlab = d.idSlab[len(ids):]
	return out
}

func (d *decoder) fail(what string) error {
	return fmt.Errorf("outreach: decode JSON:API document at byte %d: %s", d.i, what)
}

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) peek() byte {
	if d.i < len(d.b) && d.b[d.i] > ' ' { // no whitespace: the usual case
		return d.b[d.i]
	}
	d.ws()
	if d.i >= len(d.b) {
		return 0
	}
	return d.b[d.i]
}

// null consumes a null literal if one is next.
func (d *decoder) null() bool {
	if d.peek() == 'n' && bytes.HasPrefix(d.b[d.i:], []byte("null")) {
		d.i += 4
		return true
	}
	return false
}

// object calls member for every member of an object with its name
// (unescaped); member must consume the value. Keys are matched
// case-insensitively by callers, as encoding/json does for struct fields.
func (d *decoder) object(member func(key []byte) error) error {
	if d.peek() != '{' {
		return d.fail("expected an object")
	}
	d.i++
	if d.peek() == '}' {
		d.i++
		return nil
	}
	for {
		if d.peek() != '"' {
			return d.fail("expected a member name")
		}
		key, plain, err := d.rawString()
		if err != nil {
			return err
		}
		if d.peek() != ':' {
			return d.fail("expected ':'")
		}
		d.i++
		if plain {
			key = key[1 : len(key)-1]
		} else { // escapes, or bytes beyond ASCII: encoding/json replaces invalid UTF-8 with U+FFFD
			var s string
			if err := json.Unmarshal(key, &s); err != nil {
				return d.fail("bad member name")
			}
			key = []byte(s)
		}
		if err := member(key); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return d.fail("expected ',' or '}'")
		}
	}
}

// array calls elem for every element; elem must consume the value.
func (d *decoder) array(elem func() error) error {
	if d.peek() != '[' {
		return d.fail("expected an array")
	}
	d.i++
	if d.peek() == ']' {
		d.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return nil
		default:
			return d.fail("expected ',' or ']'")
		}
	}
}

// rawString consumes a string and returns it with its quotes, and whether
// it is plain: no escapes, ASCII only (its bytes are its text).
func (d *decoder) rawString() (raw []byte, plain bool, err error) {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	start := d.i
	d.i++ // opening quote
	plain = true
	for {
		// Eight bytes at a time up to the first that ends the string,
		// starts an escape or is a control character: a byte zero in
		// x^'"' or x^'\\', or below 0x20 in x. The lowest byte flagged is
		// such a byte (a borrow only flags bytes above one).
		var seen uint64
		for d.i+8 <= len(d.b) {
			x := binary.LittleEndian.Uint64(d.b[d.i:])
			q, bs := x^('"'*ones), x^('\\'*ones)
			if m := ((q-ones)&^q | (bs-ones)&^bs | (x-0x20*ones)&^x) & highs; m != 0 {
				n := bits.TrailingZeros64(m) / 8
				seen |= x & (1<<(8*n) - 1)
				d.i += n
				break
			}
			seen |= x
			d.i += 8
		}
		if seen&highs != 0 {
			plain = false
		}
		if d.i >= len(d.b) {
			return nil, false, d.fail("unterminated string")
		}
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return d.b[start:d.i], plain, nil
		case c == '\\':
			plain = false
			if d.i+1 >= len(d.b) {
				return nil, false, d.fail("unterminated string")
			}
			switch d.b[d.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.i += 2
			case 'u':
				if d.i+6 > len(d.b) {
					return nil, false, d.fail("bad \\u escape")
				}
				for _, h := range d.b[d.i+2 : d.i+6] {
					if !isHex(h) {
						return nil, false, d.fail("bad \\u escape")
					}
				}
				d.i += 6
			default:
				return nil, false, d.fail("bad escape")
			}
		case c < 0x20:
			return nil, false, d.fail("control character in string")
		default:
			if c >= utf8.RuneSelf {
				plain = false
			}
			d.i++
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// str consumes a string value and returns it unescaped.
func (d *decoder) str() (string, error) {
	if d.peek() != '"' {
		return "", d.fail("expected a string")
	}
	raw, plain, err := d.rawString()
	if err != nil {
		return "", err
	}
	if plain {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", d.fail("bad string")
	}
	return s, nil
}

// number consumes a JSON number and returns its bytes.
func (d *decoder) number() ([]byte, error) {
	d.ws()
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i < len(d.b) && d.b[d.i] == '0':
		d.i++
	case d.i < len(d.b) && d.b[d.i] >= '1' && d.b[d.i] <= '9':
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
		}
	default:
		return nil, d.fail("bad number")
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		n := d.i
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
		}
		if d.i == n {
			return nil, d.fail("bad number")
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		n := d.i
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
		}
		if d.i == n {
			return nil, d.fail("bad number")
		}
	}
	return d.b[start:d.i], nil
}

// int consumes an integer that fits int64 (as encoding/json decodes into
// an int64 field).
func (d *decoder) int() (int64, error) {
	c := d.peek()
	if c != '-' && (c < '0' || c > '9') {
		return 0, d.fail("expected a number")
	}
	raw, err := d.number()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, d.fail("expected an integer")
	}
	return n, nil
}

// skip consumes any value, validating it, and returns its bytes.
func (d *decoder) skip() ([]byte, error) {
	c := d.peek()
	start := d.i
	var err error
	switch {
	case c == '{':
		err = d.object(func([]byte) error { _, err := d.skip(); return err })
	case c == '[':
		err = d.array(func() error { _, err := d.skip(); return err })
	case c == '"':
		_, _, err = d.rawString()
	case c == '-' || (c >= '0' && c <= '9'):
		_, err = d.number()
	case c == 't' && bytes.HasPrefix(d.b[d.i:], []byte("true")):
		d.i += 4
	case c == 'f' && bytes.HasPrefix(d.b[d.i:], []byte("false")):
		d.i += 5
	case c == 'n' && bytes.HasPrefix(d.b[d.i:], []byte("null")):
		d.i += 4
	default:
		err = d.fail("expected a value")
	}
	if err != nil {
		return nil, err
	}
	return d.b[start:d.i], nil
}

// stringMembers decodes an object (or null), storing the string (or
// null) members named in into, matched like encoding/json's struct fields,
// and skipping the others.
func (d *decoder) stringMembers(into map[string]*string) error {
	if d.null() {
		return nil
	}
	return d.object(func(k []byte) error {
		for name, dst := range into {
			if is(k, name) {
				if d.null() {
					return nil
				}
				s, err := d.str()
				*dst = s
				return err
			}
		}
		_, err := d.skip()
		return err
	})
}

// stringMember decodes an object (or null) of which only the string
// member name is kept, in *dst; other members are skipped. A nil dst checks
// the member is a string (or null) without keeping it.
func (d *decoder) stringMember(name string, dst *string) error {
	if d.null() {
		return nil
	}
	return d.object(func(k []byte) error {
		if !is(k, name) {
			_, err := d.skip()
			return err
		}
		if d.null() {
			return nil
		}
		if dst == nil {
			if d.peek() != '"' {
				return d.fail("expected a string")
			}
			_, _, err := d.rawString()
			return err
		}
		s, err := d.str()
		*dst = s
		return err
	})
}

// count decodes meta.count: null or an integer.
func (d *decoder) count() (*int, error) {
	c, ok, err := d.countValue()
	if !ok || err != nil {
		return nil, err
	}
	return &c, nil
}

// countValue decodes meta.count without allocating: ok false for null.
func (d *decoder) countValue() (int, bool, error) {
	if d.null() {
		return 0, false, nil
	}
	n, err := d.int()
	if err != nil || n != int64(int(n)) {
		return 0, false, d.fail("meta.count must be an integer")
	}
	return int(n), true, nil
}

func (d *decoder) intern(key []byte) string {
	if s, ok := d.names[string(key)]; ok {
		return s
	}
	s := string(key)
	d.names[s] = s
	return s
}

// is matches a member name the way encoding/json matches struct fields:
// case-insensitively.
func is(key []byte, name string) bool {
	if len(key) != len(name) {
		return bytes.EqualFold(key, []byte(name)) // Unicode folding can change lengths
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= utf8.RuneSelf {
			return bytes.EqualFold(key, []byte(name))
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		n := name[i]
		if 'A' <= n && n <= 'Z' {
			n += 'a' - 'A'
		}
		if c != n {
			return false
		}
	}
	return true
}

// resource decodes one resource object (or null) into r.
func (d *decoder) resource() (*Resource, error) {
	if d.null() {
		return nil, nil
	}
	r := &Resource{}
	err := d.object(func(key []byte) error {
		var err error
		switch {
		case is(key, "type"), is(key, "id"):
			err = d.typeOrID(key, &r.Type, &r.ID)
		case is(key, "attributes"):
			if d.null() {
				r.Attributes = nil
				return nil
			}
			if r.Attributes == nil {
				r.Attributes = make(map[string]json.RawMessage, max(d.attrHint, 8))
			}
			err = d.object(func(name []byte) error {
				v, err := d.skip()
				r.Attributes[d.intern(name)] = v
				return err
			})
			d.attrHint = len(r.Attributes)
		case is(key, "relationships"):
			if d.null() {
				r.Relationships = nil
				return nil
			}
			if r.Relationships == nil {
				r.Relationships = make(map[string]Relationship, max(d.relHint, 4))
			}
			err = d.object(func(name []byte) error {
				rel, err := d.relationship()
				r.Relationships[d.intern(name)] = rel
				return err
			})
			d.relHint = len(r.Relationships)
		case is(key, "links"):
			err = d.stringMember("self", &r.Links.Self)
		case is(key, "meta"):
			var v []byte
			v, err = d.skip()
			r.Meta = v
		default:
			_, err = d.skip()
		}
		return err
	})
	return r, err
}

// relationship decodes a relationship object in any of its shapes.
func (d *decoder) relationship() (Relationship, error) {
	var rel Relationship
	if d.null() {
		return rel, nil
	}
	err := d.object(func(key []byte) error {
		switch {
		case is(key, "data"):
			rel.HasData = true
			return d.relationshipData(&rel)
		case is(key, "links"):
			if d.lean {
				return d.stringMember("related", nil)
			}
			return d.stringMember("related", &rel.Related)
		case is(key, "meta"):
			if d.null() {
				return nil
			}
			return d.object(func(k []byte) error {
				if is(k, "count") {
					if d.lean {
						_, _, err := d.countValue()
						return err
					}
					c, err := d.count()
					rel.Count = c
					return err
				}
				_, err := d.skip()
				return err
			})
		}
		_, err := d.skip()
		return err
	})
	return rel, err
}

// relationshipData decodes a relationship's data (null, a resource
// identifier or a list of them) into rel.ToMany and rel.Data, replacing
// what an earlier data member set: of a member sent twice, the last
// counts, as in encoding/json.
func (d *decoder) relationshipData(rel *Relationship) error {
	rel.ToMany, rel.Data = false, nil
	var err error
	switch {
	case d.null():
	case d.peek() == '[':
		rel.ToMany = true
		ids := []ResourceID{}
		if d.lean {
			ids = d.scratch[:0]
		}
		err = d.array(func() error {
			id, err := d.resourceID()
			ids = append(ids, id)
			return err
		})
		rel.Data = ids
		if d.lean {
			d.scratch, rel.Data = ids, d.keepIDs(ids...)
		}
	default:
		var id ResourceID
		id, err = d.resourceID()
		if d.lean {
			rel.Data = d.keepIDs(id)
		} else {
			rel.Data = []ResourceID{id}
		}
	}
	if err != nil {
		return fmt.Errorf("relationship data: %w", err)
	}
	return nil
}

// typeOrID decodes the "type" (a string) or "id" (an integer) member
// named key; null leaves the value as it is.
func (d *decoder) typeOrID(key []byte, typ *string, id *int64) error {
	if d.null() {
		return nil
	}
	var err error
	if is(key, "type") {
		*typ, err = d.typeName()
	} else {
		*id, err = d.int()
	}
	return err
}

// typeName decodes a resource type: a string, interned when the decoder
// interns names (a page names few types, once per relationship).
func (d *decoder) typeName() (string, error) {
	if d.names == nil || d.peek() != '"' {
		return d.str()
	}
	start := d.i
	raw, plain, err := d.rawString()
	if err != nil {
		return "", err
	}
	if !plain {
		d.i = start
		return d.str()
	}
	return d.intern(raw[1 : len(raw)-1]), nil
}

func (d *decoder) resourceID() (ResourceID, error) {
	var id ResourceID
	if d.null() {
		return id, nil
	}
	err := d.object(func(key []byte) error {
		var err error
		switch {
		case is(key, "type"), is(key, "id"):
			err = d.typeOrID(key, &id.Type, &id.ID)
		default:
			_, err = d.skip()
		}
		return err
	})
	return id, err
}

// DecodePage decodes a collection document: data (a list of resources),
// included, links.next and meta.count. Attribute values are sub-slices of
// b, which must not be modified afterwards.
func DecodePage(b []byte) (*Page, error) {
	d := &decoder{b: b, names: make(map[string]string, 256)}
	p := &Page{}
	err := d.page(p, func(data bool) error {
		into := &p.Resources
		if !data {
			into = &p.Included
		}
		if d.null() {
			*into = nil
			return nil
		}
		return d.array(func() error {
			r, err := d.resource()
			*into = append(*into, r)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// page decodes a collection document: its data (data true) and included
// lists through list, which must consume the member's value (null or a
// list), and links.next and meta.count into p.
func (d *decoder) page(p *Page, list func(data bool) error) error {
	gotData := false
	err := d.object(func(key []byte) error {
		switch {
		case is(key, "data"):
			gotData = true
			if d.peek() != '[' && d.peek() != 'n' {
				return d.fail("data is not a list of resources")
			}
			return list(true)
		case is(key, "included"):
			return list(false)
		case is(key, "links"):
			var first, prev string // validated as encoding/json would, not kept
			return d.stringMembers(map[string]*string{"next": &p.Next, "first": &first, "prev": &prev})
		case is(key, "meta"):
			if d.null() {
				return nil
			}
			return d.object(func(k []byte) error {
				switch {
				case is(k, "count"):
					c, err := d.count()
					p.Count = c
					return err
				case is(k, "count_truncated"):
					v, err := d.skip()
					if err == nil && string(v) != "true" && string(v) != "false" && string(v) != "null" {
						return d.fail("meta.count_truncated must be a boolean")
					}
					return err
				}
				_, err := d.skip()
				return err
			})
		}
		_, err := d.skip()
		return err
	})
	if err != nil {
		return err
	}
	if d.peek() != 0 {
		return d.fail("data after the document")
	}
	if !gotData {
		return errors.New("outreach: the document has no data")
	}
	return nil
}
