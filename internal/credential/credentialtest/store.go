// Package credentialtest is the conformance suite every credential.Store
// implementation runs.
package credentialtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/outreach-connector/outreach-connector/internal/credential"
)

// RunStore runs the suite; newStore returns an empty store for one test.
func RunStore(t *testing.T, newStore func(t *testing.T) credential.Store) {
	t.Run("CRUD", func(t *testing.T) { testCRUD(t, newStore(t)) })
	t.Run("SaveTokens", func(t *testing.T) { testSaveTokens(t, newStore(t)) })
	t.Run("Lease", func(t *testing.T) { testLease(t, newStore(t)) })
	t.Run("LeaseUnderContention", func(t *testing.T) { testLeaseContention(t, newStore(t)) })
	t.Run("States", func(t *testing.T) { testStates(t, newStore(t)) })
	t.Run("Events", func(t *testing.T) { testEvents(t, newStore(t)) })
	t.Run("DeleteCascades", func(t *testing.T) { testDeleteCascades(t, newStore(t)) })
}

var base = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// NewRecord returns a valid record for tests.
func NewRecord(name string) *credential.Record {
	return &credential.Record{ID: credential.NewID(), Name: name, Description: "for tests", ClientID: "client-" + name,
		ClientSecret: []byte{1, 2, 3, 0, 255}, Scopes: []string{"prospects.all", "accounts.read"}, Environment: credential.Development,
		APIBaseURL: credential.DefaultAPIBaseURL, RedirectURI: "http://127.0.0.1:8787/oauth/callback", Status: credential.StatusAwaiting,
		CreatedAt: base, UpdatedAt: base}
}

