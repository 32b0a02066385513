package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/outreach-connector/outreach-connector/internal/actions"
	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/outreach"
)

// Options shape a load.
type Options struct {
	Type  string // the resource type ("prospect") or its path ("prospects")
	Mode  Mode
	Match []string // the attributes that identify a record: ["emails"], ["domain"], ["id"]
	// Map renames source columns: column → attribute, rel.attr
	// (owner.email), rel.id, id, or a custom field's label; "" skips the
	// column. Unmapped columns go to the attribute of their own name.
	Map    map[string]string
	DryRun bool // plan, read, write nothing (not even the journal)
	// LoadID names the load in the journal; default LoadID(type, mode,
	// match, source name), so a rerun of the same command resumes.
	LoadID  string
	Catalog *catalog.Catalog // default catalog.Default()
	// ChunkSize is the rows planned together, and the most match keys one
	// lookup request carries. Default 100.
	ChunkSize int
	// MaxAttempts bounds the write requests for one row in one run before
	// the load stops (the row stays pending, and a rerun resolves it).
	// Default 5.
	MaxAttempts int
	// ShowDiffs is how many planned writes the summary keeps. Default 5.
	ShowDiffs int
	Logger    *slog.Logger
	// Progress is called after each chunk with the summary so far.
	Progress func(Summary)
	// Then are actions run on the loaded records (created, updated or
	// unchanged) once every row is done, journaled like the rows.
	Then []Then
	// ActionOptions tune the actions (bulk or one by one, batch polls).
	ActionOptions *actions.Options
	// Requests, when set, counts the client's HTTP requests so far; the
	// actions' summaries say how many each made.
	Requests func() int64
	// Holder names this run in the journal (see Holder); default a new
	// name per Run. A service that runs one load at a time gives the same
	// name to each run of it, so that its next run resumes the load at
	// once after a failed one.
	Holder string
}

// PlannedWrite is a write of the plan, for the summary.
type PlannedWrite struct {
	Line    int      `json:"line"`
	Key     string   `json:"key"`
	Action  Action   `json:"action"`
	ID      int64    `json:"id,omitempty"`
	Changes []Change `json:"changes"`
}

// Summary accounts for every row of the load.
type Summary struct {
	LoadID  string `json:"load_id"`
	Type    string `json:"type"`
	Mode    Mode   `json:"mode"`
	DryRun  bool   `json:"dry_run"`
	Resumed bool   `json:"resumed"`
	Rows    int    `json:"rows"`
	// Created, Updated, Unchanged and Rejected sum to Rows; in a dry run
	// they are what the load would do.
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	Rejected  int `json:"rejected"`
	// FromEarlierRuns counts rows an earlier run of the load finished
	// (included in the counts above, not written again).
	FromEarlierRuns int `json:"from_earlier_runs"`
	// Resolved counts writes whose outcome was unknown and that were
	// resolved by looking the record up.
	Resolved int `json:"resolved"`
	// ReadRequests and WriteRequests are the API calls the load made
	// (the client's own retries of a read not counted).
	ReadRequests  int            `json:"read_requests"`
	WriteRequests int            `json:"write_requests"`
	Diffs         []PlannedWrite `json:"diffs,omitempty"`
	// Actions account for Options.Then, in order.
	Actions    []ActionSummary `json:"actions,omitempty"`
	Rejections []Rejection     `json:"-"`
	Columns    []string        `json:"-"`
}

// Run loads the rows of src into Outreach through client, journaling in
// j (unused in a dry run). It returns the summary, and an error wrapping
// ErrRowsRejected when it finished with rejected rows; any other error
// stopped the load, and running it again resumes it.
func Run(ctx context.Context, src Source, client *outreach.Client, j Journal, opts Options) (*Summary, error) {
	r, err := newRunner(ctx, src, client, j, opts)
	if err != nil {
		return nil, err
	}
	return r.run(ctx)
}

