package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
)

// Bulk actions: POST /batches/actions/<name> selects records (the ids in
// data.attributes.ids, else actionParams[filter], else every record of the
// type), creates a batch and one batch item per record, and, once the
// batch is confirmed (or at once with actionParams[skipConfirmation]=true),
// applies the action to the records one item at a time, at
// Options.BatchItemsPerSecond of the sandbox clock. Progress is computed
// when the API is next called, so a stopped clock holds batches still and
// advancing it runs them. Every item goes through the same code as the
// single-record request (create, update, delete, member action), so the
// same rules fail the same way, item by item.
//
// Batch states (a guess, see docs/sandbox.md): pending (awaiting
// confirmation) → processing → finished, or canceled from pending or
// processing. Item states: pending → finished (failed false or true, info
// holding the error) or canceled.

// Batch and batch item states.
const (
	BatchPending    = "pending"
	BatchProcessing = "processing"
	BatchFinished   = "finished"
	BatchCanceled   = "canceled"
)

// Limits of the bulk API.
const (
	// MaxBulkItems is the most records one bulk action may select.
	MaxBulkItems = 100000
	// BulkItemsPerDay is the most batch items an org may create per UTC
	// day of the sandbox clock.
	BulkItemsPerDay = 5000000
	// confirmCountRequiredFrom: batches of at least this many items must
	// be confirmed with actionParams[confirmedCount] equal to confirmCount.
	confirmCountRequiredFrom = 1000
	// defaultBatchItemsPerSecond is the processing speed of a batch.
	defaultBatchItemsPerSecond = 100
)

// itemFunc applies a bulk action to one record. The caller holds the
// store's write lock.
type itemFunc func(s *Sandbox, res *catalog.Resource, id int64, user int64) *writeFailure

// bulkAction is one of Outreach's bulk actions.
type bulkAction struct {
	target string // the type acted on; "" for custom objects (actionParams[objectName])
	level  string // the target scope level it needs
	// prepare validates the body's attributes (ids removed) and returns
	// what to do to each record.
	prepare func(s *Sandbox, res *catalog.Resource, attrs map[string]json.RawMessage) (itemFunc, *writeFailure)
}

var bulkActions = map[string]bulkAction{
	"prospectsAssignOwner":   {"prospect", catalog.LevelWrite, prepareAssign("owner", "ownerId", "user")},
	"accountsAssignOwner":    {"account", catalog.LevelWrite, prepareAssign("owner", "ownerId", "user")},
	"prospectsAssignAccount": {"prospect", catalog.LevelWrite, prepareAssign("account", "accountId", "account")},
	"prospectsAddTags":       {"prospect", catalog.LevelWrite, prepareTags(true)},
	"accountAddTags":         {"account", catalog.LevelWrite, prepareTags(true)},
	"prospectsRemoveTags":    {"prospect", catalog.LevelWrite, prepareTags(false)},
	"accountsRemoveTags":     {"account", catalog.LevelWrite, prepareTags(false)},
	"prospectsBulkModify":    {"prospect", catalog.LevelWrite, prepareModify},
	"accountsBulkModify":     {"account", catalog.LevelWrite, prepareModify},
	"customObjectBulkModify": {"", catalog.LevelWrite, prepareModify},
	"prospectsDestroyAll":    {"prospect", catalog.LevelDelete, prepareDestroy},
	"accountsDestroyAll":     {"account", catalog.LevelDelete, prepareDestroy},
	"customObjectBulkDelete": {"", catalog.LevelDelete, prepareDestroy},
	"prospectsAddToSequence": {"prospect", catalog.LevelWrite, prepareAddToSequence},
	"prospectsFinishAll":     {"prospect", catalog.LevelWrite, prepareSequenceStates([]string{"active", "pending", "paused"}, "finished")},
	"prospectsPauseAll":      {"prospect", catalog.LevelWrite, prepareSequenceStates([]string{"active", "pending"}, "paused")},
}

// batchRun is a batch being processed, or awaiting confirmation.
type batchRun struct {
	batch   int64
	res     *catalog.Resource // the type acted on
	targets []int64           // record ids, in item order
	items   []int64           // batch item ids
	next    int               // the first item not processed
	apply   itemFunc
	user    int64
	start   time.Time // confirmation
	failed  int
}

