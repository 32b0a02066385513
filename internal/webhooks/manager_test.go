package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/credential/credentialtest"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
	"github.com/outreach-connector/outreach-connector/internal/webhooks"
	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// TestManagerSubscribesChecksAndUnsubscribes drives the manager against
// the sandbox: one webhook per type, idempotent; a disabled webhook is
// re-enabled and a deleted one made again, each with a catch-up run; a
// connection no longer live loses its webhooks.
func TestManagerSubscribesChecksAndUnsubscribes(t *testing.T) {
	ctx := context.Background()
	srv, err := sandbox.Start("", sandbox.Options{Prospects: 10, MintInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	access, _, err := srv.IssueToken(1)
	if err != nil {
		t.Fatal(err)
	}
	client, err := outreach.NewClient(outreach.WithBaseURL(srv.URL+"/api/v2"), outreach.WithTokenSource(outreach.StaticToken(access)))
	if err != nil {
		t.Fatal(err)
	}
	app, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	cred := credentialtest.NewRecord("main")
	if err := app.CreateCredential(ctx, cred); err != nil {
		t.Fatal(err)
	}
	c := &connection.Connection{ID: connection.NewID(), Name: "acme", CredentialID: cred.ID, DestinationURL: "sqlite:x.db",
		Streams: []string{"prospects", "accounts", "stages"}, Live: true, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	c.SetDefaults()
	if err := app.Connections().CreateConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	keys, err := credential.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	catchUps := map[string]int{}
	m, err := webhooks.NewManager(webhooks.ManagerOptions{Store: app.Webhooks(), Connections: app.Connections(), Keys: keys,
		PublicURL: "http://127.0.0.1:9/", Logger: slogTo(&logs),
		Client:  func(context.Context, *connection.Connection) (*outreach.Client, error) { return client, nil },
		CatchUp: func(_ context.Context, id string) error { catchUps[id]++; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	atOutreach := func() map[string]*outreach.Resource {
		out := map[string]*outreach.Resource{}
		for r, err := range client.List(ctx, "webhooks", nil) {
			if err != nil {
				t.Fatal(err)
			}
			out[r.String("resource")] = r
		}
		return out
	}
	rows := func() []*webhooks.Subscription {
		subs, err := app.Webhooks().Subscriptions(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		return subs
	}

	for range 2 { // the second time finds them made
		if err := m.Subscribe(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	hooks := atOutreach()
	if len(hooks) != 2 || hooks["prospect"] == nil || hooks["account"] == nil {
		t.Fatalf("webhooks at Outreach: %v (stages has none)", hooks)
	}
	if subs := rows(); len(subs) != 2 {
		t.Fatalf("subscriptions stored: %d", len(subs))
	}
	for _, s := range rows() {
		h := hooks[s.Resource]
		if h.ID != s.WebhookID || h.String("url") != "http://127.0.0.1:9/webhooks/"+c.ID || len(h.String("secret")) < 32 {
			t.Errorf("webhook %+v at Outreach for row %+v", h, s)
		}
		if bytes.Contains(s.Secret, []byte(h.String("secret"))) {
			t.Error("the secret is stored in clear")
		}
	}
	if hooks["prospect"].String("secret") == hooks["account"].String("secret") {
		t.Error("two webhooks share a secret")
	}

	if n, err := m.Check(ctx); err != nil || n != 0 || len(catchUps) != 0 {
		t.Fatalf("check with nothing wrong: %d, %v, catch-ups %v", n, err, catchUps)
	}
	if err := srv.DisableWebhook(hooks["prospect"].ID, "endpoint failing"); err != nil {
		t.Fatal(err)
	}
	if err := client.Delete(ctx, "webhooks", hooks["account"].ID); err != nil {
		t.Fatal(err)
	}
	if n, err := m.Check(ctx); err != nil || n != 2 || catchUps[c.ID] != 1 {
		t.Fatalf("check after a disable and a delete: repaired %d, %v, catch-ups %v\n%s", n, err, catchUps, logs.String())
	}
	again := atOutreach()
	var active bool
	json.Unmarshal(again["prospect"].Attributes["active"], &active)
	if !active || again["prospect"].String("disabledReason") != "" || again["prospect"].ID != hooks["prospect"].ID {
		t.Errorf("the disabled webhook: %+v", again["prospect"])
	}
	if again["account"] == nil || again["account"].ID == hooks["account"].ID {
		t.Errorf("the deleted webhook was not made again: %+v", again["account"])
	}
	for _, s := range rows() {
		if s.Resource == "prospect" && s.DisabledReason != "endpoint failing" {
			t.Errorf("the stored subscription does not say why it was disabled: %+v", s)
		}
		if s.Resource == "account" && s.WebhookID != again["account"].ID {
			t.Errorf("the stored subscription names webhook %d, Outreach has %d", s.WebhookID, again["account"].ID)
		}
	}
	if strings.Contains(logs.String(), again["prospect"].String("secret")) {
		t.Error("a secret was logged")
	}

	// The connection stops syncing accounts: the next check deletes that
	// webhook (subscribing anew counts as a gap: a catch-up run).
	c.Streams = []string{"prospects"}
	if err := app.Connections().UpdateConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if hooks := atOutreach(); len(hooks) != 1 || hooks["prospect"] == nil || len(rows()) != 1 {
		t.Errorf("after dropping accounts: %v at Outreach, %d stored\n%s", hooks, len(rows()), logs.String())
	}

	// Not live: the next check deletes its webhooks.
	c.Live = false
	if err := app.Connections().UpdateConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(atOutreach()); n != 0 || len(rows()) != 0 {
		t.Errorf("after live off: %d webhooks at Outreach, %d stored", n, len(rows()))
	}

	only := &connection.Connection{ID: "x", Name: "stages only", Streams: []string{"stages"}}
	if err := m.Subscribe(ctx, only); err == nil || !strings.Contains(err.Error(), "none of its streams has webhooks") {
		t.Errorf("subscribe a connection of stages only: %v", err)
	}
	if got := m.ResourcesOf(&connection.Connection{}); len(got) != 1 || got[0] != "*" {
		t.Errorf("resources of a connection of every stream: %v", got)
	}
	noURL, _ := webhooks.NewManager(webhooks.ManagerOptions{Store: app.Webhooks(), Connections: app.Connections(), Keys: keys,
		Client: func(context.Context, *connection.Connection) (*outreach.Client, error) { return client, nil }})
	if err := noURL.Subscribe(ctx, c); err != webhooks.ErrNoPublicURL {
		t.Errorf("subscribe without a public URL: %v", err)
	}
}

// TestResealUsesTheNewKey: after a key rotation every subscription's
// secret is sealed with the new key, and the receiver still opens it.
func TestResealUsesTheNewKey(t *testing.T) {
	e := newReceiverEnv(t, "")
	ctx := context.Background()
	subs, _ := e.app.Webhooks().Subscriptions(ctx, "")
	oldKey, _ := credential.KeyIDOf(subs[0].Secret)
	stranger, err := credential.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := webhooks.Reseal(ctx, e.app.Webhooks(), stranger); err == nil {
		t.Fatal("resealed with a keyring lacking the old key")
	}
	next, err := e.keys.Rotated()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := webhooks.Reseal(ctx, e.app.Webhooks(), next); err != nil || n != 1 {
		t.Fatalf("reseal: %d, %v", n, err)
	}
	subs, _ = e.app.Webhooks().Subscriptions(ctx, "")
	if id, _ := credential.KeyIDOf(subs[0].Secret); id != next.Current() || id == oldKey {
		t.Errorf("sealed with key %s after rotating from %s to %s", id, oldKey, next.Current())
	}
}
