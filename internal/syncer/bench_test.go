package syncer_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/jsonl"
	"github.com/outreach-connector/outreach-connector/internal/postgres"
	"github.com/outreach-connector/outreach-connector/internal/postgres/pgtest"
	"github.com/outreach-connector/outreach-connector/internal/singer"
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

// destinations opens each destination the benchmarks sync into, fresh.
var benchDestinations = []struct {
	name string
	open func(b *testing.B) connection.Destination
}{
	{"sqlite", func(b *testing.B) connection.Destination {
		db, err := sqlite.OpenDestination(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		return db
	}},
	{"postgres", func(b *testing.B) connection.Destination {
		db, err := postgres.OpenDestination(context.Background(), pgtest.DSN(b))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		return db
	}},
	{"jsonl", func(b *testing.B) connection.Destination {
		d, err := jsonl.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		return d
	}},
	{"singer", func(b *testing.B) connection.Destination {
		w, err := singer.New(io.Discard, nil)
		if err != nil {
			b.Fatal(err)
		}
		return w
	}},
}

// BenchmarkSyncProspects measures a full prospects sync from a sandbox in
// another process into each destination: records per second, and CPU
// seconds per 100,000 records of this process alone. SYNC_BENCH_DEST
// picks destinations ("sqlite,jsonl"; default all).
func BenchmarkSyncProspects(b *testing.B) {
	n := benchSize()
	url, token := sandboxProcess(b, n)
	client, err := outreach.NewClient(outreach.WithBaseURL(url), outreach.WithTokenSource(outreach.StaticToken(token)))
	if err != nil {
		b.Fatal(err)
	}
	s := prospectsStream(b, client)
	for _, d := range benchDestinations {
		if !wanted(d.name) {
			continue
		}
		b.Run(d.name, func(b *testing.B) {
			var records int
			var cpu time.Duration
			for b.Loop() {
				dst := d.open(b)
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
}

func wanted(name string) bool {
	list := os.Getenv("SYNC_BENCH_DEST")
	return list == "" || slices.Contains(strings.Split(list, ","), name)
}

// syncOrder captures, from a whole sync, the records of the first page
// (copied: the engine may reuse its buffers) and every record's id in the
// order the sync writes them.
type syncOrder struct {
	connection.Destination
	recs []connection.Record
	ids  []int64
}

func (f *syncOrder) Prepare(context.Context, *connection.Stream) error { return nil }
func (f *syncOrder) State(context.Context, string) (connection.State, error) {
	return connection.State{}, nil
}
func (f *syncOrder) Write(_ context.Context, _ *connection.Stream, recs []connection.Record, _ connection.State) error {
	if f.recs == nil && len(recs) > 0 {
		for _, r := range recs {
			f.recs = append(f.recs, connection.Record{ID: r.ID, Cursor: r.Cursor, Values: slices.Clone(r.Values)})
		}
	}
	for _, r := range recs {
		f.ids = append(f.ids, r.ID)
	}
	return nil
}

// captureProspects syncs the prospects of the sandbox at url into a
// syncOrder.
func captureProspects(b *testing.B, url, token string) (*connection.Stream, *syncOrder) {
	client, err := outreach.NewClient(outreach.WithBaseURL(url), outreach.WithTokenSource(outreach.StaticToken(token)))
	if err != nil {
		b.Fatal(err)
	}
	s := prospectsStream(b, client)
	capture := &syncOrder{}
	if err := syncer.Failed(syncer.NewEngine(client, capture, nil, nil).Run(context.Background(), []*connection.Stream{s},
		syncer.Options{StartDate: time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)})); err != nil {
		b.Fatal(err)
	}
	return s, capture
}

// BenchmarkSyncFloor measures, per destination, only the irreducible work
// of a prospects sync: GET every page and read its bytes (into one reused
// buffer), scan them once
// (json.Valid: the least a decoder must do), and write the same typed
// values the sync writes (those of the first page, made once before the
// clock starts, their ids moved along for every page) the cheapest way
// the destination allows, one transaction per page:
//
//   - sqlite: a reused prepared INSERT of the typed values (modernc);
//   - postgres: pgx COPY of the typed values into a table of the same
//     column types, text where COPY's binary encoding wants Go time values;
//   - jsonl: the page's JSON lines (made once) appended and synced;
//   - singer: the page's RECORD lines (made once) written to a buffer.
//
// No destination can do less per page than this, so its CPU per 100k is
// the floor the sync's is compared with.
func BenchmarkSyncFloor(b *testing.B) {
	n := benchSize()
	url, token := sandboxProcess(b, n)
	s, capture := captureProspects(b, url, token)
	if len(capture.recs) == 0 {
		b.Fatal("no first page")
	}
	recs := capture.recs
	// id returns the key of record i of page: the one the sync writes
	// there. Rows keyed in the sync's order (by updatedAt, so ids in no
	// order) cost a B-tree more than ascending keys would.
	id := func(page, i int) int64 {
		if k := page*len(recs) + i; k < len(capture.ids) {
			return capture.ids[k]
		}
		return int64(1<<40 + page*len(recs) + i)
	}
	floors := map[string]func(b *testing.B) (write func(page int) error, done func()){
		"sqlite": func(b *testing.B) (func(int) error, func()) {
			db, err := sql.Open("sqlite", "file:"+filepath.Join(b.TempDir(), "floor.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
			if err != nil {
				b.Fatal(err)
			}
			// Columns empty in every row of the page are written as NULL,
			// not bound: binding nothing is the least work.
			var cols, marks []string
			var bound []int
			for j, c := range s.Columns {
				cols = append(cols, `"`+c.Name+`"`)
				mark := "NULL"
				for _, r := range recs {
					if r.Values[j] != nil {
						mark = "?"
						bound = append(bound, j)
						break
					}
				}
				marks = append(marks, mark)
			}
			args := make([]any, len(bound))
			if _, err := db.Exec(`CREATE TABLE p (` + strings.Join(cols, ", ") + `, PRIMARY KEY ("id"))`); err != nil {
				b.Fatal(err)
			}
			ins, err := db.Prepare(`INSERT INTO p VALUES (` + strings.Join(marks, ",") + `)`)
			if err != nil {
				b.Fatal(err)
			}
			return func(page int) error {
				tx, err := db.Begin()
				if err != nil {
					return err
				}
				st := tx.Stmt(ins)
				for i, r := range recs {
					r.Values[0] = id(page, i)
					for k, j := range bound {
						args[k] = r.Values[j]
					}
					if _, err := st.Exec(args...); err != nil {
						return err
					}
				}
				return tx.Commit()
			}, func() { db.Close() }
		},
		"postgres": func(b *testing.B) (func(int) error, func()) {
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, pgtest.DSN(b))
			if err != nil {
				b.Fatal(err)
			}
			var cols []string
			var names []string
			for _, c := range s.Columns {
				t := "TEXT"
				switch c.Type {
				case connection.ColInteger:
					t = "BIGINT"
				case connection.ColNumber:
					t = "DOUBLE PRECISION"
				case connection.ColBoolean:
					t = "BOOLEAN"
				}
				cols = append(cols, `"`+c.Name+`" `+t)
				names = append(names, c.Name)
			}
			if _, err := conn.Exec(ctx, `CREATE TABLE p (`+strings.Join(cols, ", ")+`)`); err != nil {
				b.Fatal(err)
			}
			return func(page int) error {
				tx, err := conn.Begin(ctx)
				if err != nil {
					return err
				}
				defer tx.Rollback(ctx)
				i := 0
				_, err = tx.CopyFrom(ctx, pgx.Identifier{"p"}, names, pgx.CopyFromFunc(func() ([]any, error) {
					if i == len(recs) {
						return nil, nil
					}
					v := recs[i].Values
					v[0] = id(page, i)
					i++
					return v, nil
				}))
				if err != nil {
					return err
				}
				return tx.Commit(ctx)
			}, func() { conn.Close(ctx) }
		},
		"jsonl": func(b *testing.B) (func(int) error, func()) {
			var buf bytes.Buffer
			for _, r := range recs {
				line, _ := s.AppendJSON(nil, r)
				buf.Write(line)
				buf.WriteByte('\n')
			}
			f, err := os.OpenFile(filepath.Join(b.TempDir(), "p.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			return func(int) error {
				if _, err := f.Write(buf.Bytes()); err != nil {
					return err
				}
				return f.Sync()
			}, func() { f.Close() }
		},
		"singer": func(b *testing.B) (func(int) error, func()) {
			var buf bytes.Buffer
			for _, r := range recs {
				buf.WriteString(`{"type":"RECORD","stream":"prospects","record":`)
				line, _ := s.AppendJSON(nil, r)
				buf.Write(line)
				buf.WriteString(`,"time_extracted":"2026-01-01T00:00:00Z"}` + "\n")
			}
			w := bufio.NewWriter(io.Discard)
			return func(int) error { _, err := w.Write(buf.Bytes()); return err }, func() { w.Flush() }
		},
	}
	for _, d := range benchDestinations {
		if !wanted(d.name) {
			continue
		}
		b.Run(d.name, func(b *testing.B) {
			var records int
			var cpu time.Duration
			for b.Loop() {
				write, done := floors[d.name](b)
				c0 := cpuTime()
				next := url + "/prospects?page%5Bsize%5D=1000&sort=updatedAt"
				var read bytes.Buffer // one buffer for every page, as the sync reuses its own
				for page := 0; next != ""; page++ {
					req, _ := http.NewRequest("GET", next, nil)
					req.Header.Set("Authorization", "Bearer "+token)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					read.Reset()
					_, err = read.ReadFrom(resp.Body)
					resp.Body.Close()
					body := read.Bytes()
					if err != nil || !json.Valid(body) {
						b.Fatalf("page %d: %v", page, err)
					}
					var links struct {
						Links struct{ Next string } `json:"links"`
					}
					// Only links.next, found from the end of the document
					// (it comes after the data), without scanning again.
					if i := bytes.LastIndex(body, []byte(`"links":{`)); i >= 0 {
						json.Unmarshal(append([]byte("{"), body[i:]...), &links)
					}
					if err := write(page); err != nil {
						b.Fatal(err)
					}
					records += len(recs)
					next = links.Links.Next
				}
				cpu += cpuTime() - c0
				done()
			}
			b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(cpu.Seconds()/float64(records)*100000, "cpu-s/100k")
		})
	}
}

// BenchmarkSyncUnchanged measures an incremental prospects sync right
// after a full one, with nothing changed in Outreach: its requests and its
// CPU per run (this process alone), beside the full sync's CPU before it.
// The destinations that keep state (not Singer on stdout, whose state is
// the caller's) each get their full sync outside the timed loop.
func BenchmarkSyncUnchanged(b *testing.B) {
	n := benchSize()
	url, token := sandboxProcess(b, n)
	var requests int
	client, err := outreach.NewClient(outreach.WithBaseURL(url), outreach.WithTokenSource(outreach.StaticToken(token)),
		outreach.WithObserver(func(outreach.RequestEvent) { requests++ }))
	if err != nil {
		b.Fatal(err)
	}
	s := prospectsStream(b, client)
	opts := syncer.Options{StartDate: time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, d := range benchDestinations {
		if !wanted(d.name) || d.name == "singer" {
			continue
		}
		b.Run(d.name, func(b *testing.B) {
			dst := d.open(b)
			eng := syncer.NewEngine(client, dst, nil, nil)
			c0 := cpuTime()
			if err := syncer.Failed(eng.Run(context.Background(), []*connection.Stream{s}, opts)); err != nil {
				b.Fatal(err)
			}
			full := cpuTime() - c0
			requests = 0
			var cpu time.Duration
			records, runs := 0, 0
			for b.Loop() {
				c0 := cpuTime()
				res := eng.Run(context.Background(), []*connection.Stream{s}, opts)
				cpu += cpuTime() - c0
				if err := syncer.Failed(res); err != nil {
					b.Fatal(err)
				}
				records += res[0].Records
				runs++
			}
			b.ReportMetric(float64(requests)/float64(runs), "requests/run")
			b.ReportMetric(float64(records)/float64(runs), "records/run")
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(runs), "cpu-ms/run")
			b.ReportMetric(full.Seconds()*1000, "full-sync-cpu-ms")
		})
	}
}

// BenchmarkWritePages measures a destination's Write alone: the records of
// a prospects page (made once, as the sync makes them), their ids moved
// along for every page, SYNC_BENCH_PROSPECTS of them in pages of a
// thousand, CPU seconds per 100,000 records of this process.
func BenchmarkWritePages(b *testing.B) {
	n := benchSize()
	url, token := sandboxProcess(b, 1000)
	s, capture := captureProspects(b, url, token)
	recs := capture.recs
	for _, d := range benchDestinations {
		if !wanted(d.name) {
			continue
		}
		b.Run(d.name, func(b *testing.B) {
			var records int
			var cpu time.Duration
			for b.Loop() {
				dst := d.open(b)
				ctx := context.Background()
				if err := dst.Prepare(ctx, s); err != nil {
					b.Fatal(err)
				}
				c0 := cpuTime()
				for page := 0; page*len(recs) < int(n); page++ {
					for i := range recs {
						id := int64(page*len(recs) + i + 1)
						recs[i].ID, recs[i].Values[0] = id, id
					}
					if err := dst.Write(ctx, s, recs, connection.State{Cursor: recs[len(recs)-1].Cursor}); err != nil {
						b.Fatal(err)
					}
					records += len(recs)
				}
				cpu += cpuTime() - c0
			}
			b.ReportMetric(cpu.Seconds()/float64(records)*100000, "cpu-s/100k")
		})
	}
}
