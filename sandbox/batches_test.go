package sandbox_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/sandbox"
)

func attrInt(r resource, name string) int64 {
	var n int64
	json.Unmarshal(r.Attributes[name], &n)
	return n
}

func attrBool(r resource, name string) bool {
	var b bool
	json.Unmarshal(r.Attributes[name], &b)
	return b
}

// itemTarget reads the record id a batch item's data names.
func itemTarget(t *testing.T, it resource) int64 {
	t.Helper()
	var d struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal([]byte(it.str("data")), &d); err != nil || d.ID == 0 {
		t.Fatalf("batch item %d data %q does not name a record", it.ID, it.str("data"))
	}
	return d.ID
}

func batchItems(t *testing.T, srv *sandbox.Server, tok string, batch int64, extra ...string) map[int64]resource {
	t.Helper()
	items := listAll(t, srv, tok, "/api/v2/batchItems"+q(append([]string{"filter[batch][id]", fmt.Sprint(batch), "page[size]", "2"}, extra...)...))
	out := map[int64]resource{}
	for _, it := range items {
		if it.relID("batch") != batch || attrInt(it, "batchId") != batch {
			t.Fatalf("item %d of batch %d says batch %d / batchId %d", it.ID, batch, it.relID("batch"), attrInt(it, "batchId"))
		}
		out[itemTarget(t, it)] = it
	}
	return out
}

// TestBulkAssignOwnerLifecycle: a batch waits for confirmation, refuses a
// wrong confirmedCount, processes its items at the configured speed of the
// sandbox clock, reports the missing record as a failed item, and finishes.
func TestBulkAssignOwnerLifecycle(t *testing.T) {
	srv := start(t, sandbox.Options{BatchItemsPerSecond: 2})
	tok := token(t, srv)
	r := call(t, srv, tok, "POST", "/api/v2/batches/actions/prospectsAssignOwner",
		`{"data":{"attributes":{"ids":[11,12,13,999999,14],"ownerId":3}}}`)
	if r.status != 200 {
		t.Fatalf("create batch: %d %s", r.status, r.body)
	}
	b := r.doc(t).one(t)
	if b.Type != "batch" || b.str("state") != "pending" || attrInt(b, "total") != 5 || attrInt(b, "pending") != 5 || attrInt(b, "confirmCount") != 5 || b.str("action") != "prospectsAssignOwner" {
		t.Fatalf("new batch: %s", r.body)
	}
	if b.relID("creator") != 1 {
		t.Errorf("creator = %d, want the token's user 1", b.relID("creator"))
	}
	srv.Clock().Advance(time.Hour)
	if p := call(t, srv, tok, "GET", "/api/v2/prospects/11", "").doc(t).one(t); p.relID("owner") == 3 {
		t.Fatal("an unconfirmed batch changed a prospect")
	}
	items := batchItems(t, srv, tok, b.ID)
	if len(items) != 5 || items[11].str("state") != "pending" {
		t.Fatalf("items before confirmation: %v", items)
	}

	id := fmt.Sprint(b.ID)
	if r := call(t, srv, tok, "POST", "/api/v2/batches/"+id+"/actions/confirm"+q("actionParams[confirmedCount]", "4"), ""); r.status != 422 {
		t.Fatalf("confirm with a wrong count: %d %s", r.status, r.body)
	}
	r = call(t, srv, tok, "POST", "/api/v2/batches/"+id+"/actions/confirm"+q("actionParams[confirmedCount]", "5"), "")
	if b := r.doc(t).one(t); r.status != 200 || b.str("state") != "processing" || b.str("confirmedAt") == "" {
		t.Fatalf("confirm: %d %s", r.status, r.body)
	}
	if r := call(t, srv, tok, "POST", "/api/v2/batches/"+id+"/actions/confirm", ""); r.status != 422 {
		t.Fatalf("a second confirm: %d %s", r.status, r.body)
	}

	srv.Clock().Advance(time.Second) // two items at 2 a second
	b = call(t, srv, tok, "GET", "/api/v2/batches/"+id, "").doc(t).one(t)
	if b.str("state") != "processing" || attrInt(b, "pending") != 3 {
		t.Fatalf("after one second: state %s pending %d", b.str("state"), attrInt(b, "pending"))
	}
	items = batchItems(t, srv, tok, b.ID)
	if items[11].str("state") != "finished" || items[12].str("state") != "finished" || items[13].str("state") != "pending" {
		t.Fatalf("after one second the first two items are done, the rest pending: %v", items)
	}

	srv.Clock().Advance(2 * time.Second)
	b = call(t, srv, tok, "GET", "/api/v2/batches/"+id, "").doc(t).one(t)
	if b.str("state") != "finished" || attrInt(b, "pending") != 0 || attrInt(b, "failures") != 1 || b.str("finishedAt") == "" {
		t.Fatalf("finished batch: %v", b.Attributes)
	}
	items = batchItems(t, srv, tok, b.ID)
	for _, pid := range []int64{11, 12, 13, 14} {
		if it := items[pid]; it.str("state") != "finished" || attrBool(it, "failed") {
			t.Errorf("item for prospect %d: %v", pid, it.Attributes)
		}
		if p := call(t, srv, tok, "GET", fmt.Sprintf("/api/v2/prospects/%d", pid), "").doc(t).one(t); p.relID("owner") != 3 {
			t.Errorf("prospect %d owner = %d, want 3", pid, p.relID("owner"))
		}
	}
	if it := items[999999]; !attrBool(it, "failed") || !strings.Contains(it.str("info"), "Could not find 'prospect' with ID '999999'") {
		t.Errorf("item for the missing prospect: %v", it.Attributes)
	}
	failed := batchItems(t, srv, tok, b.ID, "filter[failed]", "true")
	if len(failed) != 1 || failed[999999].ID == 0 {
		t.Errorf("filter[failed]=true: %v", failed)
	}
	if r := call(t, srv, tok, "POST", "/api/v2/batches/"+id+"/actions/cancel", ""); r.status != 422 {
		t.Errorf("cancel a finished batch: %d %s", r.status, r.body)
	}
}

