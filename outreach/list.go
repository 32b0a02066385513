package outreach

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MaxPageSize is the largest page Outreach serves.
const MaxPageSize = 1000

// Filter is one condition of a collection request. Build filters with Eq,
// In, Range, Gte, Lte, IsNull, NotNull and RelIn.
type Filter struct {
	key    string // "firstName" or "account][id"
	values []string
	lo, hi string // bounds; "" means open
	rng    bool
	null   int // 1 null, 2 not null
	bound  bool
}

// Eq matches records whose attribute equals v (for arrays: contains v).
func Eq(attr string, v any) Filter { return Filter{key: attr, values: []string{formatValue(v)}} }

// In matches records whose attribute is any of vs.
func In(attr string, vs ...any) Filter {
	f := Filter{key: attr}
	for _, v := range vs {
		f.values = append(f.values, formatValue(v))
	}
	return f
}

// RelIn matches records whose relationship rel points at any of ids.
func RelIn(rel string, ids ...int64) Filter {
	f := Filter{key: rel + "][id"}
	for _, id := range ids {
		f.values = append(f.values, strconv.FormatInt(id, 10))
	}
	return f
}

// Range matches lo <= attr <= hi, both inclusive; a nil bound is open.
func Range(attr string, lo, hi any) Filter {
	f := Filter{key: attr, rng: true}
	if lo != nil {
		f.lo = formatValue(lo)
	}
	if hi != nil {
		f.hi = formatValue(hi)
	}
	return f
}

// Gte matches attr >= v (inclusive), with Outreach's newFilterSyntax.
func Gte(attr string, v any) Filter {
	return Filter{key: attr, rng: true, lo: formatValue(v), bound: true}
}

// Lte matches attr <= v (inclusive), with Outreach's newFilterSyntax.
func Lte(attr string, v any) Filter {
	return Filter{key: attr, rng: true, hi: formatValue(v), bound: true}
}

// IsNull matches records whose attribute is null.
func IsNull(attr string) Filter { return Filter{key: attr, null: 1} }

// NotNull matches records whose attribute is not null.
func NotNull(attr string) Filter { return Filter{key: attr, null: 2} }

// TimeFormat is how times are sent to Outreach.
const TimeFormat = "2006-01-02T15:04:05.000Z"

func formatValue(v any) string {
	switch v := v.(type) {
	case time.Time:
		return v.UTC().Format(TimeFormat)
	case string:
		return v
	case fmt.Stringer:
		return v.String()
	}
	return fmt.Sprint(v)
}

// ListOptions shape a collection request.
type ListOptions struct {
	Filters []Filter
	// Sort keys, "-" for descending: []string{"updatedAt"}.
	Sort []string
	// Fields are sparse fieldsets by type: {"prospect": {"firstName"}}.
	Fields map[string][]string
	// Include side-loads relationships into Page.Included.
	Include []string
	// PageSize defaults to MaxPageSize. The client always asks for cursor
	// pagination, never the offset mode that stops at 10,000 records.
	PageSize int
	// MaxPageSize is the largest page size the iterator grows back to
	// after shrinking pages that failed; 0 means PageSize. Set PageSize to
	// a size remembered from an earlier run (the last Page.PageSize) and
	// MaxPageSize to the size wanted, to start where that run settled.
	MaxPageSize int
	// GrowAfter is how many pages in a row must succeed below MaxPageSize
	// before the size doubles; 0 means 4. A caller that remembers a size
	// settled below the wanted one (pages above it failed) sets it higher,
	// so growing back is tried rarely.
	GrowAfter int
	// Count asks for meta.count on the first page (Page.Count); later
	// pages do not ask, as counting costs Outreach a query per page.
	Count bool
}

