package syncer_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// TestRunClaimsTheNamespaceFirst: a run with an Owner claims the
// destination's namespace; a run of another org into it fails every
// stream, once in Failed, before it reads or writes anything.
func TestRunClaimsTheNamespaceFirst(t *testing.T) {
	e := newEnv(t, sandbox.Options{Prospects: 20})
	var streams []*connection.Stream
	for _, s := range e.streams(t) {
		if s.Name == "prospects" || s.Name == "accounts" {
			streams = append(streams, s)
		}
	}
	acme := connection.Owner{Org: "Acme", CredentialID: "c1", Credential: "main"}
	e.run(t, streams, syncer.Options{Owner: acme})
	before, err := e.db.State(context.Background(), "prospects")
	if err != nil || before.Cursor == "" {
		t.Fatalf("state after the first run: %+v, %v", before, err)
	}
	requests := e.srv.Counters().Requests

	var done []string
	results := syncer.NewEngine(e.client, e.db, nil, nil).Run(context.Background(), streams, syncer.Options{
		Owner:    connection.Owner{Org: "Globex", CredentialID: "c2", Credential: "other"},
		Progress: func(p syncer.Progress) { done = append(done, p.Stream) }})
	for _, r := range results {
		var owned *connection.OwnedError
		if !errors.As(r.Err, &owned) || owned.Holder != acme {
			t.Errorf("%s: %v; want the namespace's owner named", r.Stream, r.Err)
		}
	}
	err = syncer.Failed(results)
	if err == nil || strings.Count(err.Error(), "choose another namespace") != 1 {
		t.Errorf("Failed = %v; want the refused claim once", err)
	}
	if len(done) != len(streams) {
		t.Errorf("progress ended %v; want every stream", done)
	}
	if n := e.srv.Counters().Requests - requests; n != 0 {
		t.Errorf("the refused run sent %d requests", n)
	}
	if after, _ := e.db.State(context.Background(), "prospects"); after != before {
		t.Errorf("the refused run changed the state: %+v → %+v", before, after)
	}
}
