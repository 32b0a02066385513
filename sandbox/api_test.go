package sandbox_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/sandbox"
)

func TestAuthenticationAndMediaType(t *testing.T) {
	srv := start(t, sandbox.Options{StrictMediaType: true})
	good := token(t, srv)
	expired := tokenFor(t, srv, 3)
	srv.Clock().Advance(2*time.Hour + time.Second)
	good2 := tokenFor(t, srv, 1) // minted after the advance, still valid
	_ = good
	tests := []struct {
		name        string
		tok         string
		contentType string
		wantStatus  int
		wantBody    string
	}{
		{"missing token", "", "application/vnd.api+json", 401, "Invalid JWT token."},
		{"garbled token", "not-a-jwt", "application/vnd.api+json", 401, "could not be decoded"},
		{"tampered token", good2[:len(good2)-2] + "xx", "application/vnd.api+json", 401, "could not be decoded"},
		{"expired token", expired, "application/vnd.api+json", 401, "expired"},
		{"no content type", good2, "", 415, `"details":"Expected Content-Type header to be 'application/vnd.api+json'."`},
		{"json content type", good2, "application/json", 415, "unsupportedMediaType"},
		{"ok", good2, "application/vnd.api+json", 200, `"data":[`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+"/api/v2/accounts", nil)
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.tok != "" {
				req.Header.Set("Authorization", "Bearer "+tt.tok)
			}
			r := send(t, req)
			if r.status != tt.wantStatus || !strings.Contains(string(r.body), tt.wantBody) {
				t.Errorf("got %d %.300s, want %d containing %q", r.status, r.body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestScopesGovernanceAndRoutes(t *testing.T) {
	srv := start(t, sandbox.Options{MintInterval: -1})
	readOnly := token(t, srv, "prospects.read", "users.all")
	restricted := tokenFor(t, srv, 2)
	tests := []struct {
		name, tok, method, path, body string
		wantStatus                    int
		wantID                        string
	}{
		{"read with read scope", readOnly, "GET", "/api/v2/prospects/1", "", 200, ""},
		{"read without scope", readOnly, "GET", "/api/v2/accounts", "", 403, "unauthorizedOauthScope"},
		{"write with read scope", readOnly, "PATCH", "/api/v2/prospects/1", `{"data":{"type":"prospect","id":1,"attributes":{"title":"x"}}}`, 403, "unauthorizedOauthScope"},
		{"delete with read scope", readOnly, "DELETE", "/api/v2/prospects/1", "", 403, "unauthorizedOauthScope"},
		{"governance denies a non-admin", restricted, "PATCH", "/api/v2/users/3", `{"data":{"type":"user","id":3,"attributes":{"title":"x"}}}`, 403, "unauthorizedRequest"},
		{"admin may", readOnly, "PATCH", "/api/v2/users/3", `{"data":{"type":"user","id":3,"attributes":{"title":"x"}}}`, 200, ""},
		{"missing record", readOnly, "GET", "/api/v2/prospects/999999", "", 404, "resourceNotFound"},
		{"unknown resource", readOnly, "GET", "/api/v2/widgets", "", 404, "routeNotFound"},
		{"operation the spec lacks", restricted, "PATCH", "/api/v2/mailings/1", `{}`, 404, "routeNotFound"},
		{"no delete for users", readOnly, "DELETE", "/api/v2/users/1", "", 404, "routeNotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, srv, tt.tok, tt.method, tt.path, tt.body)
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d (%.300s), want %d", r.status, r.body, tt.wantStatus)
			}
			if tt.wantID != "" {
				if d := r.doc(t); len(d.Errors) == 0 || d.Errors[0].ID != tt.wantID {
					t.Errorf("errors = %s, want id %q", r.body, tt.wantID)
				}
			}
		})
	}
}

func TestEveryReadableResourceListsAndGets(t *testing.T) {
	srv := start(t, sandbox.Options{Prospects: 100})
	tok := token(t, srv)
	for _, res := range srv.Catalog().Resources() {
		if !res.Ops.List {
			continue
		}
		t.Run(res.Path, func(t *testing.T) {
			r := call(t, srv, tok, "GET", "/api/v2/"+res.Path+"?page[size]=5", "")
			if r.status != 200 {
				t.Fatalf("list: %d %.300s", r.status, r.body)
			}
			recs := r.doc(t).list(t)
			for _, rec := range recs {
				if rec.Type != res.Type || rec.ID <= 0 || rec.Links.Self != srv.URL+"/api/v2/"+res.Path+"/"+fmt.Sprint(rec.ID) {
					t.Errorf("record %s/%d self %q: wrong type, id or self link", rec.Type, rec.ID, rec.Links.Self)
				}
				for name, rel := range rec.Relationships {
					if len(rel.Data) == 0 && rel.Links.Related == "" {
						t.Errorf("%s.%s has neither data nor links", res.Type, name)
					}
				}
			}
			if res.Ops.Get && len(recs) > 0 {
				g := call(t, srv, tok, "GET", fmt.Sprintf("/api/v2/%s/%d", res.Path, recs[0].ID), "")
				if got := g.doc(t).one(t); g.status != 200 || got.ID != recs[0].ID {
					t.Errorf("get %d: %d %.200s", recs[0].ID, g.status, g.body)
				}
			}
		})
	}
}

func TestRelationshipsAreConsistent(t *testing.T) {
	srv := start(t, sandbox.Options{Prospects: 100})
	tok := token(t, srv)
	states := call(t, srv, tok, "GET", "/api/v2/sequenceStates?page[size]=20", "").doc(t).list(t)
	if len(states) == 0 {
		t.Fatal("no sequence states")
	}
	for _, st := range states[:5] {
		p := call(t, srv, tok, "GET", fmt.Sprintf("/api/v2/prospects/%d", st.relID("prospect")), "").doc(t).one(t)
		if got, want := st.relID("account"), p.relID("account"); got != want {
			t.Errorf("sequenceState %d account = %d, want its prospect's account %d", st.ID, got, want)
		}
		mb := call(t, srv, tok, "GET", fmt.Sprintf("/api/v2/mailboxes/%d", st.relID("mailbox")), "")
		if mb.status != 200 {
			t.Errorf("sequenceState %d points at a missing mailbox: %d", st.ID, mb.status)
		}
	}
	// To-many data and links-only relationships, and their related links.
	p := call(t, srv, tok, "GET", "/api/v2/prospects/7", "").doc(t).one(t)
	var emails []struct{ ID int64 }
	json.Unmarshal(p.Relationships["emailAddresses"].Data, &emails)
	if len(emails) == 0 || p.Relationships["emailAddresses"].Meta.Count != len(emails) {
		t.Errorf("prospect 7 emailAddresses = %s (count %d), want at least one", p.Relationships["emailAddresses"].Data, p.Relationships["emailAddresses"].Meta.Count)
	}
	related := p.Relationships["mailings"].Links.Related
	if len(p.Relationships["mailings"].Data) != 0 || !strings.Contains(related, "/api/v2/mailings?filter%5Bprospect%5D%5Bid%5D=7") {
		t.Fatalf("prospect.mailings = %+v, want links only to mailings filtered by prospect", p.Relationships["mailings"])
	}
	for _, m := range listAll(t, srv, tok, related+"&page%5Bsize%5D=10") {
		if m.relID("prospect") != 7 {
			t.Errorf("related mailing %d belongs to prospect %d, want 7", m.ID, m.relID("prospect"))
		}
	}
}

func TestCursorPagination(t *testing.T) {
	srv := start(t, sandbox.Options{Prospects: 500})
	tok := token(t, srv)
	tests := []struct {
		name, sort string
	}{
		{"by id", ""}, {"by id desc", "-id"}, {"by updatedAt", "updatedAt"}, {"by updatedAt desc", "-updatedAt"},
		{"by createdAt", "createdAt"}, {"by name", "lastName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/api/v2/prospects?page[size]=37&count=true"
			if tt.sort != "" {
				path += "&sort=" + tt.sort
			}
			first := call(t, srv, tok, "GET", path, "").doc(t)
			if first.Meta.Count == nil || *first.Meta.Count != 500 {
				t.Fatalf("meta.count = %v, want 500", first.Meta.Count)
			}
			if !strings.Contains(first.Links.Next, "page%5Bafter%5D=") || !strings.HasPrefix(first.Links.Next, srv.URL) {
				t.Fatalf("links.next = %q, want an absolute URL with page[after]", first.Links.Next)
			}
			all := listAll(t, srv, tok, path)
			seen := map[int64]bool{}
			for i, r := range all {
				if seen[r.ID] {
					t.Fatalf("record %d seen twice", r.ID)
				}
				seen[r.ID] = true
				if i > 0 && tt.sort != "" {
					key := strings.TrimPrefix(tt.sort, "-")
					a, b := all[i-1].str(key), r.str(key)
					if key == "id" {
						a, b = fmt.Sprintf("%09d", all[i-1].ID), fmt.Sprintf("%09d", r.ID)
					}
					if (strings.HasPrefix(tt.sort, "-") && a < b) || (!strings.HasPrefix(tt.sort, "-") && a > b) {
						t.Fatalf("out of order at %d: %q then %q", i, a, b)
					}
				}
			}
			if len(all) != 500 {
				t.Errorf("records = %d, want 500", len(all))
			}
		})
	}
}

func TestOffsetModeAndPageLimits(t *testing.T) {
	srv := start(t, sandbox.Options{Prospects: 120})
	tok := token(t, srv)
	d := call(t, srv, tok, "GET", "/api/v2/prospects", "").doc(t)
	if got := len(d.list(t)); got != 50 {
		t.Errorf("default page = %d records, want 50", got)
	}
	if !strings.Contains(d.Links.Next, "page%5Boffset%5D=50") || d.Meta.Count != nil {
		t.Errorf("offset mode next = %q, meta.count = %v; want page[offset]=50 and no count by default", d.Links.Next, d.Meta.Count)
	}
	tests := []struct {
		path   string
		status int
	}{
		{"/api/v2/prospects?page[size]=1000", 200},
		{"/api/v2/prospects?page[size]=1001", 400},
		{"/api/v2/prospects?page[size]=0", 400},
		{"/api/v2/prospects?page[offset]=10001", 400},
		{"/api/v2/prospects?page[after]=garbage&page[size]=5", 400},
	}
	for _, tt := range tests {
		if r := call(t, srv, tok, "GET", tt.path, ""); r.status != tt.status {
			t.Errorf("GET %s = %d %.200s, want %d", tt.path, r.status, r.body, tt.status)
		}
	}
	legacy := start(t, sandbox.Options{Prospects: 10, CountByDefault: true})
	if d := call(t, legacy, token(t, legacy), "GET", "/api/v2/prospects?page[size]=2", "").doc(t); d.Meta.Count == nil || *d.Meta.Count != 10 {
		t.Errorf("CountByDefault: meta.count = %v, want 10", d.Meta.Count)
	}
}

func TestFilters(t *testing.T) {
	srv := start(t, sandbox.Options{Prospects: 300})
	tok := token(t, srv)
	all := listAll(t, srv, tok, "/api/v2/prospects?page[size]=1000")
	updated := func(r resource) time.Time {
		t, _ := time.Parse(time.RFC3339, r.str("updatedAt"))
		return t
	}
	pivot := updated(all[42])
	pivotS := pivot.Format("2006-01-02T15:04:05.000Z")
	countWhere := func(f func(resource) bool) int {
		n := 0
		for _, r := range all {
			if f(r) {
				n++
			}
		}
		return n
	}
	email := all[10].str("firstName")
	tests := []struct {
		name  string
		query string
		want  int // -1: expect an error
	}{
		{"id list", "filter[id]=1,2,3", 3},
		{"id range", "filter[id]=10..19", 10},
		{"updatedAt from (inclusive)", "filter[updatedAt]=" + pivotS + "..inf", countWhere(func(r resource) bool { return !updated(r).Before(pivot) })},
		{"updatedAt to (inclusive)", "filter[updatedAt]=neginf.." + pivotS, countWhere(func(r resource) bool { return !updated(r).After(pivot) })},
		{"new syntax gte", "newFilterSyntax=true&filter[updatedAt][gte]=" + pivotS, countWhere(func(r resource) bool { return !updated(r).Before(pivot) })},
		{"new syntax window", "newFilterSyntax=true&filter[updatedAt][gte]=" + pivotS + "&filter[updatedAt][lte]=" + pivotS, countWhere(func(r resource) bool { return updated(r).Equal(pivot) })},
		{"new syntax id array", "newFilterSyntax=true&filter[id][]=4&filter[id][]=5", 2},
		{"email membership", "filter[emails]=" + all[10].emailOf(), 1},
		{"equality", "filter[firstName]=" + email, countWhere(func(r resource) bool { return r.str("firstName") == email })},
		{"null", "filter[githubUsername]=__null__", countWhere(func(r resource) bool { return string(r.Attributes["githubUsername"]) == "null" })},
		{"not null", "filter[githubUsername]=__notnull__", countWhere(func(r resource) bool { return string(r.Attributes["githubUsername"]) != "null" })},
		{"relationship id", "filter[account][id]=3", countWhere(func(r resource) bool { return r.relID("account") == 3 })},
		{"not filterable", "filter[addressCity]=Berlin", -1},
		{"unknown attribute", "filter[nope]=1", -1},
		{"range with new syntax", "newFilterSyntax=true&filter[updatedAt]=2020-01-01..inf", -1},
		{"operator without new syntax", "filter[updatedAt][gte]=2020-01-01", -1},
		{"bad date", "filter[updatedAt]=yesterday..inf", -1},
		{"relationship not usable", "filter[creator][id]=1", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/api/v2/prospects?page[size]=1000&" + tt.query
			r := call(t, srv, tok, "GET", path, "")
			if tt.want < 0 {
				if r.status != 400 && r.status != 422 {
					t.Errorf("GET %s = %d, want 400 or 422", path, r.status)
				}
				if d := r.doc(t); len(d.Errors) == 0 || d.Errors[0].Detail == "" {
					t.Errorf("error document %.300s, want a detail", r.body)
				}
				return
			}
			if r.status != 200 {
				t.Fatalf("GET %s = %d %.300s", path, r.status, r.body)
			}
			if got := len(r.doc(t).list(t)); got != tt.want {
				t.Errorf("GET %s matched %d, want %d", path, got, tt.want)
			}
		})
	}
}

