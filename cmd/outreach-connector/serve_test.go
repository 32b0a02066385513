package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
)

// watchBuffer collects output and closes a channel the first time the
// output contains a given text.
type watchBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	watches map[string]chan struct{}
}

func (w *watchBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.b.Write(p)
	for text, ch := range w.watches {
		if strings.Contains(w.b.String(), text) {
			close(ch)
			delete(w.watches, text)
		}
	}
	return n, err
}

// when returns a channel closed once the output contains text.
func (w *watchBuffer) when(text string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := make(chan struct{})
	if strings.Contains(w.b.String(), text) {
		close(ch)
		return ch
	}
	if w.watches == nil {
		w.watches = map[string]chan struct{}{}
	}
	w.watches[text] = ch
	return ch
}

func (w *watchBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// blockingOutreach answers the first token request at once and holds
// every later one until release is closed, reporting it on entered.
type blockingOutreach struct {
	url              string
	entered, release chan struct{}
	once             sync.Once
	mu               sync.Mutex
	n                int
}

func newBlockingOutreach(t *testing.T) *blockingOutreach {
	t.Helper()
	o := &blockingOutreach{entered: make(chan struct{}), release: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v2", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"data":{"type":"org","attributes":{"name":"Org"}},"meta":{"user":{"id":3,"email":"three@example.com"}}}`)
	})
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.n++
		n := o.n
		o.mu.Unlock()
		if n > 1 {
			o.once.Do(func() { close(o.entered) })
			<-o.release
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprintf("access-%d", n), "refresh_token": fmt.Sprintf("refresh-%d", n),
			"token_type": "bearer", "expires_in": 7200})
	})
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	t.Cleanup(func() {
		select {
		case <-o.release:
		default:
			close(o.release)
		}
		hs.Close()
	})
	o.url = "http://" + ln.Addr().String()
	return o
}

