package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/metrics"
	"github.com/outreach-connector/outreach-connector/internal/service"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// The connection serve --sandbox keeps.
const (
	sandboxName        = "sandbox"
	sandboxDestination = "./outreach.db"
	sandboxEvery       = "15m"
)

// readSecretFile reads a secret from a file only its owner may read.
func readSecretFile(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("--notify-secret-file: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("--notify-secret-file %s is readable by others (mode %04o); run chmod 600 %s", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--notify-secret-file: %w", err)
	}
	secret := strings.TrimSpace(string(b))
	if len(secret) < 16 {
		return nil, fmt.Errorf("--notify-secret-file %s: the secret is shorter than 16 characters", path)
	}
	return []byte(secret), nil
}

// tokenReader reads the credentials' token states for the metrics.
func tokenReader(m *credential.Manager) metrics.TokenReader {
	return func(ctx context.Context) ([]metrics.TokenState, error) {
		recs, err := m.List(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]metrics.TokenState, 0, len(recs))
		for _, r := range recs {
			st := metrics.TokenState{Credential: r.Name, Status: string(r.Status)}
			if len(r.Tokens) > 0 {
				st.ExpiresAt, st.IssuedAt = r.TokenExpiresAt, r.LastRefreshAt
			}
			out = append(out, st)
		}
		return out, nil
	}
}

// cursorReader reads every connection's stream cursors for the metrics.
func cursorReader(svc *service.Service) metrics.CursorReader {
	return func(ctx context.Context) ([]metrics.CursorState, error) {
		list, err := svc.List(ctx)
		if err != nil {
			return nil, err
		}
		var out []metrics.CursorState
		for _, st := range list {
			streams, err := svc.Streams(ctx, st.Connection.ID)
			if err != nil {
				continue // a destination that is down costs its own series only
			}
			for _, s := range streams {
				cur, err := time.Parse(time.RFC3339Nano, s.Cursor)
				if err != nil {
					continue
				}
				out = append(out, metrics.CursorState{Connection: st.Connection.Name, Stream: s.Stream, Cursor: cur})
			}
		}
		return out, nil
	}
}

// sandboxConnection connects the credential "sandbox" to this process's
// sandbox and makes sure the connection "sandbox" exists, then queues a
// run of it. A credential left by an earlier start points at a sandbox
// that is gone: a new one takes its place (and its connection).
func sandboxConnection(ctx context.Context, sb *sandbox.Server, m *credential.Manager, svc *service.Service) error {
	_, refresh, err := sb.IssueToken(1)
	if err != nil {
		return err
	}
	sb.Clock().Advance(time.Minute) // one token a minute per user and app
	app := sb.Apps()[0]
	nc := credential.NewCredential{Name: sandboxName, Description: "local Outreach sandbox of serve --sandbox", ClientID: app.ClientID,
		ClientSecret: app.ClientSecret, Scopes: sb.Catalog().Scopes(), Environment: credential.Development,
		APIBaseURL: sb.URL + "/api/v2", RedirectURI: app.RedirectURIs[0]}
	old, err := m.Get(ctx, sandboxName)
	if err != nil && !errors.Is(err, credential.ErrNotFound) {
		return err
	}
	if old != nil {
		nc.Name = sandboxName + "-" + credential.NewID()[:8]
	}
	rec, err := m.Import(ctx, nc, refresh)
	if err != nil {
		return err
	}
	if _, err := svc.Get(ctx, sandboxName); errors.Is(err, connection.ErrNotFound) {
		if _, err := svc.Create(ctx, service.NewConnection{Name: sandboxName, Credential: rec.ID, DestinationURL: "sqlite:" + sandboxDestination,
			Schedule: sandboxEvery}); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if old != nil {
		// Every connection of the old credential (the sandbox one, and any
		// made by hand) moves to the new one.
		list, err := svc.List(ctx)
		if err != nil {
			return err
		}
		for _, st := range list {
			if st.Connection.CredentialID == old.ID {
				if _, err := svc.Update(ctx, st.Connection.ID, service.Changes{Credential: &rec.ID}); err != nil {
					return err
				}
			}
		}
		// Its sandbox is gone: nothing to revoke.
		if err := m.Forget(ctx, old.ID); err != nil {
			return err
		}
		name := sandboxName
		if _, _, err := m.Update(ctx, rec.ID, credential.Changes{Name: &name}); err != nil {
			return err
		}
	}
	_, err = svc.RunNow(ctx, sandboxName)
	return err
}
