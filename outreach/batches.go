package outreach

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Bulk actions run through Outreach's batches: POST
// /batches/actions/<name> selects records (by ids, or by a filter) and
// answers a batch; the batch is confirmed (unless created with
// skipConfirmation), processed by Outreach in the background, and leaves one
// batch item per record with its own state, failed flag and info. A bulk
// action costs one request whatever its size (up to MaxBulkIDs records),
// plus the polls that wait for it and the pages of its items.

// MaxBulkIDs is the most records one bulk action may select.
const MaxBulkIDs = 100000

// BulkAction describes POST /batches/actions/<Name>.
type BulkAction struct {
	// Name is Outreach's action, such as "prospectsAssignOwner",
	// "prospectsAddTags", "prospectsBulkModify" or "prospectsAddToSequence".
	Name string
	// IDs are the records to act on, sent as data.attributes.ids. When
	// empty, Filters select the records instead.
	IDs []int64
	// Filters select the records when IDs is empty, sent as
	// actionParams[filter] in Outreach's newFilterSyntax. With neither IDs
	// nor Filters Outreach acts on EVERY record of the type, so the client
	// refuses that unless All is set.
	Filters []Filter
	All     bool
	// Attributes are the action's values, such as {"ownerId": 3},
	// {"tags": []string{"x"}} or {"sequenceId": 7, "mailboxId": 2}.
	Attributes map[string]any
	// SkipConfirmation starts the batch at once (actionParams
	// [skipConfirmation]=true) instead of waiting for ConfirmBatch.
	SkipConfirmation bool
	// Params are other actionParams, such as {"objectName": "project"}
	// for custom objects.
	Params map[string]string
}

func (a *BulkAction) request() (string, []byte, error) {
	if a.Name == "" || strings.ContainsAny(a.Name, "/?#") {
		return "", nil, fmt.Errorf("outreach: bulk action name %q is not an action name", a.Name)
	}
	if len(a.IDs) == 0 && len(a.Filters) == 0 && !a.All {
		return "", nil, fmt.Errorf("outreach: bulk action %s names no ids and no filter, which would act on every record; set All to mean that", a.Name)
	}
	if len(a.IDs) > MaxBulkIDs {
		return "", nil, fmt.Errorf("outreach: bulk action %s has %d ids; Outreach takes at most %d per request", a.Name, len(a.IDs), MaxBulkIDs)
	}
	attrs := map[string]any{}
	for k, v := range a.Attributes {
		if k == "ids" {
			return "", nil, errors.New("outreach: put the records in BulkAction.IDs, not in Attributes")
		}
		attrs[k] = v
	}
	if len(a.IDs) > 0 {
		attrs["ids"] = a.IDs
	}
	body, err := json.Marshal(map[string]any{"data": map[string]any{"attributes": attrs}})
	if err != nil {
		return "", nil, fmt.Errorf("outreach: bulk action %s: %w", a.Name, err)
	}
	q := url.Values{}
	if len(a.IDs) == 0 {
		for _, f := range a.Filters {
			if err := f.addBulk(q); err != nil {
				return "", nil, err
			}
		}
	}
	if a.SkipConfirmation {
		q.Set("actionParams[skipConfirmation]", "true")
	}
	for k, v := range a.Params {
		q.Set("actionParams["+k+"]", v)
	}
	ref := "batches/actions/" + url.PathEscape(a.Name)
	if len(q) > 0 {
		ref += "?" + q.Encode()
	}
	return ref, body, nil
}

// addBulk adds the filter as actionParams[filter][...] in newFilterSyntax.
func (f Filter) addBulk(q url.Values) error {
	if f.key == "" {
		return errors.New("outreach: a filter needs an attribute name")
	}
	key := "actionParams[filter][" + f.key + "]"
	switch {
	case f.null == 1:
		q.Add(key, "__null__")
	case f.null == 2:
		q.Add(key, "__notnull__")
	case f.rng:
		if f.lo != "" {
			q.Add(key+"[gte]", f.lo)
		}
		if f.hi != "" {
			q.Add(key+"[lte]", f.hi)
		}
	case len(f.values) == 1:
		q.Add(key, f.values[0])
	default:
		for _, v := range f.values {
			q.Add(key+"[]", v)
		}
	}
	return nil
}

