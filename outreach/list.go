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
	// Count asks for meta.count.
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
	Count     *int   // meta.count, when asked for
	Next      string // links.next, "" on the last page
	PageSize  int    // the page size this page was fetched with
}

// Pages iterates over the pages of the collection at path ("prospects"),
// following links.next verbatim until there is none. When a page fails
// with 500 or 502 (Outreach's answer to pages too heavy to build), it
// halves page[size] and asks again from the same cursor, down to one
// record; past that, errors are retried as usual. The iteration stops
// after yielding an error.
func (c *Client) Pages(ctx context.Context, path string, opts *ListOptions) iter.Seq2[*Page, error] {
	return func(yield func(*Page, error) bool) {
		if opts == nil {
			opts = &ListOptions{}
		}
		q, err := opts.query()
		if err != nil {
			yield(nil, err)
			return
		}
		u, err := c.resolve(path)
		if err != nil {
			yield(nil, err)
			return
		}
		if u.RawQuery != "" {
			extra, _ := url.ParseQuery(u.RawQuery)
			for k, v := range extra {
				q[k] = v
			}
		}
		u.RawQuery = q.Encode()
		for u != nil {
			page, next, err := c.fetchPage(ctx, u)
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(page, nil) {
				return
			}
			u = next
		}
	}
}

// fetchPage gets one page, halving its size on 500 and 502.
func (c *Client) fetchPage(ctx context.Context, u *url.URL) (*Page, *url.URL, error) {
	for {
		size, _ := strconv.Atoi(u.Query().Get("page[size]"))
		r := &request{method: "GET", url: u}
		if size > 1 {
			r.noRetryStatus = []int{500, 502}
		}
		resp, err := c.send(ctx, r)
		var apiErr *APIError
		if errors.As(err, &apiErr) && size > 1 && (apiErr.StatusCode == 500 || apiErr.StatusCode == 502) {
			q := u.Query()
			q.Set("page[size]", strconv.Itoa(size/2))
			half := *u
			half.RawQuery = q.Encode()
			u = &half
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		page, err := DecodePage(resp.body)
		if err != nil {
			return nil, nil, err
		}
		page.PageSize = size
		if page.Next == "" {
			return page, nil, nil
		}
		next, err := c.resolve(page.Next)
		if err != nil {
			return nil, nil, fmt.Errorf("outreach: links.next: %w", err)
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
