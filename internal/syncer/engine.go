package syncer

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/outreach"
)

// Options shape a run.
type Options struct {
	// StartDate is the earliest cursor value read on a first run.
	StartDate time.Time
	// PageSize overrides every stream's page size when set.
	PageSize int
	// FullRefresh ignores saved state and reads everything from StartDate.
	FullRefresh bool
	// Lookback re-reads this much before the saved cursor, for writes that
	// land late in Outreach's index (default 10 minutes). Upserts make the
	// overlap harmless.
	Lookback time.Duration
	// Concurrency is how many streams run at once (default 4).
	Concurrency int
	// Reconcile lists every id of each stream after syncing it and marks
	// rows whose ids vanished upstream as deleted (Outreach has no feed of
	// deletes). It costs one request per thousand records.
	Reconcile bool
	// Progress is called after every page, from the stream's goroutine,
	// and once more when the stream ends.
	Progress func(Progress)
	// Total asks for meta.count on the first page of each stream, so that
	// Progress.Total is known.
	Total bool
	// Owner, when set, is claimed on the destination before anything is
	// written (see Claimer): a namespace of another org fails every stream
	// with an *OwnedError and nothing is written.
	Owner connection.Owner
}

// Progress reports one stream's advance.
type Progress struct {
	Stream  string
	Records int
	Pages   int
	// Total is how many records the stream's window holds, from meta.count
	// on its first page; -1 when Outreach did not say.
	Total int
	// Began is when the stream started (its lock taken, before the first
	// request).
	Began time.Time
	Done  bool
	// Err is, when Done, why the stream stopped early (nil: it finished).
	Err error
}

// Result is one stream's outcome.
type Result struct {
	Stream   string
	Records  int
	Pages    int
	Deleted  int // rows reconciliation marked deleted
	Duration time.Duration
	Err      error
}

// ErrCannotReconcile fails every stream of a run that asks to reconcile
// into a destination that cannot record deletes (not a
// connection.Reconciler, such as Singer's standard output); nothing is
// written.
var ErrCannotReconcile = errors.New("this destination cannot record deletes: sync without reconciliation, or into a database or JSON Lines")

// Engine syncs streams from Outreach into a destination.
type Engine struct {
	client *outreach.Client
	dst    connection.Destination
	log    *slog.Logger
	now    func() time.Time
	host   string // this host and process, named in stream leases
	pid    int
}

// NewEngine returns an engine. now tells the time (nil: time.Now); log may
// be nil.
func NewEngine(client *outreach.Client, dst connection.Destination, log *slog.Logger, now func() time.Time) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	host, _ := os.Hostname()
	return &Engine{client: client, dst: dst, log: log, now: now, host: host, pid: os.Getpid()}
}

// Run syncs the streams, several at once, and returns a result per
// stream in the order given. Streams share the client's rate limiter.
func (e *Engine) Run(ctx context.Context, streams []*connection.Stream, opts Options) []Result {
	if opts.Lookback == 0 {
		opts.Lookback = 10 * time.Minute
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	runID := newRunID()
	results := make([]Result, len(streams))
	err := connection.Claim(ctx, e.dst, opts.Owner)
	if _, ok := e.dst.(connection.Reconciler); opts.Reconcile && !ok && err == nil {
		err = ErrCannotReconcile
	}
	if err != nil {
		for i, s := range streams {
			results[i] = Result{Stream: s.Name, Err: err}
			if opts.Progress != nil {
				opts.Progress(Progress{Stream: s.Name, Total: -1, Done: true, Err: err})
			}
		}
		return results
	}
	sem := make(chan struct{}, opts.Concurrency)
	var wg sync.WaitGroup
	for i, s := range streams {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i] = Result{Stream: s.Name, Err: ctx.Err()}
				return
			}
			defer func() { <-sem }()
			start := time.Now()
			r := e.syncStream(ctx, s, opts, runID)
			r.Duration = time.Since(start)
			results[i] = r
			if opts.Progress != nil {
				opts.Progress(Progress{Stream: s.Name, Records: r.Records, Pages: r.Pages, Total: -1, Done: true, Err: r.Err})
			}
		})
	}
	wg.Wait()
	return results
}

