package connection

import (
	"context"
	"fmt"
	"os"
	"time"
)

// State is what a destination remembers of a stream between runs.
type State struct {
	// Cursor is the cursor field value up to which every record is
	// committed (ISO 8601). Empty before the first run.
	Cursor string
	// PageSize is the page size the stream's reads settled at (the size
	// its last page was fetched with), when Outreach failed larger pages;
	// 0 when unknown. The next run starts there instead of learning it
	// again from failures. Destinations without room for it keep 0.
	PageSize int `json:",omitempty"`
}

// Destination receives records. Implementations (sqlite, postgres, jsonl,
// singer) pass the conformance suite in connectiontest. Optional
// capabilities are interfaces of their own: Reconciler (deletes), Locker
// (several runs at once), and Claimer, Resetter, Dropper, Inspector
// (namespaces).
type Destination interface {
	// Prepare creates the stream's table, or adds the columns it lacks.
	Prepare(ctx context.Context, s *Stream) error
	// State returns the stream's committed state (zero when none).
	State(ctx context.Context, stream string) (State, error)
	// Write upserts records by id and commits state with them, in one
	// transaction: either both are stored or neither.
	Write(ctx context.Context, s *Stream, recs []Record, st State) error
}

// Reconciler is implemented by destinations that can record deletes: rows
// whose records vanished from Outreach are kept and marked (DeletedColumn).
// A destination without it (Singer's standard output) cannot take part in
// reconciliation.
type Reconciler interface {
	// MarkDeleted sets the deleted column, to at, on every row whose id is
	// not in live and that is not marked yet; it returns how many it marked.
	MarkDeleted(ctx context.Context, s *Stream, live []int64, at string) (int, error)
}

// Locker is implemented by destinations that several runs, in several
// processes or machines, can write at once (a database, a directory). The
// engine takes each stream before writing it and keeps its lease alive
// with a heartbeat while the stream runs. A destination without Locker is
// written by one run only (Singer's standard output).
type Locker interface {
	// Lock stores l as the stream's lease when the stream is free, when
	// the current lease is l.RunID's own (a renewal), or when the current
	// lease is Stale at now; otherwise it returns a *LockedError naming
	// the holder. Of two runs that find one lease stale, one wins.
	Lock(ctx context.Context, stream string, l Lease, now time.Time) error
	// Unlock deletes the stream's lease if runID holds it.
	Unlock(ctx context.Context, stream, runID string) error
}

// Lease is one run's hold on a stream of a destination.
type Lease struct {
	Host     string    `json:"host"`   // host name of the holder
	PID      int       `json:"pid"`    // process id of the holder on Host
	RunID    string    `json:"run_id"` // unique per Engine.Run
	Acquired time.Time `json:"acquired"`
	// Expires is when the hold lapses unless the holder renews it.
	Expires time.Time `json:"expires"`
}

// LeaseTime is how long a lease lasts unless renewed; a running stream
// renews it every LeaseTime/3. A run that dies on another host keeps its
// streams at most this long; on the same host its streams are free at
// once.
const LeaseTime = 30 * time.Second

// Stale reports whether the lease no longer protects a run at now: it has
// expired, or its holder is a process of this host that is gone.
func (l Lease) Stale(now time.Time) bool {
	if !now.Before(l.Expires) {
		return true
	}
	host, err := os.Hostname()
	return err == nil && l.Host == host && l.PID > 0 && !ProcessAlive(l.PID)
}

// LockedError is the error of Lock when another run holds the stream.
type LockedError struct {
	Stream string
	Holder Lease
}

func (e *LockedError) Error() string {
	h := e.Holder
	return fmt.Sprintf("another sync of stream %s is running: pid %d on host %s holds it since %s (its lease, renewed while it runs, "+
		"ends %s); wait for it to finish or stop it", e.Stream, h.PID, h.Host, h.Acquired.UTC().Format(time.RFC3339),
		h.Expires.UTC().Format(time.RFC3339))
}
