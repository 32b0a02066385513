// Package load writes rows from a file or a SQL query into Outreach:
// creates, updates or upserts records of any type the catalog says is
// creatable or updatable, exactly once, writing only what changed.
//
// A load goes in chunks of rows: each row is mapped to attributes and
// relationships and validated against the catalog (types, maximum lengths,
// email formats, the org's pick lists) before any request; the records its
// match keys name are fetched in bulk (comma-list filters, many keys a
// request); relationship lookups (owner.email=...) are resolved in bulk
// the same way; each row is then planned as a create, an update of the
// attributes that differ, unchanged, or rejected.
//
// Outreach has no idempotency keys, so exactness comes from a journal (see
// Journal): each row's intent is recorded before its request and its
// outcome after. A write whose outcome is unknown (a timeout, a reset, a
// 5xx after the body was sent) is resolved by looking the record up by its
// match key before anything is sent again, and a load killed at any
// instant and run again resumes: rows already done are not written again,
// rows in flight are resolved by lookup, none is lost or duplicated.
//
// Run is the single entry point; cmd/ parses flags and calls it, and a
// destination connection can call it the same way.
package load

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Mode says what a load may do to Outreach.
type Mode string

// The modes.
const (
	// Create creates a record for each row; a row whose match key already
	// names a record is rejected.
	Create Mode = "create"
	// Update changes the records the rows' match keys name; a row that
	// matches none is rejected.
	Update Mode = "update"
	// Upsert updates the record a row matches, or creates one.
	Upsert Mode = "upsert"
)

// ParseMode reads a mode name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case Create, Update, Upsert:
		return m, nil
	}
	return "", fmt.Errorf("mode %q: use create, update or upsert", s)
}

// Status is where a row stands in the journal.
type Status string

// The statuses. Pending means the intent is recorded and the request may
// or may not have reached Outreach; every other status is final.
const (
	Pending   Status = "pending"
	Created   Status = "created"
	Updated   Status = "updated"
	Unchanged Status = "unchanged"
	Rejected  Status = "rejected"
)

// Final reports whether the status ends the row.
func (s Status) Final() bool { return s != Pending && s != "" }

// Action is the write a row needs.
type Action string

// The actions; None for rows that need no write.
const (
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionNone   Action = "none"
)

// Entry is one row of a load in the journal, identified by its match key.
type Entry struct {
	Key        string // the row's match key, canonical (emails lowercased)
	Line       int    // the row's position in the source, from 1
	Action     Action
	Status     Status
	OutreachID int64  // the record written or matched, 0 when none
	Detail     string // JSON: the rejection, or the attributes changed
	Attempts   int    // write requests sent for the row
}

// LoadInfo identifies a load in the journal.
type LoadInfo struct {
	ID     string
	Type   string
	Mode   Mode
	Match  []string
	Source string // the source as the user named it, without secrets
}

// Journal is the durable record of loads and their rows; internal/sqlstore
// implements it in the app database. Record must be durable when it
// returns: Run sends a row's request only after its pending entry is
// recorded.
type Journal interface {
	// Begin starts load l. When a load with l.ID is unfinished it is
	// resumed and its recorded rows are returned; a finished one starts
	// over with no rows (a rerun of a finished load is a new load).
	Begin(ctx context.Context, l LoadInfo) (resumed bool, rows []Entry, err error)
	// Record inserts or replaces entries of load id (by key), all in one
	// transaction.
	Record(ctx context.Context, id string, entries ...Entry) error
	// Finish marks load id finished with a summary (JSON).
	Finish(ctx context.Context, id string, summary string) error
}

// LoadID derives the id of a load from what the command names, so that a
// rerun of the same command resumes it.
func LoadID(typ string, mode Mode, match []string, source string) string {
	h := sha256.Sum256([]byte(strings.Join([]string{typ, string(mode), strings.Join(match, ","), source}, "\x00")))
	return "ld_" + hex.EncodeToString(h[:8])
}

// ErrRowsRejected is wrapped by the error Run returns when the load
// finished but rejected rows.
var ErrRowsRejected = errors.New("rows were rejected")

// ConfigError is a mistake in the load's options (an unknown attribute, a
// read-only target, a match attribute Outreach cannot filter by), found
// before any request.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

func configErr(format string, args ...any) error {
	return &ConfigError{Msg: fmt.Sprintf(format, args...)}
}
