package service_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/destinations"
	"github.com/outreach-connector/outreach-connector/internal/jobs"
	"github.com/outreach-connector/outreach-connector/internal/service"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// TestMain lets the benchmark run the sandbox in a process of its own (so
// that the CPU measured is the connector's alone).
func TestMain(m *testing.M) {
	if os.Getenv("SERVICE_BENCH_SANDBOX") == "1" {
		os.Exit(sandboxProcess())
	}
	os.Exit(m.Run())
}

// remoteSandbox is what the sandbox process reports on its first line.
type remoteSandbox struct {
	URL, ClientID, ClientSecret, RedirectURI string
	Access, Refresh                          string
	Scopes                                   []string
}

func sandboxProcess() int {
	sb, err := sandbox.Start("127.0.0.1:0", sandbox.Options{Prospects: 2000, MintInterval: -1, RateLimit: 1 << 30})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer sb.Close()
	access, refresh, err := sb.IssueToken(1)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	app := sb.Apps()[0]
	json.NewEncoder(os.Stdout).Encode(remoteSandbox{URL: sb.URL, ClientID: app.ClientID, ClientSecret: app.ClientSecret,
		RedirectURI: app.RedirectURIs[0], Access: access, Refresh: refresh, Scopes: sb.Catalog().Scopes()})
	io.Copy(io.Discard, os.Stdin) // until the benchmark closes it
	return 0
}

func startSandboxProcess(b *testing.B) remoteSandbox {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), "SERVICE_BENCH_SANDBOX=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	var sb remoteSandbox
	if err := json.NewDecoder(bufio.NewReader(stdout)).Decode(&sb); err != nil {
		b.Fatalf("sandbox process: %v", err)
	}
	return sb
}

