// Package synctest is the conformance suite every sync.Destination runs.
package connectiontest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

// Harness is a destination under test and a way to read it back.
type Harness struct {
	Dest connection.Destination
	// Rows returns the rows of the stream not marked deleted, by id, each
	// column as text: strings as they are, numbers in decimal, booleans
	// as true or false, JSON as JSON text; null columns absent.
	Rows func(t *testing.T, s *connection.Stream) map[int64]map[string]string
	// The lock tests run when Dest is a connection.Locker, the deletes
	// test when it is a connection.Reconciler.
	// InNamespace is the namespace Dest is in ("" the default).
	InNamespace string
	// Namespace opens the same database, file or directory as Dest in
	// namespace ns (a harness may add a suffix to ns to keep tests apart;
	// InNamespace says the name used), opening the same storage each time
	// it is given the same ns. Nil when the destination stores nothing
	// (Singer): the namespace tests are skipped. The Claimer, Resetter,
	// Dropper and Inspector tests run when Dest implements them.
	Namespace func(t *testing.T, ns string) Harness
}

// TestStream is the stream the suite writes.
func TestStream(name string) *connection.Stream {
	return &connection.Stream{Name: name, Path: name, Type: "widget", Replication: connection.Incremental, CursorField: "updatedAt", PageSize: 100,
		Columns: []connection.Column{
			{Name: "id", Type: connection.ColInteger},
			{Name: "name", Type: connection.ColString, Attribute: "name"},
			{Name: "count", Type: connection.ColInteger, Attribute: "count"},
			{Name: "score", Type: connection.ColNumber, Attribute: "score"},
			{Name: "flag", Type: connection.ColBoolean, Attribute: "flag"},
			{Name: "updatedAt", Type: connection.ColTimestamp, Attribute: "updatedAt"},
			{Name: "tags", Type: connection.ColJSON, Attribute: "tags"},
			{Name: "ownerId", Type: connection.ColInteger, Relationship: "owner"},
			{Name: "memberIds", Type: connection.ColJSON, Relationship: "members", ToMany: true},
			{Name: connection.ExtrasColumn, Type: connection.ColJSON},
			{Name: connection.DeletedColumn, Type: connection.ColTimestamp},
		}}
}

func record(id int64, name string, count int64, flag bool, updated string) connection.Record {
	return connection.Record{ID: id, Cursor: updated, Values: []any{id, name, count, 1.5 * float64(id), flag, updated, `["a","b\"c"]`, int64(7),
		`[1,2]`, `{"accountName":"Acme"}`, nil}}
}