func (r resource) emailOf() string {
	var e []string
	json.Unmarshal(r.Attributes["emails"], &e)
	if len(e) == 0 {
		return ""
	}
	return e[0]
}

func TestSortFieldsInclude(t *testing.T) {
	srv := start(t, sandbox.Options{Prospects: 50, StrictSort: true})
	tok := token(t, srv)
	if r := call(t, srv, tok, "GET", "/api/v2/prospects?sort=addressCity", ""); r.status != 400 {
		t.Errorf("sort by a non-sortable attribute: %d, want 400", r.status)
	}
	if r := call(t, srv, tok, "GET", "/api/v2/prospects?sort=account.name", ""); r.status != 400 {
		t.Errorf("sort by a relationship attribute: %d, want 400", r.status)
	}
	d := call(t, srv, tok, "GET", "/api/v2/prospects?page[size]=3&fields[prospect]=firstName,account&include=account,owner&fields[account]=name", "").doc(t)
	recs := d.list(t)
	for _, r := range recs {
		if len(r.Attributes) != 1 || len(r.Relationships) != 1 || r.str("firstName") == "" {
			t.Errorf("sparse prospect = %v attrs %v rels, want firstName and account only", len(r.Attributes), len(r.Relationships))
		}
	}
	var types []string
	for _, inc := range d.Included {
		types = append(types, inc.Type)
		if inc.Type == "account" && (len(inc.Attributes) != 1 || inc.str("name") == "") {
			t.Errorf("included account attributes = %v, want name only", inc.Attributes)
		}
	}
	if !slices.Contains(types, "account") || !slices.Contains(types, "user") {
		t.Errorf("included types = %v, want account and user", types)
	}
	if r := call(t, srv, tok, "GET", "/api/v2/prospects?include=calls", ""); r.status != 400 {
		t.Errorf("include a links-only relationship: %d, want 400", r.status)
	}
}

