package outreach

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// EnrollResult says what became of one prospect in EnrollProspects.
type EnrollResult int

// The results of enrolling one prospect.
const (
	// Enrolled: a sequence state was created for the prospect.
	Enrolled EnrollResult = iota + 1
	// AlreadyEnrolled: Outreach says the prospect has already been in the
	// sequence; nothing was created, and that is not an error.
	AlreadyEnrolled
	// EnrollFailed: Outreach refused (422 with its reason, 404, ...).
	EnrollFailed
)

func (r EnrollResult) String() string {
	switch r {
	case Enrolled:
		return "enrolled"
	case AlreadyEnrolled:
		return "already"
	case EnrollFailed:
		return "failed"
	}
	return "unknown"
}

// EnrollOutcome is the outcome for one prospect.
type EnrollOutcome struct {
	ProspectID int64
	Result     EnrollResult
	// SequenceStateID is the state created (Enrolled), or found when a
	// request's outcome was unknown; 0 otherwise.
	SequenceStateID int64
	// Err is Outreach's refusal for EnrollFailed (an *APIError whose
	// ErrorObject names the reason and the member at fault).
	Err error
}

// alreadyInSequence is the error code (and detail) Outreach answers when a
// prospect has already been in the sequence.
const alreadyInSequence = "has already been in this sequence"

// IsAlreadyEnrolled reports whether err is Outreach's 422 for a prospect
// that has already been in the sequence.
func IsAlreadyEnrolled(err error) bool {
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 422 {
		return false
	}
	for _, o := range apiErr.Errors {
		if strings.Contains(strings.ToLower(o.Code), alreadyInSequence) || strings.Contains(strings.ToLower(o.Detail), alreadyInSequence) {
			return true
		}
	}
	return false
}

// EnrollProspects adds each prospect to the sequence, one POST
// /sequenceStates per prospect (prospect, sequence and mailbox
// relationships), in order, and returns one outcome per prospect.
//
// Outreach's refusals are outcomes, not errors: "already been in this
// sequence" is AlreadyEnrolled, any other 4xx is EnrollFailed with the
// answer. When a request's outcome is unknown (a timeout, a reset or a 5xx
// after the request was sent), the prospect's sequence states are looked
// up (GET /sequenceStates?filter[prospect][id]=..&filter[sequence][id]=..)
// before going on, so a prospect is never enrolled twice. Anything else
// (the context, the rate-limit budget, the token, a lookup that fails)
// stops the run: the outcomes so far are returned with the error, and the
// prospects after them have none.
func (c *Client) EnrollProspects(ctx context.Context, sequenceID, mailboxID int64, prospectIDs []int64) ([]EnrollOutcome, error) {
	if sequenceID <= 0 {
		return nil, errors.New("outreach: enrolling needs a sequence id")
	}
	out := make([]EnrollOutcome, 0, len(prospectIDs))
	for _, pid := range prospectIDs {
		o, err := c.enrollOne(ctx, sequenceID, mailboxID, pid, 1)
		if err != nil {
			return out, err
		}
		out = append(out, o)
	}
	return out, nil
}

// maxEnrollAttempts bounds the sends of one enrolment whose outcome keeps
// being unknown and that each lookup shows was not acted on.
const maxEnrollAttempts = 3

func (c *Client) enrollOne(ctx context.Context, sequenceID, mailboxID, pid int64, attempt int) (EnrollOutcome, error) {
	o := EnrollOutcome{ProspectID: pid}
	r := &Resource{Type: "sequenceState", Relationships: map[string]Relationship{
		"prospect": ToOne("prospect", pid),
		"sequence": ToOne("sequence", sequenceID),
	}}
	if mailboxID != 0 {
		r.Relationships["mailbox"] = ToOne("mailbox", mailboxID)
	}
	created, err := c.Create(ctx, "sequenceStates", r)
	switch {
	case err == nil:
		o.Result, o.SequenceStateID = Enrolled, created.ID
		return o, nil
	case IsAlreadyEnrolled(err):
		o.Result = AlreadyEnrolled
		return o, nil
	case refusal(err):
		o.Result, o.Err = EnrollFailed, err
		return o, nil
	case !OutcomeUnknown(err) || ctx.Err() != nil:
		return o, fmt.Errorf("outreach: enrol prospect %d: %w", pid, err)
	}
	// The request may have been acted on: look before going on.
	for st, lerr := range c.List(ctx, "sequenceStates", &ListOptions{PageSize: 10,
		Filters: []Filter{RelIn("prospect", pid), RelIn("sequence", sequenceID)}}) {
		if lerr != nil {
			return o, fmt.Errorf("outreach: enrol prospect %d: the request's outcome is unknown (%v) and looking it up failed: %w", pid, err, lerr)
		}
		o.Result, o.SequenceStateID = Enrolled, st.ID
		return o, nil
	}
	// Not there: the request was not acted on; send it once more.
	if attempt >= maxEnrollAttempts {
		return o, fmt.Errorf("outreach: enrol prospect %d: %d attempts failed without enrolling it: %w", pid, attempt, err)
	}
	return c.enrollOne(ctx, sequenceID, mailboxID, pid, attempt+1)
}

// refusal reports whether err is Outreach refusing the request (4xx
// other than 401, 403 on scope, 408, 429): sending it again would not help.
func refusal(err error) bool {
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	var rl *RateLimitError
	var auth *AuthError
	if errors.As(err, &rl) || errors.As(err, &auth) {
		return false
	}
	s := apiErr.StatusCode
	return s >= 400 && s < 500 && s != 401 && s != 408 && s != 429
}

// OutcomeUnknown reports whether a write that failed with err may
// nevertheless have been acted on: a 5xx, a timeout, a reset or closed
// connection after the request was sent. Look the record up before
// sending such a write again; Outreach has no idempotency keys.
func OutcomeUnknown(err error) bool {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode >= 500
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || isConnReset(err)
}
