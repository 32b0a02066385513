package service

import (
	"errors"
	"fmt"
	"strings"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
)

// The service refuses what it cannot do with typed errors, so that the UI,
// the JSON API and the CLI tell the user what to fix by looking at the
// error's type (errors.Is, errors.As), never at its text. A refusal
// changes nothing (see Refused).

// Sentinels of refusals.
var (
	// ErrNotFound: no connection has the id or name given.
	ErrNotFound = connection.ErrNotFound
	// ErrConflict: another connection holds the name or the namespace
	// (a *ConflictError, which also matches connection.ErrNameTaken or
	// connection.ErrNamespaceTaken).
	ErrConflict = errors.New("service: another connection holds it")
	// ErrRunning: the action waits for the connection's run to end.
	ErrRunning = errors.New("the connection is running")
	// ErrNoRun: the connection has no run queued or running.
	ErrNoRun = errors.New("the connection has no run queued or running")
	// ErrUnsupported: the connection's destination (or direction) cannot
	// do what was asked.
	ErrUnsupported = errors.New("not supported")
)

// InvalidError is a connection refused for its fields: every problem at
// once, each naming the field and what to fix.
type InvalidError struct {
	Problems []connection.FieldError
	// Direction is the refused connection's, which tells what its
	// destination field is: where a source connection writes, or the
	// rows a destination connection reads.
	Direction connection.Direction
}

func (e *InvalidError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Message
	}
	return "connection: " + strings.Join(msgs, "; ")
}

// invalid returns an *InvalidError of problems, nil when there are none.
func invalid(problems []connection.FieldError) error {
	if len(problems) == 0 {
		return nil
	}
	return &InvalidError{Problems: problems}
}

// ConflictError is a name or namespace that another connection holds.
type ConflictError struct {
	// Field is connection.FieldName or connection.FieldNamespace.
	Field string
	// Code is "name_taken" or "namespace_taken".
	Code string
	// Name is the connection's name.
	Name string
	// Err is connection.ErrNameTaken or connection.ErrNamespaceTaken.
	Err error
}

func (e *ConflictError) Error() string { return fmt.Sprintf("connection %q: %v", e.Name, e.Err) }

// Unwrap gives both ErrConflict and the store's sentinel.
func (e *ConflictError) Unwrap() []error { return []error{ErrConflict, e.Err} }

// conflict turns the store's clash sentinels into a *ConflictError;
// other errors are wrapped with the connection's name.
func conflict(name string, err error) error {
	switch {
	case errors.Is(err, connection.ErrNameTaken):
		return &ConflictError{Field: connection.FieldName, Code: "name_taken", Name: name, Err: connection.ErrNameTaken}
	case errors.Is(err, connection.ErrNamespaceTaken):
		return &ConflictError{Field: connection.FieldNamespace, Code: "namespace_taken", Name: name, Err: connection.ErrNamespaceTaken}
	}
	return fmt.Errorf("connection %q: %w", name, err)
}

// Refused reports whether err is a refusal: the request was not carried
// out, nothing was changed, and what to fix is the caller's (invalid
// fields, a clash, a connection or credential not found, a state that
// does not allow it, an unsupported capability).
func Refused(err error) bool {
	var inv *InvalidError
	return errors.As(err, &inv) || connection.FieldErrorsOf(err) != nil || errors.Is(err, ErrConflict) ||
		errors.Is(err, connection.ErrNameTaken) || errors.Is(err, connection.ErrNamespaceTaken) || errors.Is(err, ErrNotFound) ||
		errors.Is(err, credential.ErrNotFound) ||
		errors.Is(err, ErrRunning) || errors.Is(err, ErrNoRun) || errors.Is(err, ErrUnsupported)
}

// notFoundError is a connection that no id or name names: errors.Is
// ErrNotFound.
type notFoundError struct{ name string }

func (e *notFoundError) Error() string {
	return fmt.Sprintf("connection %q not found (see `connections list`)", e.name)
}

func (e *notFoundError) Unwrap() error { return connection.ErrNotFound }
