// Package actions applies Outreach actions to many records at once and
// accounts for every record: enrolling prospects in a sequence, and
// same-value changes (owner, tags, one or more fields). Each call picks
// the way that costs fewer API requests: one request per record, or one
// of Outreach's bulk actions (a batch, polled until done, then read item by
// item through /batchItems).
//
// Every call returns one Outcome per id it was given, in the same order.
package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/outreach-connector/outreach-connector/outreach"
)

// Result is what became of one record.
type Result int

// The results.
const (
	// Pending: the run stopped (see the error returned with the
	// outcomes) before this record's outcome was known.
	Pending Result = iota
	// Done: the action was applied.
	Done
	// Already: nothing to do; the prospect was already in the sequence,
	// or the record already had the value.
	Already
	// Failed: Outreach refused; Reason says why.
	Failed
)

func (r Result) String() string {
	return [...]string{"pending", "done", "already", "failed"}[r]
}

// Outcome is the outcome for one record id.
type Outcome struct {
	ID     int64
	Result Result
	// Reason is Outreach's explanation of a failure.
	Reason string
}

// Mode forces a way; Auto picks by cost.
type Mode int

// The modes.
const (
	Auto Mode = iota
	Single
	Bulk
)

// Options tune a call. The zero value picks by cost and polls batches
// with the client's defaults.
type Options struct {
	Mode Mode
	// Wait paces the polls of a batch.
	Wait *outreach.WaitOptions
	// ExpectedPolls is the number of polls the cost estimate counts for a
	// batch (default 3).
	ExpectedPolls int
}

func (o *Options) polls() int {
	if o == nil || o.ExpectedPolls <= 0 {
		return 3
	}
	return o.ExpectedPolls
}

func (o *Options) mode() Mode {
	if o == nil {
		return Auto
	}
	return o.Mode
}

func (o *Options) wait() *outreach.WaitOptions {
	if o == nil {
		return nil
	}
	return o.Wait
}

// SingleCost is the requests of n records acted on one by one.
func SingleCost(n int) int { return n }

// BulkCost is the estimated requests of a bulk action on n records: one
// create per MaxBulkIDs records (confirmation is skipped), polls polls per
// batch, and one page of batch items per MaxPageSize records.
func BulkCost(n, polls int) int {
	if n == 0 {
		return 0
	}
	batches := (n + outreach.MaxBulkIDs - 1) / outreach.MaxBulkIDs
	return batches*(1+polls) + (n+outreach.MaxPageSize-1)/outreach.MaxPageSize
}

func useBulk(n int, o *Options) bool {
	switch o.mode() {
	case Single:
		return false
	case Bulk:
		return true
	}
	return BulkCost(n, o.polls()) < SingleCost(n)
}

// Enroll adds the prospects to the sequence, sending from the mailbox.
// sequence is an id or a sequence's exact name; mailbox an id or a
// mailbox's email ("" sends none, and Outreach then refuses every
// prospect, which is reported per prospect). A prospect already in the
// sequence is Already (after a bulk action whose answer was lost and
// which was therefore sent again, so are the prospects the first one
// enrolled). The outcomes are one per id, in order; an error
// means the run stopped (the lookup failed, the context ended, the token
// or the rate-limit budget gave out) and the outcomes not known are
// Pending.
func Enroll(ctx context.Context, c *outreach.Client, sequence, mailbox string, prospectIDs []int64, opts *Options) ([]Outcome, error) {
	out := pending(prospectIDs)
	seqID, err := lookup(ctx, c, "sequences", "name", sequence)
	if err != nil {
		return out, fmt.Errorf("sequence: %w", err)
	}
	var boxID int64
	if mailbox != "" {
		if boxID, err = lookup(ctx, c, "mailboxes", "email", mailbox); err != nil {
			return out, fmt.Errorf("mailbox: %w", err)
		}
	}
	ids := unique(prospectIDs)
	if !useBulk(len(ids), opts) {
		res, err := c.EnrollProspects(ctx, seqID, boxID, ids)
		got := map[int64]Outcome{}
		for _, r := range res {
			o := Outcome{ID: r.ProspectID}
			switch r.Result {
			case outreach.Enrolled:
				o.Result = Done
			case outreach.AlreadyEnrolled:
				o.Result = Already
			default:
				o.Result, o.Reason = Failed, reason(r.Err)
			}
			got[o.ID] = o
		}
		return fill(out, got), err
	}
	attrs := map[string]any{"sequenceId": seqID}
	if boxID != 0 {
		attrs["mailboxId"] = boxID
	}
	got, err := runBulk(ctx, c, outreach.BulkAction{Name: "prospectsAddToSequence", Attributes: attrs}, ids, opts, func(info string) Result {
		if strings.Contains(strings.ToLower(info), "already been in this sequence") {
			return Already
		}
		return Failed
	})
	return fill(out, got), err
}

