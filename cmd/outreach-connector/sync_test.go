package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// TestSyncSandboxTwice runs the README's main command twice in a fresh
// directory: the second run reads only what full-refresh streams re-read.
// The app's own state goes to outreach-connector.db, the data to
// outreach.db, and no sandbox credential outlives its run.
func TestSyncSandboxTwice(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	total := regexp.MustCompile(`(\d+) records? in (\d+) streams? into sqlite:outreach.db`)
	counts := []int{}
	for run := range 2 {
		out, _, err := runCommand(t, "", "sync", "--sandbox", "--sandbox-prospects", "300", "--log-level", "warn")
		if err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, out)
		}
		m := total.FindStringSubmatch(out)
		if m == nil || !strings.Contains(out, "prospects") {
			t.Fatalf("run %d: no summary:\n%s", run, out)
		}
		n, _ := strconv.Atoi(m[1])
		counts = append(counts, n)
	}
	if counts[0] < 2000 || counts[1] >= counts[0]/10 {
		t.Errorf("records per run = %v: want a full first run and a small incremental second", counts)
	}
	for _, f := range []string{"outreach.db", "outreach-connector.db", "outreach.key"} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s not created: %v", f, err)
		}
	}
	if n := countRows(t, "outreach.db", "sqlite_master WHERE name IN ('credentials', 'oauth_states', 'schema_migrations')"); n > 0 {
		t.Errorf("%d app tables in the destination outreach.db", n)
	}
	if n := countRows(t, "outreach.db", "_sync_state"); n < 40 {
		t.Errorf("%d streams in _sync_state of outreach.db", n)
	}
	assertNoSandboxCredential(t, dir)
	out, _, err := runCommand(t, "", "sync", "--sandbox", "--sandbox-prospects", "50", "--to", "jsonl:export", "--log-level", "warn")
	if err != nil || !strings.Contains(out, "jsonl:export") {
		t.Fatalf("sync to jsonl: %v\n%s", err, out)
	}
	if b, err := os.ReadFile("export/prospects.jsonl"); err != nil || strings.Count(string(b), "\n") != 50 {
		t.Errorf("export/prospects.jsonl: %v, %d lines", err, strings.Count(string(b), "\n"))
	}
	if _, _, err := runCommand(t, "", "sync", "--to", "ftp:x"); err == nil {
		t.Error("an unknown destination was accepted")
	}
}

// countRows counts a table's rows in a SQLite file; 0 when the table is
// or the file missing.
func countRows(t *testing.T, path, table string) int {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		return 0
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil && !strings.Contains(err.Error(), "no such table") {
		t.Fatal(err)
	}
	return n
}