// mutate makes n changes in the sandbox (creates, updates, deletes).
func mutate(b *testing.B, sb remoteSandbox, n int) {
	resp, err := http.Post(fmt.Sprintf("%s/_sandbox/mutations/run?n=%d", sb.URL, n), "", nil)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("mutate: %s", resp.Status)
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkScheduledRun measures what one scheduled connection run costs
// the node that works it, in steady state: an org of 2,000 prospects
// (about 30,000 records over every stream) already synced, 20 changes made
// upstream between rounds, and then every connection runs once, as a
// 15-minute schedule does. The sandbox runs in a process of its own; its
// CPU is not counted.
//
//   - service: connections.RunNow → River (SQLite queue, 4 workers) →
//     the service (credential, client, discovery, streams, engine into the
//     connection's SQLite destination, run recorded with its stats);
//   - engine: the same syncs by the engine alone, with a static token and
//     no queue, no credential store and no run record: the sync's own cost.
//
// cpu-ms/run is this process's CPU per connection-run; alloc-MB/run the
// bytes allocated per run; peak-RSS-MB the process's maximum.
func BenchmarkScheduledRun(b *testing.B) {
	const connections = 8
	sb := startSandboxProcess(b)
	ctx := b.Context()

	dir := b.TempDir()
	{ // the service, its queue and connections; set up once
		appPath := filepath.Join(dir, "app.db")
		db, err := sqlite.Open(ctx, appPath)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		keys, _ := credential.GenerateKeyring()
		m, err := credential.NewManager(credential.Options{Store: db, Keyring: keys})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Import(ctx, credential.NewCredential{Name: "sandbox", ClientID: sb.ClientID, ClientSecret: sb.ClientSecret,
			Scopes: sb.Scopes, Environment: credential.Development, APIBaseURL: sb.URL + "/api/v2", RedirectURI: sb.RedirectURI}, sb.Refresh); err != nil {
			b.Fatal(err)
		}
		var svc *service.Service
		q, err := jobs.OpenSQLite(ctx, appPath, jobs.Options{MaxAttempts: 1, SchedulerInterval: time.Hour, Workers: 4,
			Run: jobs.Recorded(db.Connections(), nil, nil, func(ctx context.Context, r *connection.Run) error { return svc.Sync(ctx, r) })})
		if err != nil {
			b.Fatal(err)
		}
		defer q.Close()
		svc, err = service.New(service.Options{Store: db.Connections(), Queue: q, Credentials: m, Logger: slog.New(slog.DiscardHandler),
			Open: func(ctx context.Context, url, ns string) (connection.Destination, func() error, error) {
				return destinations.Open(ctx, url, ns, io.Discard)
			}})
		if err != nil {
			b.Fatal(err)
		}
		events, cancel := q.Subscribe()
		defer cancel()
		if err := q.Start(ctx); err != nil {
			b.Fatal(err)
		}
		defer q.Stop(context.Background())
		var names []string
		for i := range connections {
			c, err := svc.Create(ctx, service.NewConnection{Name: fmt.Sprint("c", i), Credential: "sandbox", Schedule: "manual",
				DestinationURL: "sqlite:" + filepath.Join(dir, fmt.Sprintf("svc%d.db", i))})
			if err != nil {
				b.Fatal(err)
			}
			names = append(names, c.Name)
		}
		round := func() {
			for _, n := range names {
				if _, err := svc.RunNow(ctx, n); err != nil {
					b.Fatal(err)
				}
			}
			for done := 0; done < len(names); {
				select {
				case ev := <-events:
					if ev.Kind == jobs.JobSnoozed {
						continue
					}
					if ev.Kind != jobs.JobCompleted {
						b.Fatalf("run ended %v", ev.Kind)
					}
					done++
				case <-time.After(5 * time.Minute):
					b.Fatal("runs did not finish")
				}
			}
		}
		round() // the first, full sync: not measured
		b.Run("service", func(b *testing.B) { measure(b, sb, len(names), round) })
	}
	{ // the engine alone into destinations of its own
		client, err := outreach.NewClient(outreach.WithBaseURL(sb.URL+"/api/v2"), outreach.WithTokenSource(outreach.StaticToken(sb.Access)))
		if err != nil {
			b.Fatal(err)
		}
		type target struct {
			dst   connection.Destination
			close func() error
		}
		var targets []target
		for i := range connections {
			d, closeDst, err := destinations.Open(ctx, "sqlite:"+filepath.Join(dir, fmt.Sprintf("eng%d.db", i)), "", io.Discard)
			if err != nil {
				b.Fatal(err)
			}
			defer closeDst()
			targets = append(targets, target{d, closeDst})
		}
		start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
		round := func() {
			sem := make(chan struct{}, 4)
			var wg sync.WaitGroup
			for _, t := range targets {
				wg.Go(func() {
					sem <- struct{}{}
					defer func() { <-sem }()
					cat, err := syncer.Discover(ctx, client)
					if err != nil {
						b.Error(err)
						return
					}
					if err := syncer.Failed(syncer.NewEngine(client, t.dst, nil, nil).Run(ctx, syncer.Streams(cat),
						syncer.Options{StartDate: start})); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
		}
		round()
		b.Run("engine", func(b *testing.B) { measure(b, sb, len(targets), round) })
	}
}

// measure runs b.N rounds of runs (20 upstream changes before each) and
// reports CPU, allocation and memory per connection-run.
func measure(b *testing.B, sb remoteSandbox, runs int, round func()) {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		mutate(b, sb, 20)
		b.StartTimer()
		c0 := processCPU()
		round()
		cpu += processCPU() - c0
	}
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	n := float64(b.N * runs)
	b.ReportMetric(float64(cpu)/float64(time.Millisecond)/n, "cpu-ms/run")
	b.ReportMetric(float64(b.Elapsed())/float64(time.Millisecond)/n, "wall-ms/run")
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/(1<<20)/n, "alloc-MB/run")
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
	b.ReportMetric(0, "ns/op")
}