// TestBulkAddToSequenceItemErrors: the enrolment rules of POST
// /sequenceStates apply to every item: a prospect already in the sequence
// fails its item, a missing mailbox fails every item, the others enrol.
func TestBulkAddToSequenceItemErrors(t *testing.T) {
	srv := start(t, sandbox.Options{BatchItemsPerSecond: -1})
	tok := token(t, srv)
	// Seeded sequence state 1 puts prospect 1 in sequence 1.
	st := call(t, srv, tok, "GET", "/api/v2/sequenceStates/1", "").doc(t).one(t)
	enrolled, seq := st.relID("prospect"), st.relID("sequence")
	body := fmt.Sprintf(`{"data":{"attributes":{"ids":[%d,171,172],"sequenceId":%d,"mailboxId":2}}}`, enrolled, seq)
	r := call(t, srv, tok, "POST", "/api/v2/batches/actions/prospectsAddToSequence"+q("actionParams[skipConfirmation]", "true"), body)
	if r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	b := call(t, srv, tok, "GET", fmt.Sprintf("/api/v2/batches/%d", r.doc(t).one(t).ID), "").doc(t).one(t)
	if b.str("state") != "finished" || attrInt(b, "failures") != 1 {
		t.Fatalf("batch: %v", b.Attributes)
	}
	items := batchItems(t, srv, tok, b.ID)
	if it := items[enrolled]; !attrBool(it, "failed") || !strings.Contains(it.str("info"), "already been in this sequence") {
		t.Errorf("already enrolled prospect's item: %v", it.Attributes)
	}
	for _, pid := range []int64{171, 172} {
		if attrBool(items[pid], "failed") {
			t.Errorf("prospect %d failed: %s", pid, items[pid].str("info"))
		}
		states := listAll(t, srv, tok, "/api/v2/sequenceStates"+q("filter[prospect][id]", fmt.Sprint(pid), "page[size]", "10"))
		if len(states) != 1 || states[0].relID("sequence") != seq || states[0].relID("mailbox") != 2 || states[0].str("state") != "active" {
			t.Errorf("prospect %d sequence states: %v", pid, states)
		}
	}

	// Without a mailbox every item fails, as POST /sequenceStates does.
	body = fmt.Sprintf(`{"data":{"attributes":{"ids":[173,174],"sequenceId":%d}}}`, seq)
	r = call(t, srv, tok, "POST", "/api/v2/batches/actions/prospectsAddToSequence"+q("actionParams[skipConfirmation]", "true"), body)
	if r.status != 200 {
		t.Fatalf("create without mailbox: %d %s", r.status, r.body)
	}
	items = batchItems(t, srv, tok, r.doc(t).one(t).ID)
	for _, pid := range []int64{173, 174} {
		if it := items[pid]; !attrBool(it, "failed") || !strings.Contains(it.str("info"), "Mailbox is required") {
			t.Errorf("prospect %d without a mailbox: %v", pid, it.Attributes)
		}
	}
	// A sequence that does not exist refuses the whole request.
	r = call(t, srv, tok, "POST", "/api/v2/batches/actions/prospectsAddToSequence", `{"data":{"attributes":{"ids":[175],"sequenceId":987654,"mailboxId":2}}}`)
	if d := r.doc(t); r.status != 422 || len(d.Errors) == 0 || d.Errors[0].Source.Pointer != "/data/attributes/sequenceId" {
		t.Errorf("unknown sequence: %d %s", r.status, r.body)
	}
}

