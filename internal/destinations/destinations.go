// Package destinations opens a sync destination from its URL, in a
// namespace: the one place that knows every kind of destination. The CLI
// (`sync --to URL --namespace NS`) and the connections service use it.
package destinations

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/jsonl"
	"github.com/outreach-connector/outreach-connector/internal/postgres"
	"github.com/outreach-connector/outreach-connector/internal/singer"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
)

// Singer is the URL of Singer output: messages on standard output.
const Singer = "singer"

// Check checks the form of a destination URL (sqlite:PATH,
// postgres://HOST/DB, postgresql://..., jsonl:DIR or singer) and of a
// namespace ("" or a name connection.ValidateNamespace accepts) without
// opening anything. Its messages never hold a password.
func Check(url, namespace string) error {
	if url != Singer {
		if _, _, err := connection.ParseDestination(url); err != nil {
			scheme, _, _ := strings.Cut(strings.ToLower(url), ":")
			switch scheme {
			case "sqlite", "jsonl", "postgres", "postgresql":
				return unwrapPrefix(err)
			}
			return unknown(url)
		}
	}
	return CheckNamespace(namespace)
}

// CheckNamespace checks a namespace: "" (the default) or a name
// connection.ValidateNamespace accepts.
func CheckNamespace(namespace string) error {
	if namespace == "" {
		return nil
	}
	if err := connection.ValidateNamespace(namespace); err != nil {
		return unwrapPrefix(err)
	}
	return nil
}

// unwrapPrefix drops the "connection: " of the domain's messages.
func unwrapPrefix(err error) error {
	if msg, ok := strings.CutPrefix(err.Error(), "connection: "); ok {
		return fmt.Errorf("%s", msg)
	}
	return err
}

// Open opens the destination url names in namespace ("" the default
// layout, which destinations of earlier versions have):
//
//   - sqlite:PATH: the file (created 0600), tables prefixed NS__;
//   - postgres://... or postgresql://...: the database, schema NS;
//   - jsonl:DIR: the directory (0700), subdirectory NS;
//   - singer: Singer messages on stdout; it stores nothing, so the
//     namespace does not apply.
//
// SQL databases are opened as destinations only: no app tables in them.
// close releases the destination.
func Open(ctx context.Context, url, namespace string, stdout io.Writer) (connection.Destination, func() error, error) {
	if err := Check(url, namespace); err != nil {
		return nil, nil, err
	}
	if url == Singer {
		w, err := singer.New(stdout, nil)
		if err != nil {
			return nil, nil, err
		}
		return w, func() error { return nil }, nil
	}
	kind, target, _ := connection.ParseDestination(url)
	switch kind {
	case connection.Postgres:
		db, err := postgres.OpenNamespace(ctx, target, namespace)
		if err != nil {
			return nil, nil, err
		}
		return db, db.Close, nil
	case connection.JSONL:
		d, err := jsonl.OpenNamespace(target, namespace)
		if err != nil {
			return nil, nil, err
		}
		return d, func() error { return nil }, nil
	case connection.SQLite:
		db, err := sqlite.OpenNamespace(ctx, target, namespace)
		if err != nil {
			return nil, nil, err
		}
		return db, db.Close, nil
	}
	return nil, nil, unknown(url)
}

func unknown(raw string) error {
	shown := raw
	if u, err := url.Parse(raw); err != nil {
		shown, _, _ = strings.Cut(raw, ":")
	} else if u.User != nil {
		shown = u.Redacted() // no password in a message
	}
	return fmt.Errorf("destination %q is not one: use sqlite:PATH, postgres://HOST/DB, jsonl:DIR or singer", shown)
}