// syncStream reads one stream into the destination. Incremental streams
// read the window [cursor - lookback, run start] sorted by the cursor
// field; after every page the records and the cursor reached are committed
// together. Records beyond the window (the API sometimes ignores the upper
// bound) wait for the next run.
func (e *Engine) syncStream(ctx context.Context, s *connection.Stream, opts Options, runID string) (res Result) {
	res = Result{Stream: s.Name}
	log := e.log.With("stream", s.Name)
	ctx, release, err := e.hold(ctx, s.Name, runID)
	if err != nil {
		res.Err = fmt.Errorf("%s: %w", s.Name, err)
		return res
	}
	defer func() {
		var lost *lostLockError
		if res.Err != nil && errors.As(context.Cause(ctx), &lost) {
			res.Err = fmt.Errorf("%s: %w", s.Name, lost)
		}
		release()
	}()
	if err := e.dst.Prepare(ctx, s); err != nil {
		res.Err = fmt.Errorf("%s: prepare the destination: %w", s.Name, err)
		return res
	}
	st, err := e.dst.State(ctx, s.Name)
	if err != nil {
		res.Err = fmt.Errorf("%s: read state: %w", s.Name, err)
		return res
	}
	began := time.Now() // for the progress rate
	hi := e.now().UTC()
	list := &outreach.ListOptions{PageSize: s.PageSize, Count: opts.Total && opts.Progress != nil}
	if opts.PageSize > 0 {
		list.PageSize = min(opts.PageSize, s.PageSize)
	}
	settled := 0 // the page size the stream's reads settled at, kept in its state
	if st.PageSize > 0 && st.PageSize < list.PageSize {
		// An earlier run settled below the wanted size (larger pages
		// failed): start there, and try growing back only after a long run
		// of good pages, rather than learn the size again from failures.
		list.MaxPageSize, list.PageSize, list.GrowAfter = list.PageSize, st.PageSize, rememberedGrowAfter
		settled = st.PageSize
	}
	var lo time.Time
	if s.Replication == connection.Incremental {
		lo = opts.StartDate
		if c, err := time.Parse(time.RFC3339Nano, st.Cursor); err == nil && !opts.FullRefresh {
			lo = later(lo, c.Add(-opts.Lookback))
		}
		list.Filters = []outreach.Filter{outreach.Gte(s.CursorField, lo.UTC()), outreach.Lte(s.CursorField, hi)}
		list.Sort = []string{s.CursorField}
	}
	conv := newConverter(s)
	cursor := st.Cursor
	hiText := hi.Format(outreach.TimeFormat)
	total := -1
	for page, err := range e.ahead(ctx, s, list, conv) {
		if err != nil {
			res.Err = fmt.Errorf("%s: %w", s.Name, err)
			return res
		}
		if page.Count != nil {
			total = *page.Count
		}
		settled = 0 // the wanted size: nothing to remember
		if page.PageSize < max(list.PageSize, list.MaxPageSize) {
			settled = page.PageSize
		}
		all := page.recs
		recs := all[:0]
		for _, rec := range all {
			if s.Replication == connection.Incremental && rec.Cursor != "" && laterText(rec.Cursor, hiText) {
				continue // beyond the window: the next run reads it
			}
			if rec.Cursor != "" && laterText(rec.Cursor, cursor) {
				cursor = rec.Cursor
			}
			recs = append(recs, rec)
		}
		if err := e.dst.Write(ctx, s, recs, connection.State{Cursor: cursor, PageSize: settled}); err != nil {
			res.Err = fmt.Errorf("%s: write: %w", s.Name, err)
			return res
		}
		res.Records += len(recs)
		res.Pages++
		if opts.Progress != nil {
			opts.Progress(Progress{Stream: s.Name, Records: res.Records, Pages: res.Pages, Total: total, Began: began})
		}
	}
	if s.Replication == connection.Incremental {
		// Everything up to the window's end is in: start there next time.
		if err := e.dst.Write(ctx, s, nil, connection.State{Cursor: hiText, PageSize: settled}); err != nil {
			res.Err = fmt.Errorf("%s: commit state: %w", s.Name, err)
			return res
		}
	}
	if opts.Reconcile {
		n, err := e.reconcile(ctx, s, hiText)
		if err != nil {
			res.Err = fmt.Errorf("%s: reconcile: %w", s.Name, err)
			return res
		}
		res.Deleted = n
	}
	log.Info("stream synced", "records", res.Records, "pages", res.Pages, "deleted", res.Deleted)
	return res
}