type runner struct {
	src    Source
	client *outreach.Client
	j      Journal
	opts   Options
	cat    *catalog.Catalog
	res    *catalog.Resource
	m      *mapping
	log    *slog.Logger
	sum    Summary
	done   map[string]Entry // the journal's entries, by key
	seen   map[string]int   // keys met in this run, to their line
	// lookups caches relationship lookups: type \x00 attr \x00 value → ids.
	lookups map[string][]int64
	holder  string // this process, in the journal
	// loaded are the records rows ended created, updated or unchanged
	// with, in source order, for the actions.
	loaded     []loaded
	loadedSeen map[int64]bool
}

func newRunner(ctx context.Context, src Source, client *outreach.Client, j Journal, opts Options) (*runner, error) {
	r := &runner{src: src, client: client, j: j, opts: opts, cat: opts.Catalog, log: opts.Logger,
		done: map[string]Entry{}, seen: map[string]int{}, lookups: map[string][]int64{}, holder: opts.Holder}
	if r.holder == "" {
		r.holder = newHolder()
	}
	if r.cat == nil {
		r.cat = catalog.Default()
	}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if r.opts.ChunkSize <= 0 {
		r.opts.ChunkSize = 100
	}
	if r.opts.MaxAttempts <= 0 {
		r.opts.MaxAttempts = 5
	}
	if r.opts.ShowDiffs == 0 {
		r.opts.ShowDiffs = 5
	}
	res, ok := r.cat.ByType(opts.Type)
	if !ok {
		res, ok = r.cat.ByPath(opts.Type)
	}
	if !ok {
		var names []string
		for _, x := range r.cat.Resources() {
			if x.Ops.Create || x.Ops.Update {
				names = append(names, x.Type)
			}
		}
		return nil, configErr("unknown type %q; the types Outreach lets you write are %s", opts.Type, strings.Join(names, ", "))
	}
	r.res = res
	for _, t := range opts.Then {
		if err := t.check(res.Type); err != nil {
			return nil, err
		}
	}
	switch {
	case opts.Mode == "":
		return nil, configErr("--mode: give create, update or upsert")
	case (opts.Mode == Create || opts.Mode == Upsert) && !res.Ops.Create:
		return nil, configErr("Outreach does not create %s through the API; use --mode update", res.Path)
	case (opts.Mode == Update || opts.Mode == Upsert) && !res.Ops.Update:
		return nil, configErr("Outreach does not update %s through the API; use --mode create", res.Path)
	case !res.Ops.List:
		return nil, configErr("Outreach cannot list %s, so a load cannot find the records it already wrote", res.Path)
	}
	var fields []outreach.CustomField
	if hasCustomFields(res) {
		f, err := client.CustomFields(ctx)
		r.sum.ReadRequests++
		if err != nil {
			r.log.Info("custom field labels and pick lists unknown", "reason", err)
		}
		fields = f
	}
	m, err := buildMapping(r.cat, res, src.Columns(), opts.Map, opts.Match, fields)
	if err != nil {
		return nil, err
	}
	r.m = m
	if r.opts.LoadID == "" {
		var match []string
		for _, t := range m.match {
			match = append(match, t.name)
		}
		r.opts.LoadID = LoadID(res.Type, opts.Mode, match, src.Name())
	}
	r.sum = Summary{LoadID: r.opts.LoadID, Type: res.Type, Mode: opts.Mode, DryRun: opts.DryRun, Columns: src.Columns(),
		ReadRequests: r.sum.ReadRequests}
	return r, nil
}

func hasCustomFields(res *catalog.Resource) bool {
	_, ok := res.Attribute("custom1")
	return ok && !res.Custom
}