// batchRunner holds the batches not yet finished. Its maps are guarded by
// the store's lock; active mirrors the number processing so requests can
// skip the lock when there are none.
type batchRunner struct {
	runs   map[int64]*batchRun
	active atomic.Int32
	day    string // UTC date of the sandbox clock the count is for
	today  int    // batch items created on day
}

func (s *Sandbox) batchRate() float64 {
	if s.opts.BatchItemsPerSecond == 0 {
		return defaultBatchItemsPerSecond
	}
	return s.opts.BatchItemsPerSecond
}

// runBatches processes the items of confirmed batches that are due by the
// sandbox clock. Every API request calls it first.
func (s *Sandbox) runBatches() {
	if s.batches.active.Load() == 0 {
		return
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	s.advanceBatches(s.clock.Now())
}

// advanceBatches processes what is due at now. The caller holds the write
// lock.
func (s *Sandbox) advanceBatches(now time.Time) {
	rate := s.batchRate()
	// In the order the batches were made (a map's order is random): of
	// two batches due together, the older's items are done first.
	for _, id := range slices.Sorted(maps.Keys(s.batches.runs)) {
		run, ok := s.batches.runs[id]
		if !ok || run.start.IsZero() {
			continue // awaiting confirmation
		}
		due := len(run.items)
		if rate > 0 {
			due = min(due, int(now.Sub(run.start).Seconds()*rate))
		}
		for run.next < due {
			s.processItem(run, run.next)
			run.next++
		}
		if run.next == len(run.items) {
			end := now
			if rate > 0 {
				end = run.start.Add(time.Duration(float64(len(run.items)) / rate * float64(time.Second)))
				if end.After(now) {
					end = now
				}
			}
			s.finishBatch(run, end)
		}
	}
}

func (s *Sandbox) processItem(run *batchRun, i int) {
	ires := s.store.cols["batchItem"].res
	old, ok := s.store.get("batchItem", run.items[i])
	if !ok {
		return
	}
	item := old.clone()
	f := run.apply(s, run.res, run.targets[i], run.user)
	setAttr(ires, item, "state", BatchFinished)
	if f != nil {
		run.failed++
		setAttr(ires, item, "failed", true)
		setAttr(ires, item, "info", truncateRunes(f.err.Detail, 767))
	}
	s.store.put("batchItem", item)
	bres := s.store.cols["batch"].res
	if b, ok := s.store.get("batch", run.batch); ok {
		b = b.clone()
		setAttr(bres, b, "pending", int64(len(run.items)-i-1))
		setAttr(bres, b, "failures", int64(run.failed))
		s.touch(bres, b)
		s.store.put("batch", b)
	}
}

func truncateRunes(str string, n int) string {
	r := []rune(str)
	if len(r) <= n {
		return str
	}
	return string(r[:n])
}

// finishBatch marks a batch whose items are all processed. The caller
// holds the write lock.
func (s *Sandbox) finishBatch(run *batchRun, at time.Time) {
	bres := s.store.cols["batch"].res
	if b, ok := s.store.get("batch", run.batch); ok {
		b = b.clone()
		setAttr(bres, b, "state", BatchFinished)
		setAttr(bres, b, "pending", int64(0))
		setAttr(bres, b, "finishedAt", ts(at.Truncate(time.Second)))
		setAttr(bres, b, "summary", batchSummary(len(run.items), run.failed))
		s.touch(bres, b)
		s.store.put("batch", b)
	}
	delete(s.batches.runs, run.batch)
	s.batches.active.Add(-1)
}

func batchSummary(total, failed int) json.RawMessage {
	raw, _ := json.Marshal(map[string]int{"total": total, "succeeded": total - failed, "failed": failed})
	return raw
}

// handleBulkAction serves POST /batches/actions/<name>.
func (s *Sandbox) handleBulkAction(w http.ResponseWriter, r *http.Request, batchRes *catalog.Resource, name string) {
	tok := tokenFrom(r.Context())
	act, ok := bulkActions[name]
	if !ok {
		writeErrors(w, http.StatusNotImplemented, apiError{ID: "notImplemented", Title: "Not Implemented",
			Detail: "The sandbox does not simulate the " + name + " bulk action."})
		return
	}
	q := r.URL.Query()
	params := map[string]string{}
	filter := url.Values{}
	for k, v := range q {
		p, ok := strings.CutPrefix(k, "actionParams[")
		if !ok {
			continue
		}
		if rest, ok := strings.CutPrefix(p, "filter]"); ok {
			filter["filter"+rest] = v
			continue
		}
		p = strings.TrimSuffix(p, "]")
		if p != "skipConfirmation" && !(p == "objectName" && act.target == "") {
			writeErrors(w, http.StatusBadRequest, apiError{ID: "badRequest", Title: "Bad Request",
				Detail: "actionParams[" + p + "] is not accepted by the " + name + " action."}.withParameter(k))
			return
		}
		params[p] = v[0]
	}
	var res *catalog.Resource
	if act.target == "" {
		obj := params["objectName"]
		if obj == "" {
			writeErrors(w, http.StatusBadRequest, apiError{ID: "badRequest", Title: "Bad Request",
				Detail: "actionParams[objectName] is required by the " + name + " action."}.withParameter("actionParams[objectName]"))
			return
		}
		res, ok = s.cat.ByType(obj)
		if !ok || !res.Custom {
			validationError(w, "/actionParams/objectName", fmt.Sprintf("'%s' is not a custom object of this org.", obj))
			return
		}
	} else {
		res, _ = s.cat.ByType(act.target)
	}
	skip := false
	if v, ok := params["skipConfirmation"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeErrors(w, http.StatusBadRequest, apiError{ID: "badRequest", Title: "Bad Request",
				Detail: "actionParams[skipConfirmation] must be true or false."}.withParameter("actionParams[skipConfirmation]"))
			return
		}
		skip = b
	}
	if !allowed(w, tok, batchRes, catalog.LevelRead) || !allowed(w, tok, batchRes, catalog.LevelWrite) || !allowed(w, tok, res, act.level) {
		return
	}
	attrs, ids, hasIDs, f := readBulkBody(r)
	if f != nil {
		writeErrors(w, f.status, f.err)
		return
	}
	payload, _ := json.Marshal(attrs)
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	apply, f := act.prepare(s, res, attrs)
	if f != nil {
		writeErrors(w, f.status, f.err)
		return
	}
	targets := ids
	if !hasIDs {
		var err error
		targets, err = s.selectTargets(res, filter)
		if err != nil {
			if qe, ok := err.(*queryError); ok && strings.HasPrefix(qe.param, "filter") {
				qe.param = "actionParams[filter]" + strings.TrimPrefix(qe.param, "filter")
			}
			writeQueryError(w, err)
			return
		}
	}
	if len(targets) > MaxBulkItems {
		validationError(w, "/data/attributes/ids", fmt.Sprintf("A bulk action may apply to at most %d records; this one selects %d. Narrow the filter or split the ids.", MaxBulkItems, len(targets)))
		return
	}
	if len(targets) == 0 {
		validationError(w, "/data/attributes/ids", "The bulk action selects no records.")
		return
	}
	now := s.clock.Now()
	if day := now.Format(time.DateOnly); day != s.batches.day {
		s.batches.day, s.batches.today = day, 0
	}
	if s.batches.today+len(targets) > BulkItemsPerDay {
		writeErrors(w, http.StatusUnprocessableEntity, apiError{ID: "validationError", Title: "Validation Error",
			Detail: fmt.Sprintf("The org's limit of %d batch items per day would be passed; try again tomorrow (UTC).", BulkItemsPerDay)})
		return
	}
	s.batches.today += len(targets)
	b := s.createBatch(name, res, payload, apply, targets, tok.user, skip, now)
	s.writeRecord(w, r, http.StatusOK, batchRes, b, nil)
}

