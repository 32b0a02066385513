package load

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/outreach-connector/outreach-connector/internal/actions"
)

// Then is an action run on the records a load wrote or matched (created,
// updated or unchanged; never rejected), after its rows.
type Then struct {
	// Kind is "add-to-sequence", "assign-owner" or "add-tags".
	Kind string `json:"kind"`
	// Sequence (id or exact name) and Mailbox (id or email) of
	// add-to-sequence.
	Sequence string `json:"sequence,omitempty"`
	Mailbox  string `json:"mailbox,omitempty"`
	// Owner (id or email) of assign-owner.
	Owner string `json:"owner,omitempty"`
	// Tags of add-tags.
	Tags []string `json:"tags,omitempty"`
}

// The kinds of Then.
const (
	ThenAddToSequence = "add-to-sequence"
	ThenAssignOwner   = "assign-owner"
	ThenAddTags       = "add-tags"
)

// String is the action as --then writes it.
func (t Then) String() string {
	switch t.Kind {
	case ThenAddToSequence:
		return t.Kind + ":" + t.Sequence
	case ThenAssignOwner:
		return t.Kind + ":" + t.Owner
	case ThenAddTags:
		return t.Kind + ":" + strings.Join(t.Tags, ",")
	}
	return t.Kind
}

// ParseThen reads an action as --then writes it: add-to-sequence:SEQUENCE
// (with mailbox, the id or email of the mailbox that sends),
// assign-owner:EMAIL or add-tags:a,b.
func ParseThen(s, mailbox string) (Then, error) {
	kind, arg, _ := strings.Cut(strings.TrimSpace(s), ":")
	arg = strings.TrimSpace(arg)
	t := Then{Kind: strings.ToLower(strings.TrimSpace(kind))}
	switch t.Kind {
	case ThenAddToSequence:
		t.Sequence, t.Mailbox = arg, strings.TrimSpace(mailbox)
		if t.Sequence == "" {
			return t, fmt.Errorf("--then %s: name the sequence, as in add-to-sequence:42 or add-to-sequence:'Welcome series'", s)
		}
		if t.Mailbox == "" {
			return t, fmt.Errorf("--then %s needs --mailbox MAILBOX (its id or email): Outreach enrols a prospect only with the mailbox its emails are sent from", s)
		}
	case ThenAssignOwner:
		t.Owner = arg
		if t.Owner == "" {
			return t, fmt.Errorf("--then %s: name the owner, as in assign-owner:rep@example.com (a user's email or id)", s)
		}
	case ThenAddTags:
		for _, tag := range strings.Split(arg, ",") {
			if tag = strings.TrimSpace(tag); tag != "" && !slices.Contains(t.Tags, tag) {
				t.Tags = append(t.Tags, tag)
			}
		}
		if len(t.Tags) == 0 {
			return t, fmt.Errorf("--then %s: name the tags, as in add-tags:webinar,2026", s)
		}
	default:
		return t, fmt.Errorf("--then %q: use add-to-sequence:SEQUENCE (with --mailbox), assign-owner:EMAIL or add-tags:TAG,TAG", s)
	}
	return t, nil
}

// check says whether the action applies to records of typ.
func (t Then) check(typ string) error {
	switch {
	case t.Kind == ThenAddToSequence && typ != "prospect":
		return configErr("--then %s: only prospects are enrolled in sequences, and this load writes %ss", t, typ)
	case (t.Kind == ThenAssignOwner || t.Kind == ThenAddTags) && typ != "prospect" && typ != "account":
		return configErr("--then %s: owners and tags are set on prospects and accounts, and this load writes %ss", t, typ)
	}
	return nil
}

// ActionStatus is where one record stands for one action in the journal.
type ActionStatus string

// The action statuses. Pending means the record's request may have been
// sent; the others are final.
const (
	ActionPending ActionStatus = "pending"
	ActionDone    ActionStatus = "done"    // the action was applied (enrolled, owner set, tags added)
	ActionAlready ActionStatus = "already" // nothing to do: already in the sequence, already holding the value
	ActionFailed  ActionStatus = "failed"  // Outreach refused; Detail says why
)

// ActionEntry is one record of one action of a load in the journal.
type ActionEntry struct {
	Action   string // Then.String()
	RecordID int64
	Status   ActionStatus
	Detail   string // Outreach's reason of a failure
}

