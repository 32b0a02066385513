// Package connection is the core domain: a connection is a credential put
// to use as a scheduled source (Outreach into a destination) or destination
// (a source into Outreach); it moves the Records of Streams into a
// Destination, whose State per stream says where the next run starts. It
// holds runs and their history, the Destination contract and its optional
// capabilities (Reconciler, Locker, Claimer, Resetter, Dropper, Inspector),
// and the stores' interfaces. It imports nothing of the project's: the sync
// engine, storage, destinations and the job engine import it.
package connection

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Direction is which way a connection moves data.
type Direction string

// The directions of a connection.
const (
	// DirectionSource reads Outreach into a destination.
	DirectionSource Direction = "source"
	// DirectionDestination writes a source into Outreach (filled in by write-back).
	DirectionDestination Direction = "destination"
)

// Limits on a connection's fields.
const (
	MaxNameLength      = 100
	MaxNamespaceLength = 40
	MaxPageSize        = 1000
)

// Connection is a credential put to use: what it syncs, where, and when.
type Connection struct {
	ID           string
	Name         string
	CredentialID string
	Direction    Direction
	// DestinationURL is where a source connection writes (for a
	// destination connection, where its rows come from: sqlite:PATH?query=SQL
	// or postgres://...?query=SQL): sqlite:PATH,
	// postgres://... (or postgresql://...) or jsonl:DIR. It may hold a
	// password: never print it whole (see RedactedURL).
	DestinationURL string
	// Streams are the streams synced; nil means every stream the
	// credential's scopes can read.
	Streams []string
	// Schedule is when the connection runs on its own.
	Schedule Schedule
	// StartDate bounds the first sync of each stream; zero means all
	// history.
	StartDate time.Time
	// PageSize is the records per request; 0 means the engine's default.
	PageSize int
	// QuotaShare is the fraction of the Outreach user's hourly request
	// limit this connection may use, in (0, 1].
	QuotaShare float64
	Paused     bool
	// Namespace keeps the connection's rows, cursors and locks apart from
	// every other connection's in the same database: a table prefix on
	// SQLite, a schema on PostgreSQL. Defaulted from the name; a clash
	// with another connection's is refused by the Store.
	Namespace string
	// NotifyURL receives a signed POST when a run fails, recovers, or the
	// credential needs re-authorization; empty means the default.
	NotifyURL string
	// Live says Outreach pushes the connection's changes as webhooks,
	// applied to its destination as they arrive (see Applier); scheduled
	// runs go on beside them.
	Live bool
	// Load is what a destination connection writes into Outreach; nil for
	// a source connection. A destination connection's rows come from its
	// DestinationURL, a SQL query (see ValidateSourceURL).
	Load *LoadSpec

	CreatedAt time.Time
	UpdatedAt time.Time
}

// NewID returns a new random connection (or run) id.
func NewID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// SetDefaults fills what the user may leave out: the direction (source),
// the quota share (1), and the namespace (from the name).
func (c *Connection) SetDefaults() {
	if c.Direction == "" {
		c.Direction = DirectionSource
	}
	if c.QuotaShare == 0 {
		c.QuotaShare = 1
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace(c.Name)
	}
}

// Validate reports every problem of c at once, each a FieldError saying
// what to fix (the error is a FieldErrors, nil when there is none).
// Messages never include a destination URL's password.
func (c *Connection) Validate() error {
	var errs FieldErrors
	add := func(field, format string, args ...any) { errs = append(errs, fieldError(field, format, args...)) }
	check := func(err error) { errs = append(errs, FieldErrorsOf(err)...) }
	check(ValidateName(c.Name))
	if c.CredentialID == "" {
		add(FieldCredential, "a credential is required")
	}
	switch c.Direction {
	case DirectionSource, DirectionDestination:
	default:
		add(FieldDirection, "direction %q is unknown; use %q or %q", c.Direction, DirectionSource, DirectionDestination)
	}
	if c.Direction == DirectionDestination {
		errs = append(errs, c.validateLoad()...)
	} else {
		check(ValidateDestinationURL(c.DestinationURL))
	}
	if c.Direction == DirectionSource && c.Load != nil {
		add(FieldLoad, "a source connection loads nothing into Outreach; leave the load out, or make the direction %q", DirectionDestination)
	}
	if c.Streams != nil && len(c.Streams) == 0 {
		add(FieldStreams, "the stream list is empty; name at least one stream, or leave it out for every readable stream")
	}
	seen := map[string]bool{}
	for _, s := range c.Streams {
		switch {
		case s == "" || strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' }):
			add(FieldStreams, "stream name %q is not a stream name (letters, digits and _)", s)
		case seen[s]:
			add(FieldStreams, "stream %q is listed twice", s)
		}
		seen[s] = true
	}
	if c.PageSize < 0 || c.PageSize > MaxPageSize {
		add(FieldPageSize, "page size %d is out of range; use 1 to %d, or 0 for the default", c.PageSize, MaxPageSize)
	}
	if !(c.QuotaShare > 0 && c.QuotaShare <= 1) {
		add(FieldQuotaShare, "quota share %g is out of range; use a fraction in (0, 1], such as 0.5 for half the hourly limit", c.QuotaShare)
	}
	check(ValidateNamespace(c.Namespace))
	if c.NotifyURL != "" {
		u, err := url.Parse(c.NotifyURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(FieldNotifyURL, "notify URL must be an absolute http:// or https:// URL")
		} else if u.User != nil {
			add(FieldNotifyURL, "notify URL must not carry a user or password; requests are signed instead")
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// ValidateName checks a connection name: 1 to MaxNameLength printable
// characters, without leading or trailing spaces.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fieldError(FieldName, "a name is required")
	case !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }):
		return fieldError(FieldName, "the name must be printable text")
	case strings.TrimSpace(name) != name:
		return fieldError(FieldName, "name %q starts or ends with a space", name)
	case utf8.RuneCountInString(name) > MaxNameLength:
		return fieldError(FieldName, "the name is longer than %d characters", MaxNameLength)
	}
	return nil
}