// TestSyncSandboxSeed checks that --seed reaches the sandbox: two seeds,
// two orgs.
func TestSyncSandboxSeed(t *testing.T) {
	t.Chdir(t.TempDir())
	names := map[string]string{}
	for _, seed := range []string{"1", "7"} {
		out, _, err := runCommand(t, "", "sync", "--sandbox", "--sandbox-prospects", "20", "--seed", seed, "--streams", "prospects",
			"--to", "sqlite:seed"+seed+".db", "--log-level", "warn")
		if err != nil || !strings.Contains(out, "(seed "+seed+")") {
			t.Fatalf("seed %s: %v\n%s", seed, err, out)
		}
		db, err := sql.Open("sqlite", "file:seed"+seed+".db?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		var all []string
		rows, err := db.Query(`SELECT firstName || ' ' || lastName FROM prospects ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			rows.Scan(&s)
			all = append(all, s)
		}
		rows.Close()
		db.Close()
		names[seed] = strings.Join(all, ",")
	}
	if names["1"] == names["7"] || names["1"] == "" {
		t.Errorf("seeds 1 and 7 gave the same prospects: %.80s", names["1"])
	}
	if _, _, err := runCommand(t, "", "sync", "--seed", "3", "--credential", "x"); err == nil || !strings.Contains(err.Error(), "--sandbox") {
		t.Errorf("--seed without --sandbox: %v", err)
	}
}

// importDefaultScopes makes, in a fresh app database, a credential named
// "default" with the scopes a new credential asks for by default, whose
// token the sandbox grants with exactly those scopes. It returns the
// flags that select that database.
func importDefaultScopes(t *testing.T, srv *sandbox.Server, dir string) []string {
	t.Helper()
	store := storeFlags{db: filepath.Join(dir, "app.db"), keyFile: filepath.Join(dir, "app.key")}
	m, _, closeStore, err := store.open(t.Context(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	_, refresh, err := srv.IssueToken(1, credential.DefaultScopes()...)
	if err != nil {
		t.Fatal(err)
	}
	app := srv.Apps()[0]
	if _, err := m.Import(t.Context(), credential.NewCredential{Name: "default", ClientID: app.ClientID, ClientSecret: app.ClientSecret,
		Scopes: credential.DefaultScopes(), Environment: credential.Development, APIBaseURL: srv.URL + "/api/v2",
		RedirectURI: app.RedirectURIs[0]}, refresh); err != nil {
		t.Fatal(err)
	}
	return []string{"--db", store.db, "--key-file", store.keyFile}
}

// TestSyncSkipsStreamsOutsideScopes syncs with a credential made with the
// default scopes: the streams it can read sync, the others are skipped
// with a line each naming the scope, and naming one of those with
// --streams is an error before anything runs.
func TestSyncSkipsStreamsOutsideScopes(t *testing.T) {
	t.Parallel()
	srv, err := sandbox.Start("", sandbox.Options{Prospects: 30, MintInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	store := importDefaultScopes(t, srv, dir)
	dst := filepath.Join(dir, "data.db")
	out, _, err := runCommand(t, "", append([]string{"sync", "--credential", "default", "--to", "sqlite:" + dst, "--log-level", "warn"}, store...)...)
	if err != nil {
		t.Fatalf("sync: %v\n%s", err, out)
	}
	if !strings.Contains(out, "skip sequences: credential default lacks scope sequences.read or sequences.all\n") ||
		!strings.Contains(out, "skip audit_logs: credential default lacks scope auditLogs.read\n") {
		t.Errorf("want a skip line per unreadable stream naming its scope:\n%s", out)
	}
	if strings.Contains(out, "FAILED") || strings.Contains(out, "skip prospects") || strings.Contains(out, "skip accounts") {
		t.Errorf("want every readable stream synced and none failed:\n%s", out)
	}
	m := regexp.MustCompile(`\d+ records in (\d+) streams`).FindStringSubmatch(out)
	skipped := strings.Count(out, "\nskip ") + strings.Count(out[:min(len(out), 5)], "skip ")
	if m == nil || m[1] == "0" || skipped < 30 {
		t.Errorf("synced %v streams and skipped %d; want some of each:\n%s", m, skipped, out)
	}
	if !strings.Contains(out, "streams skipped for lack of scopes") || !strings.Contains(out, "sequences.read") {
		t.Errorf("want the summary to list the scopes that would sync the skipped streams:\n%s", out)
	}

	// Named explicitly: an error, and nothing synced.
	dst2 := filepath.Join(dir, "data2.db")
	out, _, err = runCommand(t, "", append([]string{"sync", "--credential", "default", "--to", "sqlite:" + dst2,
		"--streams", "prospects,sequences"}, store...)...)
	if err == nil || !strings.Contains(err.Error(), "sequences needs scope sequences.read or sequences.all") {
		t.Errorf("--streams naming an unreadable stream: %v\n%s", err, out)
	}
	if n := countRows(t, dst2, "prospects"); n != 0 || strings.Contains(out, "records in") {
		t.Errorf("%d prospects synced although the command failed:\n%s", n, out)
	}
}

func TestSyncFlagErrors(t *testing.T) {
	t.Chdir(t.TempDir())
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"sync", "--sandbox", "--quota-limit", "5"}, "--quota-limit 5"},
		{[]string{"sync", "--sandbox", "--quota-limit", "0"}, "--quota-limit 0"},
		{[]string{"sync", "--sandbox", "--quota-limit", "-1"}, "--quota-limit -1"},
		{[]string{"sync", "--sandbox", "--log-level", "verbose"}, `--log-level "verbose": use debug, info, warn or error`},
		{[]string{"streams", "--log-level", "verbose"}, `--log-level "verbose"`},
		{[]string{"sync", "--sandbox", "--sandbox-prospects", "5", "--streams", "prospects,nope"}, "unknown stream nope"},
		{[]string{"sync", "--start-date", "yesterday"}, "--start-date"},
		{[]string{"sync", "--sandbox", "--page-size", "-1"}, "--page-size -1: give 1 to 1000"},
		{[]string{"sync", "--sandbox", "--page-size", "0"}, "--page-size 0: give 1 to 1000"},
		{[]string{"sync", "--sandbox", "--page-size", "5000"}, "--page-size 5000: give 1 to 1000"},
		{[]string{"sync", "--sandbox", "--concurrency", "0"}, "--concurrency 0"},
		{[]string{"sync", "--sandbox", "--concurrency", "-3"}, "--concurrency -3"},
		{[]string{"sync", "--sandbox", "--sandbox-prospects", "-5"}, "--sandbox-prospects -5"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, _, err := runCommand(t, "", tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(out, "records in") {
				t.Errorf("ran a sync:\n%s", out)
			}
		})
	}
	if _, err := os.Stat("outreach.db"); err == nil {
		t.Error("a rejected command created outreach.db")
	}
}

func TestStreamsJSON(t *testing.T) {
	out, _, err := runCommand(t, "", "streams", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var streams []streamJSON
	if err := json.Unmarshal([]byte(out), &streams); err != nil {
		t.Fatalf("not JSON: %v\n%.200s", err, out)
	}
	if len(streams) < 40 {
		t.Fatalf("%d streams", len(streams))
	}
	for _, s := range streams {
		if s.Name == "prospects" {
			if s.Replication != "incremental" || s.Cursor != "updatedAt" || len(s.Columns) < 50 ||
				strings.Join(s.ReadScopes, " ") != "prospects.read prospects.all" {
				t.Errorf("prospects = %+v", s)
			}
			return
		}
	}
	t.Error("no prospects stream")
}

// TestLegacyAppDatabase: an installation whose credentials are in
// outreach.db (the former default) keeps working, with a message.
func TestLegacyAppDatabase(t *testing.T) {
	srv, err := sandbox.Start("", sandbox.Options{Prospects: 10, MintInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	t.Chdir(dir)
	importDefaultScopes(t, srv, dir)
	if err := os.Rename("app.db", "outreach.db"); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runCommand(t, "", "sync", "--credential", "default", "--key-file", "app.key", "--streams", "prospects", "--to", "sqlite:data.db")
	if err != nil || !strings.Contains(out, "10 records in 1 stream into") {
		t.Fatalf("sync with credentials in outreach.db: %v\n%s\n%s", err, out, errOut)
	}
	if !strings.Contains(errOut, "using the credentials in outreach.db") {
		t.Errorf("no message about the former app database:\n%s", errOut)
	}
	if _, err := os.Stat(defaultAppDB); err == nil {
		t.Errorf("%s created although outreach.db holds the credentials", defaultAppDB)
	}
	// A sync --sandbox run in between (its credential comes and goes)
	// changes nothing: the credentials in outreach.db are still found.
	// It needs their key file: without it, it would seal the sandbox's
	// credential with a new key beside theirs, and is refused.
	if _, _, err := runCommand(t, "", "sync", "--sandbox", "--sandbox-prospects", "5", "--streams", "prospects", "--to", "sqlite:sb.db"); err == nil ||
		!strings.Contains(err.Error(), "outreach.key does not exist") {
		t.Fatalf("sync --sandbox without the key file of outreach.db: %v; want the missing key file named", err)
	}
	if out, _, err := runCommand(t, "", "sync", "--sandbox", "--sandbox-prospects", "5", "--streams", "prospects", "--to", "sqlite:sb.db",
		"--key-file", "app.key"); err != nil {
		t.Fatalf("sync --sandbox: %v\n%s", err, out)
	}
	out, errOut, err = runCommand(t, "", "sync", "--credential", "default", "--key-file", "app.key", "--streams", "prospects", "--to", "sqlite:data.db")
	if err != nil || !strings.Contains(errOut, "using the credentials in outreach.db") {
		t.Fatalf("sync after a sandbox run: %v\n%s\n%s", err, out, errOut)
	}
}

// TestLegacyCheckLeavesNoFiles: looking for credentials in outreach.db,
// when it is sync's data in WAL mode, leaves no -wal or -shm beside it.
func TestLegacyCheckLeavesNoFiles(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	db, err := sql.Open("sqlite", "file:outreach.db?_pragma=journal_mode(WAL)")
	if err == nil {
		_, err = db.Exec("CREATE TABLE prospects (id INTEGER PRIMARY KEY)")
	}
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, _, err := runCommand(t, "", "credentials", "list", "--key-file", "app.key"); err == nil || !strings.Contains(err.Error(), "no app database") {
		t.Fatalf("credentials list without an app database: %v", err)
	}
	for _, leftover := range []string{"outreach.db-wal", "outreach.db-shm"} {
		if _, err := os.Stat(leftover); err == nil {
			t.Errorf("%s left beside the data file", leftover)
		}
	}
}

// TestReadCommandsMakeNothing: commands that need what was added earlier,
// run where nothing was, say where they looked and leave no file behind.
func TestReadCommandsMakeNothing(t *testing.T) {
	t.Setenv("OUTREACH_CONNECTOR_KEYS", "")
	dir := t.TempDir()
	t.Chdir(dir)
	for _, args := range [][]string{{"credentials", "list"}, {"credentials", "show", "x"}, {"credentials", "rotate-key"},
		{"connections", "list"}, {"connections", "show", "x"}, {"connections", "history", "x"}, {"keys", "list"}, {"keys", "revoke", "x"}} {
		_, _, err := runCommand(t, "", args...)
		if err == nil || !strings.Contains(err.Error(), "no app database at "+filepath.Join(dir, defaultAppDB)) {
			t.Errorf("%v where nothing was added: %v; want where it looked", args, err)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("files left behind: %v", left)
	}
}

func TestVersionText(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/outreach-connector/outreach-connector", Version: "v0.3.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "2170fc1abc"}, {Key: "vcs.time", Value: "2026-12-04T17:00:00Z"},
			{Key: "vcs.modified", Value: "true"}}}
	if got, want := versionText(info, true), "outreach-connector v0.3.0, commit 2170fc1abc (modified) of 2026-12-04T17:00:00Z, go1.26.8"; got != want {
		t.Errorf("versionText = %q, want %q", got, want)
	}
	if got := versionText(&debug.BuildInfo{GoVersion: "go1.26.8"}, true); got != "outreach-connector (devel), go1.26.8" {
		t.Errorf("versionText without VCS = %q", got)
	}
	out, _, err := runCommand(t, "", "version")
	if err != nil || !strings.HasPrefix(out, "outreach-connector ") {
		t.Errorf("version: %v %q", err, out)
	}
}

func TestHelpListsDestinations(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"sync", "--help"}} {
		out, _, err := runCommand(t, "", args...)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"SQLite", "PostgreSQL", "JSON Lines", "Singer"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v does not mention %s:\n%s", args, want, out)
			}
		}
	}
}

// TestIsCancel: a stream error that carries the signal (the client wraps
// the context's cause) is an interruption, not a failure.
func TestIsCancel(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sig := signalError{syscall.SIGTERM}
	if isCancel(ctx, fmt.Errorf("read body: %w", sig)) {
		t.Error("an error is a cancel before the context ends")
	}
	cancel(sig)
	for _, err := range []error{fmt.Errorf("accounts: read: %w", sig), fmt.Errorf("x: %w", context.Canceled)} {
		if !isCancel(ctx, err) {
			t.Errorf("isCancel(%v) = false", err)
		}
	}
	if isCancel(ctx, errors.New("disk full")) {
		t.Error("a real failure taken for a cancel")
	}
}

// TestSyncSandboxRefusesASecondAtOnce: a second --sandbox process on the
// same app database is refused before it touches the "sandbox" credential
// the first one is using, and says who holds it; the lock goes with its
// holder.
func TestSyncSandboxRefusesASecondAtOnce(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	unlock, err := lockSandbox(defaultAppDB)
	if err != nil {
		t.Fatal(err)
	}
	bin := binary(t)
	_, stderr, code := runBinary(t, bin, "", "sync", "--sandbox", "--sandbox-prospects", "10")
	if code == 0 || !strings.Contains(stderr, fmt.Sprintf("process %d", os.Getpid())) || !strings.Contains(stderr, "--db") {
		t.Errorf("a second --sandbox run: exit %d, stderr %q; want a refusal naming the holder and --db", code, stderr)
	}
	if _, err := os.Stat("outreach.db"); err == nil {
		t.Error("the refused run created outreach.db")
	}
	unlock()
	if out, stderr, code := runBinary(t, bin, "", "sync", "--sandbox", "--sandbox-prospects", "10", "--streams", "prospects"); code != 0 {
		t.Errorf("after the holder let go: exit %d\n%s\n%s", code, out, stderr)
	}
}

// The README's order: sync --sandbox, serve --sandbox, then sync --sandbox
// again in the same directory. serve's connection keeps the credential
// "sandbox"; the second sync runs with a credential of its own and leaves
// none behind.
func TestSyncSandboxAfterServeSandbox(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	sync := []string{"sync", "--sandbox", "--sandbox-prospects", "20", "--streams", "prospects", "--log-level", "warn"}
	if out, _, err := runCommand(t, "", sync...); err != nil {
		t.Fatalf("first sync: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	cmd := newRootCommand(&out, &errOut)
	cmd.SetArgs([]string{"serve", "--sandbox", "--addr", "127.0.0.1:0", "--log-level", "warn"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "Admin token") {
		if time.Now().After(deadline) {
			t.Fatalf("no banner: %q %q", out.String(), errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	for run := range 2 {
		got, _, err := runCommand(t, "", sync...)
		if err != nil {
			t.Fatalf("sync %d after serve: %v\n%s", run, err, got)
		}
		if !strings.Contains(got, `credential "sandbox-`) {
			t.Errorf("sync %d after serve: %s; want a credential of its own", run, got)
		}
	}
	f := storeFlags{db: filepath.Join(dir, defaultAppDB), keyFile: filepath.Join(dir, "outreach.key")}
	m, _, closeStore, err := f.open(t.Context(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	list, err := m.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "sandbox" {
		for _, r := range list {
			t.Errorf("credential %s (%s) left", r.Name, r.Description)
		}
	}
}