// Batch states as the sandbox names them; Outreach does not document its
// state names, so Done also trusts finishedAt and canceledAt.
const (
	BatchPending    = "pending"
	BatchProcessing = "processing"
	BatchFinished   = "finished"
	BatchCanceled   = "canceled"
)

// Done reports whether the batch will change no more: finished or
// canceled, by its state or its finishedAt / canceledAt.
func (b *Batch) Done() bool {
	if b.FinishedAt != nil || b.CanceledAt != nil {
		return true
	}
	if b.State == nil {
		return false
	}
	switch strings.ToLower(*b.State) {
	case "finished", "complete", "completed", "done", "canceled", "cancelled", "failed", "error":
		return true
	}
	return false
}

// Canceled reports whether the batch was canceled.
func (b *Batch) Canceled() bool {
	return b.CanceledAt != nil || (b.State != nil && (strings.EqualFold(*b.State, "canceled") || strings.EqualFold(*b.State, "cancelled")))
}

// Target returns the record a batch item acted on, read from its data
// ({"type": "prospect", "id": 12}; a bare id or {"id": 12} too).
func (it *BatchItem) Target() (int64, bool) {
	if it.Data == nil {
		return 0, false
	}
	s := strings.TrimSpace(*it.Data)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, n > 0
	}
	var d struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal([]byte(s), &d) != nil || len(d.ID) == 0 {
		return 0, false
	}
	var n int64
	if json.Unmarshal(d.ID, &n) == nil {
		return n, n > 0
	}
	var str string
	if json.Unmarshal(d.ID, &str) == nil {
		n, err := strconv.ParseInt(str, 10, 64)
		return n, err == nil && n > 0
	}
	return 0, false
}

// Succeeded reports whether the item was processed without failure.
func (it *BatchItem) Succeeded() bool {
	return (it.Failed == nil || !*it.Failed) && it.State != nil && !strings.EqualFold(*it.State, BatchPending) &&
		!strings.EqualFold(*it.State, BatchCanceled) && !strings.EqualFold(*it.State, "cancelled") && !strings.EqualFold(*it.State, "processing")
}

func decodeBatch(body []byte) (*Batch, error) {
	r, err := decodeOne(body)
	if err != nil {
		return nil, err
	}
	return Decode[Batch](r)
}

// CreateBatch runs POST /batches/actions/<a.Name> and returns the batch.
// Validation failures (an unknown owner, a read-only attribute) are
// *APIError with status 422; nothing was created. The request is not
// retried after a failure the server may have acted on.
func (c *Client) CreateBatch(ctx context.Context, a BulkAction) (*Batch, error) {
	ref, body, err := a.request()
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(ctx, "POST", ref, body)
	if err != nil {
		return nil, err
	}
	return decodeBatch(resp)
}

// ConfirmBatch confirms a pending batch; count is its confirmCount (sent
// as actionParams[confirmedCount], which Outreach requires for large
// batches), or 0 to send none.
func (c *Client) ConfirmBatch(ctx context.Context, id, count int64) (*Batch, error) {
	var params map[string]string
	if count > 0 {
		params = map[string]string{"confirmedCount": strconv.FormatInt(count, 10)}
	}
	r, err := c.Action(ctx, "batches", id, "confirm", params)
	if err != nil {
		return nil, err
	}
	return Decode[Batch](r)
}

// CancelBatch cancels a pending or processing batch; items not yet
// processed are not.
func (c *Client) CancelBatch(ctx context.Context, id int64) (*Batch, error) {
	r, err := c.Action(ctx, "batches", id, "cancel", nil)
	if err != nil {
		return nil, err
	}
	return Decode[Batch](r)
}

// GetBatch fetches a batch.
func (c *Client) GetBatch(ctx context.Context, id int64) (*Batch, error) {
	return GetAs[Batch](ctx, c, id)
}