func TestWrites(t *testing.T) {
	srv := start(t, sandbox.Options{Prospects: 50})
	tok := token(t, srv)
	existing := call(t, srv, tok, "GET", "/api/v2/prospects/5", "").doc(t).one(t).emailOf()
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantID, wantPointer      string
	}{
		{"create prospect", "POST", "/api/v2/prospects", `{"data":{"type":"prospect","attributes":{"firstName":"Ada","lastName":"Lovelace","emails":["ada@example.org"]},"relationships":{"account":{"data":{"type":"account","id":2}}}}}`, 201, "", ""},
		{"duplicate email", "POST", "/api/v2/prospects", `{"data":{"type":"prospect","attributes":{"emails":["` + existing + `"]}}}`, 422, "validationError", "/data"},
		{"too long", "POST", "/api/v2/prospects", `{"data":{"type":"prospect","attributes":{"firstName":"` + strings.Repeat("x", 256) + `"}}}`, 422, "validationDataTooLongError", "/data/attributes/firstName"},
		{"wrong type of value", "POST", "/api/v2/prospects", `{"data":{"type":"prospect","attributes":{"openCount":"many"}}}`, 422, "validationError", "/data/attributes/openCount"},
		{"read-only attribute", "POST", "/api/v2/prospects", `{"data":{"type":"prospect","attributes":{"createdAt":"2020-01-01T00:00:00Z"}}}`, 422, "validationError", "/data/attributes/createdAt"},
		{"unknown attribute", "POST", "/api/v2/prospects", `{"data":{"type":"prospect","attributes":{"shoeSize":44}}}`, 422, "validationError", "/data/attributes/shoeSize"},
		{"missing related record", "POST", "/api/v2/prospects", `{"data":{"type":"prospect","relationships":{"account":{"data":{"type":"account","id":99999}}}}}`, 422, "validationError", "/data/relationships/account/data/id"},
		{"wrong document type", "POST", "/api/v2/prospects", `{"data":{"type":"account","attributes":{}}}`, 422, "validationError", "/data/type"},
		{"account needs a name", "POST", "/api/v2/accounts", `{"data":{"type":"account","attributes":{"domain":"x.example"}}}`, 422, "validationError", "/data/attributes/name"},
		{"enrolment needs a mailbox", "POST", "/api/v2/sequenceStates", `{"data":{"type":"sequenceState","relationships":{"prospect":{"data":{"type":"prospect","id":40}},"sequence":{"data":{"type":"sequence","id":1}}}}}`, 422, "validationError", "/data/relationships/mailbox"},
		{"enrol", "POST", "/api/v2/sequenceStates", `{"data":{"type":"sequenceState","relationships":{"prospect":{"data":{"type":"prospect","id":40}},"sequence":{"data":{"type":"sequence","id":2}},"mailbox":{"data":{"type":"mailbox","id":1}}}}}`, 201, "", ""},
		{"enrol twice", "POST", "/api/v2/sequenceStates", `{"data":{"type":"sequenceState","relationships":{"prospect":{"data":{"type":"prospect","id":40}},"sequence":{"data":{"type":"sequence","id":2}},"mailbox":{"data":{"type":"mailbox","id":1}}}}}`, 422, "validationError", "/data/relationships/prospect"},
		{"update", "PATCH", "/api/v2/prospects/3", `{"data":{"type":"prospect","id":3,"attributes":{"title":"Chief Data Officer"}}}`, 200, "", ""},
		{"update id mismatch", "PATCH", "/api/v2/prospects/3", `{"data":{"type":"prospect","id":4,"attributes":{"title":"x"}}}`, 422, "validationError", "/data/id"},
		{"update missing", "PATCH", "/api/v2/prospects/99999", `{"data":{"type":"prospect","id":99999,"attributes":{}}}`, 404, "resourceNotFound", ""},
		{"to-many is not writable", "PATCH", "/api/v2/prospects/3", `{"data":{"type":"prospect","id":3,"relationships":{"opportunities":{"data":[]}}}}`, 422, "validationError", "/data/relationships/opportunities"},
		{"malformed body", "POST", "/api/v2/prospects", `{"data":`, 400, "badRequest", ""},
		{"include on a write", "POST", "/api/v2/accounts?include=owner", `{"data":{"type":"account","attributes":{"name":"A"}}}`, 400, "badRequest", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, srv, tok, tt.method, tt.path, tt.body)
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d %.400s, want %d", r.status, r.body, tt.wantStatus)
			}
			d := r.doc(t)
			if tt.wantID != "" && (len(d.Errors) == 0 || d.Errors[0].ID != tt.wantID || d.Errors[0].Source.Pointer != tt.wantPointer) {
				t.Errorf("errors = %s, want id %q at %q", r.body, tt.wantID, tt.wantPointer)
			}
		})
	}
	t.Run("double enrolment carries Outreach's code", func(t *testing.T) {
		r := call(t, srv, tok, "POST", "/api/v2/sequenceStates", tests[11].body)
		if d := r.doc(t); len(d.Errors) == 0 || d.Errors[0].Code != "has already been in this sequence" {
			t.Errorf("errors = %s, want code %q", r.body, "has already been in this sequence")
		}
	})
	t.Run("update bumps updatedAt and keeps the rest", func(t *testing.T) {
		before := call(t, srv, tok, "GET", "/api/v2/prospects/8", "").doc(t).one(t)
		srv.Clock().Advance(time.Hour)
		after := call(t, srv, tok, "PATCH", "/api/v2/prospects/8", `{"data":{"type":"prospect","id":8,"attributes":{"title":"CEO"}}}`).doc(t).one(t)
		if after.str("title") != "CEO" || after.str("firstName") != before.str("firstName") || after.str("updatedAt") != srv.Clock().Now().Format("2006-01-02T15:04:05.000Z") {
			t.Errorf("after update: title %q firstName %q updatedAt %q", after.str("title"), after.str("firstName"), after.str("updatedAt"))
		}
	})
	t.Run("delete", func(t *testing.T) {
		if r := call(t, srv, tok, "DELETE", "/api/v2/prospects/9", ""); r.status != 204 || len(r.body) != 0 {
			t.Fatalf("delete: %d %q, want 204 and no body", r.status, r.body)
		}
		if r := call(t, srv, tok, "GET", "/api/v2/prospects/9", ""); r.status != 404 {
			t.Errorf("get after delete: %d, want 404", r.status)
		}
		for _, p := range listAll(t, srv, tok, "/api/v2/prospects?page[size]=1000") {
			if p.ID == 9 {
				t.Error("deleted prospect still listed")
			}
		}
	})
}

