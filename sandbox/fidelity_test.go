package sandbox_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// Behaviour that independently written Outreach clients, in production
// against the real API, rely on.

func TestMediaTypeAsClientsSendIt(t *testing.T) {
	const webhook = `{"data":{"type":"webhook","attributes":{"url":"https://hooks.example/in","resource":"prospect","action":"created"}}}`
	tests := []struct {
		name, method, path, contentType, body string
		lenient, strict                       int
	}{
		{"GET without Content-Type", "GET", "/api/v2/prospects/1", "", "", 200, 415},
		{"DELETE without Content-Type", "DELETE", "/api/v2/prospects/2", "", "", 204, 415},
		{"action without a body or Content-Type", "POST", "/api/v2/tasks/1/actions/snooze", "", "", 200, 415},
		{"JSON body as application/json", "POST", "/api/v2/webhooks", "application/json", webhook, 201, 415},
		{"JSON body as application/json; charset", "POST", "/api/v2/webhooks", "application/json; charset=utf-8", webhook, 201, 415},
		{"JSON body as JSON:API", "POST", "/api/v2/webhooks", "application/vnd.api+json", webhook, 201, 201},
		{"GET as JSON:API", "GET", "/api/v2/prospects/1", "application/vnd.api+json", "", 200, 200},
		{"body without Content-Type", "POST", "/api/v2/webhooks", "", webhook, 415, 415},
		{"body as form", "POST", "/api/v2/webhooks", "application/x-www-form-urlencoded", "a=b", 415, 415},
		{"GET as text", "GET", "/api/v2/prospects/1", "text/plain", "", 415, 415},
	}
	for _, strict := range []bool{false, true} {
		srv := start(t, sandbox.Options{StrictMediaType: strict})
		tok := token(t, srv)
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s strict=%v", tt.name, strict), func(t *testing.T) {
				var body *strings.Reader
				if tt.body != "" {
					body = strings.NewReader(tt.body)
				}
				req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
				if body != nil {
					req, err = http.NewRequest(tt.method, srv.URL+tt.path, body)
				}
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+tok)
				if tt.contentType != "" {
					req.Header.Set("Content-Type", tt.contentType)
				}
				want := tt.lenient
				if strict {
					want = tt.strict
				}
				r := send(t, req)
				if r.status != want {
					t.Fatalf("status %d (%.200s), want %d", r.status, r.body, want)
				}
				if want == 415 && !strings.Contains(string(r.body), `"details":"Expected Content-Type header to be 'application/vnd.api+json'."`) {
					t.Errorf("415 body = %s", r.body)
				}
			})
		}
	}
}

func TestSortByUpdatedAtLikeClients(t *testing.T) {
	lenient := start(t, sandbox.Options{Prospects: 100, MintInterval: -1})
	strict := start(t, sandbox.Options{Prospects: 100, StrictSort: true, MintInterval: -1})
	for i := range 3 {
		lenient.Clock().Advance(time.Minute)
		body := fmt.Sprintf(`{"data":{"type":"webhook","attributes":{"url":"https://hooks.example/%d"}}}`, i)
		if r := call(t, lenient, token(t, lenient), "POST", "/api/v2/webhooks", body); r.status != 201 {
			t.Fatalf("create webhook: %d %s", r.status, r.body)
		}
	}
	for _, path := range []string{"events", "webhooks", "sequenceTemplates", "duties"} {
		t.Run(path, func(t *testing.T) {
			if r := call(t, strict, token(t, strict), "GET", "/api/v2/"+path+"?sort=-updatedAt", ""); r.status != 400 {
				t.Errorf("strict: status %d, want 400", r.status)
			}
			tok := token(t, lenient)
			recs := listAll(t, lenient, tok, "/api/v2/"+path+"?sort=-updatedAt&page[size]=7")
			all := listAll(t, lenient, tok, "/api/v2/"+path+"?page[size]=1000")
			if len(recs) == 0 || len(recs) != len(all) {
				t.Fatalf("sorted pages hold %d records, the collection %d", len(recs), len(all))
			}
			key := "updatedAt"
			if _, ok := recs[0].Attributes[key]; !ok {
				key = "createdAt"
			}
			for i := 1; i < len(recs); i++ {
				a, b := recs[i-1], recs[i]
				if _, ok := a.Attributes[key]; !ok {
					if a.ID < b.ID { // no timestamps: id order, newest first
						t.Fatalf("record %d before %d in -updatedAt order", a.ID, b.ID)
					}
					continue
				}
				if a.str(key) < b.str(key) || (a.str(key) == b.str(key) && a.ID > b.ID) {
					t.Fatalf("%s %s (id %d) before %s (id %d)", key, a.str(key), a.ID, b.str(key), b.ID)
				}
			}
		})
	}
	tok := token(t, lenient)
	if r := call(t, lenient, tok, "GET", "/api/v2/prospects?sort=addressCity", ""); r.status != 200 {
		t.Errorf("sort by an unbadged attribute: %d, want 200 when lenient", r.status)
	}
	if r := call(t, lenient, tok, "GET", "/api/v2/prospects?sort=noSuchAttribute", ""); r.status != 400 {
		t.Errorf("sort by an unknown attribute: %d, want 400", r.status)
	}
}

