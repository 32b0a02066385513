package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/destinations"
	"github.com/outreach-connector/outreach-connector/internal/jobs"
	"github.com/outreach-connector/outreach-connector/internal/postgres"
	"github.com/outreach-connector/outreach-connector/internal/service"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
	"github.com/outreach-connector/outreach-connector/internal/sqlstore"
)

// storeFlags choose where credentials live and the encryption key.
type storeFlags struct {
	db      string // sqlite:PATH or postgres://...
	keyFile string
	flags   *pflag.FlagSet
	// keys is the keyring open loaded: it seals the credentials' secrets
	// and the connections' destination passwords.
	keys *credential.Keyring
	// publicURL is set by the connections commands (--public-url).
	publicURL string
}

// The app's own state (credentials, OAuth states, sessions) lives in its
// own database, apart from the data sync writes (./outreach.db by
// default). Before, both defaulted to outreach.db.
const (
	defaultAppDB = "outreach-connector.db"
	legacyAppDB  = "outreach.db"
)

func (f *storeFlags) register(fs *pflag.FlagSet) {
	f.flags = fs
	fs.StringVar(&f.db, "db", envOr("OUTREACH_CONNECTOR_DB", defaultAppDB),
		"the app's database (credentials, sessions): a SQLite file path, or postgres://... (env OUTREACH_CONNECTOR_DB); synced data goes where sync --to says")
	fs.StringVar(&f.keyFile, "key-file", envOr("OUTREACH_CONNECTOR_KEY_FILE", "outreach.key"),
		"encryption key file (or set "+credential.KeysEnv+"), created with mode 0600 on first use; once it has sealed secrets, a missing one is an error")
}