// readBulkBody reads {"data": {"attributes": {...}}}; an empty body means
// no attributes. ids come out separately; hasIDs says whether they were
// sent.
func readBulkBody(r *http.Request) (map[string]json.RawMessage, []int64, bool, *writeFailure) {
	var raw bytes.Buffer
	if _, err := raw.ReadFrom(http.MaxBytesReader(nil, r.Body, 32<<20)); err != nil {
		return nil, nil, false, &writeFailure{400, apiError{ID: "badRequest", Title: "Bad Request", Detail: "The request body could not be read."}}
	}
	attrs := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(raw.Bytes())) > 0 {
		var doc struct {
			Data *struct {
				Attributes map[string]json.RawMessage `json:"attributes"`
			} `json:"data"`
		}
		if json.Unmarshal(raw.Bytes(), &doc) != nil || doc.Data == nil {
			return nil, nil, false, &writeFailure{400, apiError{ID: "badRequest", Title: "Bad Request", Detail: "The request body must be a JSON:API document with a data object."}}
		}
		if doc.Data.Attributes != nil {
			attrs = doc.Data.Attributes
		}
	}
	rawIDs, hasIDs := attrs["ids"]
	delete(attrs, "ids")
	var ids []int64
	if hasIDs {
		if json.Unmarshal(rawIDs, &ids) != nil {
			return nil, nil, false, invalid("/data/attributes/ids", "'ids' must be an array of integers.")
		}
		seen := map[int64]bool{}
		ids = slices.DeleteFunc(ids, func(id int64) bool {
			dup := seen[id]
			seen[id] = true
			return dup
		})
	}
	return attrs, ids, hasIDs, nil
}

