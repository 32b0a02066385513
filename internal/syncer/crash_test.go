package syncer_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/sqlite"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

func TestMain(m *testing.M) {
	switch os.Getenv("SYNC_TEST_HELPER") {
	case "run":
		os.Exit(syncHelper())
	case "serve":
		os.Exit(serveHelper())
	}
	os.Exit(m.Run())
}

// syncHelper is the process the crash test kills: one sync run.
func syncHelper() int {
	ctx := context.Background()
	client, err := outreach.NewClient(outreach.WithBaseURL(os.Getenv("SYNC_TEST_URL")),
		outreach.WithTokenSource(outreach.StaticToken(os.Getenv("SYNC_TEST_TOKEN"))))
	if err != nil {
		fmt.Println(err)
		return 1
	}
	db, err := sqlite.Open(ctx, os.Getenv("SYNC_TEST_DB"))
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer db.Close()
	cat, err := syncer.Discover(ctx, client)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	results := syncer.NewEngine(client, db, nil, nil).Run(ctx, syncer.Streams(cat), syncer.Options{
		StartDate: time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC), PageSize: 20, Concurrency: 2, Reconcile: true})
	if err := syncer.Failed(results); err != nil {
		fmt.Println(err)
		return 1
	}
	return 0
}

// TestCrashAnywhereLosesNothing kills sync processes at random instants
// while the sandbox changes, then lets a last run finish, and compares the
// database with Outreach.
func TestCrashAnywhereLosesNothing(t *testing.T) {
	srv, err := sandbox.Start("", sandbox.Options{Prospects: 200, MintInterval: -1, Faults: sandbox.Faults{LatencyMillis: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	access, _, _ := srv.IssueToken(1)
	path := filepath.Join(t.TempDir(), "crash.db")
	rnd := rand.New(rand.NewPCG(1, 2))
	spawn := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "SYNC_TEST_HELPER=run", "SYNC_TEST_URL="+srv.URL+"/api/v2", "SYNC_TEST_TOKEN="+access, "SYNC_TEST_DB="+path)
		return cmd
	}
	kills := 0
	for range 6 {
		cmd := spawn()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-time.After(time.Duration(20+rnd.IntN(400)) * time.Millisecond):
			cmd.Process.Kill()
			<-done
			kills++
		case <-done:
		}
		srv.Mutate(40)
		time.Sleep(1100 * time.Millisecond) // let updatedAt (second precision) move on
	}
	if kills == 0 {
		t.Fatal("no run was killed; the test proves nothing")
	}
	// A run can also die holding stream locks: they expire, but here the
	// last run must not wait 30 minutes, so clear them as an operator would.
	clearLocks(t, path)
	if out, err := spawn().CombinedOutput(); err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	client, _ := outreach.NewClient(outreach.WithBaseURL(srv.URL+"/api/v2"), outreach.WithTokenSource(outreach.StaticToken(access)))
	for _, s := range syncer.Streams(srv.Catalog()) {
		if diff, ok := equalMaps(table(t, path, s, "id"), upstream(t, client, s, "id")); !ok {
			t.Errorf("%s after %d kills: %s", s.Name, kills, diff)
		}
	}
}
