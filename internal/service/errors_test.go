package service_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/service"
)

// Refusals are typed: every field problem at once, clashes, a missing
// run, an unsupported capability; none changes anything.
func TestRefusalsAreTyped(t *testing.T) {
	e := newEnv(t, envOptions{plain: true})
	_, err := e.svc.Create(e.ctx, service.NewConnection{Name: " bad ", Credential: "sandbox", DestinationURL: "ftp://x", Schedule: "5s",
		QuotaShare: 3, Namespace: "Bad NS", Streams: []string{"prospectz"}})
	var inv *service.InvalidError
	if !errors.As(err, &inv) || !service.Refused(err) {
		t.Fatalf("create with bad fields: %v, want an *InvalidError", err)
	}
	var fields []string
	for _, p := range inv.Problems {
		if p.Message == "" {
			t.Errorf("problem of %s says nothing", p.Field)
		}
		fields = append(fields, p.Field)
	}
	for _, f := range []string{connection.FieldName, connection.FieldDestination, connection.FieldSchedule, connection.FieldQuotaShare,
		connection.FieldNamespace, connection.FieldStreams} {
		if !slices.Contains(fields, f) {
			t.Errorf("no problem names %s (problems %+v)", f, inv.Problems)
		}
	}
	if list, err := e.svc.List(e.ctx); err != nil || len(list) != 0 {
		t.Fatalf("a refused create stored %d connections (%v)", len(list), err)
	}
	_, err = e.svc.Create(e.ctx, service.NewConnection{Name: "x", Direction: connection.DirectionDestination, DestinationURL: "sqlite:x.db"})
	if !errors.As(err, &inv) || !slices.ContainsFunc(inv.Problems, func(p connection.FieldError) bool { return p.Field == connection.FieldCredential }) ||
		!slices.ContainsFunc(inv.Problems, func(p connection.FieldError) bool { return p.Field == connection.FieldLoad }) {
		t.Fatalf("create without a credential, direction destination: %v", err)
	}

	c := e.create(service.NewConnection{Schedule: "1h"})
	for _, tc := range []struct {
		n           service.NewConnection
		code, field string
		sentinel    error
	}{
		{service.NewConnection{Name: c.Name, Namespace: "other"}, "name_taken", connection.FieldName, connection.ErrNameTaken},
		{service.NewConnection{Name: "other", Namespace: c.Namespace}, "namespace_taken", connection.FieldNamespace, connection.ErrNamespaceTaken},
	} {
		tc.n.Credential, tc.n.DestinationURL, tc.n.Streams = "sandbox", c.DestinationURL, c.Streams
		_, err := e.svc.Create(e.ctx, tc.n)
		var ce *service.ConflictError
		if !errors.As(err, &ce) || ce.Code != tc.code || ce.Field != tc.field || !errors.Is(err, service.ErrConflict) ||
			!errors.Is(err, tc.sentinel) || !service.Refused(err) {
			t.Errorf("%s: %v", tc.code, err)
		}
	}
	other := e.create(service.NewConnection{Name: "other", Namespace: "other"})
	if _, err := e.svc.Update(e.ctx, other.Name, service.Changes{Name: &c.Name}); !errors.Is(err, connection.ErrNameTaken) || !errors.Is(err, service.ErrConflict) {
		t.Errorf("rename onto a taken name: %v", err)
	}

	if err := e.svc.Cancel(e.ctx, c.Name); !errors.Is(err, service.ErrNoRun) || !service.Refused(err) {
		t.Errorf("cancel without a run: %v, want ErrNoRun", err)
	}
	if _, err := e.svc.Get(e.ctx, "nobody"); !errors.Is(err, service.ErrNotFound) || !service.Refused(err) {
		t.Errorf("get of a missing connection: %v", err)
	}
	// A destination that cannot drop its data: refused before it is unscheduled.
	before, scheduled, _ := e.q.NextDue(e.ctx, c.ID)
	if err := e.svc.Delete(e.ctx, c.Name, true); !errors.Is(err, service.ErrUnsupported) || !service.Refused(err) {
		t.Errorf("delete --drop-data: %v, want ErrUnsupported", err)
	}
	if after, ok, _ := e.q.NextDue(e.ctx, c.ID); !scheduled || !ok || !after.Equal(before) {
		t.Errorf("a refused delete changed the schedule: %v %v → %v %v", before, scheduled, after, ok)
	}
	if _, err := e.svc.Resync(e.ctx, c.Name, nil); !errors.Is(err, service.ErrUnsupported) {
		t.Errorf("resync: %v, want ErrUnsupported", err)
	}
	if errors.Is(errors.New("disk full"), service.ErrConflict) || service.Refused(errors.New("disk full")) {
		t.Error("any error is a refusal")
	}
}