// query encodes the options. Any Gte or Lte switches every filter to
// Outreach's newFilterSyntax, where ranges become [gte] and [lte] and
// lists become [] arrays; otherwise the classic syntax is used.
func (o *ListOptions) query() (url.Values, error) {
	q := url.Values{}
	size := o.PageSize
	if size == 0 {
		size = MaxPageSize
	}
	if size < 1 || size > MaxPageSize {
		return nil, fmt.Errorf("outreach: page size %d must be between 1 and %d", size, MaxPageSize)
	}
	if o.MaxPageSize != 0 && (o.MaxPageSize < size || o.MaxPageSize > MaxPageSize) {
		return nil, fmt.Errorf("outreach: max page size %d must be between the page size %d and %d", o.MaxPageSize, size, MaxPageSize)
	}
	q.Set("page[size]", strconv.Itoa(size))
	q.Set("count", strconv.FormatBool(o.Count))
	newSyntax := false
	for _, f := range o.Filters {
		newSyntax = newSyntax || f.bound
	}
	if newSyntax {
		q.Set("newFilterSyntax", "true")
	}
	for _, f := range o.Filters {
		if f.key == "" {
			return nil, errors.New("outreach: a filter needs an attribute name")
		}
		key := "filter[" + f.key + "]"
		switch {
		case f.null == 1:
			q.Add(key, "__null__")
		case f.null == 2:
			q.Add(key, "__notnull__")
		case f.rng && newSyntax:
			if f.lo != "" {
				q.Add(key+"[gte]", f.lo)
			}
			if f.hi != "" {
				q.Add(key+"[lte]", f.hi)
			}
		case f.rng:
			lo, hi := f.lo, f.hi
			if lo == "" {
				lo = "neginf"
			}
			if hi == "" {
				hi = "inf"
			}
			q.Add(key, lo+".."+hi)
		case newSyntax && len(f.values) > 1:
			for _, v := range f.values {
				q.Add(key+"[]", v)
			}
		default:
			for _, v := range f.values {
				if strings.Contains(v, ",") || strings.Contains(v, "..") {
					return nil, fmt.Errorf("outreach: filter value %q for %s holds ',' or '..'; combine it with a Gte or Lte filter to use newFilterSyntax", v, f.key)
				}
			}
			q.Add(key, strings.Join(f.values, ","))
		}
	}
	if len(o.Sort) > 0 {
		q.Set("sort", strings.Join(o.Sort, ","))
	}
	for typ, fields := range o.Fields {
		q.Set("fields["+typ+"]", strings.Join(fields, ","))
	}
	if len(o.Include) > 0 {
		q.Set("include", strings.Join(o.Include, ","))
	}
	return q, nil
}

// Page is one page of a collection.
type Page struct {
	Resources []*Resource
	Included  []*Resource
	Count     *int   // meta.count, on the first page when ListOptions.Count asks
	Next      string // links.next, "" on the last page
	// PageSize is the page size this page was fetched with. The last page's
	// is where the iterator settled (see Pages); a later run can start there.
	PageSize int
}

// Page sizes: after growAfter pages in a row succeed below the wanted
// size, the iterator doubles the size (up to the wanted one). When a size
// it grew into fails twice before any page succeeds at it, it waits twice
// as many pages before growing again (up to maxGrowAfter), so a collection
// whose pages are always too heavy at that size costs few failures.
const (
	growAfter    = 4
	maxGrowAfter = 256
)

// pager adapts the page size of one iteration to failures.
type pager struct {
	size    int  // the size of the next request
	ceiling int  // the size wanted, never exceeded
	streak  int  // pages in a row that succeeded since the last change
	need    int  // the streak that grows the size
	grown   bool // size was grown into and no page succeeded at it yet
}

func newPager(size, ceiling, need int) *pager {
	if need <= 0 {
		need = growAfter
	}
	return &pager{size: size, ceiling: max(size, ceiling), need: min(need, maxGrowAfter)}
}