// createBody is the smallest write Outreach accepts for each type.
func createBody(t *testing.T, srv *sandbox.Server, tok string, res *catalog.Resource) string {
	t.Helper()
	attrs := map[string]any{}
	rels := map[string]any{}
	switch res.Type {
	case "account", "opportunity", "sequence", "stage", "opportunityStage", "team":
		attrs["name"] = "Created " + res.Type
	case "user":
		attrs["email"] = "created.user@sandbox.example"
	case "webhook":
		attrs["url"] = "https://hooks.example/in"
	case "sequenceState":
		p := call(t, srv, tok, "POST", "/api/v2/prospects", `{"data":{"type":"prospect","attributes":{"firstName":"Enrolled"}}}`).doc(t).one(t)
		rels["prospect"] = map[string]any{"data": map[string]any{"type": "prospect", "id": p.ID}}
		rels["sequence"] = map[string]any{"data": map[string]any{"type": "sequence", "id": 1}}
		rels["mailbox"] = map[string]any{"data": map[string]any{"type": "mailbox", "id": 1}}
	}
	doc := map[string]any{"data": map[string]any{"type": res.Type, "attributes": attrs, "relationships": rels}}
	raw, _ := json.Marshal(doc)
	return string(raw)
}

func keysOf[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func TestCreatedSeededAndUpdatedRecordsHaveOneShape(t *testing.T) {
	srv := start(t, sandbox.Options{Prospects: 100, MintInterval: -1})
	tok := token(t, srv)
	for _, res := range srv.Catalog().Resources() {
		if !res.Ops.Create || !res.Ops.List {
			continue
		}
		t.Run(res.Type, func(t *testing.T) {
			base := "/api/v2/" + res.Path
			seededPage := call(t, srv, tok, "GET", base+"?page[size]=1", "").doc(t).list(t)
			r := call(t, srv, tok, "POST", base, createBody(t, srv, tok, res))
			if r.status != 201 {
				t.Fatalf("create: %d %.300s", r.status, r.body)
			}
			created := r.doc(t).one(t)
			shapes := map[string]resource{"created": created}
			if len(seededPage) > 0 {
				shapes["seeded"] = seededPage[0]
			}
			if res.Ops.Update {
				body := fmt.Sprintf(`{"data":{"type":%q,"id":%d,"attributes":{}}}`, res.Type, created.ID)
				u := call(t, srv, tok, "PATCH", fmt.Sprintf("%s/%d", base, created.ID), body)
				if u.status != 200 {
					t.Fatalf("update: %d %.300s", u.status, u.body)
				}
				shapes["updated"] = u.doc(t).one(t)
				if len(seededPage) > 0 {
					body := fmt.Sprintf(`{"data":{"type":%q,"id":%d,"attributes":{}}}`, res.Type, seededPage[0].ID)
					u := call(t, srv, tok, "PATCH", fmt.Sprintf("%s/%d", base, seededPage[0].ID), body)
					if u.status != 200 {
						t.Fatalf("update seeded: %d %.300s", u.status, u.body)
					}
					shapes["updated seeded"] = u.doc(t).one(t)
				}
			}
			if res.Ops.Get {
				shapes["read back"] = call(t, srv, tok, "GET", fmt.Sprintf("%s/%d", base, created.ID), "").doc(t).one(t)
			}
			wantAttrs, wantRels := keysOf(created.Attributes), keysOf(created.Relationships)
			for name, rec := range shapes {
				if got := keysOf(rec.Attributes); !slices.Equal(got, wantAttrs) {
					t.Errorf("%s attributes %v, created %v", name, got, wantAttrs)
				}
				if got := keysOf(rec.Relationships); !slices.Equal(got, wantRels) {
					t.Errorf("%s relationships %v, created %v", name, got, wantRels)
				}
			}
			for _, a := range res.Attributes {
				v, ok := created.Attributes[a.Name]
				switch {
				case a.WriteOnly:
				case !ok:
					t.Errorf("%s missing", a.Name)
				case a.Type == catalog.TypeBoolean && string(v) == "null":
					t.Errorf("flag %s is null, want false by default", a.Name)
				case a.Type == catalog.TypeInteger && a.ReadOnly && string(v) == "null":
					t.Errorf("counter %s is null, want 0", a.Name)
				}
			}
		})
	}
}

func TestCreatedProspectCarriesWhatOutreachAnswers(t *testing.T) {
	srv := start(t, sandbox.Options{Prospects: 50})
	tok := token(t, srv)
	acc := call(t, srv, tok, "GET", "/api/v2/accounts/3", "").doc(t).one(t)
	p := call(t, srv, tok, "POST", "/api/v2/prospects",
		`{"data":{"type":"prospect","attributes":{"firstName":"Ada"},"relationships":{"account":{"data":{"type":"account","id":3}}}}}`).doc(t).one(t)
	if p.str("accountName") != acc.str("name") || p.str("accountName") == "" {
		t.Errorf("accountName = %q, want the account's name %q", p.str("accountName"), acc.str("name"))
	}
	for _, k := range []string{"smsOptStatus", "updater", "clickCount", "optedOut"} {
		_, attr := p.Attributes[k]
		_, rel := p.Relationships[k]
		if !attr && !rel {
			t.Errorf("%s missing from a created prospect", k)
		}
	}
	if string(p.Attributes["clickCount"]) != "0" || string(p.Attributes["optedOut"]) != "false" {
		t.Errorf("clickCount = %s, optedOut = %s; want 0 and false", p.Attributes["clickCount"], p.Attributes["optedOut"])
	}
	if p.relID("updater") != 1 || p.relID("creator") != 1 {
		t.Errorf("creator %d, updater %d; want the token's user 1", p.relID("creator"), p.relID("updater"))
	}
}

func TestWebhookCreateAnswer(t *testing.T) {
	other := sandbox.App{Name: "Other Integration", ClientID: "other-client", ClientSecret: "other-secret", RedirectURIs: []string{sandbox.DefaultRedirectURI}}
	srv := start(t, sandbox.Options{Prospects: 50})
	srv = start(t, sandbox.Options{Prospects: 50, Apps: []sandbox.App{srv.Apps()[0], other}})
	tok := token(t, srv)
	app := srv.Apps()[0]
	r := call(t, srv, tok, "POST", "/api/v2/webhooks", `{"data":{"type":"webhook","attributes":{"url":"https://hooks.example/in"}}}`)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	h := r.doc(t).one(t)
	if len(h.str("cleanupToken")) < 20 || h.str("creatorAppId") != app.ClientID || h.str("creatorAppName") != app.Name {
		t.Errorf("cleanupToken %q, creatorAppId %q, creatorAppName %q; want a token and app %q %q",
			h.str("cleanupToken"), h.str("creatorAppId"), h.str("creatorAppName"), app.ClientID, app.Name)
	}
	path := fmt.Sprintf("/api/v2/webhooks/%d", h.ID)
	if back := call(t, srv, tok, "GET", path, "").doc(t).one(t); back.str("cleanupToken") != h.str("cleanupToken") {
		t.Errorf("the creating app reads cleanupToken %q, want %q", back.str("cleanupToken"), h.str("cleanupToken"))
	}
	otherTok := authorizeApp(t, srv, newBrowser(t, srv), other, "webhooks.all").AccessToken
	seen := call(t, srv, otherTok, "GET", path, "").doc(t).one(t)
	if string(seen.Attributes["cleanupToken"]) != "null" || seen.str("creatorAppId") != app.ClientID {
		t.Errorf("another app reads cleanupToken %s, creatorAppId %q; want null and %q", seen.Attributes["cleanupToken"], seen.str("creatorAppId"), app.ClientID)
	}
	bad := call(t, srv, tok, "PATCH", path, fmt.Sprintf(`{"data":{"type":"webhook","id":%d,"attributes":{"cleanupToken":"x"}}}`, h.ID))
	if bad.status != 422 || !strings.Contains(string(bad.body), "read-only") {
		t.Errorf("writing cleanupToken: %d %s, want 422 read-only", bad.status, bad.body)
	}
}

// authorizeApp runs the browser flow for app as user 1 and exchanges the
// code; the consent page is answered when it is shown.
func authorizeApp(t *testing.T, srv *sandbox.Server, b *browser, app sandbox.App, scopes string) tokenResponse {
	t.Helper()
	u := b.authorizeApp(app, scopes)
	if u.Query().Get("code") == "" {
		t.Fatalf("redirect %s has no code", u)
	}
	status, tok := postToken(t, srv, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")},
		"client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "redirect_uri": {app.RedirectURIs[0]}}, false)
	if status != 200 {
		t.Fatalf("token exchange: %d %+v", status, tok)
	}
	return tok
}

func TestSeededStringsRespectMaxLengthAndHints(t *testing.T) {
	srv := start(t, sandbox.Options{Prospects: 200})
	tok := token(t, srv)
	for _, res := range srv.Catalog().Resources() {
		if !res.Ops.List {
			continue
		}
		recs := call(t, srv, tok, "GET", "/api/v2/"+res.Path+"?page[size]=60", "").doc(t).list(t)
		for _, rec := range recs {
			for _, a := range res.Attributes {
				raw, ok := rec.Attributes[a.Name]
				if !ok || string(raw) == "null" {
					continue
				}
				var vals []string
				switch {
				case a.Type == catalog.TypeString:
					var s string
					json.Unmarshal(raw, &s)
					vals = []string{s}
				case a.Type == catalog.TypeArray && a.Items == catalog.TypeString:
					json.Unmarshal(raw, &vals)
				}
				for _, v := range vals {
					if n := len([]rune(v)); a.MaxLength > 0 && n > a.MaxLength {
						t.Errorf("%s %d: %s = %q has %d characters, maxLength %d", res.Type, rec.ID, a.Name, v, n, a.MaxLength)
					}
					if len(a.Values) > 0 && !slices.Contains(a.Values, v) {
						t.Errorf("%s %d: %s = %q, not one of the values its description names %v", res.Type, rec.ID, a.Name, v, a.Values)
					}
					if v == "null" {
						t.Errorf("%s %d: %s is the string \"null\"", res.Type, rec.ID, a.Name)
					}
				}
			}
		}
	}
}

func TestSchemaJSONHasOutreachsShape(t *testing.T) {
	srv := start(t, sandbox.Options{Prospects: 20, CustomObjects: []sandbox.CustomObject{{Name: "vehicle",
		Attributes:    []sandbox.CustomAttribute{{Name: "plate", Type: "string", MaxLength: 12}, {Name: "seats", Type: "integer"}},
		Relationships: map[string]string{"account": "account"}}}})
	r := call(t, srv, token(t, srv), "GET", "/api/v2/schema.json", "")
	if r.status != 200 {
		t.Fatalf("GET schema.json: %d", r.status)
	}
	var doc struct {
		Definitions map[string]struct {
			Stability   string                     `json:"stability"`
			Definitions map[string]json.RawMessage `json:"definitions"`
			Links       []map[string]any           `json:"links"`
			Meta        map[string]any             `json:"meta"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	member := func(typ, name string) string {
		t.Helper()
		raw, ok := doc.Definitions[typ].Definitions[name]
		if !ok {
			t.Fatalf("%s.%s missing", typ, name)
		}
		var m map[string]any
		json.Unmarshal(raw, &m)
		out, _ := json.Marshal(m) // keys sorted
		return string(out)
	}
	want := map[[2]string]string{
		{"account", "numberOfEmployees"}: `{"filterable":false,"format":"integer","sortable":false,"type":"number"}`,
		{"prospect", "clickCount"}:       `{"filterable":false,"format":"integer","readOnly":true,"sortable":false,"type":"number"}`,
		{"user", "email"}:                `{"filterable":true,"format":"email","sortable":true,"type":"string"}`,
		{"prospect", "emails"}:           `{"items":{"filterable":true,"format":"email","sortable":false,"type":"string"},"type":"array"}`,
		{"account", "buyerIntentScore"}:  `{"filterable":true,"format":"float","sortable":true,"type":"number"}`,
		{"prospect", "updatedAt"}:        `{"filterable":true,"format":"date-time","readOnly":true,"sortable":true,"type":"string"}`,
		{"prospect", "account"}:          `{"$ref":"#/definitions/account","data":true,"links":true}`,
		{"prospect", "creator"}:          `{"anyOf":[{"$ref":"#/definitions/user"}],"data":true,"links":true,"readOnly":true}`,
		{"prospect", "calls"}:            `{"data":false,"items":{"$ref":"#/definitions/call"},"links":true,"readOnly":true,"type":"array"}`,
		{"prospect", "contactHistogram"}: `{"filterable":false,"items":{"items":{"format":"integer","type":"number"},"type":"number[]"},"readOnly":true,"sortable":false,"type":"array"}`,
		{"vehicle", "plate"}:             `{"filterable":false,"maxLength":12,"sortable":false,"type":"string"}`,
		{"vehicle", "seats"}:             `{"filterable":false,"format":"integer","sortable":false,"type":"number"}`,
		{"vehicle", "account"}:           `{"anyOf":[{"$ref":"#/definitions/account"}],"data":true,"links":true}`,
	}
	for k, w := range want {
		if got := member(k[0], k[1]); got != w {
			t.Errorf("%s.%s = %s\n want %s", k[0], k[1], got, w)
		}
	}
	for typ, def := range doc.Definitions {
		if def.Stability != "prototype" {
			t.Errorf("%s: stability %q", typ, def.Stability)
		}
		for name, raw := range def.Definitions {
			s := string(raw)
			if strings.Contains(s, `"type":"integer"`) || strings.Contains(s, `"readOnly":false`) || strings.Contains(s, `"writeOnly":false`) {
				t.Errorf("%s.%s = %s: Outreach types integers as number/integer and writes flags only when true", typ, name, s)
			}
			if typ != "vehicle" && strings.Contains(s, `"maxLength"`) {
				t.Errorf("%s.%s = %s: Outreach's schema.json has no maxLength", typ, name, s)
			}
		}
		for _, l := range def.Links {
			if l["targetSchema"] == nil {
				t.Errorf("%s link %v has no targetSchema", typ, l)
			}
		}
	}
	var testSend bool
	for _, l := range doc.Definitions["mailbox"].Links {
		testSend = testSend || (l["rel"] == "test_send" && l["href"] == "/api/v2/mailboxes/{:id}/actions/testSend" && l["method"] == "POST")
	}
	if !testSend {
		t.Errorf("mailbox links %v lack the test_send action", doc.Definitions["mailbox"].Links)
	}
	if m := doc.Definitions["prospect"].Meta; m["canWrite"] == nil || m["canDelete"] == nil || m["dataConnections"] == nil {
		t.Errorf("prospect meta = %v", m)
	}
}