// Change is a same-value change for Apply; set exactly one of its parts.
type Change struct {
	// Owner is the new owner: a user id, or a user's email.
	Owner string
	// AddTags are added to each record's tags.
	AddTags []string
	// Fields are attribute values, such as {"title": "CTO"}.
	Fields map[string]any
}

func (ch Change) kind() (string, error) {
	n := 0
	kind := ""
	if ch.Owner != "" {
		n, kind = n+1, "owner"
	}
	if len(ch.AddTags) > 0 {
		n, kind = n+1, "tags"
	}
	if len(ch.Fields) > 0 {
		n, kind = n+1, "fields"
	}
	if n != 1 {
		return "", errors.New("actions: a change sets exactly one of Owner, AddTags or Fields")
	}
	return kind, nil
}

// bulkNames are Outreach's bulk actions by type and kind of change.
var bulkNames = map[string]map[string]string{
	"prospect": {"owner": "prospectsAssignOwner", "tags": "prospectsAddTags", "fields": "prospectsBulkModify"},
	"account":  {"owner": "accountsAssignOwner", "tags": "accountAddTags", "fields": "accountsBulkModify"},
}

// Apply makes the same change to records of typ ("prospect", "account",
// or a custom object's name). It first reads the records' current values
// (100 ids a request) so that records already holding the value are
// Already and cost no write; the others are changed one PATCH each, or by
// one bulk action when that costs fewer requests (owner, tags and fields of
// prospects and accounts; fields of custom objects). A record that does not
// exist is Failed. Outcomes and errors are as for Enroll.
func Apply(ctx context.Context, c *outreach.Client, typ string, ids []int64, ch Change, opts *Options) ([]Outcome, error) {
	out := pending(ids)
	kind, err := ch.kind()
	if err != nil {
		return out, err
	}
	path, bulk := typ+"s", bulkNames[typ][kind]
	params := map[string]string(nil)
	if _, std := bulkNames[typ]; !std {
		path = "customObjects/" + typ
		if kind == "fields" {
			bulk, params = "customObjectBulkModify", map[string]string{"objectName": typ}
		}
	}
	var owner int64
	if kind == "owner" {
		if owner, err = lookup(ctx, c, "users", "email", ch.Owner); err != nil {
			return out, fmt.Errorf("owner: %w", err)
		}
	}
	// Read what the records hold now.
	current := map[int64]*outreach.Resource{}
	uids := unique(ids)
	for chunk := range slices.Chunk(uids, 100) {
		vals := make([]any, len(chunk))
		for i, id := range chunk {
			vals[i] = id
		}
		for r, err := range c.List(ctx, path, &outreach.ListOptions{Filters: []outreach.Filter{outreach.In("id", vals...)}, PageSize: 100}) {
			if err != nil {
				return out, fmt.Errorf("read %s: %w", path, err)
			}
			current[r.ID] = r
		}
	}
	got := map[int64]Outcome{}
	var todo []int64
	for _, id := range uids {
		r, ok := current[id]
		switch {
		case !ok:
			got[id] = Outcome{ID: id, Result: Failed, Reason: fmt.Sprintf("Could not find '%s' with ID '%d'.", typ, id)}
		case holds(r, kind, owner, ch):
			got[id] = Outcome{ID: id, Result: Already}
		default:
			todo = append(todo, id)
		}
	}
	if bulk != "" && useBulk(len(todo), opts) {
		attrs := map[string]any{}
		switch kind {
		case "owner":
			attrs["ownerId"] = owner
		case "tags":
			attrs["tags"] = ch.AddTags
		case "fields":
			maps.Copy(attrs, ch.Fields)
		}
		res, err := runBulk(ctx, c, outreach.BulkAction{Name: bulk, Attributes: attrs, Params: params}, todo, opts, func(string) Result { return Failed })
		maps.Copy(got, res)
		return fill(out, got), err
	}
	for _, id := range todo {
		w := &outreach.Resource{Type: typ, ID: id}
		switch kind {
		case "owner":
			w.Relationships = map[string]outreach.Relationship{"owner": outreach.ToOne("user", owner)}
		case "tags":
			w.Attributes = map[string]json.RawMessage{"tags": mustJSON(union(tags(current[id]), ch.AddTags))}
		case "fields":
			w.Attributes = map[string]json.RawMessage{}
			for k, v := range ch.Fields {
				w.Attributes[k] = mustJSON(v)
			}
		}
		_, err := c.Update(ctx, path, w)
		switch {
		case err == nil:
			got[id] = Outcome{ID: id, Result: Done}
		case refused(err):
			got[id] = Outcome{ID: id, Result: Failed, Reason: reason(err)}
		default:
			// A PATCH sets values: sending it again is harmless, but the
			// client does not retry writes; stop and say so.
			return fill(out, got), fmt.Errorf("update %s %d: %w", typ, id, err)
		}
	}
	return fill(out, got), nil
}

