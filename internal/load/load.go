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
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
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

// LoadInfo identifies a load in the journal, and the process that runs
// it.
type LoadInfo struct {
	ID     string
	Type   string
	Mode   Mode
	Match  []string
	Source string // the source as the user named it, without secrets
	// Holder names the process that runs the load (host/pid/nonce).
	Holder string
	// HolderGone reports whether the process another holder names is
	// known to be gone (on this host, its pid no longer runs), so its load
	// can be taken over before its lease lapses.
	HolderGone func(holder string) bool
}

// LeaseTTL is how long a load stays its holder's after the holder last
// wrote to the journal: longer than Outreach's rate-limit window (an hour),
// which a load may wait out between two journal writes.
const LeaseTTL = 90 * time.Minute

// BusyError says another process runs the load.
type BusyError struct {
	ID, Holder string
	Heartbeat  time.Time // when the holder last wrote
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("load %s is being run by %s (last journal write %s); two runs of one load at once could write a row twice. "+
		"If that process is gone on another machine, run again after %s, or name a new load with --load-id",
		e.ID, e.Holder, e.Heartbeat.Format(time.RFC3339), e.Heartbeat.Add(LeaseTTL).Format(time.RFC3339))
}

// ErrLeaseLost is returned by Journal.Record and Finish when another
// process took the load over: the caller stops before sending anything.
var ErrLeaseLost = errors.New("another process took this load over")

// Journal is the durable record of loads and their rows; internal/sqlstore
// implements it in the app database. Record must be durable when it
// returns: Run sends a row's request only after its pending entry is
// recorded.
type Journal interface {
	// Begin starts load l for l.Holder. When a load with l.ID is
	// unfinished it is resumed and its recorded rows are returned; a
	// finished one starts over with no rows (a rerun of a finished load is
	// a new load). A load another holder wrote to less than LeaseTTL ago
	// is refused with *BusyError, unless l.HolderGone says that holder is
	// gone.
	Begin(ctx context.Context, l LoadInfo) (resumed bool, rows []Entry, err error)
	// Record inserts or replaces entries of load id (by key), all in one
	// transaction, and renews holder's lease; ErrLeaseLost when holder no
	// longer holds the load.
	Record(ctx context.Context, id, holder string, entries ...Entry) error
	// Finish marks load id finished with a summary (JSON) and releases it.
	Finish(ctx context.Context, id, holder, summary string) error
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

// newHolder names this process: host/pid/nonce.
func newHolder() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	return host + "/" + strconv.Itoa(os.Getpid()) + "/" + hex.EncodeToString(b)
}

// Holder names a run of this process in the journal as Run does
// (host/pid/name): a dead process's runs can be taken over at once.
func Holder(name string) string {
	host, _ := os.Hostname()
	return host + "/" + strconv.Itoa(os.Getpid()) + "/" + name
}

// holderGone reports whether holder names a process of this host that no
// longer runs.
func holderGone(holder string) bool {
	parts := strings.Split(holder, "/")
	if len(parts) != 3 {
		return false
	}
	host, _ := os.Hostname()
	pid, err := strconv.Atoi(parts[1])
	if err != nil || parts[0] != host {
		return false
	}
	return pid != os.Getpid() && !processAlive(pid)
}