func (r *runner) run(ctx context.Context) (*Summary, error) {
	if !r.opts.DryRun {
		var match []string
		for _, t := range r.m.match {
			match = append(match, t.name)
		}
		resumed, rows, err := r.j.Begin(ctx, LoadInfo{ID: r.opts.LoadID, Type: r.res.Type, Mode: r.opts.Mode, Match: match, Source: r.src.Name(),
			Holder: r.holder, HolderGone: holderGone})
		if err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
		r.sum.Resumed = resumed
		for _, e := range rows {
			r.done[e.Key] = e
		}
	}
	for {
		var chunk []Row
		for len(chunk) < r.opts.ChunkSize {
			row, err := r.src.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return &r.sum, err
			}
			chunk = append(chunk, row)
		}
		if len(chunk) == 0 {
			break
		}
		if err := r.chunk(ctx, chunk); err != nil {
			return &r.sum, err
		}
		if r.opts.Progress != nil {
			r.opts.Progress(r.sum)
		}
	}
	slices.SortStableFunc(r.sum.Rejections, func(a, b Rejection) int { return a.Line - b.Line })
	// The actions run before the load is finished in the journal: a load
	// stopped while acting resumes, and its journal says which records
	// were acted on.
	thenErr := r.thenAll(ctx)
	if thenErr != nil && !errors.Is(thenErr, ErrActionsFailed) {
		return &r.sum, thenErr
	}
	if !r.opts.DryRun {
		b, _ := json.Marshal(r.sum)
		if err := r.j.Finish(ctx, r.opts.LoadID, r.holder, string(b)); err != nil {
			return &r.sum, fmt.Errorf("journal: %w", err)
		}
	}
	if r.sum.Rejected > 0 {
		err := fmt.Errorf("%d of %d %s: %w", r.sum.Rejected, r.sum.Rows, plural(r.sum.Rows, "row"), ErrRowsRejected)
		return &r.sum, errors.Join(err, thenErr)
	}
	return &r.sum, thenErr
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// planned is one row on its way: its key, what it sets, and its fate.
type planned struct {
	row   Row
	key   string
	parts []any // the match values, per match target
	attrs map[string]any
	rels  map[string]int64
	looks []*lookup
	rej   *Rejection
}

type lookup struct {
	t     *target
	value any
}

func (r *runner) reject(p *planned, column, format string, args ...any) {
	p.rej = &Rejection{Line: p.row.Line, Key: p.key, Column: column, Reason: fmt.Sprintf(format, args...), Row: p.row.Values}
}

// plan maps and validates one row.
func (r *runner) plan(row Row) *planned {
	p := &planned{row: row, attrs: map[string]any{}, rels: map[string]int64{}}
	for _, t := range r.m.targets {
		v, present := row.Values[t.column]
		if !present {
			continue // a JSON object without the key: leave the value as it is
		}
		switch t.kind {
		case kindAttr:
			val, why := convert(t, t.attr, v)
			if why != "" {
				r.reject(p, t.column, "%s", why)
				return p
			}
			p.attrs[t.attr.Name] = val
		case kindID, kindRelID:
			if v == nil {
				if t.kind == kindRelID {
					p.rels[t.rel.Name] = 0
				}
				continue
			}
			id, err := strconv.ParseInt(strings.TrimSpace(asString(v)), 10, 64)
			if err != nil || id <= 0 {
				r.reject(p, t.column, "%q is not an Outreach id (%s)", asString(v), t.name)
				return p
			}
			if t.kind == kindID {
				p.attrs["id"] = id
			} else {
				p.rels[t.rel.Name] = id
			}
		case kindLookup:
			if v == nil {
				p.rels[t.rel.Name] = 0
				continue
			}
			val, why := convert(t, t.attr, v)
			if why != "" {
				r.reject(p, t.column, "%s", why)
				return p
			}
			p.looks = append(p.looks, &lookup{t: t, value: val})
		}
	}
	var parts []string
	for _, t := range r.m.match {
		var v any
		if t.kind == kindID {
			v = p.attrs["id"]
		} else {
			v = p.attrs[t.attr.Name]
		}
		k := keyPart(t, v)
		if k == "" {
			r.reject(p, t.column, "the match column %s is empty: a row needs a value to be matched by", t.column)
			return p
		}
		if strings.Contains(asString(v), ",") {
			r.reject(p, t.column, "%q contains a comma, which Outreach's filter lists cannot carry; match on another attribute", asString(v))
			return p
		}
		if ss, ok := v.([]string); ok {
			v = ss[0]
		}
		p.parts = append(p.parts, v)
		parts = append(parts, k)
	}
	delete(p.attrs, "id")
	p.key = strings.Join(parts, "\x1f")
	return p
}