// RunDestination runs the suite; newHarness gives an empty destination.
func RunDestination(t *testing.T, newHarness func(t *testing.T) Harness) {
	ctx := context.Background()
	runNamespaces(t, newHarness)
	t.Run("WriteAndRead", func(t *testing.T) {
		h := newHarness(t)
		s := TestStream("widgets")
		must(t, h.Dest.Prepare(ctx, s))
		must(t, h.Dest.Prepare(ctx, s)) // idempotent
		recs := []connection.Record{record(1, "one", 10, true, "2026-01-01T00:00:01.000Z"), record(2, "two, \"quoted\"\n", 20, false, "2026-01-01T00:00:02.000Z")}
		recs[1].Values[3] = nil // a null number
		must(t, h.Dest.Write(ctx, s, recs, connection.State{Cursor: "2026-01-01T00:00:02.000Z"}))
		rows := h.Rows(t, s)
		if len(rows) != 2 {
			t.Fatalf("rows = %d, want 2", len(rows))
		}
		want := map[string]string{"name": "one", "count": "10", "score": "1.5", "flag": "true", "ownerId": "7"}
		for col, v := range want {
			if got := rows[1][col]; got != v {
				t.Errorf("row 1 %s = %q, want %q", col, got, v)
			}
		}
		if got := rows[2]["name"]; got != "two, \"quoted\"\n" {
			t.Errorf("row 2 name = %q", got)
		}
		if _, ok := rows[2]["score"]; ok {
			t.Errorf("row 2 score = %q, want null", rows[2]["score"])
		}
		for _, col := range []string{"tags", "memberIds", connection.ExtrasColumn} {
			if !jsonEqual(rows[1][col], recs[0].Values[colIndex(s, col)].(string)) {
				t.Errorf("row 1 %s = %s, want %s", col, rows[1][col], recs[0].Values[colIndex(s, col)])
			}
		}
		if !sameInstant(rows[1]["updatedAt"], "2026-01-01T00:00:01.000Z") {
			t.Errorf("row 1 updatedAt = %q", rows[1]["updatedAt"])
		}
		st, err := h.Dest.State(ctx, s.Name)
		if err != nil || st.Cursor != "2026-01-01T00:00:02.000Z" {
			t.Errorf("State = %+v, %v", st, err)
		}
	})
	t.Run("UpsertReplaces", func(t *testing.T) {
		h := newHarness(t)
		s := TestStream("widgets")
		must(t, h.Dest.Prepare(ctx, s))
		must(t, h.Dest.Write(ctx, s, []connection.Record{record(1, "old", 1, false, "2026-01-01T00:00:01.000Z")}, connection.State{Cursor: "a"}))
		must(t, h.Dest.Write(ctx, s, []connection.Record{record(1, "new", 2, true, "2026-01-02T00:00:01.000Z")}, connection.State{Cursor: "b"}))
		rows := h.Rows(t, s)
		if len(rows) != 1 || rows[1]["name"] != "new" || rows[1]["count"] != "2" {
			t.Errorf("after two writes of id 1: %v", rows)
		}
		must(t, h.Dest.Write(ctx, s, nil, connection.State{Cursor: "c"}))
		if st, _ := h.Dest.State(ctx, s.Name); st.Cursor != "c" {
			t.Errorf("state after a write of no records = %q, want c", st.Cursor)
		}
	})
	t.Run("EmptyColumnsOfAPage", func(t *testing.T) {
		// A column empty in every record of a page is as empty as one
		// empty in a single record: a later version without the value
		// clears it, and pages empty in ever other columns (more sets of
		// them than a destination keeps statements for) each write
		// exactly their values.
		h := newHarness(t)
		s := TestStream("widgets")
		must(t, h.Dest.Prepare(ctx, s))
		must(t, h.Dest.Write(ctx, s, []connection.Record{record(1, "one", 1, true, "2026-01-01T00:00:01.000Z"),
			record(2, "two", 2, true, "2026-01-01T00:00:02.000Z")}, connection.State{Cursor: "a"}))
		cleared := []connection.Record{record(1, "one", 1, true, "2026-01-02T00:00:01.000Z"), record(2, "two", 2, true, "2026-01-02T00:00:02.000Z")}
		for _, r := range cleared {
			r.Values[colIndex(s, "score")], r.Values[colIndex(s, "tags")] = nil, nil
		}
		cleared[1].Values[colIndex(s, "name")] = nil
		must(t, h.Dest.Write(ctx, s, cleared, connection.State{Cursor: "b"}))
		rows := h.Rows(t, s)
		for id, gone := range map[int64][]string{1: {"score", "tags"}, 2: {"score", "tags", "name"}} {
			for _, col := range gone {
				if v, ok := rows[id][col]; ok {
					t.Errorf("row %d %s = %q after a page without it, want null", id, col, v)
				}
			}
		}
		if rows[1]["name"] != "one" || rows[1]["count"] != "1" {
			t.Errorf("row 1 = %v", rows[1])
		}
		nullable := []string{"name", "count", "score", "flag", "tags", "ownerId", "memberIds", connection.ExtrasColumn}
		const pages = 100
		for p := range pages {
			r := record(int64(100+p), fmt.Sprint("w", p), int64(p), true, "2026-01-03T00:00:00.000Z")
			for k, col := range nullable {
				if p>>k&1 == 1 {
					r.Values[colIndex(s, col)] = nil
				}
			}
			must(t, h.Dest.Write(ctx, s, []connection.Record{r}, connection.State{Cursor: "c"}))
		}
		rows = h.Rows(t, s)
		for p := range pages {
			row := rows[int64(100+p)]
			for k, col := range nullable {
				_, ok := row[col]
				if want := p>>k&1 == 0; ok != want {
					t.Errorf("page %d: %s present = %v, want %v (row %v)", p, col, ok, want, row)
				}
			}
			if p&1 == 0 && row["name"] != fmt.Sprint("w", p) {
				t.Errorf("page %d: name = %q", p, row["name"])
			}
		}
	})
	t.Run("StateIsPerStream", func(t *testing.T) {
		h := newHarness(t)
		a, b := TestStream("alphas"), TestStream("betas")
		must(t, h.Dest.Prepare(ctx, a))
		must(t, h.Dest.Prepare(ctx, b))
		if st, err := h.Dest.State(ctx, "alphas"); err != nil || st.Cursor != "" {
			t.Errorf("state before any write = %+v, %v", st, err)
		}
		must(t, h.Dest.Write(ctx, a, []connection.Record{record(1, "x", 1, true, "2026-01-01T00:00:01.000Z")}, connection.State{Cursor: "ca"}))
		if st, _ := h.Dest.State(ctx, "betas"); st.Cursor != "" {
			t.Errorf("betas state = %q after writing alphas", st.Cursor)
		}
	})
	t.Run("NewColumns", func(t *testing.T) {
		h := newHarness(t)
		s := TestStream("widgets")
		must(t, h.Dest.Prepare(ctx, s))
		must(t, h.Dest.Write(ctx, s, []connection.Record{record(1, "x", 1, true, "2026-01-01T00:00:01.000Z")}, connection.State{}))
		s2 := TestStream("widgets")
		s2.Columns = append(s2.Columns, connection.Column{Name: "color", Type: connection.ColString, Attribute: "color"})
		must(t, h.Dest.Prepare(ctx, s2))
		r := record(2, "y", 2, false, "2026-01-01T00:00:02.000Z")
		r.Values = append(r.Values, "blue")
		must(t, h.Dest.Write(ctx, s2, []connection.Record{r}, connection.State{}))
		rows := h.Rows(t, s2)
		if rows[2]["color"] != "blue" || rows[1]["name"] != "x" {
			t.Errorf("after adding a column: %v", rows)
		}
	})
	t.Run("Text", func(t *testing.T) {
		h := newHarness(t)
		s := TestStream("widgets")
		must(t, h.Dest.Prepare(ctx, s))
		r := record(1, "a\xffb\x00c\xe2\x82", 1, true, "2026-01-01T00:00:01.000Z")
		r.Values[colIndex(s, "tags")] = "[\"x\xfe\",\"\\u0000\",\"\\ud800\",\"\\u00e9\"]"
		r.Values[colIndex(s, connection.ExtrasColumn)] = "{\"k\xff\":{\"n\":\"\xc3\"}}"
		orig := slices.Clone(r.Values)
		must(t, h.Dest.Write(ctx, s, []connection.Record{r}, connection.State{}))
		if !slices.Equal(r.Values, orig) {
			t.Errorf("Write changed the caller's record: %q", r.Values)
		}
		row := h.Rows(t, s)[1]
		if got, want := row["name"], "a\uFFFDb\uFFFDc\uFFFD\uFFFD"; got != want {
			t.Errorf("name = %q, want %q", got, want)
		}
		if got, want := row["tags"], `["x\uFFFD","\uFFFD","\uFFFD","é"]`; !jsonEqual(got, want) {
			t.Errorf("tags = %q, want %q", got, want)
		}
		if got, want := row[connection.ExtrasColumn], `{"k\uFFFD":{"n":"\uFFFD"}}`; !jsonEqual(got, want) {
			t.Errorf("%s = %q, want %q", connection.ExtrasColumn, got, want)
		}
	})
	t.Run("Lock", func(t *testing.T) {
		lk := locker(t, newHarness(t))
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		a, b := elsewhere("a", t0), elsewhere("b", t0)
		must(t, lk.Lock(ctx, "widgets", a, t0))
		err := lk.Lock(ctx, "widgets", b, t0)
		var locked *connection.LockedError
		if !errors.As(err, &locked) {
			t.Fatalf("a second run took a held lock: %v", err)
		}
		if h := locked.Holder; h.RunID != "a" || h.Host != a.Host || h.PID != a.PID || !h.Acquired.Equal(t0) || !h.Expires.Equal(a.Expires) {
			t.Errorf("holder = %+v, want %+v", h, a)
		}
		renewed := a
		renewed.Expires = t0.Add(time.Minute)
		must(t, lk.Lock(ctx, "widgets", renewed, t0.Add(20*time.Second)))
		must(t, lk.Lock(ctx, "gadgets", b, t0))
		must(t, lk.Unlock(ctx, "widgets", "b")) // not b's: no effect
		if err := lk.Lock(ctx, "widgets", b, t0.Add(40*time.Second)); err == nil {
			t.Error("another run's unlock released the lock, or a renewal did not extend it")
		}
		must(t, lk.Unlock(ctx, "widgets", "a"))
		must(t, lk.Lock(ctx, "widgets", b, t0))
	})
	t.Run("LockLeaseExpires", func(t *testing.T) {
		lk := locker(t, newHarness(t))
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		a, b := elsewhere("a", t0), elsewhere("b", t0.Add(connection.LeaseTime))
		must(t, lk.Lock(ctx, "widgets", a, t0))
		if err := lk.Lock(ctx, "widgets", b, t0.Add(connection.LeaseTime-time.Millisecond)); err == nil {
			t.Error("a lease was taken before it expired")
		}
		must(t, lk.Lock(ctx, "widgets", b, t0.Add(connection.LeaseTime)))
		late := a
		late.Expires = t0.Add(connection.LeaseTime + 10*time.Second)
		var locked *connection.LockedError
		if err := lk.Lock(ctx, "widgets", late, t0.Add(connection.LeaseTime+time.Second)); !errors.As(err, &locked) || locked.Holder.RunID != "b" {
			t.Errorf("the run that lost its lease renewed it: %v", err)
		}
	})
	t.Run("LockOfAProcessOfThisHost", func(t *testing.T) {
		lk := locker(t, newHarness(t))
		now := time.Now()
		host, err := os.Hostname()
		if err != nil {
			t.Skip(err)
		}
		live := connection.Lease{Host: host, PID: os.Getpid(), RunID: "live", Acquired: now.Add(-time.Hour), Expires: now.Add(time.Hour)}
		must(t, lk.Lock(ctx, "widgets", live, now))
		err = lk.Lock(ctx, "widgets", connection.Lease{Host: host, PID: os.Getpid(), RunID: "other", Acquired: now, Expires: now.Add(time.Minute)}, now)
		var locked *connection.LockedError
		if !errors.As(err, &locked) {
			t.Fatalf("the lease of a running process was taken: %v", err)
		}
		for _, want := range []string{"widgets", host, fmt.Sprint("pid ", os.Getpid()), live.Acquired.UTC().Format(time.RFC3339)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		dead := live
		dead.PID, dead.RunID = deadPID(t), "dead"
		must(t, lk.Lock(ctx, "gadgets", dead, now))
		must(t, lk.Lock(ctx, "gadgets", connection.Lease{Host: host, PID: os.Getpid(), RunID: "next", Acquired: now, Expires: now.Add(time.Minute)}, now))
	})
	t.Run("MarkDeleted", func(t *testing.T) {
		h := newHarness(t)
		rc, ok := h.Dest.(connection.Reconciler)
		if !ok {
			t.Skip("not a connection.Reconciler: cannot record deletes")
		}
		s := TestStream("widgets")
		must(t, h.Dest.Prepare(ctx, s))
		must(t, h.Dest.Write(ctx, s, []connection.Record{record(1, "a", 1, true, "2026-01-01T00:00:01.000Z"), record(2, "b", 1, true, "2026-01-01T00:00:01.000Z"), record(3, "c", 1, true, "2026-01-01T00:00:01.000Z")}, connection.State{}))
		n, err := rc.MarkDeleted(ctx, s, []int64{1, 99}, "2026-02-01T00:00:00.000Z")
		if err != nil || n != 2 {
			t.Errorf("MarkDeleted = %d, %v; want 2", n, err)
		}
		if rows := h.Rows(t, s); len(rows) != 1 || rows[1] == nil {
			t.Errorf("live rows after MarkDeleted = %v, want only id 1", rows)
		}
		if n, _ := rc.MarkDeleted(ctx, s, []int64{1}, "2026-02-02T00:00:00.000Z"); n != 0 {
			t.Errorf("marking again = %d, want 0", n)
		}
		// A record that comes back is live again.
		must(t, h.Dest.Write(ctx, s, []connection.Record{record(2, "b2", 1, true, "2026-01-03T00:00:01.000Z")}, connection.State{}))
		if rows := h.Rows(t, s); rows[2]["name"] != "b2" {
			t.Errorf("a re-synced record stays deleted: %v", rows)
		}
	})
}

// locker returns the harness's destination as a Locker, or skips.
func locker(t *testing.T, h Harness) connection.Locker {
	t.Helper()
	lk, ok := h.Dest.(connection.Locker)
	if !ok {
		t.Skip("not a connection.Locker: written by one run only")
	}
	return lk
}

// elsewhere is a lease of a run on another host, taken at t.
func elsewhere(runID string, t time.Time) connection.Lease {
	return connection.Lease{Host: "elsewhere.invalid", PID: 4242, RunID: runID, Acquired: t, Expires: t.Add(connection.LeaseTime)}
}

// deadPID returns the id of a process of this host that has ended.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{"GORACE=atexit_sleep_ms=0"} // no 1 s pause at exit under -race
	if err := cmd.Run(); err != nil {
		t.Fatalf("run a process that ends: %v", err)
	}
	return cmd.ProcessState.Pid()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func colIndex(s *connection.Stream, name string) int {
	for i, c := range s.Columns {
		if c.Name == name {
			return i
		}
	}
	panic(fmt.Sprintf("no column %s", name))
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}

func sameInstant(a, b string) bool {
	ta, err1 := time.Parse(time.RFC3339Nano, a)
	if err1 != nil {
		ta, err1 = time.Parse("2006-01-02 15:04:05.999999999-07", a)
	}
	tb, err2 := time.Parse(time.RFC3339Nano, b)
	return err1 == nil && err2 == nil && ta.Equal(tb)
}