func TestActions(t *testing.T) {
	srv := start(t, sandbox.Options{Prospects: 50})
	tok := token(t, srv)
	created := call(t, srv, tok, "POST", "/api/v2/sequenceStates", `{"data":{"type":"sequenceState","relationships":{"prospect":{"data":{"type":"prospect","id":49}},"sequence":{"data":{"type":"sequence","id":3}},"mailbox":{"data":{"type":"mailbox","id":2}}}}}`).doc(t).one(t)
	id := created.ID
	tests := []struct {
		name, path string
		wantStatus int
		wantState  string
	}{
		{"pause", fmt.Sprintf("/api/v2/sequenceStates/%d/actions/pause", id), 200, "paused"},
		{"pause again", fmt.Sprintf("/api/v2/sequenceStates/%d/actions/pause", id), 422, ""},
		{"resume", fmt.Sprintf("/api/v2/sequenceStates/%d/actions/resume", id), 200, "active"},
		{"finish", fmt.Sprintf("/api/v2/sequenceStates/%d/actions/finish", id), 200, "finished"},
		{"unknown action", fmt.Sprintf("/api/v2/sequenceStates/%d/actions/explode", id), 404, ""},
		{"required param missing", "/api/v2/tasks/1/actions/reschedule", 400, ""},
		{"unexpected param", "/api/v2/tasks/1/actions/markComplete?actionParams[bogus]=1", 400, ""},
		{"task complete", "/api/v2/tasks/1/actions/markComplete?actionParams[completionNote]=done", 200, "complete"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, srv, tok, "POST", tt.path, "")
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d %.300s, want %d", r.status, r.body, tt.wantStatus)
			}
			if tt.wantState != "" {
				if got := r.doc(t).one(t).str("state"); got != tt.wantState {
					t.Errorf("state = %q, want %q", got, tt.wantState)
				}
			}
		})
	}
}