// TestServeWaitsForItsKeepAliveBeforeClosingTheStore: a refresh in flight
// when serve is told to stop finishes and stores its rotated token before
// serve closes the database and returns.
func TestServeWaitsForItsKeepAliveBeforeClosingTheStore(t *testing.T) {
	dir := t.TempDir()
	dbPath, keyPath := filepath.Join(dir, "serve.db"), filepath.Join(dir, "serve.key")
	up := newBlockingOutreach(t)

	// A connected credential last refreshed two days ago: serve's
	// keep-alive refreshes it at once.
	ctx := context.Background()
	db, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := credential.LoadKeyring(keyPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	past, err := credential.NewManager(credential.Options{Store: db, Keyring: keys, Now: func() time.Time { return time.Now().Add(-48 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := past.Import(ctx, credential.NewCredential{Name: "kept", ClientID: "cid", ClientSecret: "secret", Environment: credential.Production,
		APIBaseURL: up.url + "/api/v2", RedirectURI: "http://127.0.0.1/oauth/callback", Scopes: []string{"prospects.read"}}, "refresh-0")
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var out, logs watchBuffer
	cmd := newRootCommand(&out, &logs)
	cmd.SetArgs([]string{"serve", "--addr", "127.0.0.1:0", "--db", dbPath, "--key-file", keyPath, "--admin-token-file", filepath.Join(dir, "admin")})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(sctx) }()
	shuttingDown := logs.when("shutting down")

	select {
	case <-up.entered: // the keep-alive refresh is at Outreach
	case err := <-done:
		t.Fatalf("serve ended early: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the keep-alive never refreshed\n%s", logs.String())
	}
	stop() // SIGTERM
	select {
	case err := <-done:
		t.Fatalf("serve returned (%v) while its keep-alive refresh was in flight\n%s", err, logs.String())
	case <-shuttingDown:
	}
	close(up.release)
	if err := <-done; err != nil {
		t.Fatalf("serve: %v\n%s", err, logs.String())
	}
	if strings.Contains(logs.String(), "closed") {
		t.Errorf("a write found the database closed:\n%s", logs.String())
	}

	// The rotated token reached the database.
	db, err = sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m, err := credential.NewManager(credential.Options{Store: db, Keyring: keys})
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Get(ctx, rec.ID)
	if err != nil || time.Since(got.LastRefreshAt) > time.Hour || got.Status != credential.StatusConnected {
		t.Fatalf("after shutdown: %+v %v", got, err)
	}
	if tok, err := m.Token(ctx, rec.ID); err != nil || tok != "access-2" {
		t.Errorf("stored access token = %q, %v; want the one the in-flight refresh got", tok, err)
	}
}

func TestServeAdminTokenFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin")
	tok, fresh, err := adminToken(path)
	if err != nil || !fresh || len(tok) < 16 {
		t.Fatalf("first start: %q %v %v", tok, fresh, err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file mode %v, %v; want 0600", info.Mode().Perm(), err)
	}
	again, fresh, err := adminToken(path)
	if err != nil || fresh || again != tok {
		t.Errorf("second start: %q %v %v", again, fresh, err)
	}
	os.Chmod(path, 0o644)
	if _, _, err := adminToken(path); err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) || strings.Contains(err.Error(), tok) {
		t.Errorf("a world-readable admin token file: %v", err)
	}
}

func TestServeRejectsABadPublicURL(t *testing.T) {
	for _, bad := range []string{"connector.example.com", "ftp://x", "https://", "https://x/path", "https://u:p@x"} {
		var out, errOut watchBuffer
		cmd := newRootCommand(&out, &errOut)
		cmd.SetArgs([]string{"serve", "--addr", "127.0.0.1:0", "--public-url", bad, "--db", filepath.Join(t.TempDir(), "x.db")})
		err := cmd.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), "--public-url") {
			t.Errorf("--public-url %q: %v", bad, err)
		}
	}
}

// A serve that fails to start removes the files it made (admin token,
// key, app database) and never one that was there before.
func TestServeFailingToStartRemovesOnlyTheFilesItMade(t *testing.T) {
	t.Setenv(AdminTokenEnv, "")
	t.Setenv("OUTREACH_CONNECTOR_KEYS", "")
	dir := t.TempDir()
	db := filepath.Join(dir, "app.db")
	files := []string{"--db", db, "--key-file", filepath.Join(dir, "app.key"), "--admin-token-file", filepath.Join(dir, "app.admin")}
	// Another process holds the sandbox lock: serve --sandbox fails after
	// making its files.
	unlock, err := lockSandbox(db)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	serve := func() error {
		var out, errOut watchBuffer
		cmd := newRootCommand(&out, &errOut)
		cmd.SetArgs(append([]string{"serve", "--sandbox", "--addr", "127.0.0.1:0", "--log-level", "warn"}, files...))
		return cmd.ExecuteContext(context.Background())
	}
	list := func() []string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	if err := serve(); err == nil || !strings.Contains(err.Error(), "sandbox") {
		t.Fatalf("serve --sandbox with the lock held: %v, want the lock's error", err)
	}
	if got := list(); !slices.Equal(got, []string{"app.db.sandbox.lock"}) {
		t.Fatalf("after a failed first start the directory holds %v; want only the lock file that was there", got)
	}

	// With files that were there before, the same failure keeps them all.
	if _, _, err := runCommand(t, "s3cret\n", "credentials", "add", "--name", "main", "--client-id", "id",
		"--client-secret-file", "-", "--db", db, "--key-file", filepath.Join(dir, "app.key")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.admin"), []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := list()
	if err := serve(); err == nil {
		t.Fatal("serve --sandbox with the lock held started")
	}
	if got := list(); !slices.Equal(got, before) {
		t.Fatalf("a failed start changed the files %v into %v", before, got)
	}
	if out, _, err := runCommand(t, "", "credentials", "list", "--db", db, "--key-file", filepath.Join(dir, "app.key")); err != nil ||
		!strings.Contains(out, "main") {
		t.Fatalf("the credentials after a failed start: %v\n%s", err, out)
	}
}
