package actions

import (
	"context"
	"fmt"

	"github.com/outreach-connector/outreach-connector/outreach"
)

// Sequence resolves a sequence given by id ("42") or exact name to its id
// (one request for a name, none for an id).
func Sequence(ctx context.Context, c *outreach.Client, sequence string) (int64, error) {
	id, err := lookup(ctx, c, "sequences", "name", sequence)
	if err != nil {
		return 0, fmt.Errorf("sequence: %w", err)
	}
	return id, nil
}

// Mailbox resolves a mailbox given by id or email to its id.
func Mailbox(ctx context.Context, c *outreach.Client, mailbox string) (int64, error) {
	id, err := lookup(ctx, c, "mailboxes", "email", mailbox)
	if err != nil {
		return 0, fmt.Errorf("mailbox: %w", err)
	}
	return id, nil
}

// InSequence returns the prospects among ids that have been in the
// sequence (a sequence state exists for them, in any state), reading
// sequence states 100 prospects a request. Outreach enrols a prospect in
// a sequence once: these are the ones an enrolment would refuse.
func InSequence(ctx context.Context, c *outreach.Client, sequenceID int64, ids []int64) (map[int64]bool, int, error) {
	in := map[int64]bool{}
	requests := 0
	for _, chunk := range chunks(unique(ids), 100) {
		opts := &outreach.ListOptions{PageSize: outreach.MaxPageSize,
			Filters: []outreach.Filter{outreach.RelIn("prospect", chunk...), outreach.RelIn("sequence", sequenceID)},
			Fields:  map[string][]string{"sequenceState": {"state", "prospect"}}}
		for page, err := range c.Pages(ctx, "sequenceStates", opts) {
			requests++
			if err != nil {
				return in, requests, fmt.Errorf("read the sequence's states: %w", err)
			}
			for _, st := range page.Resources {
				if pid := st.Relationships["prospect"].ID(); pid != 0 {
					in[pid] = true
				}
			}
		}
	}
	return in, requests, nil
}

func chunks(ids []int64, n int) [][]int64 {
	var out [][]int64
	for len(ids) > n {
		out = append(out, ids[:n])
		ids = ids[n:]
	}
	if len(ids) > 0 {
		out = append(out, ids)
	}
	return out
}
