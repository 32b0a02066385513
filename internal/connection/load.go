package connection

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// LoadSpec is what a destination connection writes into Outreach on each
// run: the rows of its source (the connection's DestinationURL, a SQL
// query) loaded as records of Type, matched by Match. The write-back
// package (internal/load) does the work; this is its stored form.
type LoadSpec struct {
	Type    string            `json:"type"`              // prospect, account, ... or a custom object
	Mode    string            `json:"mode"`              // create, update or upsert
	Match   []string          `json:"match"`             // the attributes that identify a record
	Map     map[string]string `json:"map,omitempty"`     // column → attribute, rel.attr, custom field label, or "" to skip
	Then    []string          `json:"then,omitempty"`    // actions after the rows, as load --then writes them
	Mailbox string            `json:"mailbox,omitempty"` // the mailbox of an add-to-sequence action
}

// validateLoad checks a destination connection's source and load.
func (c *Connection) validateLoad() FieldErrors {
	var errs FieldErrors
	add := func(field, format string, args ...any) { errs = append(errs, fieldError(field, format, args...)) }
	if err := ValidateSourceURL(c.DestinationURL); err != nil {
		add(FieldDestination, "%s", strings.TrimPrefix(err.Error(), "connection: "))
	}
	if c.Streams != nil {
		add(FieldStreams, "a destination connection writes into Outreach and reads no streams; leave the streams out")
	}
	l := c.Load
	if l == nil {
		add(FieldLoad, "a destination connection needs what to load: a type, a mode and match attributes")
		return errs
	}
	if strings.TrimSpace(l.Type) == "" {
		add(FieldLoad, "name the type of records to write (prospect, account, ...)")
	}
	switch l.Mode {
	case "create", "update", "upsert":
	default:
		add(FieldLoad, "mode %q: use create, update or upsert", l.Mode)
	}
	if len(l.Match) == 0 {
		add(FieldLoad, "name the match attributes that identify a record (emails for prospects, domain for accounts, ...): a load cannot be exact without them")
	}
	return errs
}

// ValidateSourceURL checks the source of a destination connection:
// sqlite:PATH?query=SQL or postgres://...?query=SQL. A PostgreSQL URL must
// not carry a password: the connection is stored in the app database, and
// a password there would be kept in clear; give it through the
// environment of serve (PGPASSWORD) or a password file (~/.pgpass,
// PGPASSFILE) instead.
func ValidateSourceURL(raw string) error {
	scheme, rest, ok := strings.Cut(raw, ":")
	i := strings.Index(rest, "?query=")
	if i < 0 {
		i = strings.Index(rest, "&query=")
	}
	if !ok || raw == "" {
		return errors.New("connection: a destination connection needs a source: sqlite:PATH?query=SELECT ... or postgres://HOST/DB?query=SELECT ...")
	}
	switch strings.ToLower(scheme) {
	case "sqlite":
		if i <= 0 || strings.TrimSpace(strings.TrimPrefix(rest[:i], "//")) == "" {
			return errors.New("connection: source sqlite: needs a file and a query, as in sqlite:/data/warehouse.db?query=SELECT email FROM signups")
		}
	case "postgres", "postgresql":
		if i < 0 {
			return errors.New("connection: source postgres:// needs ?query=SELECT ... last in the URL (the rows to load)")
		}
		u, err := url.Parse(raw[:len(scheme)+1+i])
		if err != nil || u.Host == "" {
			return errors.New("connection: source postgres:// needs a host and database, as in postgres://user@127.0.0.1:5432/warehouse?query=SELECT ...")
		}
		if _, has := u.User.Password(); has || u.Query().Has("password") {
			return errors.New("connection: the source URL carries a password; a destination connection's source takes none in its URL: " +
				"remove it and give it to serve through PGPASSWORD or a password file (~/.pgpass or PGPASSFILE)")
		}
	default:
		return fmt.Errorf("connection: source scheme %q is not one a destination connection reads; use sqlite:PATH?query=SQL or postgres://...?query=SQL", scheme)
	}
	return nil
}
