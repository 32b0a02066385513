package syncer_test

import (
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/syncer"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// TestUnchangedRunCostsOneRequestPerStream: a run right after a full
// sync, with nothing changed in Outreach, asks each stream for one page
// (its window, empty or the few records of the lookback) and nothing more.
func TestUnchangedRunCostsOneRequestPerStream(t *testing.T) {
	e := newEnv(t, sandbox.Options{Seed: 5})
	streams := e.streams(t)
	e.run(t, streams, syncer.Options{})
	before := e.srv.Counters().Requests
	res := e.run(t, streams, syncer.Options{})
	requests := e.srv.Counters().Requests - before
	records := 0
	for _, r := range res {
		records += r.Records
	}
	t.Logf("%d streams: %d requests, %d records re-read (the lookback)", len(streams), requests, records)
	if requests != int64(len(streams)) {
		t.Errorf("an unchanged run made %d requests for %d streams; want one a stream", requests, len(streams))
	}
}
