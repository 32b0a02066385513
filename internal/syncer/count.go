package syncer

import (
	"context"
	"iter"
	"net/url"

	"github.com/outreach-connector/outreach-connector/outreach"
)

// pages reads a stream's pages. With count, the first page asks for
// meta.count (so progress can show a total) and the pages after it do
// not: counting costs Outreach a query per page, and links.next would
// otherwise carry count=true to every page.
func (e *Engine) pages(ctx context.Context, path string, list *outreach.ListOptions, count bool) iter.Seq2[*outreach.Page, error] {
	if !count {
		return e.client.Pages(ctx, path, list)
	}
	return func(yield func(*outreach.Page, error) bool) {
		first := *list
		first.Count = true
		next := ""
		for page, err := range e.client.Pages(ctx, path, &first) {
			if err != nil {
				yield(nil, err)
				return
			}
			next = page.Next
			if !yield(page, nil) {
				return
			}
			break
		}
		if next == "" {
			return
		}
		u, err := url.Parse(next)
		if err != nil {
			yield(nil, err)
			return
		}
		q := u.Query()
		q.Del("count")
		u.RawQuery = q.Encode()
		for page, err := range e.client.Pages(ctx, u.String(), &outreach.ListOptions{PageSize: list.PageSize}) {
			if !yield(page, err) || err != nil {
				return
			}
		}
	}
}
