package credential_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/postgres"
	"github.com/outreach-connector/outreach-connector/internal/postgres/pgtest"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

func TestMain(m *testing.M) {
	if os.Getenv("CREDENTIAL_TEST_HELPER") == "refresh" {
		os.Exit(refreshHelper())
	}
	os.Exit(m.Run())
}

func openStore(ctx context.Context, spec string) (credential.Store, func(), error) {
	kind, target, _ := strings.Cut(spec, ":")
	switch kind {
	case "sqlite":
		db, err := sqlite.Open(ctx, target)
		if err != nil {
			return nil, nil, err
		}
		return db, func() { db.Close() }, nil
	case "postgres":
		db, err := postgres.Open(ctx, target)
		if err != nil {
			return nil, nil, err
		}
		return db, func() { db.Close() }, nil
	}
	return nil, nil, fmt.Errorf("unknown store %q", spec)
}

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// refreshHelper is one of the processes of the contention test: at the
// agreed instant, fifty goroutines ask for the credential's token.
func refreshHelper() int {
	ctx := context.Background()
	store, closeStore, err := openStore(ctx, os.Getenv("CREDENTIAL_TEST_STORE"))
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	defer closeStore()
	keys, err := credential.ParseKeys(os.Getenv("CREDENTIAL_TEST_KEYS"))
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	m, err := credential.NewManager(credential.Options{Store: store, Keyring: keys})
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	startMS, _ := strconv.ParseInt(os.Getenv("CREDENTIAL_TEST_START"), 10, 64)
	time.Sleep(time.Until(time.UnixMilli(startMS)))
	id := os.Getenv("CREDENTIAL_TEST_ID")
	var wg sync.WaitGroup
	results := make([]string, 50)
	for i := range results {
		wg.Go(func() {
			tok, err := m.Token(ctx, id)
			if err != nil {
				results[i] = "ERROR " + err.Error()
				return
			}
			results[i] = "TOKEN " + hashOf(tok)
		})
	}
	wg.Wait()
	for _, r := range results {
		fmt.Println(r)
	}
	return 0
}

func TestRefreshUnderContention(t *testing.T) {
	stores := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "shared.db") },
		"postgres": postgresSpec,
	}
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			spec := newStore(t)
			srv, err := sandbox.Start("", sandbox.Options{Prospects: 10, MintInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			store, closeStore, err := openStore(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			defer closeStore()
			keys, _ := credential.GenerateKeyring()
			m, _ := credential.NewManager(credential.Options{Store: store, Keyring: keys})
			app := srv.Apps()[0]
			rec, err := m.Create(ctx, credential.NewCredential{Name: "shared", ClientID: app.ClientID, ClientSecret: app.ClientSecret,
				Environment: credential.Development, APIBaseURL: srv.URL + "/api/v2", RedirectURI: app.RedirectURIs[0]})
			if err != nil {
				t.Fatal(err)
			}
			access, refresh, err := srv.IssueToken(1)
			if err != nil {
				t.Fatal(err)
			}
			// The token is due: it expires inside the refresh window.
			if err := m.SetTokensForTest(ctx, rec.ID, access, refresh, time.Now().Add(3*time.Minute)); err != nil {
				t.Fatal(err)
			}
			before := srv.Counters().TokenRequests
			start := time.Now().Add(1500 * time.Millisecond)
			var wg sync.WaitGroup
			outputs := make([]string, 3)
			for p := range outputs {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), "CREDENTIAL_TEST_HELPER=refresh", "CREDENTIAL_TEST_STORE="+spec, "CREDENTIAL_TEST_KEYS="+keys.Export(),
					"CREDENTIAL_TEST_ID="+rec.ID, fmt.Sprintf("CREDENTIAL_TEST_START=%d", start.UnixMilli()))
				wg.Go(func() {
					out, err := cmd.CombinedOutput()
					if err != nil {
						t.Errorf("process %d: %v\n%s", p, err, out)
					}
					outputs[p] = string(out)
				})
			}
			wg.Wait()
			if got := srv.Counters().TokenRequests - before; got != 1 {
				t.Errorf("token requests reaching the sandbox = %d, want exactly 1", got)
			}
			want, err := m.Token(ctx, rec.ID)
			if err != nil || want == access {
				t.Fatalf("stored token after the race: %v (refreshed %v)", err, want != access)
			}
			callers := 0
			for p, out := range outputs {
				sc := bufio.NewScanner(strings.NewReader(out))
				for sc.Scan() {
					line := sc.Text()
					switch {
					case line == "TOKEN "+hashOf(want):
						callers++
					case strings.HasPrefix(line, "TOKEN ") || strings.HasPrefix(line, "ERROR"):
						t.Errorf("process %d: %s, want the new token", p, line)
					}
				}
			}
			if callers != 150 {
				t.Errorf("%d of 150 callers got the new token", callers)
			}
		})
	}
}

// postgresSpec makes a fresh schema in the test database and returns its
// store spec.
func postgresSpec(t *testing.T) string { return "postgres:" + pgtest.DSN(t) }