// TestBulkScopesAndValidation: bulk actions need batches.read,
// batches.write and the target's scope; bad bodies and filters are refused
// before any batch exists.
func TestBulkScopesAndValidation(t *testing.T) {
	srv := start(t, sandbox.Options{BatchItemsPerSecond: -1})
	body := `{"data":{"attributes":{"ids":[1],"tags":["x"]}}}`
	for _, scopes := range [][]string{{"prospects.all"}, {"batches.write", "prospects.write"}, {"batches.all", "prospects.read"}} {
		srv.Clock().Advance(time.Minute) // one token a minute
		tok := token(t, srv, scopes...)
		if r := call(t, srv, tok, "POST", "/api/v2/batches/actions/prospectsAddTags", body); r.status != 403 {
			t.Errorf("scopes %v: %d %s", scopes, r.status, r.body)
		}
	}
	srv.Clock().Advance(time.Minute)
	tok := token(t, srv, "batches.all", "prospects.write", "prospects.read")
	if r := call(t, srv, tok, "POST", "/api/v2/batches/actions/prospectsAddTags", body); r.status != 200 {
		t.Errorf("with every scope: %d %s", r.status, r.body)
	}
	srv.Clock().Advance(time.Minute)
	tok = token(t, srv)
	before := len(listAll(t, srv, tok, "/api/v2/batches?page[size]=100"))
	for _, c := range []struct{ path, body, want string }{
		{"prospectsBulkModify", `{"data":{"attributes":{"ids":[1],"createdAt":"2020-01-01T00:00:00Z"}}}`, "/data/attributes/createdAt"},
		{"prospectsBulkModify", `{"data":{"attributes":{"ids":[1],"nope":"x"}}}`, "/data/attributes/nope"},
		{"prospectsAssignOwner", `{"data":{"attributes":{"ids":[1],"ownerId":424242}}}`, "/data/attributes/ownerId"},
		{"prospectsAddTags", `{"data":{"attributes":{"ids":[1]}}}`, "/data/attributes/tags"},
		{"prospectsAddTags" + q("actionParams[filter][nope]", "1"), `{"data":{"attributes":{"tags":["a"]}}}`, "actionParams[filter][nope]"},
	} {
		r := call(t, srv, tok, "POST", "/api/v2/batches/actions/"+c.path, c.body)
		d := r.doc(t)
		if r.status < 400 || len(d.Errors) == 0 || (d.Errors[0].Source.Pointer != c.want && d.Errors[0].Source.Parameter != c.want) {
			t.Errorf("%s %s: %d %s, want an error at %s", c.path, c.body, r.status, r.body, c.want)
		}
	}
	if after := len(listAll(t, srv, tok, "/api/v2/batches?page[size]=100")); after != before {
		t.Errorf("refused requests created %d batches", after-before)
	}
}