// chunk plans, looks up and writes a chunk of rows.
func (r *runner) chunk(ctx context.Context, rows []Row) error {
	var live []*planned
	var record []Entry
	for _, row := range rows {
		r.sum.Rows++
		p := r.plan(row)
		if p.key != "" {
			if line, dup := r.seen[p.key]; dup {
				if p.rej == nil {
					col := r.m.match[0].column
					r.reject(p, col, "the same %s as line %d: each record can be loaded once a run (key %s)", col, line, strings.ReplaceAll(p.key, "\x1f", ", "))
				}
				p.key = "line:" + strconv.Itoa(row.Line)
			} else {
				r.seen[p.key] = row.Line
			}
		} else {
			p.key = "line:" + strconv.Itoa(row.Line)
		}
		if e, ok := r.done[p.key]; ok && e.Status.Final() {
			r.sum.FromEarlierRuns++
			r.count(e.Status)
			r.noteLoaded(e)
			if e.Status == Rejected {
				var rej Rejection
				json.Unmarshal([]byte(e.Detail), &rej)
				r.sum.Rejections = append(r.sum.Rejections, rej)
			}
			continue
		}
		if p.rej != nil {
			record = append(record, r.finishRejected(p, 0))
			continue
		}
		live = append(live, p)
	}
	if err := r.resolveLookups(ctx, live); err != nil {
		return err
	}
	existing, err := r.fetchExisting(ctx, live)
	if err != nil {
		return err
	}
	type write struct {
		p       *planned
		action  Action
		id      int64
		attrs   map[string]any
		rels    map[string]outreach.Relationship
		changes []Change
		created bool // the record was created by an earlier, ambiguous request of this load
	}
	var writes []write
	for _, p := range live {
		if p.rej != nil {
			record = append(record, r.finishRejected(p, 0))
			continue
		}
		recs := existing[p.key]
		prev := r.done[p.key] // a pending entry: an earlier run sent a write whose outcome is unknown
		if len(recs) > 1 {
			ids := make([]string, len(recs))
			for i, x := range recs {
				ids[i] = strconv.FormatInt(x.ID, 10)
			}
			r.reject(p, r.m.match[0].column, "%d %s match %s (ids %s); the match must name one record", len(recs), r.res.Path,
				strings.ReplaceAll(p.key, "\x1f", ", "), strings.Join(ids, ", "))
			record = append(record, r.finishRejected(p, 0))
			continue
		}
		if len(recs) == 0 {
			if r.opts.Mode == Update {
				r.reject(p, r.m.match[0].column, "no %s matches %s", r.res.Type, strings.ReplaceAll(p.key, "\x1f", ", "))
				record = append(record, r.finishRejected(p, 0))
				continue
			}
			attrs, rels, changes := creation(r.m, p)
			writes = append(writes, write{p: p, action: ActionCreate, attrs: attrs, rels: rels, changes: changes})
			continue
		}
		rec := recs[0]
		ours := prev.Status == Pending && prev.Action == ActionCreate // our own earlier create went through
		if r.opts.Mode == Create && !ours {
			r.reject(p, r.m.match[0].column, "a %s with %s exists already (id %d); load it with --mode upsert or update", r.res.Type,
				strings.ReplaceAll(p.key, "\x1f", ", "), rec.ID)
			record = append(record, r.finishRejected(p, rec.ID))
			continue
		}
		attrs, rels, changes := diff(r.m, p, rec)
		if len(attrs) == 0 && len(rels) == 0 {
			st := Unchanged
			switch {
			case ours:
				st, r.sum.Resolved = Created, r.sum.Resolved+1
			case prev.Status == Pending:
				st, r.sum.Resolved = Updated, r.sum.Resolved+1
			}
			r.count(st)
			e := Entry{Key: p.key, Line: p.row.Line, Action: ActionNone, Status: st, OutreachID: rec.ID, Attempts: prev.Attempts}
			r.noteLoaded(e)
			record = append(record, e)
			continue
		}
		writes = append(writes, write{p: p, action: ActionUpdate, id: rec.ID, attrs: attrs, rels: rels, changes: changes, created: ours})
	}
	if !r.opts.DryRun && len(record) > 0 {
		if err := r.j.Record(ctx, r.opts.LoadID, r.holder, record...); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
	}
	for _, w := range writes {
		if len(r.sum.Diffs) < r.opts.ShowDiffs {
			r.sum.Diffs = append(r.sum.Diffs, PlannedWrite{Line: w.p.row.Line, Key: strings.ReplaceAll(w.p.key, "\x1f", ", "), Action: w.action, ID: w.id, Changes: w.changes})
		}
		if r.opts.DryRun {
			if w.action == ActionCreate || w.created {
				r.count(Created)
			} else {
				r.count(Updated)
			}
			continue
		}
		if err := r.write(ctx, w.p, w.action, w.id, w.attrs, w.rels, w.created); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) count(s Status) {
	switch s {
	case Created:
		r.sum.Created++
	case Updated:
		r.sum.Updated++
	case Unchanged:
		r.sum.Unchanged++
	case Rejected:
		r.sum.Rejected++
	}
}

func (r *runner) finishRejected(p *planned, id int64) Entry {
	r.count(Rejected)
	r.sum.Rejections = append(r.sum.Rejections, *p.rej)
	b, _ := json.Marshal(p.rej)
	return Entry{Key: p.key, Line: p.row.Line, Action: ActionNone, Status: Rejected, OutreachID: id, Detail: string(b), Attempts: r.done[p.key].Attempts}
}

// write sends one row's write with its intent journaled first, and
// resolves an unknown outcome by looking the record up before anything is
// sent again. created says an earlier request of this load created the
// record, so the row ends as created whatever this write is.
func (r *runner) write(ctx context.Context, p *planned, action Action, id int64, attrs map[string]any,
	rels map[string]outreach.Relationship, created bool) error {
	attempts := r.done[p.key].Attempts
	for n := 1; ; n++ {
		if n > r.opts.MaxAttempts {
			return fmt.Errorf("line %d (%s): the outcome of %d write requests in a row is unknown (Outreach did not answer them); the row stays pending and the next run of this load resolves it",
				p.row.Line, p.key, r.opts.MaxAttempts)
		}
		attempts++
		intent := Entry{Key: p.key, Line: p.row.Line, Action: action, Status: Pending, OutreachID: id, Attempts: attempts}
		if created {
			intent.Action = ActionCreate // a resolved create: keep saying so should this update be interrupted
		}
		if err := r.j.Record(ctx, r.opts.LoadID, r.holder, intent); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		r.done[p.key] = intent
		body := &outreach.Resource{Type: r.res.Type, ID: id, Attributes: map[string]json.RawMessage{}, Relationships: rels}
		for k, v := range attrs {
			b, _ := json.Marshal(v)
			body.Attributes[k] = b
		}
		r.sum.WriteRequests++
		var got *outreach.Resource
		var err error
		if action == ActionCreate {
			got, err = r.client.Create(ctx, r.res.Path, body)
		} else {
			got, err = r.client.Update(ctx, r.res.Path, body)
		}
		if err == nil {
			st := Updated
			if action == ActionCreate || created {
				st = Created
			}
			detail, _ := json.Marshal(attrNames(attrs, rels))
			e := Entry{Key: p.key, Line: p.row.Line, Action: intent.Action, Status: st, OutreachID: got.ID, Detail: string(detail), Attempts: attempts}
			if err := r.j.Record(ctx, r.opts.LoadID, r.holder, e); err != nil {
				return fmt.Errorf("journal: %w", err)
			}
			r.done[p.key] = e
			r.noteLoaded(e)
			r.count(st)
			return nil
		}
		var apiErr *outreach.APIError
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &apiErr) && (apiErr.StatusCode == 422 || apiErr.StatusCode == 400):
			r.rejectFromOutreach(p, apiErr)
			return r.j.Record(ctx, r.opts.LoadID, r.holder, r.finishRejected(p, id))
		case errors.As(err, &apiErr) && apiErr.StatusCode == 404 && action == ActionUpdate:
			r.reject(p, r.m.match[0].column, "%s %d was deleted in Outreach during the load", r.res.Type, id)
			return r.j.Record(ctx, r.opts.LoadID, r.holder, r.finishRejected(p, id))
		case !ambiguous(err):
			return fmt.Errorf("line %d: %w", p.row.Line, err)
		}
		// The write may or may not have happened: look before sending again.
		r.sum.Resolved++
		r.log.Debug("write outcome unknown; looking the record up", "line", p.row.Line, "key", p.key, "error", err)
		recs, err := r.fetchKeys(ctx, []*planned{p})
		if err != nil {
			return fmt.Errorf("line %d: resolve an unknown write: %w", p.row.Line, err)
		}
		found := recs[p.key]
		switch {
		case len(found) == 0 && action == ActionCreate:
			continue // it did not happen: create again
		case len(found) == 0:
			r.reject(p, r.m.match[0].column, "%s %d was deleted in Outreach during the load", r.res.Type, id)
			return r.j.Record(ctx, r.opts.LoadID, r.holder, r.finishRejected(p, id))
		}
		rec := found[0]
		if action == ActionCreate {
			created = true
		}
		action, id = ActionUpdate, rec.ID
		attrs, rels, _ = diff(r.m, p, rec)
		if len(attrs) == 0 && len(rels) == 0 {
			st := Updated
			if created {
				st = Created
			}
			e := Entry{Key: p.key, Line: p.row.Line, Action: intent.Action, Status: st, OutreachID: rec.ID, Attempts: attempts}
			if err := r.j.Record(ctx, r.opts.LoadID, r.holder, e); err != nil {
				return fmt.Errorf("journal: %w", err)
			}
			r.done[p.key] = e
			r.noteLoaded(e)
			r.count(st)
			return nil
		}
	}
}