// DestinationKind is the scheme of a destination URL.
type DestinationKind string

// The destinations a source connection writes to.
const (
	SQLite   DestinationKind = "sqlite"
	Postgres DestinationKind = "postgres"
	JSONL    DestinationKind = "jsonl"
)

// ParseDestination returns the kind of a destination URL and its target:
// the file path for sqlite:, the directory for jsonl:, the URL itself for
// postgres://.
func ParseDestination(raw string) (DestinationKind, string, error) {
	scheme, rest, ok := strings.Cut(raw, ":")
	if !ok || raw == "" {
		return "", "", fieldError(FieldDestination, "a destination URL is required: sqlite:PATH, postgres://HOST/DB or jsonl:DIR")
	}
	switch strings.ToLower(scheme) {
	case "sqlite":
		p := strings.TrimPrefix(rest, "//")
		if p == "" {
			return "", "", fieldError(FieldDestination, "destination sqlite: needs a file path, as in sqlite:./outreach.db")
		}
		return SQLite, p, nil
	case "jsonl":
		p := strings.TrimPrefix(rest, "//")
		if p == "" {
			return "", "", fieldError(FieldDestination, "destination jsonl: needs a directory, as in jsonl:./out")
		}
		return JSONL, p, nil
	case "postgres", "postgresql":
		u, err := url.Parse(raw)
		if err != nil || !strings.HasPrefix(rest, "//") || u.Host == "" {
			return "", "", fieldError(FieldDestination, "destination postgres:// needs a host and database, as in postgres://user@127.0.0.1:5432/db")
		}
		if strings.Trim(u.Path, "/") == "" {
			return "", "", fieldError(FieldDestination, "destination %s names no database; add /DBNAME", RedactedURL(raw))
		}
		return Postgres, raw, nil
	}
	return "", "", fieldError(FieldDestination, "destination scheme %q is unknown; use sqlite:, postgres:// or jsonl:", scheme)
}

// ValidateDestinationURL checks a destination URL (see ParseDestination).
func ValidateDestinationURL(raw string) error {
	_, _, err := ParseDestination(raw)
	return err
}

// RedactedURL is a destination URL safe to print: a password is replaced
// by xxxxx, and anything unparseable is reduced to its scheme.
func RedactedURL(raw string) string {
	scheme, _, _ := strings.Cut(raw, ":")
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		u, err := url.Parse(raw)
		if err != nil {
			return scheme + "://…"
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	return raw
}

var namespacePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// ValidateNamespace checks a namespace: a lowercase SQL identifier safe
// unquoted on SQLite and PostgreSQL, of at most MaxNamespaceLength
// characters so that a table named NAMESPACE_STREAM fits PostgreSQL's 63.
func ValidateNamespace(ns string) error {
	switch {
	case ns == "":
		return fieldError(FieldNamespace, "a namespace is required (it defaults from the name)")
	case len(ns) > MaxNamespaceLength || !namespacePattern.MatchString(ns):
		return fieldError(FieldNamespace, "namespace %q is not usable; use lowercase letters, digits and _, starting with a letter, at most %d characters", ns, MaxNamespaceLength)
	case reservedNamespace(ns):
		return fieldError(FieldNamespace, "namespace %q is reserved by the database or the job queue; choose another", ns)
	}
	return nil
}

// DefaultNamespace derives a namespace from a connection name: lowercased,
// every run of other characters made one _, prefixed with c_ when it does
// not start with a letter, cut to MaxNamespaceLength. "Acme EU (prod)"
// gives acme_eu_prod.
func DefaultNamespace(name string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			under = false
		} else if !under && b.Len() > 0 {
			b.WriteByte('_')
			under = true
		}
	}
	ns := strings.TrimRight(b.String(), "_")
	if ns == "" || ns[0] < 'a' || ns[0] > 'z' || reservedNamespace(ns) {
		ns = "c_" + ns
	}
	if len(ns) > MaxNamespaceLength {
		ns = ns[:MaxNamespaceLength]
	}
	return strings.TrimRight(ns, "_")
}

// reservedNamespace reports names the databases or River keep for
// themselves.
func reservedNamespace(ns string) bool {
	return strings.HasPrefix(ns, "pg_") || strings.HasPrefix(ns, "sqlite_") || strings.HasPrefix(ns, "river") ||
		ns == "public" || ns == "information_schema"
}