func TestDeterministicSeed(t *testing.T) {
	a := start(t, sandbox.Options{Seed: 7, Prospects: 40})
	b := start(t, sandbox.Options{Seed: 7, Prospects: 40})
	c := start(t, sandbox.Options{Seed: 8, Prospects: 40})
	page := func(srv *sandbox.Server) string {
		body := call(t, srv, token(t, srv), "GET", "/api/v2/prospects?page[size]=40", "").body
		return strings.ReplaceAll(string(body), srv.URL, "")
	}
	pa, pb, pc := page(a), page(b), page(c)
	if pa != pb {
		t.Error("two sandboxes with seed 7 serve different prospects")
	}
	if pa == pc {
		t.Error("seeds 7 and 8 serve the same prospects")
	}
}

func TestLargeOrgIsLazy(t *testing.T) {
	srv := start(t, sandbox.Options{Prospects: 2_000_000})
	tok := token(t, srv)
	d := call(t, srv, tok, "GET", "/api/v2/prospects?page[size]=5&sort=-updatedAt", "").doc(t)
	recs := d.list(t)
	if len(recs) != 5 || recs[0].str("updatedAt") < recs[4].str("updatedAt") {
		t.Fatalf("newest prospects of 2,000,000: %d records", len(recs))
	}
	last := call(t, srv, tok, "GET", "/api/v2/prospects/2000000", "")
	if last.status != 200 {
		t.Errorf("prospect 2,000,000: %d", last.status)
	}
	r := call(t, srv, tok, "GET", "/api/v2/sequenceStates?filter[prospect][id]=1999999&page[size]=10", "")
	for _, st := range r.doc(t).list(t) {
		if st.relID("prospect") != 1999999 {
			t.Errorf("sequenceState %d of prospect %d, want 1999999", st.ID, st.relID("prospect"))
		}
	}
}

