package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/postgres"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
)

// storeFlags choose where credentials live and the encryption key.
type storeFlags struct {
	db      string // sqlite:PATH or postgres://...
	keyFile string
}

func (f *storeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.db, "db", envOr("OUTREACH_CONNECTOR_DB", "outreach.db"), "database: a SQLite file path, or postgres://... (env OUTREACH_CONNECTOR_DB)")
	fs.StringVar(&f.keyFile, "key-file", envOr("OUTREACH_CONNECTOR_KEY_FILE", "outreach.key"),
		"encryption key file, created with mode 0600 on first use (or set "+credential.KeysEnv+")")
}

// open opens the store, the keyring and a manager. Call the returned
// function to close the store.
func (f *storeFlags) open(ctx context.Context, log *slog.Logger, now func() time.Time) (*credential.Manager, credential.Store, func(), error) {
	var store credential.Store
	var closer func()
	switch {
	case strings.HasPrefix(f.db, "postgres://"), strings.HasPrefix(f.db, "postgresql://"):
		db, err := postgres.Open(ctx, f.db)
		if err != nil {
			return nil, nil, nil, err
		}
		store, closer = db, func() { db.Close() }
	default:
		db, err := sqlite.Open(ctx, strings.TrimPrefix(f.db, "sqlite:"))
		if err != nil {
			return nil, nil, nil, err
		}
		store, closer = db, func() { db.Close() }
	}
	keys, err := credential.LoadKeyring(f.keyFile, os.Getenv)
	if err != nil {
		closer()
		return nil, nil, nil, err
	}
	opts := credential.Options{Store: store, Keyring: keys, Logger: log}
	if now != nil {
		opts.Now = now
	}
	m, err := credential.NewManager(opts)
	if err != nil {
		closer()
		return nil, nil, nil, fmt.Errorf("credentials: %w", err)
	}
	return m, store, closer, nil
}
