package outreach

import (
	"context"
	"encoding/json"
	"iter"
)

// A Layout decodes pages of one collection straight into slots: the
// attributes and relationships a caller keeps each have a slot, resolved
// once per name, so a record costs no map of its own. Anything else is
// decoded exactly as DecodePage decodes it (the same validation, the same
// errors); attributes without a slot are kept in order (Row.Extra).
type Layout struct {
	attrs    map[string]int
	rels     map[string]int
	attrName []string
	relName  []string
}

// NewLayout returns the layout of attributes (slot i of Row.Attrs is
// attrs[i]) and relationships (slot i of Row.Rels is rels[i]).
func NewLayout(attrs, rels []string) *Layout {
	l := &Layout{attrs: make(map[string]int, len(attrs)), rels: make(map[string]int, len(rels)), attrName: attrs, relName: rels}
	for i, a := range attrs {
		l.attrs[a] = i
	}
	for i, r := range rels {
		l.rels[r] = i
	}
	return l
}

// Member is an attribute without a slot: its name and raw JSON value.
type Member struct {
	Name  string
	Value json.RawMessage
}

// Row is one resource of a page decoded against a Layout.
type Row struct {
	// Null says the resource was the JSON literal null (no fields set).
	Null bool
	Type string
	ID   int64
	// Attrs holds each slotted attribute's raw JSON value (a sub-slice
	// of the page's bytes, "null" included); nil when absent.
	Attrs []json.RawMessage
	// Rels holds each slotted relationship's data (HasData, ToMany, Data);
	// the zero Relationship when absent. Its links.related and meta.count
	// are checked as DecodePage checks them, not kept (Related and Count
	// are empty), and the Data of a page's relationships share memory.
	Rels []Relationship
	// Extra holds the other attributes in the order sent; of a name sent
	// twice, the last counts (as in Resource.Attributes).
	Extra []Member
}

// RowPage is one page of a collection decoded against a Layout.
type RowPage struct {
	Rows     []Row
	Count    *int   // meta.count, on the first page when ListOptions.Count asks
	Next     string // links.next, "" on the last page
	PageSize int    // the page size this page was fetched with (see Page)
}

// rowArena hands out slot slices of many rows from one allocation.
type rowArena struct {
	attrs []json.RawMessage
	rels  []Relationship
}

func (a *rowArena) take(nAttrs, nRels int) ([]json.RawMessage, []Relationship) {
	const chunk = 64
	if len(a.attrs) < nAttrs {
		a.attrs = make([]json.RawMessage, chunk*nAttrs)
	}
	if len(a.rels) < nRels {
		a.rels = make([]Relationship, chunk*nRels)
	}
	at, rt := a.attrs[:nAttrs:nAttrs], a.rels[:nRels:nRels]
	a.attrs, a.rels = a.attrs[nAttrs:], a.rels[nRels:]
	return at, rt
}

// DecodePage decodes a collection document as the package's DecodePage
// does, into rows of the layout. Attribute values are sub-slices of b,
// which must not be modified afterwards.
func (l *Layout) DecodePage(b []byte) (*RowPage, error) {
	d := &decoder{b: b, names: make(map[string]string, 64), lean: true}
	p := &RowPage{}
	var arena rowArena
	var order, seq []int // the slots of the previous row's and this row's attributes, in order
	var links Page       // links.next and meta.count, decoded as DecodePage does
	decodeRow := func() error {
		if d.null() {
			p.Rows = append(p.Rows, Row{Null: true})
			return nil
		}
		row := Row{}
		row.Attrs, row.Rels = arena.take(len(l.attrName), len(l.relName))
		seq = seq[:0]
		err := d.object(func(key []byte) error {
			var err error
			switch {
			case is(key, "type"), is(key, "id"):
				err = d.typeOrID(key, &row.Type, &row.ID)
			case is(key, "attributes"):
				if d.null() {
					clear(row.Attrs)
					row.Extra = nil
					return nil
				}
				pos := 0
				err = d.object(func(name []byte) error {
					v, err := d.skip()
					slot := -1
					// Records of a page send their attributes in one order:
					// try the slot the previous row had at this position.
					if pos < len(order) && order[pos] < len(l.attrName) && string(name) == l.attrName[order[pos]] {
						slot = order[pos]
					} else if i, ok := l.attrs[string(name)]; ok {
						slot = i
					}
					pos++
					if slot >= 0 {
						row.Attrs[slot] = v
						seq = append(seq, slot)
					} else {
						row.Extra = append(row.Extra, Member{Name: d.intern(name), Value: v})
						seq = append(seq, len(l.attrName)) // no slot
					}
					return err
				})
			case is(key, "relationships"):
				if d.null() {
					clear(row.Rels)
					return nil
				}
				err = d.object(func(name []byte) error {
					rel, err := d.relationship()
					if i, ok := l.rels[string(name)]; ok {
						row.Rels[i] = rel
					}
					return err
				})
			case is(key, "links"):
				err = d.stringMember("self", nil) // checked, not kept
			default:
				_, err = d.skip()
			}
			return err
		})
		if len(seq) > 0 {
			order, seq = seq, order
		}
		p.Rows = append(p.Rows, row)
		return err
	}
	err := d.page(&links, func(data bool) error {
		if d.null() {
			if data {
				p.Rows = nil
			}
			return nil
		}
		if data {
			return d.array(decodeRow)
		}
		return d.array(func() error { _, err := d.resource(); return err }) // included: validated, not kept
	})
	if err != nil {
		return nil, err
	}
	p.Count, p.Next = links.Count, links.Next
	return p, nil
}

// RowPages iterates over the pages of the collection at path decoded
// against l, exactly as Pages does (page sizes, retries, repeated links).
// A page's raw values point into the answer's bytes, which are reused for
// the page after next: they stay valid until the loop body of the following
// page returns; a caller keeping them longer copies them.
func (c *Client) RowPages(ctx context.Context, path string, opts *ListOptions, l *Layout) iter.Seq2[*RowPage, error] {
	return pages(c, ctx, path, opts, true, func(b []byte, size int) (*RowPage, string, error) {
		p, err := l.DecodePage(b)
		if err != nil {
			return nil, "", err
		}
		p.PageSize = size
		return p, p.Next, nil
	})
}