// selectTargets lists the ids of the records of res that the filter
// (filter[...] keys, newFilterSyntax) selects, or every record without
// one. The caller holds the lock.
func (s *Sandbox) selectTargets(res *catalog.Resource, filter url.Values) ([]int64, error) {
	q := url.Values{"newFilterSyntax": {"true"}, "page[size]": {"1"}}
	for k, v := range filter {
		q[k] = v
	}
	lq, err := parseListQuery(res, s.cat, q, s.queryRules())
	if err != nil {
		return nil, err
	}
	var ids []int64
	s.store.ordered(lq, nil, func(rec *record) bool {
		ids = append(ids, rec.id)
		return len(ids) <= MaxBulkItems
	})
	return ids, nil
}

// createBatch stores a batch and its items. The caller holds the lock.
func (s *Sandbox) createBatch(name string, res *catalog.Resource, payload json.RawMessage, apply itemFunc, targets []int64, user int64, skip bool, now time.Time) *record {
	bres := s.store.cols["batch"].res
	ires := s.store.cols["batchItem"].res
	at := ts(now.Truncate(time.Second))
	b := &record{attrs: make([]any, len(bres.Attributes)), rels: make([]relRef, len(bres.Relationships))}
	b.id = s.store.newID("batch")
	n := int64(len(targets))
	for k, v := range map[string]any{"action": name, "state": BatchPending, "total": n, "pending": n, "failures": int64(0),
		"confirmCount": n, "confirmedCountRequired": n >= confirmCountRequiredFrom, "createdAt": at, "updatedAt": at,
		"payload": payload} {
		setAttr(bres, b, k, v)
	}
	b.rels[relIndex(bres, "creator")] = relRef{typ: "user", id: user}
	run := &batchRun{batch: b.id, res: res, targets: targets, user: user, apply: apply}
	run.items = make([]int64, len(targets))
	for i, id := range targets {
		it := &record{attrs: make([]any, len(ires.Attributes)), rels: make([]relRef, len(ires.Relationships))}
		it.id = s.store.newID("batchItem")
		data, _ := json.Marshal(map[string]any{"type": res.Type, "id": id})
		setAttr(ires, it, "batchId", b.id)
		setAttr(ires, it, "createdAt", at)
		setAttr(ires, it, "data", string(data))
		setAttr(ires, it, "failed", false)
		setAttr(ires, it, "state", BatchPending)
		it.rels[relIndex(ires, "batch")] = relRef{typ: "batch", id: b.id}
		s.store.put("batchItem", it)
		run.items[i] = it.id
	}
	s.store.put("batch", b)
	if s.batches.runs == nil {
		s.batches.runs = map[int64]*batchRun{}
	}
	s.batches.runs[b.id] = run
	if skip {
		s.startBatch(run, b, now)
	}
	return b
}

// startBatch moves a batch to processing. The caller holds the lock.
func (s *Sandbox) startBatch(run *batchRun, b *record, now time.Time) {
	bres := s.store.cols["batch"].res
	at := ts(now.Truncate(time.Second))
	setAttr(bres, b, "state", BatchProcessing)
	setAttr(bres, b, "confirmedAt", at)
	setAttr(bres, b, "startedAt", at)
	setAttr(bres, b, "updatedAt", at)
	s.store.put("batch", b)
	run.start = now
	s.batches.active.Add(1)
	if s.batchRate() < 0 {
		s.advanceBatches(now)
	}
}