// succeeded records a page fetched at the current size.
func (p *pager) succeeded() {
	p.grown = false
	if p.size >= p.ceiling {
		return
	}
	p.streak++
	if p.streak >= p.need {
		p.size, p.streak, p.grown = min(p.size*2, p.ceiling), 0, true
	}
}

// failed records a 500 or 502 at the current size; the second in a row
// at one size halves it.
func (p *pager) failed(failures int) {
	p.streak = 0
	if failures < 2 {
		return
	}
	if p.grown {
		p.need = min(p.need*2, maxGrowAfter)
	}
	p.size, p.grown = p.size/2, false
}

// Pages iterates over the pages of the collection at path ("prospects"),
// following links.next until there is none (setting in it only the page
// size chosen below, and count=false after the first page).
//
// When a page fails with 500 or 502 (Outreach's answer to pages too heavy
// to build, and to passing trouble), it is asked again at the same size
// once; only when that fails too is page[size] halved (down to one record)
// for the same cursor. After a few pages in a row succeed at a smaller
// size, the size doubles again, up to ListOptions.MaxPageSize (default
// PageSize); a size that fails again right after growing into it is tried
// again only after twice as many good pages. At one record, errors are
// retried as usual.
//
// A links.next that leads back to a page already read (a cursor the
// server repeats) ends the iteration with an error naming the path and the
// URL, rather than reading the same pages forever. The iteration stops
// after yielding an error.
func (c *Client) Pages(ctx context.Context, path string, opts *ListOptions) iter.Seq2[*Page, error] {
	return pages(c, ctx, path, opts, false, func(b []byte, size int) (*Page, string, error) {
		page, err := DecodePage(b)
		if err != nil {
			return nil, "", err
		}
		page.PageSize = size
		return page, page.Next, nil
	})
}

// pages iterates over the pages of a collection (see Pages), each decoded
// by decode, which also returns links.next.
//
// With reuse, answers are read into two buffers taken in turn, so the bytes
// of a page (which decode may point into) stay valid until the iteration
// returns from yielding the page after it, and no longer.
func pages[P any](c *Client, ctx context.Context, path string, opts *ListOptions, reuse bool, decode func(b []byte, size int) (P, string, error)) iter.Seq2[P, error] {
	return func(yield func(P, error) bool) {
		var none P
		if opts == nil {
			opts = &ListOptions{}
		}
		q, err := opts.query()
		if err != nil {
			yield(none, err)
			return
		}
		u, err := c.resolve(path)
		if err != nil {
			yield(none, err)
			return
		}
		if u.RawQuery != "" {
			extra, _ := url.ParseQuery(u.RawQuery)
			for k, v := range extra {
				q[k] = v
			}
		}
		u.RawQuery = q.Encode()
		size, _ := strconv.Atoi(q.Get("page[size]"))
		p := newPager(size, opts.MaxPageSize, opts.GrowAfter)
		seen := map[string]bool{pageKey(u): true}
		var bufs [2][]byte
		for turn := 0; u != nil; turn = 1 - turn {
			var buf *[]byte
			if reuse {
				buf = &bufs[turn]
			}
			page, next, err := fetchPage(c, ctx, u, p, buf, decode)
			if err != nil {
				yield(none, err)
				return
			}
			if !yield(page, nil) {
				return
			}
			if next != nil {
				key := pageKey(next)
				if seen[key] {
					yield(none, fmt.Errorf("outreach: %s: links.next leads back to a page already read (%s); stopping instead of reading it again", path, safeURL(next)))
					return
				}
				seen[key] = true
				// Later pages never ask for a count: only the first needs it.
				nq := next.Query()
				if nq.Has("count") {
					nq.Set("count", "false")
					next.RawQuery = nq.Encode()
				}
			}
			u = next
		}
	}
}

// pageKey identifies the page a URL asks for whatever its size: its query
// without page[size] and count, in a canonical order.
func pageKey(u *url.URL) string {
	q := u.Query()
	q.Del("page[size]")
	q.Del("count")
	return u.Path + "?" + q.Encode()
}

