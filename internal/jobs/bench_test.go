package jobs

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

// BenchmarkRunOverhead measures River's cost of one connection run whose
// sync does nothing: enqueue → fetch → work → complete, and the CPU this
// process spends on it (cpu-ms/op; the database server's is not counted).
//
//   - sequential: one run at a time, enqueue to completion event (latency);
//   - batch: b.N runs of distinct connections queued at once, until the
//     last completes (throughput, 4 workers).
func BenchmarkRunOverhead(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		for _, mode := range []string{"sequential", "batch"} {
			b.Run(name+"/"+mode, func(b *testing.B) {
				var db testDB
				if name == "sqlite" {
					db = sqliteDB(b)
				} else {
					db = postgresDB(b)
				}
				ctx := context.Background()
				q := db.open(b, Options{Run: func(context.Context, string, connection.Trigger) error { return nil }})
				c, cancel := q.Subscribe()
				defer cancel()
				if err := q.Start(ctx); err != nil {
					b.Fatal(err)
				}
				done := func() {
					select {
					case <-c:
					case <-time.After(wait):
						b.Fatal("no completion")
					}
				}
				cpu0 := cpuTime()
				b.ResetTimer()
				if mode == "sequential" {
					for i := range b.N {
						if _, err := q.Enqueue(ctx, fmt.Sprint("bench-", i), connection.ManualRun); err != nil {
							b.Fatal(err)
						}
						done()
					}
				} else {
					for i := range b.N {
						if _, err := q.Enqueue(ctx, fmt.Sprint("bench-", i), connection.ManualRun); err != nil {
							b.Fatal(err)
						}
					}
					for range b.N {
						done()
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

// cpuTime is the CPU this process has used (user and system); the
// database server's is not included.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
