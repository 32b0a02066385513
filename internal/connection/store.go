package connection

import (
	"context"
	"errors"
	"time"
)

// Errors of a Store.
var (
	ErrNotFound       = errors.New("connection: not found")
	ErrNameTaken      = errors.New("connection: a connection with this name exists")
	ErrNamespaceTaken = errors.New("connection: another connection uses this namespace in the same destination; choose another namespace")
)

// Store persists connections and their run history. Implementations live
// in the storage packages; all methods are safe for concurrent use across
// goroutines and processes sharing the database.
type Store interface {
	// CreateConnection inserts c (validated by the caller); ErrNameTaken
	// on a name clash, ErrNamespaceTaken when another connection with the
	// same DestinationURL uses c.Namespace. Implementations pass the
	// conformance suite in connectiontest.
	CreateConnection(ctx context.Context, c *Connection) error
	// GetConnection returns the connection with id, or ErrNotFound.
	GetConnection(ctx context.Context, id string) (*Connection, error)
	// GetConnectionByName returns the connection named name, or ErrNotFound.
	GetConnectionByName(ctx context.Context, name string) (*Connection, error)
	// ListConnections returns every connection, by name.
	ListConnections(ctx context.Context) ([]*Connection, error)
	// UpdateConnection replaces every field of connection c.ID;
	// ErrNotFound, ErrNameTaken and ErrNamespaceTaken as for create.
	UpdateConnection(ctx context.Context, c *Connection) error
	// DeleteConnection removes the connection and its history (not its
	// synced data); ErrNotFound when missing.
	DeleteConnection(ctx context.Context, id string) error

	// StartRun records a run that has begun (Outcome Running).
	StartRun(ctx context.Context, r *Run) error
	// UpdateRun writes the stats and log of a run still running, so that
	// its record shows its progress if its node dies; a run already
	// finished is left as it is. ErrNotFound when the run is not stored.
	UpdateRun(ctx context.Context, r *Run) error
	// FinishRun writes a run's end: outcome, error, stats and log.
	FinishRun(ctx context.Context, r *Run) error
	// ListRuns returns the connection's runs, newest first, at most limit.
	ListRuns(ctx context.Context, connectionID string, limit int) ([]*Run, error)
}

// Scheduler keeps each scheduled connection's next due time in the
// database (next-due bookkeeping), so that runs are queued on time by
// whichever node is up. The job engine implements it.
type Scheduler interface {
	// Schedule makes connection id due by s, first at s.First(now); a
	// manual schedule removes it. Rescheduling replaces the previous due
	// time.
	Schedule(ctx context.Context, id string, s Schedule, now time.Time) error
	// Unschedule removes the connection (paused or deleted); no-op when
	// absent.
	Unschedule(ctx context.Context, id string) error
	// NextDue returns when the connection is next due; false when it is
	// not scheduled.
	NextDue(ctx context.Context, id string) (time.Time, bool, error)
}