func testCRUD(t *testing.T, s credential.Store) {
	ctx := context.Background()
	a, b := NewRecord("alpha"), NewRecord("beta")
	for _, r := range []*credential.Record{b, a} {
		if err := s.CreateCredential(ctx, r); err != nil {
			t.Fatalf("CreateCredential(%s): %v", r.Name, err)
		}
	}
	if err := s.CreateCredential(ctx, NewRecord("alpha")); !errors.Is(err, credential.ErrNameTaken) {
		t.Errorf("create a second alpha: %v, want ErrNameTaken", err)
	}
	got, err := s.GetCredential(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("GetCredential mismatch (-want +got):\n%s", diff)
	}
	byName, err := s.GetCredentialByName(ctx, "beta")
	if err != nil || byName.ID != b.ID {
		t.Errorf("GetCredentialByName(beta) = %v, %v", byName, err)
	}
	list, err := s.ListCredentials(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "alpha" || list[1].Name != "beta" {
		t.Errorf("ListCredentials = %d records, %v; want alpha, beta", len(list), err)
	}
	a.Description, a.Scopes, a.Status, a.UpdatedAt = "changed", []string{"prospects.read"}, credential.StatusConnected, base.Add(time.Hour)
	if err := s.UpdateCredential(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetCredential(ctx, a.ID)
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("after UpdateCredential (-want +got):\n%s", diff)
	}
	clash := *a
	clash.Name = "beta"
	if err := s.UpdateCredential(ctx, &clash); !errors.Is(err, credential.ErrNameTaken) {
		t.Errorf("rename alpha to beta: %v, want ErrNameTaken", err)
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"get", func() error { _, err := s.GetCredential(ctx, "missing"); return err }()},
		{"get by name", func() error { _, err := s.GetCredentialByName(ctx, "missing"); return err }()},
		{"update", s.UpdateCredential(ctx, NewRecord("missing"))},
		{"delete", s.DeleteCredential(ctx, "missing")},
		{"save tokens", s.SaveTokens(ctx, "missing", credential.TokenUpdate{Status: credential.StatusConnected})},
	} {
		if !errors.Is(tc.err, credential.ErrNotFound) {
			t.Errorf("%s of a missing credential: %v, want ErrNotFound", tc.name, tc.err)
		}
	}
	if err := s.DeleteCredential(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetCredential(ctx, b.ID); !errors.Is(err, credential.ErrNotFound) {
		t.Errorf("get after delete: %v, want ErrNotFound", err)
	}
}

func testSaveTokens(t *testing.T, s credential.Store) {
	ctx := context.Background()
	r := NewRecord("tokens")
	if err := s.CreateCredential(ctx, r); err != nil {
		t.Fatal(err)
	}
	u := credential.TokenUpdate{Tokens: []byte("sealed-1"), TokenExpiresAt: base.Add(2 * time.Hour), LastRefreshAt: base,
		Status: credential.StatusConnected, UpdatedAt: base, OutreachUserID: "1", OutreachUserEmail: "a@example.org", OutreachOrg: "Org"}
	if err := s.SaveTokens(ctx, r.ID, u); err != nil {
		t.Fatal(err)
	}
	u2 := credential.TokenUpdate{Tokens: []byte("sealed-2"), TokenExpiresAt: base.Add(4 * time.Hour), LastRefreshAt: base.Add(2 * time.Hour),
		Status: credential.StatusConnected, LastError: "", UpdatedAt: base.Add(2 * time.Hour)}
	if err := s.SaveTokens(ctx, r.ID, u2); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetCredential(ctx, r.ID)
	if string(got.Tokens) != "sealed-2" || !got.TokenExpiresAt.Equal(u2.TokenExpiresAt) || !got.LastRefreshAt.Equal(u2.LastRefreshAt) ||
		got.Status != credential.StatusConnected || got.OutreachUserID != "1" || got.OutreachUserEmail != "a@example.org" || got.OutreachOrg != "Org" {
		t.Errorf("after two SaveTokens: %+v", got)
	}
	if err := s.SaveIdentity(ctx, r.ID, "2", "b@example.org", "Other"); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetCredential(ctx, r.ID)
	if string(got.Tokens) != "sealed-2" || got.Status != credential.StatusConnected || got.OutreachUserID != "2" ||
		got.OutreachUserEmail != "b@example.org" || got.OutreachOrg != "Other" {
		t.Errorf("after SaveIdentity: %+v; want the identity changed and the tokens kept", got)
	}
	if err := s.SaveIdentity(ctx, "missing", "1", "", ""); !errors.Is(err, credential.ErrNotFound) {
		t.Errorf("SaveIdentity of a missing credential: %v, want ErrNotFound", err)
	}
}

func testLease(t *testing.T, s credential.Store) {
	ctx := context.Background()
	r := NewRecord("lease")
	s.CreateCredential(ctx, r)
	steps := []struct {
		name    string
		owner   string
		now     time.Time
		release bool
		want    bool
	}{
		{"first owner takes it", "a", base, false, true},
		{"another owner waits", "b", base.Add(10 * time.Second), false, false},
		{"the owner renews", "a", base.Add(20 * time.Second), false, true},
		{"still held", "b", base.Add(70 * time.Second), false, false},
		{"expired: taken over", "b", base.Add(81 * time.Second), false, true},
		{"old owner's release leaves it", "a", base.Add(82 * time.Second), true, false},
		{"still b's", "c", base.Add(83 * time.Second), false, false},
		{"b releases", "b", base.Add(84 * time.Second), true, false},
		{"free again", "c", base.Add(85 * time.Second), false, true},
	}
	for _, st := range steps {
		if st.release {
			if err := s.ReleaseLease(ctx, r.ID, st.owner); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			continue
		}
		got, err := s.AcquireLease(ctx, r.ID, st.owner, st.now, st.now.Add(time.Minute))
		if err != nil || got != st.want {
			t.Errorf("%s: AcquireLease(%s) = %v, %v; want %v", st.name, st.owner, got, err, st.want)
		}
	}
}

func testLeaseContention(t *testing.T, s credential.Store) {
	ctx := context.Background()
	r := NewRecord("contended")
	s.CreateCredential(ctx, r)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var winners []string
	for i := range 20 {
		wg.Go(func() {
			owner := fmt.Sprintf("owner-%d", i)
			ok, err := s.AcquireLease(ctx, r.ID, owner, base, base.Add(time.Minute))
			if err != nil {
				t.Errorf("AcquireLease(%s): %v", owner, err)
			}
			if ok {
				mu.Lock()
				winners = append(winners, owner)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Errorf("lease winners = %v, want exactly one", winners)
	}
}

func testStates(t *testing.T, s credential.Store) {
	ctx := context.Background()
	r := NewRecord("states")
	s.CreateCredential(ctx, r)
	st := &credential.State{Hash: "h1", CredentialID: r.ID, Browser: "b1", Verifier: []byte("sealed-verifier"), ExpiresAt: base.Add(10 * time.Minute)}
	if err := s.SaveState(ctx, st); err != nil {
		t.Fatal(err)
	}
	for _, other := range []string{"", "b2"} {
		if _, err := s.TakeState(ctx, "h1", other); !errors.Is(err, credential.ErrNotFound) {
			t.Errorf("TakeState from browser %q: %v, want ErrNotFound", other, err)
		}
	}
	got, err := s.TakeState(ctx, "h1", "b1") // still there: another browser did not consume it
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st, got); diff != "" {
		t.Errorf("TakeState mismatch (-want +got):\n%s", diff)
	}
	if _, err := s.TakeState(ctx, "h1", "b1"); !errors.Is(err, credential.ErrNotFound) {
		t.Errorf("second TakeState: %v, want ErrNotFound", err)
	}
	if _, err := s.TakeState(ctx, "never", "b1"); !errors.Is(err, credential.ErrNotFound) {
		t.Errorf("TakeState of an unknown state: %v, want ErrNotFound", err)
	}
}

func testEvents(t *testing.T, s credential.Store) {
	ctx := context.Background()
	r := NewRecord("events")
	s.CreateCredential(ctx, r)
	for i, kind := range []string{"authorized", "refreshed", "needs_reauthorization"} {
		if err := s.AddEvent(ctx, credential.Event{CredentialID: r.ID, At: base.Add(time.Duration(i) * time.Minute), Kind: kind, Message: "m"}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListEvents(ctx, r.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range got {
		kinds = append(kinds, e.Kind)
	}
	if want := []string{"needs_reauthorization", "refreshed"}; !slices.Equal(kinds, want) {
		t.Errorf("ListEvents = %v, want %v", kinds, want)
	}
}

func testDeleteCascades(t *testing.T, s credential.Store) {
	ctx := context.Background()
	r := NewRecord("cascade")
	s.CreateCredential(ctx, r)
	s.SaveState(ctx, &credential.State{Hash: "hc", CredentialID: r.ID, Browser: "b", Verifier: []byte("v"), ExpiresAt: base})
	s.AddEvent(ctx, credential.Event{CredentialID: r.ID, At: base, Kind: "k", Message: "m"})
	s.AcquireLease(ctx, r.ID, "o", base, base.Add(time.Minute))
	if err := s.DeleteCredential(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TakeState(ctx, "hc", "b"); !errors.Is(err, credential.ErrNotFound) {
		t.Errorf("state after delete: %v", err)
	}
	if ev, _ := s.ListEvents(ctx, r.ID, 10); len(ev) != 0 {
		t.Errorf("events after delete: %v", ev)
	}
	r2 := NewRecord("cascade")
	r2.ID = r.ID
	s.CreateCredential(ctx, r2)
	if ok, _ := s.AcquireLease(ctx, r.ID, "p", base, base.Add(time.Minute)); !ok {
		t.Error("the deleted credential's lease survived")
	}
}