func attrNames(attrs map[string]any, rels map[string]outreach.Relationship) []string {
	var out []string
	for k := range attrs {
		out = append(out, k)
	}
	for k := range rels {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ambiguous reports whether a failed write may have been carried out: no
// answer (a timeout, a reset, a closed connection) or a 5xx.
func ambiguous(err error) bool {
	var apiErr *outreach.APIError
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode >= 500
	}
	var rl *outreach.RateLimitError
	var auth *outreach.AuthError
	if errors.As(err, &rl) || errors.As(err, &auth) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "broken pipe")
}

// rejectFromOutreach turns Outreach's refusal into the row's rejection,
// its JSON pointer mapped back to the source column.
func (r *runner) rejectFromOutreach(p *planned, e *outreach.APIError) {
	var reasons []string
	var obj outreach.ErrorObject
	for i, o := range e.Errors {
		if i == 0 {
			obj = o
		}
		d := o.Detail
		if d == "" {
			d = o.Title
		}
		reasons = append(reasons, d)
	}
	if len(reasons) == 0 {
		reasons = append(reasons, fmt.Sprintf("%d %s", e.StatusCode, strings.TrimSpace(e.Body)))
	}
	ptr := obj.Source.Pointer
	if ptr == "" {
		ptr = obj.Source.Parameter
	}
	p.rej = &Rejection{Line: p.row.Line, Key: p.key, Column: r.columnOf(ptr, strings.Join(reasons, "; ")),
		Reason: "Outreach: " + strings.Join(reasons, "; "), ErrorID: obj.ID, Pointer: ptr, Row: p.row.Values}
}