// holds reports whether r already has the change.
func holds(r *outreach.Resource, kind string, owner int64, ch Change) bool {
	switch kind {
	case "owner":
		return r.Relationships["owner"].ID() == owner
	case "tags":
		have := tags(r)
		for _, t := range ch.AddTags {
			if !slices.Contains(have, t) {
				return false
			}
		}
		return true
	case "fields":
		for k, v := range ch.Fields {
			var cur, want any
			if json.Unmarshal(r.Attributes[k], &cur) != nil || json.Unmarshal(mustJSON(v), &want) != nil || fmt.Sprint(cur) != fmt.Sprint(want) {
				return false
			}
		}
		return true
	}
	return false
}

func tags(r *outreach.Resource) []string {
	var t []string
	if r != nil {
		json.Unmarshal(r.Attributes["tags"], &t)
	}
	return t
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, t := range b {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

func mustJSON(v any) json.RawMessage {
	raw, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage("null")
	}
	return raw
}

// maxBulkAttempts bounds the sends of one bulk action whose answer is lost.
const maxBulkAttempts = 3

// runBulk runs the action on ids (MaxBulkIDs per batch, skipping
// Outreach's confirmation: the ids are explicit), waits for each batch and
// reads its items. failure classifies a failed item's info.
func runBulk(ctx context.Context, c *outreach.Client, a outreach.BulkAction, ids []int64, opts *Options, failure func(info string) Result) (map[int64]Outcome, error) {
	got := map[int64]Outcome{}
	for chunk := range slices.Chunk(ids, outreach.MaxBulkIDs) {
		a.IDs, a.SkipConfirmation = chunk, true
		b, err := c.RunBulkAction(ctx, a, opts.wait())
		for attempt := 1; b == nil && err != nil && outreach.OutcomeUnknown(err) && ctx.Err() == nil && attempt < maxBulkAttempts; attempt++ {
			// The batch may or may not exist. Every action used here is
			// safe to run twice (setting a value, adding a tag, enrolling:
			// a second enrolment fails its item as already enrolled), so
			// run it again rather than guess.
			b, err = c.RunBulkAction(ctx, a, opts.wait())
		}
		if err != nil {
			var apiErr *outreach.APIError
			if b == nil && refused(err) && errors.As(err, &apiErr) && apiErr.StatusCode == 422 {
				// Outreach refused the whole action: every record fails
				// with its reason.
				for _, id := range chunk {
					got[id] = Outcome{ID: id, Result: Failed, Reason: reason(err)}
				}
				continue
			}
			return got, fmt.Errorf("bulk %s: %w", a.Name, err)
		}
		want := map[int64]bool{}
		for _, id := range chunk {
			want[id] = true
		}
		for it, err := range c.BatchItems(ctx, b.ID, nil) {
			if err != nil {
				return got, fmt.Errorf("bulk %s: items of batch %d: %w", a.Name, b.ID, err)
			}
			id, ok := it.Target()
			if !ok || !want[id] {
				continue
			}
			switch {
			case it.Succeeded():
				got[id] = Outcome{ID: id, Result: Done}
			case it.Failed != nil && *it.Failed:
				info := ""
				if it.Info != nil {
					info = *it.Info
				}
				if r := failure(info); r == Failed {
					got[id] = Outcome{ID: id, Result: Failed, Reason: info}
				} else {
					got[id] = Outcome{ID: id, Result: r}
				}
			default:
				state := "unknown"
				if it.State != nil {
					state = *it.State
				}
				got[id] = Outcome{ID: id, Result: Failed, Reason: "The batch ended with this item " + state + "."}
			}
		}
		for _, id := range chunk {
			if _, ok := got[id]; !ok {
				got[id] = Outcome{ID: id, Result: Failed, Reason: fmt.Sprintf("Batch %d has no item for this record.", b.ID)}
			}
		}
	}
	return got, nil
}

// lookup resolves an id ("42") or a unique attribute value (a name, an
// email) of a record at path.
func lookup(ctx context.Context, c *outreach.Client, path, attr, v string) (int64, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, fmt.Errorf("give an id or the %s", attr)
	}
	if id, err := strconv.ParseInt(v, 10, 64); err == nil && id > 0 {
		return id, nil
	}
	var found []int64
	for r, err := range c.List(ctx, path, &outreach.ListOptions{Filters: []outreach.Filter{outreach.Eq(attr, v)}, PageSize: 2}) {
		if err != nil {
			return 0, fmt.Errorf("look up %s %q: %w", attr, v, err)
		}
		found = append(found, r.ID)
		if len(found) == 2 {
			break
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("no %s has the %s %q; give its id or the exact %s", strings.TrimSuffix(strings.TrimSuffix(path, "es"), "s"), attr, v, attr)
	case 1:
		return found[0], nil
	}
	return 0, fmt.Errorf("more than one of %s has the %s %q; give the id", path, attr, v)
}

func refused(err error) bool {
	var apiErr *outreach.APIError
	var rl *outreach.RateLimitError
	var auth *outreach.AuthError
	if !errors.As(err, &apiErr) || errors.As(err, &rl) || errors.As(err, &auth) {
		return false
	}
	return apiErr.StatusCode >= 400 && apiErr.StatusCode < 500 && apiErr.StatusCode != 408
}

// reason is Outreach's explanation in err: the error objects' details
// with their pointers.
func reason(err error) string {
	var apiErr *outreach.APIError
	if !errors.As(err, &apiErr) || len(apiErr.Errors) == 0 {
		if err == nil {
			return ""
		}
		return err.Error()
	}
	var parts []string
	for _, o := range apiErr.Errors {
		s := o.Detail
		if s == "" {
			s = o.Title
		}
		if o.Source.Pointer != "" {
			s += " (" + o.Source.Pointer + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func pending(ids []int64) []Outcome {
	out := make([]Outcome, len(ids))
	for i, id := range ids {
		out[i] = Outcome{ID: id, Result: Pending}
	}
	return out
}

// fill sets each outcome (one per input id, duplicates included) from got.
func fill(out []Outcome, got map[int64]Outcome) []Outcome {
	for i := range out {
		if o, ok := got[out[i].ID]; ok {
			out[i] = o
		}
	}
	return out
}

func unique(ids []int64) []int64 {
	seen := make(map[int64]bool, len(ids))
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
