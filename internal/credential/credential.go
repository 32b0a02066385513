// Package credential holds named Outreach OAuth credentials: their
// configuration, the authorize flow, and a token lifecycle that refreshes
// before expiry, one refresh at a time across goroutines and processes,
// persisting rotated tokens before anyone uses them. Secrets are encrypted
// with a Keyring before they reach a Store.
package credential

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"
)

// Status is where a credential stands.
type Status string

// The statuses of a credential.
const (
	StatusAwaiting    Status = "awaiting_authorization"
	StatusConnected   Status = "connected"
	StatusNeedsReauth Status = "needs_reauthorization"
	StatusRevoked     Status = "revoked"
)

// Environment tells development and production Outreach apps apart.
type Environment string

// The environments of an Outreach app.
const (
	Development Environment = "development"
	Production  Environment = "production"
)

// DefaultAPIBaseURL is Outreach's API.
const DefaultAPIBaseURL = "https://api.outreach.io/api/v2"

// DefaultScopes are the scopes a new credential asks for.
var defaultScopes = []string{"accounts.all", "opportunities.all", "prospects.all", "profiles.all", "tasks.all",
	"teams.all", "stages.all", "users.all", "opportunityStages.all"}

// DefaultScopes returns the scopes a new credential asks for.
func DefaultScopes() []string { return append([]string(nil), defaultScopes...) }

// Record is a credential as a Store keeps it: configuration in clear,
// secrets sealed by the Keyring.
type Record struct {
	ID          string
	Name        string
	Description string
	ClientID    string
	// ClientSecret is sealed; it is never shown once saved.
	ClientSecret []byte
	Scopes       []string
	Environment  Environment
	APIBaseURL   string
	RedirectURI  string

	Status Status
	// The Outreach user and org the credential acts for, from GET /api/v2.
	OutreachUserID    string
	OutreachUserEmail string
	OutreachOrg       string

	// Tokens are sealed JSON (access token, refresh token); nil when not
	// authorized.
	Tokens         []byte
	TokenExpiresAt time.Time
	LastRefreshAt  time.Time
	LastError      string

	CreatedAt time.Time
	UpdatedAt time.Time
}

// TokenUpdate is what one refresh or authorization writes, in one step.
type TokenUpdate struct {
	Tokens         []byte // sealed
	TokenExpiresAt time.Time
	LastRefreshAt  time.Time
	Status         Status
	LastError      string
	UpdatedAt      time.Time
	// Identity, when known (after authorization).
	OutreachUserID, OutreachUserEmail, OutreachOrg string
}

// Event is something that happened to a credential, for the UI and logs.
type Event struct {
	CredentialID string
	At           time.Time
	Kind         string // "authorized", "refreshed", "refresh_failed", "needs_reauthorization", "revoked", ...
	Message      string
}

// State is a pending authorization: the OAuth state parameter, bound to
// one browser and one credential, single use.
type State struct {
	// Hash is the SHA-256 of the state value; the value itself is never
	// stored.
	Hash         string
	CredentialID string
	// Browser is the SHA-256 of the browser-binding cookie.
	Browser string
	// Verifier is the sealed PKCE code verifier.
	Verifier  []byte
	ExpiresAt time.Time
}

// Errors of a Store.
var (
	ErrNotFound  = errors.New("credential: not found")
	ErrNameTaken = errors.New("credential: a credential with this name exists")
	// ErrInUse refuses to delete a credential that connections use; the
	// error names them.
	ErrInUse = errors.New("credential: connections use this credential; delete them, or move them to another credential, first")
)

// Store persists credentials, leases, states and events. Implementations
// live in the storage packages (sqlite, postgres) and pass the conformance
// suite in credentialtest. All methods are safe for concurrent use across
// goroutines and processes sharing the database.
type Store interface {
	// CreateCredential inserts rec; ErrNameTaken when the name is used.
	CreateCredential(ctx context.Context, rec *Record) error
	// GetCredential returns the credential with id, or ErrNotFound.
	GetCredential(ctx context.Context, id string) (*Record, error)
	// GetCredentialByName returns the credential named name, or ErrNotFound.
	GetCredentialByName(ctx context.Context, name string) (*Record, error)
	// ListCredentials returns every credential, by name.
	ListCredentials(ctx context.Context) ([]*Record, error)
	// UpdateCredential replaces every field of the credential rec.ID
	// (ErrNotFound when missing; ErrNameTaken on a name clash).
	UpdateCredential(ctx context.Context, rec *Record) error
	// SaveTokens writes a TokenUpdate in one statement.
	SaveTokens(ctx context.Context, id string, u TokenUpdate) error
	// SaveIdentity sets the Outreach user and org of credential id and
	// nothing else (ErrNotFound when missing).
	SaveIdentity(ctx context.Context, id, userID, email, org string) error
	// DeleteCredential removes the credential with its lease, states and
	// events; ErrNotFound when missing, ErrInUse (naming them) while
	// connections use it.
	DeleteCredential(ctx context.Context, id string) error

	// AcquireLease makes owner the only refresher of credential id until
	// expires, unless another owner holds an unexpired lease; it reports
	// whether owner holds the lease. It never blocks on other holders.
	AcquireLease(ctx context.Context, id, owner string, now, expires time.Time) (bool, error)
	// ReleaseLease ends owner's lease; another owner's lease is untouched.
	ReleaseLease(ctx context.Context, id, owner string) error

	// SaveState stores a pending authorization.
	SaveState(ctx context.Context, s *State) error
	// TakeState removes and returns the state with hash if it is bound
	// to browser (the SHA-256 of the binding cookie), or ErrNotFound: a
	// state can be taken once, and only by its own browser; a request
	// from another browser (or none) leaves it in place.
	TakeState(ctx context.Context, hash, browser string) (*State, error)

	// AddEvent records an event; ListEvents returns the newest first.
	AddEvent(ctx context.Context, e Event) error
	ListEvents(ctx context.Context, credentialID string, limit int) ([]Event, error)
}

func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// NewID returns a new random credential id.
func NewID() string { return randomID() }
