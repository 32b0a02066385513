package syncer_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/jsonl"
	"github.com/outreach-connector/outreach-connector/internal/postgres"
	"github.com/outreach-connector/outreach-connector/internal/postgres/pgtest"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

func TestMain(m *testing.M) {
	switch os.Getenv("SYNC_TEST_HELPER") {
	case "run":
		os.Exit(syncHelper(false))
	case "hang":
		os.Exit(syncHelper(true))
	case "serve":
		os.Exit(serveHelper())
	}
	os.Exit(m.Run())
}

// The helper process: one sync run of SYNC_TEST_STREAMS from the sandbox
// at SYNC_TEST_URL into SYNC_TEST_DEST. It prints "prepared STREAM" once
// a stream's table exists and "committed STREAM" after every committed
// page, so a test can kill it at an observed point. In "hang" mode it
// stops for good after its first committed page, holding its locks.
func syncHelper(hang bool) int {
	ctx := context.Background()
	client, err := outreach.NewClient(outreach.WithBaseURL(os.Getenv("SYNC_TEST_URL")),
		outreach.WithTokenSource(outreach.StaticToken(os.Getenv("SYNC_TEST_TOKEN"))))
	if err != nil {
		fmt.Println(err)
		return 1
	}
	dst, closeDst, err := openDest(ctx, os.Getenv("SYNC_TEST_DEST"))
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer closeDst()
	obs := &observed{Destination: dst, Locker: dst.(connection.Locker), Reconciler: dst.(connection.Reconciler), out: os.Stdout}
	if hang {
		obs.hang = os.Stdin // never written: reading it blocks until the process is killed
	}
	cat, err := syncer.Discover(ctx, client)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	streams := pick(syncer.Streams(cat), strings.Split(os.Getenv("SYNC_TEST_STREAMS"), ","))
	results := syncer.NewEngine(client, obs, nil, nil).Run(ctx, streams, syncer.Options{
		StartDate: time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC), PageSize: 20, Concurrency: 2, Reconcile: true})
	if err := syncer.Failed(results); err != nil {
		fmt.Println(err)
		return 1
	}
	return 0
}

// openDest opens "sqlite:PATH", "jsonl:DIR" or a PostgreSQL URL.
func openDest(ctx context.Context, to string) (connection.Destination, func(), error) {
	switch {
	case strings.HasPrefix(to, "sqlite:"):
		db, err := sqlite.Open(ctx, strings.TrimPrefix(to, "sqlite:"))
		if err != nil {
			return nil, nil, err
		}
		return db, func() { db.Close() }, nil
	case strings.HasPrefix(to, "jsonl:"):
		d, err := jsonl.Open(strings.TrimPrefix(to, "jsonl:"))
		return d, func() {}, err
	default:
		db, err := postgres.Open(ctx, to)
		if err != nil {
			return nil, nil, err
		}
		return db, func() { db.Close() }, nil
	}
}

// observed reports the destination's progress on out.
type observed struct {
	connection.Destination
	connection.Locker
	connection.Reconciler
	out  io.Writer
	hang io.Reader
}

func (o *observed) Prepare(ctx context.Context, s *connection.Stream) error {
	err := o.Destination.Prepare(ctx, s)
	if err == nil {
		fmt.Fprintln(o.out, "prepared", s.Name)
	}
	return err
}

func (o *observed) Write(ctx context.Context, s *connection.Stream, recs []connection.Record, st connection.State) error {
	err := o.Destination.Write(ctx, s, recs, st)
	if err == nil {
		fmt.Fprintln(o.out, "committed", s.Name)
		if o.hang != nil {
			io.Copy(io.Discard, o.hang)
		}
	}
	return err
}

func pick(all []*connection.Stream, names []string) []*connection.Stream {
	var out []*connection.Stream
	for _, s := range all {
		if slices.Contains(names, s.Name) {
			out = append(out, s)
		}
	}
	return out
}

// helper is a sync process started by a test.
type helper struct {
	cmd    *exec.Cmd
	lines  *bufio.Scanner
	stdout io.ReadCloser
	stdin  io.WriteCloser
}

func startHelper(t *testing.T, mode string, env ...string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, "SYNC_TEST_HELPER="+mode, "GORACE=atexit_sleep_ms=0")...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, lines: bufio.NewScanner(stdout), stdout: stdout, stdin: stdin}
	t.Cleanup(func() {
		cmd.Process.Kill()
		h.finish()
	})
	return h
}

// waitFor reads lines until the nth one starting with prefix; it reports
// false when the process ended first.
func (h *helper) waitFor(prefix string, n int) bool {
	for h.lines.Scan() {
		if strings.HasPrefix(h.lines.Text(), prefix) {
			if n--; n <= 0 {
				return true
			}
		}
	}
	return false
}

// finish reads the rest of the output and waits for the process.
func (h *helper) finish() (string, error) {
	var rest strings.Builder
	for h.lines.Scan() {
		rest.WriteString(h.lines.Text() + "\n")
	}
	h.stdin.Close()
	err := h.cmd.Wait()
	return rest.String(), err
}

