package outreach_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

func TestTypedResources(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Prospects: 60})
	c := newClient(t, srv, nil)
	ctx := context.Background()
	generic := collect(t, c, "prospects", nil)
	n := 0
	for p, err := range outreach.ListOf[outreach.Prospect](ctx, c, nil) {
		if err != nil {
			t.Fatal(err)
		}
		g := generic[n]
		n++
		if p.ID != g.ID || p.FirstName == nil || *p.FirstName != g.String("firstName") {
			t.Fatalf("prospect %d: typed firstName %v, generic %q", p.ID, p.FirstName, g.String("firstName"))
		}
		if p.UpdatedAt == nil || !p.UpdatedAt.Equal(g.Time("updatedAt")) {
			t.Errorf("prospect %d: updatedAt %v, want %v", p.ID, p.UpdatedAt, g.Time("updatedAt"))
		}
		if len(p.Emails) != 1 || !strings.Contains(p.Emails[0], "@") || len(p.ContactHistogram) != 12 {
			t.Errorf("prospect %d: emails %v histogram %v", p.ID, p.Emails, p.ContactHistogram)
		}
		if p.AccountID == nil || *p.AccountID != g.RelID("account") {
			t.Errorf("prospect %d: AccountID %v, want %d", p.ID, p.AccountID, g.RelID("account"))
		}
		if len(p.EmailAddressIDs) != 1 {
			t.Errorf("prospect %d: EmailAddressIDs %v, want one", p.ID, p.EmailAddressIDs)
		}
		if string(p.Extra["accountName"]) == "" {
			t.Errorf("prospect %d: the undocumented accountName is not in Extra", p.ID)
		}
	}
	if n != 60 {
		t.Errorf("typed prospects = %d, want 60", n)
	}
	st, err := outreach.GetAs[outreach.SequenceState](ctx, c, 3)
	if err != nil || st.State == nil || st.ProspectID == nil || *st.ProspectID != 3 {
		t.Errorf("GetAs SequenceState 3: %+v %v", st, err)
	}
	acc, _, _ := c.Get(ctx, "accounts", 1, nil)
	if _, err := outreach.Decode[outreach.Prospect](acc); err == nil {
		t.Error("decoding an account as a Prospect succeeded")
	}
	bad := acc.Clone()
	bad.Set("createdAt", "yesterday")
	if _, err := outreach.Decode[outreach.Account](bad); err == nil || !strings.Contains(err.Error(), "createdAt") {
		t.Errorf("bad date-time: %v, want an error naming createdAt", err)
	}
	_ = time.Now
}
