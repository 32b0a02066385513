package jobs

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

// Environment of the helper node process.
const (
	envNode   = "JOBS_TEST_NODE" // sqlite or postgres
	envTarget = "JOBS_TEST_TARGET"
	envSchema = "JOBS_TEST_SCHEMA"
	envNodeID = "JOBS_TEST_NODE_ID" // the helper node's ID; "" River's default
)

// TestHelperNode is not a test: run by TestRescueAfterNodeDies as a child
// process, it is a node that takes connection "c-rescue", says so on
// stdout, and hangs in the run until it is killed.
func TestHelperNode(t *testing.T) {
	kind := os.Getenv(envNode)
	if kind == "" {
		t.Skip("helper process for TestRescueAfterNodeDies")
	}
	db := testDB{name: kind, target: os.Getenv(envTarget), schema: os.Getenv(envSchema)}
	ctx := context.Background()
	q := db.open(t, Options{ID: os.Getenv(envNodeID), Run: func(ctx context.Context, id string, _ connection.Trigger) error {
		fmt.Fprintf(os.Stdout, "running %s\n", id)
		select {} // a run that never ends; the process is killed
	}})
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Enqueue(ctx, "c-rescue", connection.ManualRun); err != nil {
		t.Fatal(err)
	}
	select {}
}

// startHelperNode starts TestHelperNode in a child process on db, named
// id ("" River's default), and returns it with its stdout.
func startHelperNode(t *testing.T, db testDB, id string) (*exec.Cmd, io.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperNode$", "-test.count=1")
	cmd.Env = append(os.Environ(), envNode+"="+db.name, envTarget+"="+db.target, envSchema+"="+db.schema, envNodeID+"="+id)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

// A node dies (SIGKILL) in the middle of a run; another node's River
// leader rescues the job and the run completes there, as a retry.
func TestRescueAfterNodeDies(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		// Create the tables before the child, so the parent's later open
		// is not what migrates.
		db.open(t, Options{})

		cmd, out := startHelperNode(t, db, "")
		lines := make(chan string)
		readerDone := make(chan struct{})
		go func() {
			defer close(readerDone)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				select {
				case lines <- sc.Text():
				case <-time.After(wait):
					return
				}
			}
		}()
		killed := false
		defer func() {
			if !killed {
				cmd.Process.Kill()
			}
			cmd.Wait()
			<-readerDone
		}()
		for line := recv(t, lines, "the child's run"); !strings.HasPrefix(line, "running c-rescue"); line = recv(t, lines, "the child's run") {
		}
		if err := cmd.Process.Kill(); err != nil { // SIGKILL: no clean-up, the job stays "running"
			t.Fatal(err)
		}
		killed = true
		cmd.Wait()

		// The surviving node sees the world an hour later, so the dead
		// node's leadership has expired and it becomes the leader at once.
		// River's rescuer reads the real clock: a RescueAfter of 2ms has
		// passed since the dead node took the job (it printed "running"
		// before we killed it). Its runs here return at once, within the
		// 1ms slice or not.
		clock := &offsetClock{}
		clock.Advance(time.Hour)
		triggers := make(chan connection.Trigger, 1)
		survivor := db.open(t, Options{Clock: clock, RunTimeout: time.Millisecond, RescueAfter: 2 * time.Millisecond,
			RetryBackoff: func(int) time.Duration { return 0 },
			Run: func(ctx context.Context, id string, trigger connection.Trigger) error {
				triggers <- trigger
				return nil
			}})
		j, ok, err := survivor.Active(ctx, "c-rescue")
		if err != nil || !ok || j.State != "running" {
			t.Fatalf("the dead node's job: %+v %v %v", j, ok, err)
		}
		events := subscribe(t, survivor)
		if err := survivor.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, triggers, "the rescued run"); got != connection.Retry {
			t.Fatalf("trigger %q, want retry", got)
		}
		if ev := events.next(t, "c-rescue"); ev.Kind != JobCompleted || ev.Job.ID != j.ID || ev.Job.Attempt != 2 {
			t.Fatalf("event %+v", ev)
		}
	})
}

// The only node is killed (SIGKILL) in the middle of a run and starts
// again: it knows its predecessor is gone (Options.NodeGone) and retries
// the run at Start, without waiting RescueAfter (an hour here).
func TestRunOfAGoneNodeRetriedAtStart(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		db.open(t, Options{}) // migrate before the child
		cmd, out := startHelperNode(t, db, "node-gone")
		sc := bufio.NewScanner(out)
		for sc.Scan() && !strings.HasPrefix(sc.Text(), "running c-rescue") {
		}
		cmd.Process.Kill() // SIGKILL once it runs: the job stays "running"
		cmd.Wait()

		asked := make(chan string, 10)
		triggers := make(chan connection.Trigger, 1)
		survivor := db.open(t, Options{ID: "node-new", RunTimeout: time.Minute, RescueAfter: time.Hour,
			NodeGone: func(id string) bool { asked <- id; return id == "node-gone" },
			Run: func(ctx context.Context, id string, trigger connection.Trigger) error {
				triggers <- trigger
				return nil
			}})
		if j, ok, err := survivor.Active(ctx, "c-rescue"); err != nil || !ok || j.State != "running" {
			t.Fatalf("the killed node's job: %+v %v %v", j, ok, err)
		}
		if err := survivor.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if id := recv(t, asked, "the question whether the node is gone"); id != "node-gone" {
			t.Fatalf("asked about node %q", id)
		}
		if got := recv(t, triggers, "the run retried at start"); got != connection.Retry {
			t.Fatalf("trigger %q, want retry", got)
		}
	})
}