// TestBulkFilterModifyAndCancel: actionParams[filter] selects the records
// (new filter syntax), bulk modify takes both body forms, and a canceled
// batch changes nothing and cannot be confirmed.
func TestBulkFilterModifyAndCancel(t *testing.T) {
	srv := start(t, sandbox.Options{BatchItemsPerSecond: -1})
	tok := token(t, srv)
	path := "/api/v2/batches/actions/prospectsBulkModify" + "?actionParams%5Bfilter%5D%5Bid%5D%5B%5D=21&actionParams%5Bfilter%5D%5Bid%5D%5B%5D=22&actionParams%5BskipConfirmation%5D=true"
	r := call(t, srv, tok, "POST", path, `{"data":{"attributes":{"fieldName":"title","fieldValue":"Chief Bulk Officer"}}}`)
	if b := r.doc(t).one(t); r.status != 200 || attrInt(b, "total") != 2 {
		t.Fatalf("filtered modify: %d %s", r.status, r.body)
	}
	for _, id := range []string{"21", "22"} {
		if p := call(t, srv, tok, "GET", "/api/v2/prospects/"+id, "").doc(t).one(t); p.str("title") != "Chief Bulk Officer" {
			t.Errorf("prospect %s title %q", id, p.str("title"))
		}
	}
	if p := call(t, srv, tok, "GET", "/api/v2/prospects/23", "").doc(t).one(t); p.str("title") == "Chief Bulk Officer" {
		t.Error("a prospect outside the filter was modified")
	}
	r = call(t, srv, tok, "POST", "/api/v2/batches/actions/prospectsBulkModify"+q("actionParams[skipConfirmation]", "true"), `{"data":{"attributes":{"ids":[24],"title":"VP","custom1":"c1"}}}`)
	if p := call(t, srv, tok, "GET", "/api/v2/prospects/24", "").doc(t).one(t); r.status != 200 || p.str("title") != "VP" || p.str("custom1") != "c1" {
		t.Errorf("map-form modify: %d %s; prospect %v", r.status, r.body, p.Attributes)
	}

	r = call(t, srv, tok, "POST", "/api/v2/batches/actions/prospectsAddTags", `{"data":{"attributes":{"ids":[25,26],"tags":["bulk"]}}}`)
	id := fmt.Sprint(r.doc(t).one(t).ID)
	r = call(t, srv, tok, "POST", "/api/v2/batches/"+id+"/actions/cancel", "")
	if b := r.doc(t).one(t); r.status != 200 || b.str("state") != "canceled" || b.str("canceledAt") == "" {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if r := call(t, srv, tok, "POST", "/api/v2/batches/"+id+"/actions/confirm", ""); r.status != 422 {
		t.Errorf("confirm a canceled batch: %d %s", r.status, r.body)
	}
	for pid, it := range batchItems(t, srv, tok, r.doc(t).one(t).ID) {
		if it.str("state") != "canceled" {
			t.Errorf("item of prospect %d: %s", pid, it.str("state"))
		}
		if p := call(t, srv, tok, "GET", fmt.Sprintf("/api/v2/prospects/%d", pid), "").doc(t).one(t); strings.Contains(string(p.Attributes["tags"]), `"bulk"`) {
			t.Errorf("canceled batch tagged prospect %d", pid)
		}
	}
	// Imports are still not simulated.
	if r := call(t, srv, tok, "POST", "/api/v2/imports/actions/prospectsImport", ""); r.status != 501 {
		t.Errorf("imports: %d", r.status)
	}
}

// TestBulkLimitsAndConfirmCount: more than 100,000 records is refused;
// a batch of 1,000 or more must be confirmed with its confirmCount.
func TestBulkLimitsAndConfirmCount(t *testing.T) {
	srv := start(t, sandbox.Options{Prospects: 1500, BatchItemsPerSecond: -1})
	tok := token(t, srv)
	var b strings.Builder
	for i := 1; i <= sandbox.MaxBulkItems+1; i++ {
		if i > 1 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, i)
	}
	r := call(t, srv, tok, "POST", "/api/v2/batches/actions/prospectsAddTags", `{"data":{"attributes":{"tags":["x"],"ids":[`+b.String()+`]}}}`)
	if r.status != 422 || !strings.Contains(string(r.body), "at most 100000") {
		t.Errorf("100,001 ids: %d %.300s", r.status, r.body)
	}
	r = call(t, srv, tok, "POST", "/api/v2/batches/actions/prospectsAddTags"+q("actionParams[filter][id][gte]", "1", "actionParams[filter][id][lte]", "1200"), `{"data":{"attributes":{"tags":["x"]}}}`)
	if r.status != 200 {
		t.Fatalf("1,200 by filter: %d %.300s", r.status, r.body)
	}
	bt := r.doc(t).one(t)
	if attrInt(bt, "total") != 1200 || !attrBool(bt, "confirmedCountRequired") {
		t.Fatalf("batch of 1,200: %v", bt.Attributes)
	}
	id := fmt.Sprint(bt.ID)
	if r := call(t, srv, tok, "POST", "/api/v2/batches/"+id+"/actions/confirm", ""); r.status != 422 {
		t.Errorf("confirm without confirmedCount: %d %s", r.status, r.body)
	}
	r = call(t, srv, tok, "POST", "/api/v2/batches/"+id+"/actions/confirm"+q("actionParams[confirmedCount]", "1200"), "")
	if bt := r.doc(t).one(t); r.status != 200 || bt.str("state") != "finished" || attrInt(bt, "failures") != 0 {
		t.Errorf("confirm with 1200: %d %.300s", r.status, r.body)
	}
}