// handleBatchMember serves POST /batches/{id}/actions/confirm|cancel.
func (s *Sandbox) handleBatchMember(w http.ResponseWriter, r *http.Request, res *catalog.Resource, id int64, name string) {
	q := r.URL.Query()
	for k := range q {
		if p, ok := strings.CutPrefix(k, "actionParams["); ok && !(name == "confirm" && p == "confirmedCount]") {
			writeErrors(w, http.StatusBadRequest, apiError{ID: "badRequest", Title: "Bad Request",
				Detail: k + " is not accepted by the " + name + " action."}.withParameter(k))
			return
		}
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	now := s.clock.Now()
	s.advanceBatches(now)
	old, ok := s.store.get("batch", id)
	if !ok {
		notFound(w, res.Type, id)
		return
	}
	b := old.clone()
	state, _ := attr(res, b, "state").(string)
	run := s.batches.runs[id]
	switch name {
	case "confirm":
		if state != BatchPending || run == nil {
			validationError(w, "/data/attributes/state", fmt.Sprintf("The batch is '%s'; only a pending batch can be confirmed.", state))
			return
		}
		count, _ := attr(res, b, "confirmCount").(int64)
		v, given := q["actionParams[confirmedCount]"]
		if required, _ := attr(res, b, "confirmedCountRequired").(bool); required && !given {
			validationError(w, "/actionParams/confirmedCount", fmt.Sprintf("This batch has %d items; confirm it with actionParams[confirmedCount]=%d.", count, count))
			return
		}
		if given && v[0] != strconv.FormatInt(count, 10) {
			validationError(w, "/actionParams/confirmedCount", fmt.Sprintf("confirmedCount %q does not match the batch's confirmCount %d.", v[0], count))
			return
		}
		s.startBatch(run, b, now)
	case "cancel":
		if state != BatchPending && state != BatchProcessing {
			validationError(w, "/data/attributes/state", fmt.Sprintf("The batch is '%s'; only a pending or processing batch can be canceled.", state))
			return
		}
		at := ts(now.Truncate(time.Second))
		setAttr(res, b, "state", BatchCanceled)
		setAttr(res, b, "canceledAt", at)
		setAttr(res, b, "pending", int64(0))
		s.touch(res, b)
		if run != nil {
			ires := s.store.cols["batchItem"].res
			for _, itemID := range run.items[run.next:] {
				if it, ok := s.store.get("batchItem", itemID); ok {
					it = it.clone()
					setAttr(ires, it, "state", BatchCanceled)
					s.store.put("batchItem", it)
				}
			}
			if !run.start.IsZero() {
				s.batches.active.Add(-1)
			}
			delete(s.batches.runs, id)
			setAttr(res, b, "summary", batchSummary(run.next, run.failed))
		}
		s.store.put("batch", b)
	default:
		routeNotFound(w)
		return
	}
	cur, _ := s.store.get("batch", id)
	s.writeRecord(w, r, http.StatusOK, res, cur, nil)
}

// The actions.

func prepareAssign(rel, param, target string) func(*Sandbox, *catalog.Resource, map[string]json.RawMessage) (itemFunc, *writeFailure) {
	return func(s *Sandbox, res *catalog.Resource, attrs map[string]json.RawMessage) (itemFunc, *writeFailure) {
		ptr := "/data/attributes/" + param
		if f := onlyAttrs(attrs, param); f != nil {
			return nil, f
		}
		raw, ok := attrs[param]
		if !ok {
			return nil, invalid(ptr, "%s is required.", param)
		}
		id, ok := intValue(raw)
		if !ok {
			return nil, invalid(ptr, "%s must be an integer.", param)
		}
		if !s.store.exists(target, id) {
			return nil, invalid(ptr, "Could not find '%s' with ID '%d'.", target, id)
		}
		ri := relIndex(res, rel)
		return func(s *Sandbox, res *catalog.Resource, rid int64, _ int64) *writeFailure {
			if !s.store.exists(res.Type, rid) {
				return missing(res.Type, rid)
			}
			if !s.store.exists(target, id) {
				return invalid(ptr, "Could not find '%s' with ID '%d'.", target, id)
			}
			_, f := s.update(res, rid, &change{attrs: map[int]any{}, extra: map[string]any{}, rels: map[int]relRef{ri: {typ: target, id: id}}})
			return f
		}, nil
	}
}

func prepareTags(add bool) func(*Sandbox, *catalog.Resource, map[string]json.RawMessage) (itemFunc, *writeFailure) {
	return func(s *Sandbox, res *catalog.Resource, attrs map[string]json.RawMessage) (itemFunc, *writeFailure) {
		if f := onlyAttrs(attrs, "tags"); f != nil {
			return nil, f
		}
		var tags []string
		if json.Unmarshal(attrs["tags"], &tags) != nil || len(tags) == 0 {
			return nil, invalid("/data/attributes/tags", "tags must be a non-empty array of strings.")
		}
		ti := res.AttributeIndex("tags")
		if ti < 0 {
			return nil, invalid("/data/attributes/tags", "%s has no tags.", res.Type)
		}
		if f := checkValue(&res.Attributes[ti], attrs["tags"], "/data/attributes/tags"); f != nil {
			return nil, f
		}
		return func(s *Sandbox, res *catalog.Resource, rid int64, _ int64) *writeFailure {
			rec, ok := s.store.get(res.Type, rid)
			if !ok {
				return missing(res.Type, rid)
			}
			cur, _ := rec.attrs[ti].([]string)
			next := slices.Clone(cur)
			for _, t := range tags {
				if add && !slices.Contains(next, t) {
					next = append(next, t)
				}
				if !add {
					next = slices.DeleteFunc(next, func(x string) bool { return x == t })
				}
			}
			_, f := s.update(res, rid, &change{attrs: map[int]any{ti: next}, extra: map[string]any{}, rels: map[int]relRef{}})
			return f
		}, nil
	}
}

func checkValue(a *catalog.Attribute, raw json.RawMessage, ptr string) *writeFailure {
	_, f := convertAttr(a, raw, ptr)
	return f
}

// prepareModify reads {field: value, ...}, or the single-field forms
// {fieldName, fieldValue} and {field, value}.
func prepareModify(s *Sandbox, res *catalog.Resource, attrs map[string]json.RawMessage) (itemFunc, *writeFailure) {
	fields := map[string]json.RawMessage{}
	for _, pair := range [][2]string{{"fieldName", "fieldValue"}, {"field", "value"}} {
		if raw, ok := attrs[pair[0]]; ok {
			var name string
			if json.Unmarshal(raw, &name) != nil || name == "" {
				return nil, invalid("/data/attributes/"+pair[0], "%s must name an attribute of %s.", pair[0], res.Type)
			}
			val, ok := attrs[pair[1]]
			if !ok {
				return nil, invalid("/data/attributes/"+pair[1], "%s is required with %s.", pair[1], pair[0])
			}
			delete(attrs, pair[0])
			delete(attrs, pair[1])
			fields[name] = val
		}
	}
	for k, v := range attrs {
		fields[k] = v
	}
	if len(fields) == 0 {
		return nil, invalid("/data/attributes", "Name at least one attribute to modify.")
	}
	ch := &change{attrs: map[int]any{}, extra: map[string]any{}, rels: map[int]relRef{}}
	for _, name := range sortedKeys(fields) {
		ptr := "/data/attributes/" + name
		i := res.AttributeIndex(name)
		if i < 0 {
			return nil, invalid(ptr, "'%s' is not an attribute of %s.", name, res.Type)
		}
		a := &res.Attributes[i]
		if a.ReadOnly {
			return nil, invalid(ptr, "'%s' is read-only.", name)
		}
		v, f := convertAttr(a, fields[name], ptr)
		if f != nil {
			return nil, f
		}
		ch.attrs[i] = v
	}
	return func(s *Sandbox, res *catalog.Resource, rid int64, _ int64) *writeFailure {
		if !s.store.exists(res.Type, rid) {
			return missing(res.Type, rid)
		}
		_, f := s.update(res, rid, ch)
		return f
	}, nil
}

func prepareDestroy(s *Sandbox, res *catalog.Resource, attrs map[string]json.RawMessage) (itemFunc, *writeFailure) {
	if f := onlyAttrs(attrs); f != nil {
		return nil, f
	}
	return func(s *Sandbox, res *catalog.Resource, rid int64, _ int64) *writeFailure {
		if !s.deleteRecord(res, rid) {
			return missing(res.Type, rid)
		}
		return nil
	}, nil
}

// prepareAddToSequence enrols each prospect as POST /sequenceStates
// would: the same required relationships and the same double-enrolment
// rule, reported item by item.
func prepareAddToSequence(s *Sandbox, res *catalog.Resource, attrs map[string]json.RawMessage) (itemFunc, *writeFailure) {
	if f := onlyAttrs(attrs, "sequenceId", "mailboxId", "stepOverrides"); f != nil {
		return nil, f
	}
	raw, ok := attrs["sequenceId"]
	if !ok {
		return nil, invalid("/data/attributes/sequenceId", "sequenceId is required.")
	}
	seq, ok := intValue(raw)
	if !ok {
		return nil, invalid("/data/attributes/sequenceId", "sequenceId must be an integer.")
	}
	if !s.store.exists("sequence", seq) {
		return nil, invalid("/data/attributes/sequenceId", "Could not find 'sequence' with ID '%d'.", seq)
	}
	var mailbox int64
	if raw, ok := attrs["mailboxId"]; ok && string(raw) != "null" {
		if mailbox, ok = intValue(raw); !ok {
			return nil, invalid("/data/attributes/mailboxId", "mailboxId must be an integer.")
		}
	}
	sres := s.store.cols["sequenceState"].res
	return func(s *Sandbox, res *catalog.Resource, rid int64, user int64) *writeFailure {
		if !s.store.exists("prospect", rid) {
			return missing("prospect", rid)
		}
		if mailbox != 0 && !s.store.exists("mailbox", mailbox) {
			return invalid("/data/relationships/mailbox/data/id", "Could not find 'mailbox' with ID '%d'.", mailbox)
		}
		ch := &change{attrs: map[int]any{}, extra: map[string]any{}, rels: map[int]relRef{
			relIndex(sres, "prospect"): {typ: "prospect", id: rid},
			relIndex(sres, "sequence"): {typ: "sequence", id: seq},
		}}
		if mailbox != 0 {
			ch.rels[relIndex(sres, "mailbox")] = relRef{typ: "mailbox", id: mailbox}
		}
		_, f := s.create(sres, ch, user, nil)
		return f
	}, nil
}

// prepareSequenceStates finishes or pauses the prospect's sequence states
// that are in one of from.
func prepareSequenceStates(from []string, to string) func(*Sandbox, *catalog.Resource, map[string]json.RawMessage) (itemFunc, *writeFailure) {
	return func(s *Sandbox, _ *catalog.Resource, attrs map[string]json.RawMessage) (itemFunc, *writeFailure) {
		if f := onlyAttrs(attrs); f != nil {
			return nil, f
		}
		sres := s.store.cols["sequenceState"].res
		return func(s *Sandbox, res *catalog.Resource, rid int64, _ int64) *writeFailure {
			if !s.store.exists("prospect", rid) {
				return missing("prospect", rid)
			}
			var hit []*record
			s.store.children("sequenceState", relIndex(sres, "prospect"), rid, false, func(r *record) bool {
				if st, _ := attr(sres, r, "state").(string); slices.Contains(from, st) {
					hit = append(hit, r)
				}
				return true
			})
			for _, old := range hit {
				rec := old.clone()
				setAttr(sres, rec, "state", to)
				setAttr(sres, rec, "stateChangedAt", ts(s.clock.Now().Truncate(time.Second)))
				s.touch(sres, rec)
				s.store.put("sequenceState", rec)
				event := "updated"
				if to == "finished" {
					event = "finished"
				}
				s.hooks.dispatch(sres, rec, old, event, changes(sres, old, rec))
			}
			return nil
		}, nil
	}
}

func onlyAttrs(attrs map[string]json.RawMessage, names ...string) *writeFailure {
	for _, k := range sortedKeys(attrs) {
		if !slices.Contains(names, k) {
			return invalid("/data/attributes/"+k, "'%s' is not accepted by this bulk action.", k)
		}
	}
	return nil
}

func missing(typ string, id int64) *writeFailure {
	return &writeFailure{404, apiError{ID: "resourceNotFound", Title: "Resource Not Found",
		Detail: fmt.Sprintf("Could not find '%s' with ID '%d'.", typ, id)}}
}

// intValue reads an integer sent as a JSON number or a string.
func intValue(raw json.RawMessage) (int64, bool) {
	var n int64
	if json.Unmarshal(raw, &n) == nil {
		return n, n > 0
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		n, err := strconv.ParseInt(str, 10, 64)
		return n, err == nil && n > 0
	}
	return 0, false
}
