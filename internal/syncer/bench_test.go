package syncer_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/postgres"
	"github.com/outreach-connector/outreach-connector/internal/postgres/pgtest"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// sandboxProcess serves a sandbox of n prospects from a child process, so
// that the benchmark's own CPU and memory are the sync's alone. It
// returns the API URL and a token.
func sandboxProcess(b *testing.B, n int64) (string, string) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), "SYNC_TEST_HELPER=serve", fmt.Sprintf("SYNC_TEST_PROSPECTS=%d", n))
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("sandbox process: %v", err)
	}
	f := strings.Fields(line)
	return f[0], f[1]
}

// serveHelper runs a sandbox until killed, printing "URL TOKEN".
func serveHelper() int {
	n, _ := strconv.ParseInt(os.Getenv("SYNC_TEST_PROSPECTS"), 10, 64)
	srv, err := sandbox.Start("", sandbox.Options{Prospects: n, RateLimit: 1 << 30, MintInterval: -1})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	access, _, _ := srv.IssueToken(1, "prospects.read")
	fmt.Println(srv.URL+"/api/v2", access)
	select {}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func maxRSS() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss * 1024 // kilobytes on Linux
}

func prospectsStream(b *testing.B, c *outreach.Client) *connection.Stream {
	for _, s := range syncer.Streams(catalog.Default()) {
		if s.Name == "prospects" {
			return s
		}
	}
	b.Fatal("no prospects stream")
	return nil
}

func benchSize() int64 {
	if v, err := strconv.ParseInt(os.Getenv("SYNC_BENCH_PROSPECTS"), 10, 64); err == nil && v > 0 {
		return v
	}
	return 20000
}

// BenchmarkSyncProspects measures a full prospects sync from a sandbox in
// another process into SQLite and PostgreSQL: records per second, and CPU
// seconds per 100,000 records of this process alone.
func BenchmarkSyncProspects(b *testing.B) {
	n := benchSize()
	url, token := sandboxProcess(b, n)
	client, err := outreach.NewClient(outreach.WithBaseURL(url), outreach.WithTokenSource(outreach.StaticToken(token)))
	if err != nil {
		b.Fatal(err)
	}
	s := prospectsStream(b, client)
	dests := map[string]func(b *testing.B) connection.Destination{
		"sqlite": func(b *testing.B) connection.Destination {
			db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			return db
		},
		"postgres": func(b *testing.B) connection.Destination {
			db, err := postgres.Open(context.Background(), pgtest.DSN(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			return db
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			var records int
			var cpu time.Duration
			for b.Loop() {
				dst := dests[name](b)
				c0 := cpuTime()
				res := syncer.NewEngine(client, dst, nil, nil).Run(context.Background(), []*connection.Stream{s},
					syncer.Options{StartDate: time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)})
				cpu += cpuTime() - c0
				if err := syncer.Failed(res); err != nil {
					b.Fatal(err)
				}
				records += res[0].Records
			}
			b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(cpu.Seconds()/float64(records)*100000, "cpu-s/100k")
			b.ReportMetric(float64(maxRSS())/(1<<20), "maxrss-MiB")
		})
	}
	b.Run("floor-sqlite", func(b *testing.B) {
		// The simplest loop over the same pages: GET, decode, insert the id
		// and the attributes as one JSON document, a transaction a page.
		var records int
		for b.Loop() {
			db, err := sql.Open("sqlite", "file:"+filepath.Join(b.TempDir(), "floor.db")+"?_pragma=journal_mode(WAL)")
			if err != nil {
				b.Fatal(err)
			}
			db.Exec(`CREATE TABLE p (id INTEGER PRIMARY KEY, doc TEXT)`)
			next := url + "/prospects?page%5Bsize%5D=1000&sort=updatedAt"
			for next != "" {
				req, _ := http.NewRequest("GET", next, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/vnd.api+json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				page, err := outreach.DecodePage(body)
				if err != nil {
					b.Fatal(err)
				}
				tx, _ := db.Begin()
				st, _ := tx.Prepare(`INSERT OR REPLACE INTO p (id, doc) VALUES (?, ?)`)
				for _, r := range page.Resources {
					doc, _ := json.Marshal(r.Attributes)
					st.Exec(r.ID, doc)
				}
				st.Close()
				tx.Commit()
				records += len(page.Resources)
				next = page.Next
			}
			db.Close()
		}
		b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	})
}
