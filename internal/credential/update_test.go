package credential_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

func ptr(s string) *string { return &s }

func TestUpdate(t *testing.T) {
	e := newEnv(t, sandbox.Options{MintInterval: -1})
	ctx := context.Background()
	rec := e.authorize(t, e.create(t, "main").Name) // scopes prospects.all accounts.read
	e.create(t, "other")
	secret := e.srv.Apps()[0].ClientSecret
	refresh := func() error { _, err := e.manager.RefreshNow(ctx, rec.ID); return err }

	steps := []struct {
		name       string
		changes    credential.Changes
		wantErr    string
		wantReauth bool
		wantStatus credential.Status
		wantEvent  string
		check      func(t *testing.T, got *credential.Record)
	}{
		{name: "rename onto a taken name", changes: credential.Changes{Name: ptr("other")}, wantErr: `a credential named "other" exists`},
		{name: "empty name", changes: credential.Changes{Name: ptr("  ")}, wantErr: "name is required"},
		{name: "empty scopes", changes: credential.Changes{Scopes: []string{}}, wantErr: "at least one scope"},
		{name: "bad scope", changes: credential.Changes{Scopes: []string{"everything"}}, wantErr: `scope "everything"`},
		{name: "empty secret", changes: credential.Changes{ClientSecret: ptr("")}, wantErr: "client secret is empty"},
		{name: "rename and describe", changes: credential.Changes{Name: ptr("renamed"), Description: ptr("the main one")},
			wantStatus: credential.StatusConnected, wantEvent: `renamed from "main" to "renamed"; description changed`,
			check: func(t *testing.T, got *credential.Record) {
				if got.Name != "renamed" || got.Description != "the main one" || got.ID != rec.ID {
					t.Errorf("got %+v", got)
				}
				if _, err := e.manager.Get(ctx, "main"); !errors.Is(err, credential.ErrNotFound) {
					t.Errorf("the old name still finds it: %v", err)
				}
			}},
		{name: "a wrong secret (Regenerate on Outreach)", changes: credential.Changes{ClientSecret: ptr("not-the-secret")},
			wantStatus: credential.StatusConnected, wantEvent: "client secret replaced",
			check: func(t *testing.T, got *credential.Record) {
				if err := refresh(); !errors.Is(err, credential.ErrNeedsReauthorization) {
					t.Errorf("refresh with a wrong secret: %v, want needs re-authorization", err)
				}
				if got, _ := e.manager.Get(ctx, rec.ID); !strings.Contains(got.LastError, "invalid_client") || !strings.Contains(got.LastError, "replace it") {
					t.Errorf("last error %q; want invalid_client and to replace the secret", got.LastError)
				}
			}},
		{name: "the right secret: no re-authorization", changes: credential.Changes{ClientSecret: ptr(secret)},
			wantStatus: credential.StatusConnected, wantEvent: "client secret replaced",
			check: func(t *testing.T, got *credential.Record) {
				if err := refresh(); err != nil {
					t.Errorf("refresh with the replaced secret and the old tokens: %v", err)
				}
			}},
		{name: "fewer scopes", changes: credential.Changes{Scopes: []string{"prospects.read"}},
			wantStatus: credential.StatusConnected, wantEvent: "scopes: removed prospects.all accounts.read"},
		{name: "more scopes", changes: credential.Changes{Scopes: []string{"prospects.read", "users.read"}},
			wantReauth: true, wantStatus: credential.StatusNeedsReauth, wantEvent: "scopes: added users.read",
			check: func(t *testing.T, got *credential.Record) {
				if !strings.Contains(got.LastError, "users.read") || !strings.Contains(got.LastError, "authorize") {
					t.Errorf("last error %q; want the added scope and to authorize", got.LastError)
				}
				if r, _ := e.manager.RefreshTokenForTest(ctx, rec.ID); r == "" {
					t.Error("growing the scopes dropped the tokens")
				}
				if !slices.Equal(got.Scopes, []string{"prospects.read", "users.read"}) {
					t.Errorf("scopes = %v", got.Scopes)
				}
			}},
	}
	for _, st := range steps {
		before, _ := e.manager.Events(ctx, rec.ID, 100)
		got, reauth, err := e.manager.Update(ctx, rec.ID, st.changes)
		if st.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), st.wantErr) {
				t.Errorf("%s: error %v, want %q", st.name, err, st.wantErr)
			}
			if after, _ := e.manager.Events(ctx, rec.ID, 100); len(after) != len(before) {
				t.Errorf("%s: a refused change recorded an event", st.name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if reauth != st.wantReauth || got.Status != st.wantStatus {
			t.Errorf("%s: reauthorize %v, status %s; want %v, %s", st.name, reauth, got.Status, st.wantReauth, st.wantStatus)
		}
		events, _ := e.manager.Events(ctx, rec.ID, 100)
		found := false
		for _, ev := range events[:len(events)-len(before)] {
			found = found || (ev.Kind == "updated" && ev.Message == st.wantEvent)
			if strings.Contains(ev.Message, secret) || strings.Contains(ev.Message, "not-the-secret") {
				t.Errorf("%s: an event holds the secret", st.name)
			}
		}
		if !found {
			t.Errorf("%s: events %+v lack updated %q", st.name, events[:len(events)-len(before)], st.wantEvent)
		}
		if st.check != nil {
			st.check(t, got)
		}
	}
	// Re-authorizing grants the new scopes and connects it again.
	e.srv.Clock().Advance(time.Minute)
	if again := e.authorize(t, "renamed"); again.Status != credential.StatusConnected || again.ID != rec.ID {
		t.Errorf("after re-authorization: %+v", again)
	}
	if _, reauth, err := e.manager.Update(ctx, "missing", credential.Changes{Description: ptr("x")}); !errors.Is(err, credential.ErrNotFound) || reauth {
		t.Errorf("update of a missing credential: %v", err)
	}
}