// rememberedGrowAfter is how many good pages in a row a stream that
// starts from a remembered page size reads before trying a larger one.
const rememberedGrowAfter = 64

// convertedPage is a page of a stream and its records.
type convertedPage struct {
	*outreach.RowPage
	recs []connection.Record
}

// ahead iterates over the stream's pages decoded against the converter's
// layout and converted to records, fetching, decoding and converting the
// next page while the caller writes this one: one page ahead, no more, so
// memory stays that of two pages. The fetching goroutine is ahead's own:
// it stops when the caller stops iterating (or ctx ends), and ahead waits
// for it before returning. Errors come in order, after the pages before
// them.
func (e *Engine) ahead(ctx context.Context, s *connection.Stream, list *outreach.ListOptions, conv *converter) iter.Seq2[convertedPage, error] {
	return func(yield func(convertedPage, error) bool) {
		type fetched struct {
			page convertedPage
			err  error
			end  bool // every page was read
		}
		ctx, stop := context.WithCancel(ctx)
		next := make(chan fetched) // unbuffered: the fetcher holds at most one page
		var wg sync.WaitGroup
		defer func() {
			stop()
			wg.Wait()
		}()
		wg.Go(func() {
			defer close(next)
			for page, err := range e.client.RowPages(ctx, s.Path, list, conv.layout) {
				f := fetched{err: err}
				if err != nil {
					f.err = fmt.Errorf("read: %w", err)
				} else {
					f.page.RowPage = page
					f.page.recs, f.err = conv.convertPage(page.Rows)
				}
				select {
				case next <- f:
				case <-ctx.Done():
					return
				}
				if f.err != nil {
					return
				}
			}
			select {
			case next <- fetched{end: true}:
			case <-ctx.Done():
			}
		})
		for f := range next {
			if f.end {
				return
			}
			if !yield(f.page, f.err) || f.err != nil {
				return
			}
		}
		// The fetcher stopped without saying it read everything: ctx ended.
		err := context.Cause(ctx)
		if err == nil {
			err = errors.New("reading pages stopped early")
		}
		yield(convertedPage{}, fmt.Errorf("read: %w", err))
	}
}

// reconcile lists the ids Outreach has now (no attributes: a sparse
// fieldset naming none) and marks the others deleted.
func (e *Engine) reconcile(ctx context.Context, s *connection.Stream, at string) (int, error) {
	var live []int64
	for r, err := range e.client.List(ctx, s.Path, &outreach.ListOptions{Fields: map[string][]string{s.Type: {}}}) {
		if err != nil {
			return 0, err
		}
		live = append(live, r.ID)
	}
	return e.dst.(connection.Reconciler).MarkDeleted(ctx, s, live, at)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// laterText compares two ISO timestamps by time, not text.
func laterText(a, b string) bool {
	if b == "" {
		return true
	}
	ta, err1 := time.Parse(time.RFC3339Nano, a)
	tb, err2 := time.Parse(time.RFC3339Nano, b)
	if err1 != nil || err2 != nil {
		return a > b
	}
	return ta.After(tb)
}

// Failed joins the errors of failed streams, each error once (a refused
// claim fails every stream with the same error).
func Failed(results []Result) error {
	var errs []error
	var claim *connection.OwnedError
	for _, r := range results {
		var owned *connection.OwnedError
		if r.Err == nil || (errors.As(r.Err, &owned) && owned == claim) {
			continue
		}
		if owned != nil {
			claim = owned
		}
		errs = append(errs, r.Err)
	}
	return errors.Join(errs...)
}