// WaitOptions pace WaitBatch's polls.
type WaitOptions struct {
	// First is the wait before the first poll (default 1 s); Max the
	// longest between two polls (default 30 s).
	First, Max time.Duration
	// Progress, when set, is called with the batch after every poll.
	Progress func(*Batch)
}

// WaitBatch polls GET /batches/{id} until the batch is done (see
// Batch.Done) and returns it. Polls go through the client's rate limiter
// like any request. The wait between polls starts at First; when the batch
// made progress it is the time the remaining items should take at the
// speed observed, otherwise it doubles; it is never shorter than First nor
// longer than Max. A canceled ctx stops the wait with ctx's error.
func (c *Client) WaitBatch(ctx context.Context, id int64, opts *WaitOptions) (*Batch, error) {
	return c.waitBatch(ctx, id, opts, -1)
}

// waitBatch waits; lastPending is the batch's pending count when known
// (-1 otherwise), so the first poll can already measure the speed.
func (c *Client) waitBatch(ctx context.Context, id int64, opts *WaitOptions, lastPending int64) (*Batch, error) {
	o := WaitOptions{}
	if opts != nil {
		o = *opts
	}
	if o.First <= 0 {
		o.First = time.Second
	}
	if o.Max < o.First {
		o.Max = max(30*time.Second, o.First)
	}
	wait := o.First
	for {
		if err := c.sleep(ctx, wait); err != nil {
			return nil, err
		}
		b, err := c.GetBatch(ctx, id)
		if err != nil {
			return nil, err
		}
		if o.Progress != nil {
			o.Progress(b)
		}
		if b.Done() {
			return b, nil
		}
		pending := int64(-1)
		if b.Pending != nil {
			pending = *b.Pending
		}
		switch {
		case lastPending > 0 && pending >= 0 && pending < lastPending:
			// Items per wait so far: expect the rest to take as long.
			done := lastPending - pending
			wait = time.Duration(float64(wait) * float64(pending) / float64(done))
		default:
			wait *= 2
		}
		wait = min(max(wait, o.First), o.Max)
		lastPending = pending
	}
}

// BatchItems iterates over the items of batch id (GET
// /batchItems?filter[batch][id]=id, in pages of opts.PageSize, default
// 1000), with opts' other filters, such as Eq("failed", true).
func (c *Client) BatchItems(ctx context.Context, id int64, opts *ListOptions) iter.Seq2[*BatchItem, error] {
	o := ListOptions{}
	if opts != nil {
		o = *opts
	}
	o.Filters = append([]Filter{RelIn("batch", id)}, o.Filters...)
	return func(yield func(*BatchItem, error) bool) {
		for r, err := range c.List(ctx, "batchItems", &o) {
			if err != nil {
				yield(nil, err)
				return
			}
			it, err := Decode[BatchItem](r)
			if !yield(it, err) || err != nil {
				return
			}
		}
	}
}

// RunBulkAction creates the batch, confirms it with its confirmCount
// unless a.SkipConfirmation started it, and waits until it is done. It
// returns the batch as it ended; read its items with BatchItems. When
// waiting fails, the batch returned is the one created, with the error.
func (c *Client) RunBulkAction(ctx context.Context, a BulkAction, wait *WaitOptions) (*Batch, error) {
	b, err := c.CreateBatch(ctx, a)
	if err != nil {
		return nil, err
	}
	if !a.SkipConfirmation && !b.Done() && b.State != nil && strings.EqualFold(*b.State, BatchPending) {
		var count int64
		if b.ConfirmCount != nil {
			count = *b.ConfirmCount
		}
		cb, err := c.ConfirmBatch(ctx, b.ID, count)
		if err != nil {
			return b, fmt.Errorf("outreach: confirm batch %d: %w", b.ID, err)
		}
		b = cb
	}
	if b.Done() {
		return b, nil
	}
	pending := int64(-1)
	if b.Pending != nil {
		pending = *b.Pending
	}
	done, err := c.waitBatch(ctx, b.ID, wait, pending)
	if err != nil {
		return b, fmt.Errorf("outreach: wait for batch %d: %w", b.ID, err)
	}
	return done, nil
}
