package service_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/service"
	"github.com/outreach-connector/outreach-connector/internal/webhooks"
)

// TestSetLive: a connection into JSON Lines cannot be live; one into
// SQLite gets a webhook per type at Outreach and a catch-up run, loses them
// when made not live, and again when deleted.
func TestSetLive(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := "sqlite"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) { testSetLive(t, pg) })
	}
}

func testSetLive(t *testing.T, pg bool) {
	e := newEnv(t, envOptions{postgres: pg})
	m, err := webhooks.NewManager(webhooks.ManagerOptions{Store: e.hooks, Connections: e.store, Keys: e.keys, PublicURL: "http://127.0.0.1:9",
		Client: e.svc.Client, CatchUp: e.svc.CatchUp})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.SetWebhooks(m)
	client, err := e.svc.Client(e.ctx, e.create(service.NewConnection{Name: "probe"}))
	if err != nil {
		t.Fatal(err)
	}
	atOutreach := func() int {
		n := 0
		for _, err := range client.List(e.ctx, "webhooks", nil) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		return n
	}

	files := e.create(service.NewConnection{Name: "files", DestinationURL: "jsonl:" + filepath.Join(e.dir, "out")})
	_, err = e.svc.SetLive(e.ctx, files.Name, true)
	var cannot *connection.CannotApplyError
	if !errors.As(err, &cannot) || !errors.Is(err, connection.ErrCannotApply) {
		t.Errorf("live on for JSON Lines: %v", err)
	}
	if got, _ := e.store.GetConnection(e.ctx, files.ID); got.Live || atOutreach() != 0 {
		t.Errorf("a refused connection was made live (%v) or subscribed", got.Live)
	}

	c := e.create(service.NewConnection{})
	res, err := e.svc.SetLive(e.ctx, c.Name, true)
	if err != nil || !res.Subscribed || res.CatchUp == 0 || !res.Connection.Live {
		t.Fatalf("live on: %+v, %v", res, err)
	}
	if got, _ := e.store.GetConnection(e.ctx, c.ID); !got.Live {
		t.Error("not stored as live")
	}
	if n := atOutreach(); n != 2 {
		t.Errorf("webhooks at Outreach: %d, want 2 (accounts, prospects)", n)
	}
	if res, err = e.svc.SetLive(e.ctx, c.ID, false); err != nil || res.Connection.Live {
		t.Fatalf("live off: %+v, %v", res, err)
	}
	if n := atOutreach(); n != 0 {
		t.Errorf("webhooks left after live off: %d", n)
	}
	if _, err := e.svc.SetLive(e.ctx, c.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Delete(e.ctx, c.ID, false); err != nil {
		t.Fatal(err)
	}
	if n := atOutreach(); n != 0 {
		t.Errorf("webhooks left after delete: %d", n)
	}
	if subs, err := e.hooks.Subscriptions(e.ctx, ""); err != nil || len(subs) != 0 {
		t.Errorf("subscriptions left: %d %v", len(subs), err)
	}
}