func TestCountsAndCatalogResources(t *testing.T) {
	srv := start(t, sandbox.Options{Prospects: 100})
	tok := token(t, srv)
	r := call(t, srv, tok, "GET", "/api/v2/types", "")
	if r.status != 200 || !strings.Contains(string(r.body), `"custom1"`) {
		t.Errorf("GET /api/v2/types = %d %.200s", r.status, r.body)
	}
	r = call(t, srv, tok, "GET", "/api/v2/schema.json", "")
	if r.status != 200 || !strings.Contains(string(r.body), `"prospect"`) {
		t.Errorf("GET /api/v2/schema.json = %d", r.status)
	}
	before := srv.Counters().RequestsByUser["1"]
	call(t, srv, tok, "GET", "/api/v2/accounts", "")
	if got := srv.Counters().RequestsByUser["1"]; got != before+1 {
		t.Errorf("requests of user 1 = %d, want %d", got, before+1)
	}
}

// Answers carry the sandbox clock's Date, as X-RateLimit-Reset does: a
// client measuring a reset against Date waits what the window says, not
// that plus how far the clock was advanced.
func TestDateFollowsTheClock(t *testing.T) {
	srv := start(t, sandbox.Options{RateLimit: 5, RateWindow: time.Minute})
	srv.Clock().Advance(3 * time.Hour)
	tok := token(t, srv)
	for _, path := range []string{"/api/v2/prospects?page[size]=1", "/api/v2/nothing"} {
		resp := call(t, srv, tok, "GET", path, "")
		date, err := http.ParseTime(resp.header.Get("Date"))
		if err != nil || !date.Equal(srv.Clock().Now().Truncate(time.Second)) {
			t.Errorf("%s: Date %q (%v); want the sandbox clock's %s", path, resp.header.Get("Date"), err, srv.Clock().Now())
		}
		if reset, err := strconv.ParseInt(resp.header.Get("X-RateLimit-Reset"), 10, 64); err == nil && time.Unix(reset, 0).Sub(date) > time.Minute {
			t.Errorf("%s: the window resets %s after Date; want at most a minute", path, time.Unix(reset, 0).Sub(date))
		}
	}
}