// ActionJournal is the part of a journal that records a load's actions,
// so that a load stopped while enrolling and run again does not send what
// it already sent. internal/sqlstore implements it (table load_actions).
type ActionJournal interface {
	// Actions returns the action entries of load id.
	Actions(ctx context.Context, id string) ([]ActionEntry, error)
	// RecordActions inserts or replaces entries (by action and record) in
	// one transaction and renews holder's lease; ErrLeaseLost as Record.
	RecordActions(ctx context.Context, id, holder string, entries ...ActionEntry) error
}

// ActionSummary accounts for one action over the loaded records.
type ActionSummary struct {
	Action string `json:"action"`
	// Records is the loaded records the action concerned; Done, Already
	// and Failed sum to it when the action finished.
	Records int `json:"records"`
	Done    int `json:"done"`
	Already int `json:"already"`
	Failed  int `json:"failed"`
	// FromEarlierRuns counts records an earlier run of the load finished
	// (included above, not sent again).
	FromEarlierRuns int `json:"from_earlier_runs"`
	// Requests is the API requests the action made (when
	// Options.Requests counts them).
	Requests int             `json:"requests"`
	Failures []ActionFailure `json:"failures,omitempty"`
}

// ActionFailure is a record Outreach refused the action for.
type ActionFailure struct {
	ID     int64  `json:"id"`
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

// ErrActionsFailed is wrapped by the error Run returns when the rows were
// loaded but an action failed for some records.
var ErrActionsFailed = errors.New("actions failed for some records")

// loaded is a record the load wrote or matched, for the actions.
type loaded struct {
	id      int64
	line    int
	created bool // the load created it: no sequence holds it yet
}

// noteLoaded remembers the record of a row that ended created, updated or
// unchanged.
func (r *runner) noteLoaded(e Entry) {
	if e.OutreachID == 0 || (e.Status != Created && e.Status != Updated && e.Status != Unchanged) {
		return
	}
	if r.loadedSeen == nil {
		r.loadedSeen = map[int64]bool{}
	}
	if !r.loadedSeen[e.OutreachID] {
		r.loadedSeen[e.OutreachID] = true
		r.loaded = append(r.loaded, loaded{id: e.OutreachID, line: e.Line, created: e.Status == Created})
	}
}

// thenAll runs the load's actions over the loaded records, journaling
// each record's intent before its request and its outcome after.
func (r *runner) thenAll(ctx context.Context) error {
	if len(r.opts.Then) == 0 || r.opts.DryRun {
		return nil
	}
	aj, ok := r.j.(ActionJournal)
	if !ok {
		return errors.New("the journal cannot record actions, so --then cannot run exactly once")
	}
	prev, err := aj.Actions(ctx, r.opts.LoadID)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	var failed int
	for _, t := range r.opts.Then {
		s, err := r.then(ctx, aj, t, prev)
		r.sum.Actions = append(r.sum.Actions, s)
		if err != nil {
			return fmt.Errorf("--then %s: %w", t, err)
		}
		failed += s.Failed
	}
	if failed > 0 {
		return fmt.Errorf("%d %s: %w", failed, plural(failed, "action"), ErrActionsFailed)
	}
	return nil
}

func (r *runner) then(ctx context.Context, aj ActionJournal, t Then, prev []ActionEntry) (s ActionSummary, err error) {
	name := t.String()
	s = ActionSummary{Action: name, Records: len(r.loaded)}
	if r.opts.Requests != nil {
		start := r.opts.Requests()
		defer func() { s.Requests = int(r.opts.Requests() - start) }()
	}
	lines := map[int64]int{}
	created := map[int64]bool{}
	for _, l := range r.loaded {
		lines[l.id] = l.line
		created[l.id] = l.created
	}
	fail := func(id int64, reason string) {
		s.Failed++
		s.Failures = append(s.Failures, ActionFailure{ID: id, Line: lines[id], Reason: reason})
	}
	before := map[int64]ActionEntry{}
	for _, e := range prev {
		if e.Action == name {
			before[e.RecordID] = e
		}
	}
	var todo []int64
	for _, l := range r.loaded {
		e, ok := before[l.id]
		switch {
		case ok && e.Status == ActionDone:
			s.Done++
			s.FromEarlierRuns++
		case ok && e.Status == ActionAlready:
			s.Already++
			s.FromEarlierRuns++
		case ok && e.Status == ActionFailed:
			fail(l.id, e.Detail)
			s.FromEarlierRuns++
		default:
			todo = append(todo, l.id)
		}
	}
	if len(todo) == 0 {
		return s, nil
	}
	// Resolve names once; ids go to the actions as they are.
	var sequence, mailbox string
	if t.Kind == ThenAddToSequence {
		seq, err := actions.Sequence(ctx, r.client, t.Sequence)
		if err != nil {
			return s, err
		}
		box, err := actions.Mailbox(ctx, r.client, t.Mailbox)
		if err != nil {
			return s, err
		}
		sequence, mailbox = strconv.FormatInt(seq, 10), strconv.FormatInt(box, 10)
		// Outreach enrols a prospect in a sequence once: skip those it
		// already holds (one read per 100 prospects) rather than send
		// writes it would refuse. A prospect pending in the journal and
		// now in the sequence was enrolled by the request an earlier run
		// sent.
		// A prospect this load created, and no earlier run of it acted
		// on, is in no sequence: no need to ask.
		var ask []int64
		for _, id := range todo {
			if _, acted := before[id]; acted || !created[id] {
				ask = append(ask, id)
			}
		}
		in, _, err := actions.InSequence(ctx, r.client, seq, ask)
		if err != nil {
			return s, err
		}
		var rest, settled []int64
		var entries []ActionEntry
		for _, id := range todo {
			switch {
			case !in[id]:
				rest = append(rest, id)
			case before[id].Status == ActionPending:
				s.Done++
				settled = append(settled, id)
				entries = append(entries, ActionEntry{Action: name, RecordID: id, Status: ActionDone})
			default:
				s.Already++
				entries = append(entries, ActionEntry{Action: name, RecordID: id, Status: ActionAlready})
			}
		}
		if len(entries) > 0 {
			if err := aj.RecordActions(ctx, r.opts.LoadID, r.holder, entries...); err != nil {
				return s, fmt.Errorf("journal: %w", err)
			}
		}
		todo = rest
		if len(todo) == 0 {
			return s, nil
		}
	}
	// The intents first: should the run stop after the requests went
	// out, the next run knows they may have been acted on.
	intents := make([]ActionEntry, len(todo))
	for i, id := range todo {
		intents[i] = ActionEntry{Action: name, RecordID: id, Status: ActionPending}
	}
	if err := aj.RecordActions(ctx, r.opts.LoadID, r.holder, intents...); err != nil {
		return s, fmt.Errorf("journal: %w", err)
	}
	client := r.client
	var outcomes []actions.Outcome
	switch t.Kind {
	case ThenAddToSequence:
		outcomes, err = actions.Enroll(ctx, client, sequence, mailbox, todo, r.opts.ActionOptions)
	case ThenAssignOwner:
		outcomes, err = actions.Apply(ctx, client, r.res.Type, todo, actions.Change{Owner: t.Owner}, r.opts.ActionOptions)
	case ThenAddTags:
		outcomes, err = actions.Apply(ctx, client, r.res.Type, todo, actions.Change{AddTags: t.Tags}, r.opts.ActionOptions)
	}
	var entries []ActionEntry
	for _, o := range outcomes {
		e := ActionEntry{Action: name, RecordID: o.ID}
		switch o.Result {
		case actions.Done:
			e.Status = ActionDone
			s.Done++
		case actions.Already:
			e.Status = ActionAlready
			if before[o.ID].Status == ActionPending && t.Kind == ThenAddToSequence {
				e.Status = ActionDone // our earlier request enrolled it
				s.Done++
			} else {
				s.Already++
			}
		case actions.Failed:
			e.Status, e.Detail = ActionFailed, o.Reason
			fail(o.ID, o.Reason)
		default:
			continue // stopped before its outcome was known: stays pending
		}
		entries = append(entries, e)
	}
	if len(entries) > 0 {
		if jerr := aj.RecordActions(ctx, r.opts.LoadID, r.holder, entries...); jerr != nil && err == nil {
			err = fmt.Errorf("journal: %w", jerr)
		}
	}
	return s, err
}