// open opens the store, the keyring and a manager. Call the returned
// function to close the store.
func (f *storeFlags) open(ctx context.Context, log *slog.Logger, now func() time.Time) (*credential.Manager, credential.Store, func(), error) {
	f.useLegacyDefault(ctx, log)
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
	keys, err := f.loadKeys(ctx, store)
	if err != nil {
		closer()
		return nil, nil, nil, err
	}
	f.keys = keys
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

// loadKeys loads the keyring of the app database store: from
// OUTREACH_CONNECTOR_KEYS or the key file, which it makes on first use,
// but never while the database holds secrets sealed with a key, which a
// new one could never open (the key file was lost, or --key-file names
// another).
func (f *storeFlags) loadKeys(ctx context.Context, store credential.Store) (*credential.Keyring, error) {
	var sealedWith []string
	if db, ok := store.(interface {
		SealedKeyIDs(context.Context) ([]string, error)
	}); ok && os.Getenv(credential.KeysEnv) == "" {
		ids, err := db.SealedKeyIDs(ctx)
		if err != nil {
			return nil, err
		}
		sealedWith = ids
	}
	keys, err := credential.LoadKeyringFor(f.keyFile, os.Getenv, sealedWith)
	if errors.Is(err, credential.ErrKeyFileMissing) {
		return nil, fmt.Errorf("app database %s: %w", connection.RedactedURL(f.db), err)
	}
	return keys, err
}

// credential returns the credential that --credential names; when the
// app database holds none of that name or id, the error names those it
// holds, or says how to add one.
func (f *storeFlags) credential(ctx context.Context, m *credential.Manager, name string) (*credential.Record, error) {
	rec, err := m.Get(ctx, name)
	if err == nil || !errors.Is(err, credential.ErrNotFound) {
		if err != nil {
			return nil, fmt.Errorf("--credential %s: %w", name, err)
		}
		return rec, nil
	}
	return nil, unknownCredential(ctx, m, connection.RedactedURL(f.db), name, err)
}

// unknownCredential is the error of --credential name that app database
// db does not hold (err is credential.ErrNotFound): it names the
// credentials db holds, or says how to add one.
func unknownCredential(ctx context.Context, m *credential.Manager, db, name string, err error) error {
	return fmt.Errorf("--credential %s: %w; %s", name, err, credentialNames(ctx, m, db))
}

// credentialNames says which credentials app database db holds, or how
// to add one when it holds none.
func credentialNames(ctx context.Context, m *credential.Manager, db string) string {
	recs, err := m.List(ctx)
	if err != nil {
		return "see `outreach-connector credentials list`"
	}
	if len(recs) == 0 {
		return "the app database " + db + " holds no credential: add one with `outreach-connector credentials add` " +
			"(or import, or on serve's Credentials page), or give the --db that holds it"
	}
	names := make([]string, len(recs))
	for i, r := range recs {
		names[i] = r.Name
	}
	return "the app database " + db + " holds: " + strings.Join(names, ", ") + " (`outreach-connector credentials list` shows them)"
}

// useLegacyDefault keeps an existing installation working: when the app
// database is the default one and holds no credential (or does not exist
// yet) while outreach.db (the former default) holds some, it uses
// outreach.db and says so.
func (f *storeFlags) useLegacyDefault(ctx context.Context, log *slog.Logger) {
	if f.db != defaultAppDB || (f.flags != nil && f.flags.Changed("db")) {
		return
	}
	if countCredentials(ctx, defaultAppDB) > 0 {
		return
	}
	n := countCredentials(ctx, legacyAppDB)
	if n == 0 {
		return
	}
	f.db = legacyAppDB
	if log != nil {
		log.Warn("using the credentials in outreach.db, where earlier versions kept them; new installations keep them in "+defaultAppDB+
			", apart from synced data. Pass --db outreach.db to keep this and silence the message", "credentials", n)
	}
}

// openExisting is open for a command that needs what was added earlier:
// it fails (requireExisting) rather than make a new SQLite app database.
func (f *storeFlags) openExisting(ctx context.Context, log *slog.Logger, now func() time.Time) (*credential.Manager, credential.Store, func(), error) {
	if err := f.requireExisting(ctx, log); err != nil {
		return nil, nil, nil, err
	}
	return f.open(ctx, log, now)
}

// requireExisting fails, before anything is opened, when the app
// database is a SQLite file that does not exist: a command that reads or
// changes what was added earlier says where it looked instead of leaving
// an empty database and a key file in the wrong directory.
func (f *storeFlags) requireExisting(ctx context.Context, log *slog.Logger) error {
	f.useLegacyDefault(ctx, log)
	if isPostgresURL(f.db) {
		return nil
	}
	path := strings.TrimPrefix(f.db, "sqlite:")
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return fmt.Errorf("no app database at %s: nothing has been added there; run where credentials were added, pass --db (env OUTREACH_CONNECTOR_DB), or add one first: outreach-connector credentials add --help", path)
}

// countCredentials counts the credentials in a SQLite file without
// creating or changing it; 0 when there is no such file or table.
func countCredentials(ctx context.Context, path string) int {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	// immutable: no lock and no -wal or -shm file made beside a database
	// in WAL mode (a data file of sync, say) that nobody else has open.
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&immutable=1")
	if err != nil {
		return 0
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM credentials").Scan(&n); err != nil {
		return 0
	}
	return n
}

// isPostgresURL reports whether an app database flag names PostgreSQL.
func isPostgresURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// openQueue opens the connections' job queue next to the app's own tables,
// in the database open chose (call it after open).
func (f *storeFlags) openQueue(ctx context.Context, opts jobs.Options) (*jobs.Queue, error) {
	if isPostgresURL(f.db) {
		return jobs.OpenPostgres(ctx, f.db, opts)
	}
	return jobs.OpenSQLite(ctx, strings.TrimPrefix(f.db, "sqlite:"), opts)
}

// connectionStoreOf returns the connection store of the app database that
// open returned, sealing destination passwords with keys; the first open
// with the key seals those an earlier version stored in clear.
func connectionStoreOf(ctx context.Context, s credential.Store, keys *credential.Keyring) (connection.Store, error) {
	conns, _, err := sealConnections(ctx, s, keys)
	return conns, err
}

// sealConnections returns the connection store of the app database,
// after sealing with the current key every destination password stored
// in clear or with an older key; it says how many it sealed.
func sealConnections(ctx context.Context, s credential.Store, keys *credential.Keyring) (*sqlstore.Connections, int, error) {
	db, ok := s.(interface {
		ConnectionsSealedBy(*credential.Keyring) *sqlstore.Connections
	})
	if !ok {
		return nil, 0, errors.New("the app database keeps no connections")
	}
	conns := db.ConnectionsSealedBy(keys)
	n, err := conns.SealDestinations(ctx)
	if err != nil {
		return nil, n, fmt.Errorf("seal the connections' destination passwords: %w", err)
	}
	return conns, n, nil
}

// openConnectionDestination opens a connection's destination in its
// namespace.
func openConnectionDestination(stdout io.Writer) service.OpenDestination {
	return func(ctx context.Context, to, namespace string) (connection.Destination, func() error, error) {
		return destinations.Open(ctx, to, namespace, stdout)
	}
}