// kill ends the process with SIGKILL and waits until it is gone.
func (h *helper) kill(t *testing.T) {
	t.Helper()
	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	h.finish()
}

// crashStreams are synced by the crash test: those the sandbox mutates,
// a full-refresh stream and a custom object.
var crashStreams = []string{"prospects", "accounts", "opportunities", "tasks", "calls", "duties", "project"}

// TestCrashAnywhereLosesNothing kills sync processes with SIGKILL at
// observed points (right after a table is created or the Nth page is
// committed, N varying) while the sandbox changes, then lets a last run
// finish, and compares the database with Outreach. The killed runs'
// stream locks must not hold the last run back.
func TestCrashAnywhereLosesNothing(t *testing.T) {
	// The sandbox's clock stands a minute behind the real one (the sync's
	// windows end at the real time) and moves two seconds between runs,
	// so every round of changes gets new updatedAt values.
	clock := sandbox.NewClock(time.Now().Add(-time.Minute).Truncate(time.Second))
	srv, err := sandbox.Start("", sandbox.Options{Prospects: 120, MintInterval: -1, Clock: clock, RateLimit: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	access, _, _ := srv.IssueToken(1)
	path := filepath.Join(t.TempDir(), "crash.db")
	env := []string{"SYNC_TEST_URL=" + srv.URL + "/api/v2", "SYNC_TEST_TOKEN=" + access, "SYNC_TEST_DEST=sqlite:" + path,
		"SYNC_TEST_STREAMS=" + strings.Join(crashStreams, ",")}
	rnd := rand.New(rand.NewPCG(1, 2))
	kills := 0
	for i := range 10 {
		h := startHelper(t, "run", env...)
		event, n := "committed", 1+rnd.IntN(30)
		if i%4 == 0 {
			event, n = "prepared", 1+rnd.IntN(len(crashStreams))
		}
		if h.waitFor(event, n) {
			h.kill(t)
			kills++
		} else if out, err := h.finish(); err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, out)
		}
		srv.Mutate(40)
		clock.Advance(2 * time.Second)
	}
	if kills < 5 {
		t.Fatalf("%d runs of 10 were killed; the test proves too little", kills)
	}
	if out, err := startHelper(t, "run", env...).finish(); err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	client, _ := outreach.NewClient(outreach.WithBaseURL(srv.URL+"/api/v2"), outreach.WithTokenSource(outreach.StaticToken(access)))
	streams := pick(syncer.Streams(srv.Catalog()), crashStreams)
	got := tables(t, path, streams, "id")
	for _, s := range streams {
		if diff, ok := equalMaps(got[s.Name], upstream(t, client, s, "id")); !ok {
			t.Errorf("%s after %d kills: %s", s.Name, kills, diff)
		}
	}
}

// TestKilledRunFreesItsStreams stops a real sync process holding a stream
// after its first page: while it lives, another run is refused with who
// holds the stream; once it is killed with SIGKILL, the next run takes the
// stream at once and completes it.
func TestKilledRunFreesItsStreams(t *testing.T) {
	e := newEnv(t, sandbox.Options{Prospects: 60})
	access, _, err := e.srv.IssueToken(1)
	if err != nil {
		t.Fatal(err)
	}
	streams := pick(e.streams(t), []string{"prospects"})
	ctx := context.Background()
	for _, to := range []string{"sqlite", "jsonl", "postgres"} {
		t.Run(to, func(t *testing.T) {
			var dest string
			switch to {
			case "sqlite":
				dest = "sqlite:" + filepath.Join(t.TempDir(), "killed.db")
			case "jsonl":
				dest = "jsonl:" + t.TempDir()
			case "postgres":
				dest = pgtest.DSN(t)
			}
			dst, closeDst, err := openDest(ctx, dest)
			if err != nil {
				t.Fatal(err)
			}
			defer closeDst()
			h := startHelper(t, "hang", "SYNC_TEST_URL="+e.srv.URL+"/api/v2", "SYNC_TEST_TOKEN="+access, "SYNC_TEST_DEST="+dest,
				"SYNC_TEST_STREAMS=prospects")
			if !h.waitFor("committed", 1) {
				out, err := h.finish()
				t.Fatalf("the helper ended before its first page: %v\n%s", err, out)
			}
			opts := syncer.Options{StartDate: time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC), PageSize: 20}
			err = syncer.NewEngine(e.client, dst, nil, nil).Run(ctx, streams, opts)[0].Err
			var locked *connection.LockedError
			if !errors.As(err, &locked) {
				t.Fatalf("a run while the helper holds the stream: %v; want a LockedError", err)
			}
			host, _ := os.Hostname()
			for _, want := range []string{"prospects", fmt.Sprint("pid ", h.cmd.Process.Pid), "host " + host, " since 20"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			h.kill(t)
			opts.FullRefresh = true
			res := syncer.NewEngine(e.client, dst, nil, nil).Run(ctx, streams, opts)[0]
			if res.Err != nil {
				t.Fatalf("the run after the holder was killed: %v", res.Err)
			}
			if want := len(upstream(t, e.client, streams[0], "id")); res.Records < want {
				t.Errorf("the run after the kill read %d records, Outreach has %d", res.Records, want)
			}
		})
	}
}