// safeURL is u for an error message: no user info, and the value of any
// parameter whose name speaks of a token, key, secret or password
// replaced (Outreach's links hold none, but a server could).
func safeURL(u *url.URL) string {
	c := *u
	c.User = nil
	q := c.Query()
	for k := range q {
		lk := strings.ToLower(k)
		for _, w := range []string{"token", "key", "secret", "password", "auth", "signature"} {
			if strings.Contains(lk, w) {
				q[k] = []string{"REDACTED"}
			}
		}
	}
	c.RawQuery = q.Encode()
	return c.String()
}

// fetchPage gets one page at the pager's size: a 500 or 502 is tried once
// more at the same size, and a second one halves the size.
func fetchPage[P any](c *Client, ctx context.Context, u *url.URL, p *pager, buf *[]byte, decode func([]byte, int) (P, string, error)) (P, *url.URL, error) {
	var none P
	failures := 0 // at the current size
	for {
		q := u.Query()
		q.Set("page[size]", strconv.Itoa(p.size))
		at := *u
		at.RawQuery = q.Encode()
		r := &request{method: "GET", url: &at}
		if buf != nil {
			r.into = *buf
		}
		if p.size > 1 {
			r.noRetryStatus = []int{500, 502}
		}
		resp, err := c.send(ctx, r)
		var apiErr *APIError
		if errors.As(err, &apiErr) && p.size > 1 && (apiErr.StatusCode == 500 || apiErr.StatusCode == 502) {
			failures++
			p.failed(failures)
			if failures >= 2 {
				failures = 0
				continue
			}
			if err := c.sleep(ctx, c.backoff(1)); err != nil {
				return none, nil, err
			}
			continue
		}
		if err != nil {
			return none, nil, err
		}
		if buf != nil {
			*buf = resp.body
		}
		page, nextLink, err := decode(resp.body, p.size)
		if err != nil {
			return none, nil, err
		}
		p.succeeded()
		if nextLink == "" {
			return page, nil, nil
		}
		next, err := c.resolve(nextLink)
		if err != nil {
			return none, nil, fmt.Errorf("outreach: links.next: %w", err)
		}
		return page, next, nil
	}
}

// List iterates over every resource of the collection at path, page after
// page (see Pages).
func (c *Client) List(ctx context.Context, path string, opts *ListOptions) iter.Seq2[*Resource, error] {
	return func(yield func(*Resource, error) bool) {
		for page, err := range c.Pages(ctx, path, opts) {
			if err != nil {
				yield(nil, err)
				return
			}
			for _, r := range page.Resources {
				if !yield(r, nil) {
					return
				}
			}
		}
	}
}

// GetOptions shape a single-resource request.
type GetOptions struct {
	Fields  map[string][]string
	Include []string
}

// Get fetches one resource: Get(ctx, "prospects", 1, nil). A missing
// record is an *APIError matching ErrNotFound.
func (c *Client) Get(ctx context.Context, path string, id int64, opts *GetOptions) (*Resource, []*Resource, error) {
	u, err := c.resolve(path + "/" + strconv.FormatInt(id, 10))
	if err != nil {
		return nil, nil, err
	}
	if opts != nil {
		q := url.Values{}
		for typ, f := range opts.Fields {
			q.Set("fields["+typ+"]", strings.Join(f, ","))
		}
		if len(opts.Include) > 0 {
			q.Set("include", strings.Join(opts.Include, ","))
		}
		u.RawQuery = q.Encode()
	}
	resp, err := c.send(ctx, &request{method: "GET", url: u})
	if err != nil {
		return nil, nil, err
	}
	doc, err := DecodeDocument(resp.body)
	if err != nil {
		return nil, nil, err
	}
	r, err := doc.Resource()
	if err != nil {
		return nil, nil, err
	}
	return r, doc.Included, nil
}
