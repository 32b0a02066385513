package syncer_test

import (
	"context"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// TestRemembersTheSettledPageSize: when every mailings page above 25
// records fails with 502 (Outreach's gateway on heavy pages), the first
// run learns the size from failures and keeps it in the stream's state;
// the second run starts there and meets far fewer failures.
func TestRemembersTheSettledPageSize(t *testing.T) {
	e := newEnv(t, sandbox.Options{Seed: 12, Prospects: 2500, Faults: sandbox.Faults{BadGateway: 1, LargePageSize: 25}})
	var mailings *connection.Stream
	for _, s := range e.streams(t) {
		if s.Name == "mailings" {
			mailings = s
		}
	}
	if mailings == nil {
		t.Fatal("no mailings stream")
	}
	ctx := context.Background()
	runs := make([]struct{ requests, faults int64 }, 2)
	records := 0
	for i := range runs {
		before := e.srv.Counters()
		res := e.run(t, []*connection.Stream{mailings}, syncer.Options{FullRefresh: true})
		after := e.srv.Counters()
		runs[i].requests, runs[i].faults = after.Requests-before.Requests, after.FaultsInjected-before.FaultsInjected
		records = res[0].Records
		st, err := e.db.State(ctx, "mailings")
		if err != nil {
			t.Fatal(err)
		}
		if st.PageSize != 25 {
			t.Errorf("run %d: the state keeps page size %d, want 25 (where the reads settled)", i+1, st.PageSize)
		}
	}
	if records < 1000 {
		t.Fatalf("only %d mailings: too few pages to tell", records)
	}
	per := func(n int64) float64 { return float64(n) * 10000 / float64(records) }
	t.Logf("%d mailings; per 10,000 mailings: first run %.0f requests (%.0f failed), second run %.0f requests (%.0f failed)",
		records, per(runs[0].requests), per(runs[0].faults), per(runs[1].requests), per(runs[1].faults))
	if runs[1].faults*2 > runs[0].faults || runs[1].requests >= runs[0].requests {
		t.Errorf("second run: %d requests, %d failed; first: %d, %d: remembering the size should halve the failures at least",
			runs[1].requests, runs[1].faults, runs[0].requests, runs[0].faults)
	}
}