// columnOf maps a JSON pointer of Outreach's to the source column that
// fed it. A pointer at /data about an email (Outreach's duplicate-email
// rule) names the column of the emails.
func (r *runner) columnOf(ptr, detail string) string {
	switch {
	case strings.HasPrefix(ptr, "/data/attributes/"):
		name := strings.SplitN(strings.TrimPrefix(ptr, "/data/attributes/"), "/", 2)[0]
		for _, t := range r.m.targets {
			if t.kind == kindAttr && t.attr.Name == name {
				return t.column
			}
		}
	case strings.HasPrefix(ptr, "/data/relationships/"):
		name := strings.SplitN(strings.TrimPrefix(ptr, "/data/relationships/"), "/", 2)[0]
		for _, t := range r.m.targets {
			if t.rel != nil && t.rel.Name == name {
				return t.column
			}
		}
	case strings.Contains(strings.ToLower(detail), "email"):
		for _, t := range r.m.targets {
			if t.kind == kindAttr && isEmail(t.attr) {
				return t.column
			}
		}
	}
	return ""
}

// resolveLookups finds the related records rel.attr columns name, in bulk
// (many values a request), and rejects rows whose value matches none or
// more than one.
func (r *runner) resolveLookups(ctx context.Context, rows []*planned) error {
	type want struct {
		t      *target
		values []any
	}
	wants := map[string]*want{}
	for _, p := range rows {
		for _, l := range p.looks {
			k := l.t.relRes.Type + "\x00" + l.t.attr.Name
			ck := k + "\x00" + keyPart(l.t, l.value)
			if _, ok := r.lookups[ck]; ok {
				continue
			}
			w := wants[k]
			if w == nil {
				w = &want{t: l.t}
				wants[k] = w
			}
			w.values = append(w.values, l.value)
			r.lookups[ck] = nil
		}
	}
	for k, w := range wants {
		for vals := range slices.Chunk(w.values, r.opts.ChunkSize) {
			recs, err := r.list(ctx, w.t.relRes, []*target{w.t}, [][]any{vals}, []string{w.t.attr.Name})
			if err != nil {
				return fmt.Errorf("look up %s by %s: %w", w.t.relRes.Path, w.t.attr.Name, err)
			}
			for _, rec := range recs {
				for _, kp := range recordKeys(rec, []*target{w.t}) {
					ck := k + "\x00" + kp
					if !slices.Contains(r.lookups[ck], rec.ID) {
						r.lookups[ck] = append(r.lookups[ck], rec.ID)
					}
				}
			}
		}
	}
	for _, p := range rows {
		if p.rej != nil {
			continue
		}
		for _, l := range p.looks {
			ids := r.lookups[l.t.relRes.Type+"\x00"+l.t.attr.Name+"\x00"+keyPart(l.t, l.value)]
			switch {
			case len(ids) == 0:
				r.reject(p, l.t.column, "%s: no %s has %s %s", l.t.name, l.t.relRes.Type, l.t.attr.Name, asString(l.value))
			case len(ids) > 1:
				r.reject(p, l.t.column, "%s: %d %s have %s %s; the lookup must name one", l.t.name, len(ids), l.t.relRes.Path, l.t.attr.Name, asString(l.value))
			default:
				p.rels[l.t.rel.Name] = ids[0]
				continue
			}
			break
		}
	}
	return nil
}

