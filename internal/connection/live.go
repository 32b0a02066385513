package connection

import (
	"context"
	"errors"
	"fmt"
)

// EventKind is what happened to a record Outreach pushed.
type EventKind string

// The kinds of event. Member actions (task completed, sequence state
// advanced, mailing opened) are applied as updates: they carry what
// changed.
const (
	Created   EventKind = "created"
	Updated   EventKind = "updated"
	Destroyed EventKind = "destroyed"
)

// Event is one change of one record, pushed by Outreach, as a row of its
// stream.
type Event struct {
	Kind EventKind
	// Record holds the values the event carried; Set marks which of the
	// stream's columns it carried (by index). Outreach sends only what
	// changed on an update, so an unset column keeps its stored value.
	Record Record
	Set    []bool
	// At is when the event happened (ISO 8601): a destroyed record's
	// deleted column gets it.
	At string
}

// Applied is what Apply did with an event.
type Applied string

// The outcomes of Apply.
const (
	// Written: the row was inserted, changed, or marked deleted.
	Written Applied = "written"
	// Stale: the stored row is newer (a later updatedAt) or already
	// deleted, so the event changed nothing. Out-of-order and repeated
	// deliveries end here.
	Stale Applied = "stale"
)

// Applier is implemented by destinations that can apply one pushed event
// on their own, through the same tables and namespace as syncs. Created
// and updated events upsert the columns they carry, but only when the
// event's cursor value (updatedAt) is not older than the stored row's and
// the row is not marked deleted; destroyed events mark the row deleted
// (DeletedColumn) as reconciliation does, inserting the last known values
// when the row is missing. The stream's state is never changed: a pushed
// record says nothing of the records before it. Prepare has been called
// for the stream.
type Applier interface {
	Apply(ctx context.Context, s *Stream, ev Event) (Applied, error)
}

// ErrCannotApply is why a connection cannot be made live: its destination
// cannot apply single changes (Singer output, JSON Lines).
var ErrCannotApply = errors.New("this destination cannot apply changes one at a time; only SQLite and PostgreSQL destinations can be live")

// CannotApplyError wraps ErrCannotApply with the connection's name.
type CannotApplyError struct{ Connection string }

func (e *CannotApplyError) Error() string {
	return fmt.Sprintf("connection %s cannot be live: %v", e.Connection, ErrCannotApply)
}

func (e *CannotApplyError) Unwrap() error { return ErrCannotApply }
