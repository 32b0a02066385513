package connection

import (
	"errors"
	"fmt"
	"strings"
)

// The fields of a connection that a FieldError names: the names the JSON
// API gives them (the CLI maps them to its flags).
const (
	FieldName        = "name"
	FieldCredential  = "credential"
	FieldDirection   = "direction"
	FieldDestination = "destination_url"
	FieldStreams     = "streams"
	FieldSchedule    = "schedule"
	FieldStartDate   = "start_date"
	FieldPageSize    = "page_size"
	FieldQuotaShare  = "quota_share"
	FieldNamespace   = "namespace"
	FieldNotifyURL   = "notify_url"
	FieldLoad        = "load"
)

// FieldError is what is wrong with one field of a connection: the field,
// and a message that says what to fix (never a destination URL's
// password).
type FieldError struct {
	Field   string
	Message string
}

func (e FieldError) Error() string {
	if e.Field == FieldSchedule {
		return "schedule: " + e.Message
	}
	return "connection: " + e.Message
}

func fieldError(field, format string, args ...any) FieldError {
	return FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// FieldErrors is every problem Validate found, one FieldError a field
// problem; its text is one line each.
type FieldErrors []FieldError

func (es FieldErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// FieldErrorsOf returns the field problems err holds (a FieldErrors or a
// FieldError, wrapped or not); nil when it holds none.
func FieldErrorsOf(err error) []FieldError {
	var es FieldErrors
	if errors.As(err, &es) {
		return es
	}
	var e FieldError
	if errors.As(err, &e) {
		return []FieldError{e}
	}
	return nil
}
