package connection

import (
	"context"
	"fmt"
)

// A destination is opened in a namespace (a schema on PostgreSQL, a table
// prefix on SQLite, a subdirectory of JSON Lines; "" is the layout of
// earlier versions): its tables or files, stream state and locks, and its
// owner, apart from every other namespace of the same database, file or
// directory. The interfaces below are optional capabilities of such
// destinations; Singer output has none of them.

// Owner is who a namespace's data belongs to: an Outreach org, synced
// through a credential (and, for a connection, by that connection).
type Owner struct {
	// Org is the Outreach org's name as GET /api/v2 gives it ("" when not
	// known yet).
	Org string
	// CredentialID identifies the credential; Credential is its name,
	// for messages.
	CredentialID, Credential string
	// Connection names the connection, for messages ("" for a one-shot
	// sync).
	Connection string
}

// Same reports whether o and p are the same org: by org name when both
// know it, else by credential id.
func (o Owner) Same(p Owner) bool {
	if o.Org != "" && p.Org != "" {
		return o.Org == p.Org
	}
	return o.CredentialID == p.CredentialID
}

func (o Owner) String() string {
	org := "org " + o.Org
	if o.Org == "" {
		org = "an org not known yet"
	}
	via := "credential " + o.Credential
	if o.Credential == "" {
		via = "credential " + o.CredentialID
	}
	if o.Connection != "" {
		via += ", connection " + o.Connection
	}
	return org + " (" + via + ")"
}

// Claimer is implemented by destinations that record which org owns each
// namespace. The engine claims the namespace before a run writes anything
// (Options.Owner).
type Claimer interface {
	// Claim records o as the namespace's owner on its first use. When the
	// namespace belongs to another org (see Owner.Same) it returns an
	// *OwnedError and changes nothing. A claim by the same org is
	// accepted, and fills in the org's name when the owner recorded none.
	Claim(ctx context.Context, o Owner) error
}

// OwnedError is the error of Claim when the namespace belongs to another
// org.
type OwnedError struct {
	// Namespace is the namespace claimed ("" the default one); Where names
	// the destination (its password hidden).
	Namespace, Where string
	Holder           Owner
}

func (e *OwnedError) Error() string {
	ns := "namespace " + e.Namespace
	if e.Namespace == "" {
		ns = "the default namespace"
	}
	if e.Where != "" {
		ns += " of " + e.Where
	}
	return fmt.Sprintf("%s holds %s; choose another namespace", ns, e.Holder)
}

// Claim claims dst's namespace for o when dst is a Claimer and o is not
// the zero Owner; otherwise it does nothing.
func Claim(ctx context.Context, dst Destination, o Owner) error {
	c, ok := dst.(Claimer)
	if !ok || o == (Owner{}) {
		return nil
	}
	return c.Claim(ctx, o)
}

// Resetter forgets streams' state so the next run reads them again from the start date; rows stay.
type Resetter interface {
	ResetStreams(ctx context.Context, streams []string) error
}

// Dropper removes everything the destination holds in its namespace: tables or files, state, locks.
// The namespace's owner is forgotten with it.
type Dropper interface {
	DropNamespace(ctx context.Context) error
}

// Inspector reports each stream's committed cursor and row count.
type Inspector interface {
	Inspect(ctx context.Context) ([]StreamInfo, error)
}

// StreamInfo is one stream of a namespace: its committed cursor ("" before
// the first run or after a reset) and how many rows it holds (rows marked
// deleted by reconciliation not counted).
type StreamInfo struct {
	Stream, Cursor string
	Rows           int64
}