// fetchExisting finds the records the rows' match keys name.
func (r *runner) fetchExisting(ctx context.Context, rows []*planned) (map[string][]*outreach.Resource, error) {
	var ask []*planned
	for _, p := range rows {
		if p.rej == nil {
			ask = append(ask, p)
		}
	}
	return r.fetchKeys(ctx, ask)
}

// fetchKeys lists the records matching the rows' keys, one request per
// ChunkSize rows (more only when a page cannot hold them), indexed by key.
func (r *runner) fetchKeys(ctx context.Context, rows []*planned) (map[string][]*outreach.Resource, error) {
	out := map[string][]*outreach.Resource{}
	var fields []string
	for _, t := range r.m.targets {
		switch t.kind {
		case kindAttr:
			fields = append(fields, t.attr.Name)
		case kindRelID, kindLookup:
			fields = append(fields, t.rel.Name)
		}
	}
	for part := range slices.Chunk(rows, r.opts.ChunkSize) {
		values := make([][]any, len(r.m.match))
		for _, p := range part {
			for i := range r.m.match {
				values[i] = append(values[i], p.parts[i])
			}
		}
		recs, err := r.list(ctx, r.res, r.m.match, values, fields)
		if err != nil {
			return nil, fmt.Errorf("find existing %s: %w", r.res.Path, err)
		}
		for _, rec := range recs {
			for _, k := range recordKeys(rec, r.m.match) {
				if !slices.ContainsFunc(out[k], func(x *outreach.Resource) bool { return x.ID == rec.ID }) {
					out[k] = append(out[k], rec)
				}
			}
		}
	}
	return out, nil
}

