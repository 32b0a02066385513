package connectiontest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

// namespaced returns the harness's namespace ns, or skips.
func namespaced(t *testing.T, h Harness, ns string) Harness {
	t.Helper()
	if h.Namespace == nil {
		t.Skip("no namespaces: the destination stores nothing")
	}
	return h.Namespace(t, ns)
}

// The owners the suite claims with.
var (
	acme   = connection.Owner{Org: "Acme", CredentialID: "c1", Credential: "main"}
	globex = connection.Owner{Org: "Globex", CredentialID: "c3", Credential: "other", Connection: "globex-eu"}
)

// runNamespaces is the part of the suite about namespaces: isolation of
// rows, state, locks and owners, and Reset, Drop and Inspect.
func runNamespaces(t *testing.T, newHarness func(t *testing.T) Harness) {
	ctx := context.Background()
	t.Run("NamespacesShareNothing", func(t *testing.T) {
		def := newHarness(t)
		a, b := namespaced(t, def, "alpha"), namespaced(t, def, "beta")
		s := TestStream("widgets")
		for _, h := range []struct {
			h    Harness
			name string
		}{{def, "default"}, {a, "alpha"}, {b, "beta"}} {
			must(t, h.h.Dest.Prepare(ctx, s))
			must(t, h.h.Dest.Write(ctx, s, []connection.Record{record(1, h.name, 1, true, "2026-01-01T00:00:01.000Z")},
				connection.State{Cursor: "cursor-" + h.name}))
		}
		// beta alone has a second row, and a later state.
		must(t, b.Dest.Write(ctx, s, []connection.Record{record(2, "beta-2", 2, true, "2026-01-01T00:00:02.000Z")}, connection.State{Cursor: "cursor-beta-2"}))
		for _, c := range []struct {
			h      Harness
			name   string
			rows   int
			cursor string
		}{{def, "default", 1, "cursor-default"}, {a, "alpha", 1, "cursor-alpha"}, {b, "beta", 2, "cursor-beta-2"}} {
			rows := c.h.Rows(t, s)
			if len(rows) != c.rows || rows[1]["name"] != c.name {
				t.Errorf("namespace %s holds %v; want %d rows, row 1 named %s", c.name, rows, c.rows, c.name)
			}
			if st, err := c.h.Dest.State(ctx, s.Name); err != nil || st.Cursor != c.cursor {
				t.Errorf("namespace %s: State = %+v, %v; want cursor %s", c.name, st, err, c.cursor)
			}
		}
		if st, err := namespaced(t, def, "alpha").Dest.State(ctx, s.Name); err != nil || st.Cursor != "cursor-alpha" {
			t.Errorf("alpha opened again: State = %+v, %v; want cursor-alpha", st, err)
		}
		if _, ok := def.Dest.(connection.Locker); !ok {
			return
		}
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		for i, h := range []Harness{def, a, b} {
			must(t, h.Dest.(connection.Locker).Lock(ctx, "widgets", elsewhere(fmt.Sprint("run-", i), t0), t0))
		}
		var locked *connection.LockedError
		if err := a.Dest.(connection.Locker).Lock(ctx, "widgets", elsewhere("late", t0), t0); !errors.As(err, &locked) {
			t.Errorf("a second run took alpha's held lock: %v", err)
		}
	})
	t.Run("Claim", func(t *testing.T) {
		def := newHarness(t)
		a := namespaced(t, def, "alpha")
		claim := func(h Harness, o connection.Owner) error {
			c, ok := h.Dest.(connection.Claimer)
			if !ok {
				t.Skip("not a connection.Claimer")
			}
			return c.Claim(ctx, o)
		}
		must(t, claim(a, acme))
		must(t, claim(a, acme))
		must(t, claim(a, connection.Owner{Org: "Acme", CredentialID: "c2", Credential: "backup"})) // the same org by another credential
		err := claim(a, globex)
		var owned *connection.OwnedError
		if !errors.As(err, &owned) || owned.Holder.Org != "Acme" || owned.Holder.CredentialID != "c1" || owned.Namespace != a.InNamespace {
			t.Fatalf("another org claimed alpha: %v (%+v)", err, owned)
		}
		for _, want := range []string{"namespace " + a.InNamespace, "org Acme", "credential main", "choose another namespace"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if err := claim(namespaced(t, def, "alpha"), globex); !errors.As(err, &owned) {
			t.Errorf("alpha opened again forgot its owner: %v", err)
		}
		must(t, claim(namespaced(t, def, "beta"), globex)) // namespaces are owned apart
		must(t, claim(def, globex))
		if err := claim(def, acme); !errors.As(err, &owned) || !strings.Contains(err.Error(), "the default namespace") {
			t.Errorf("the default namespace of Globex claimed by Acme: %v", err)
		}
		// An org not known yet is told by its credential, and learned.
		g := namespaced(t, def, "gamma")
		must(t, claim(g, connection.Owner{CredentialID: "c9", Credential: "new"}))
		if err := claim(g, connection.Owner{CredentialID: "c10"}); !errors.As(err, &owned) || !strings.Contains(err.Error(), "not known") {
			t.Errorf("another credential of an unknown org claimed gamma: %v", err)
		}
		must(t, claim(g, connection.Owner{Org: "Initech", CredentialID: "c9", Credential: "new"}))
		if err := claim(g, connection.Owner{Org: "Umbrella", CredentialID: "c9"}); !errors.As(err, &owned) || owned.Holder.Org != "Initech" {
			t.Errorf("gamma's org was not learned: %v", err)
		}
	})
	t.Run("ResetStreams", func(t *testing.T) {
		def := newHarness(t)
		a, b := namespaced(t, def, "alpha"), namespaced(t, def, "beta")
		r, ok := a.Dest.(connection.Resetter)
		if !ok {
			t.Skip("not a connection.Resetter")
		}
		alphas, betas := TestStream("alphas"), TestStream("betas")
		for _, h := range []Harness{a, b} {
			for _, s := range []*connection.Stream{alphas, betas} {
				must(t, h.Dest.Prepare(ctx, s))
				must(t, h.Dest.Write(ctx, s, []connection.Record{record(1, "x", 1, true, "2026-01-01T00:00:01.000Z")}, connection.State{Cursor: "c-" + s.Name}))
			}
		}
		must(t, r.ResetStreams(ctx, []string{"alphas", "unknown"}))
		if st, err := a.Dest.State(ctx, "alphas"); err != nil || st.Cursor != "" {
			t.Errorf("alphas after a reset: %+v, %v; want no cursor", st, err)
		}
		if rows := a.Rows(t, alphas); len(rows) != 1 {
			t.Errorf("alphas after a reset: %d rows, want the 1 row kept", len(rows))
		}
		if st, _ := a.Dest.State(ctx, "betas"); st.Cursor != "c-betas" {
			t.Errorf("betas after resetting alphas: %q, want c-betas", st.Cursor)
		}
		if st, _ := b.Dest.State(ctx, "alphas"); st.Cursor != "c-alphas" {
			t.Errorf("beta's alphas after resetting alpha's: %q, want c-alphas", st.Cursor)
		}
	})
	t.Run("Inspect", func(t *testing.T) {
		def := newHarness(t)
		a, b := namespaced(t, def, "alpha"), namespaced(t, def, "beta")
		in, ok := a.Dest.(connection.Inspector)
		if !ok {
			t.Skip("not a connection.Inspector")
		}
		if got, err := in.Inspect(ctx); err != nil || len(got) != 0 {
			t.Errorf("Inspect of an empty namespace = %v, %v", got, err)
		}
		w, g := TestStream("widgets"), TestStream("gadgets")
		must(t, a.Dest.Prepare(ctx, w))
		must(t, a.Dest.Prepare(ctx, g))
		recs := []connection.Record{record(1, "a", 1, true, "2026-01-01T00:00:01.000Z"), record(2, "b", 1, true, "2026-01-01T00:00:02.000Z"),
			record(3, "c", 1, true, "2026-01-01T00:00:03.000Z")}
		must(t, a.Dest.Write(ctx, w, recs, connection.State{Cursor: "2026-01-01T00:00:03.000Z"}))
		must(t, a.Dest.Write(ctx, w, recs[:1], connection.State{Cursor: "2026-01-01T00:00:03.000Z"})) // an upsert adds no row
		want := []connection.StreamInfo{{Stream: "gadgets"}, {Stream: "widgets", Cursor: "2026-01-01T00:00:03.000Z", Rows: 3}}
		if rc, ok := a.Dest.(connection.Reconciler); ok {
			if _, err := rc.MarkDeleted(ctx, w, []int64{1, 2}, "2026-02-01T00:00:00.000Z"); err != nil {
				t.Fatal(err)
			}
			want[1].Rows = 2 // a row marked deleted is not counted
		}
		if got, err := in.Inspect(ctx); err != nil || !slices.Equal(got, want) {
			t.Errorf("Inspect = %+v, %v; want %+v", got, err, want)
		}
		for _, h := range []Harness{def, b} {
			if got, err := h.Dest.(connection.Inspector).Inspect(ctx); err != nil || len(got) != 0 {
				t.Errorf("Inspect of another namespace = %+v, %v; want nothing", got, err)
			}
		}
	})
	t.Run("DropNamespace", func(t *testing.T) {
		def := newHarness(t)
		a, b := namespaced(t, def, "alpha"), namespaced(t, def, "beta")
		if _, ok := a.Dest.(connection.Dropper); !ok {
			t.Skip("not a connection.Dropper")
		}
		s := TestStream("widgets")
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		for _, h := range []Harness{def, a, b} {
			must(t, h.Dest.Prepare(ctx, s))
			must(t, h.Dest.Write(ctx, s, []connection.Record{record(1, "x", 1, true, "2026-01-01T00:00:01.000Z")}, connection.State{Cursor: "kept"}))
			must(t, connection.Claim(ctx, h.Dest, acme))
			if lk, ok := h.Dest.(connection.Locker); ok {
				must(t, lk.Lock(ctx, "widgets", elsewhere("holder", t0), t0))
			}
		}
		must(t, a.Dest.(connection.Dropper).DropNamespace(ctx))
		dropped := func(h Harness, name string) {
			t.Helper()
			if st, err := h.Dest.State(ctx, "widgets"); err != nil || st.Cursor != "" {
				t.Errorf("%s dropped: State = %+v, %v; want none", name, st, err)
			}
			if got, err := h.Dest.(connection.Inspector).Inspect(ctx); err != nil || len(got) != 0 {
				t.Errorf("%s dropped: Inspect = %+v, %v; want nothing", name, got, err)
			}
			must(t, connection.Claim(ctx, h.Dest, globex)) // the owner is forgotten
			if lk, ok := h.Dest.(connection.Locker); ok {
				must(t, lk.Lock(ctx, "widgets", elsewhere("next", t0), t0)) // and the lock
			}
			must(t, h.Dest.Prepare(ctx, s))
			if rows := h.Rows(t, s); len(rows) != 0 {
				t.Errorf("%s dropped, then prepared again: %d rows, want 0", name, len(rows))
			}
		}
		kept := func(h Harness, name string) {
			t.Helper()
			if st, err := h.Dest.State(ctx, "widgets"); err != nil || st.Cursor != "kept" {
				t.Errorf("%s after dropping another: State = %+v, %v", name, st, err)
			}
			if rows := h.Rows(t, s); len(rows) != 1 {
				t.Errorf("%s after dropping another: %d rows, want 1", name, len(rows))
			}
			var owned *connection.OwnedError
			if err := connection.Claim(ctx, h.Dest, globex); !errors.As(err, &owned) {
				t.Errorf("%s after dropping another lost its owner: %v", name, err)
			}
		}
		dropped(a, "alpha")
		kept(b, "beta")
		kept(def, "the default namespace")
		// Dropping the default namespace leaves the others.
		must(t, def.Dest.(connection.Dropper).DropNamespace(ctx))
		dropped(def, "the default namespace")
		kept(b, "beta")
	})
}