// list fetches the records of res whose match attributes are among
// values (comma-list filters; emails also asked lowercased).
func (r *runner) list(ctx context.Context, res *catalog.Resource, match []*target, values [][]any, fields []string) ([]*outreach.Resource, error) {
	opts := &outreach.ListOptions{PageSize: outreach.MaxPageSize}
	if len(fields) > 0 {
		opts.Fields = map[string][]string{res.Type: fields}
	}
	for i, t := range match {
		var vs []any
		seen := map[string]bool{}
		for _, v := range values[i] {
			s := asString(v)
			for _, x := range []string{s, strings.ToLower(s)} {
				if (x == s || (t.attr != nil && isEmail(t.attr))) && !seen[x] {
					seen[x] = true
					vs = append(vs, x)
				}
			}
		}
		name := "id"
		if t.kind != kindID {
			name = t.attr.Name
		}
		opts.Filters = append(opts.Filters, outreach.In(name, vs...))
	}
	var out []*outreach.Resource
	for page, err := range r.client.Pages(ctx, res.Path, opts) {
		r.sum.ReadRequests++
		if err != nil {
			return nil, err
		}
		out = append(out, page.Resources...)
	}
	return out, nil
}

// recordKeys are the keys a record answers to: one per value of an array
// match attribute (a prospect answers to each of its emails).
func recordKeys(rec *outreach.Resource, match []*target) []string {
	keys := []string{""}
	for i, t := range match {
		var parts []string
		if t.kind == kindID {
			parts = []string{strconv.FormatInt(rec.ID, 10)}
		} else {
			raw := rec.Attributes[t.attr.Name]
			d := json.NewDecoder(bytes.NewReader(raw))
			d.UseNumber()
			var v any
			d.Decode(&v)
			switch x := v.(type) {
			case []any:
				for _, e := range x {
					parts = append(parts, keyPart(t, asString(e)))
				}
			case nil:
			default:
				parts = append(parts, keyPart(t, asString(x)))
			}
		}
		var next []string
		for _, k := range keys {
			for _, p := range parts {
				if i > 0 {
					next = append(next, k+"\x1f"+p)
				} else {
					next = append(next, p)
				}
			}
		}
		keys = next
	}
	return keys
}
