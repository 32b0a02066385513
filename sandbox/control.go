package sandbox

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
)

// The control API lets tests and people steer a running sandbox over HTTP.
// It lives under /_sandbox/, outside Outreach's own paths:
//
//	GET  /_sandbox/counters             running totals (Counters)
//	GET  /_sandbox/faults               faults in force (Faults)
//	PUT  /_sandbox/faults               replace them
//	GET  /_sandbox/clock                {"now": ...}
//	POST /_sandbox/clock/advance?by=15d move the clock forward (Go duration, or Nd)
//	PUT  /_sandbox/mutations            {"per_second": 5}
//	POST /_sandbox/mutations/run?n=100  make n changes now
//	POST /_sandbox/tokens               {"user": 1, "scopes": [...]}: mint a token without the browser
func (s *Sandbox) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sandbox/counters", func(w http.ResponseWriter, r *http.Request) {
		writeJSONType(w, http.StatusOK, "application/json", s.Counters())
	})
	mux.HandleFunc("GET /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSONType(w, http.StatusOK, "application/json", s.Faults())
	})
	mux.HandleFunc("PUT /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			controlError(w, http.StatusBadRequest, "faults: "+err.Error())
			return
		}
		if err := s.SetFaults(f); err != nil {
			controlError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSONType(w, http.StatusOK, "application/json", s.Faults())
	})
	mux.HandleFunc("GET /_sandbox/clock", func(w http.ResponseWriter, r *http.Request) {
		writeJSONType(w, http.StatusOK, "application/json", map[string]string{"now": s.clock.Now().Format(time.RFC3339)})
	})
	mux.HandleFunc("POST /_sandbox/clock/advance", func(w http.ResponseWriter, r *http.Request) {
		d, err := parseDuration(r.URL.Query().Get("by"))
		if err != nil || d <= 0 {
			controlError(w, http.StatusBadRequest, "by must be a positive duration such as 90m, 2h or 15d")
			return
		}
		s.clock.Advance(d)
		writeJSONType(w, http.StatusOK, "application/json", map[string]string{"now": s.clock.Now().Format(time.RFC3339)})
	})
	mux.HandleFunc("PUT /_sandbox/mutations", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			PerSecond float64 `json:"per_second"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.PerSecond < 0 {
			controlError(w, http.StatusBadRequest, `send {"per_second": N} with N >= 0`)
			return
		}
		s.SetMutationRate(body.PerSecond)
		writeJSONType(w, http.StatusOK, "application/json", body)
	})
	mux.HandleFunc("POST /_sandbox/mutations/run", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 1 || n > 1000000 {
			controlError(w, http.StatusBadRequest, "n must be an integer between 1 and 1000000")
			return
		}
		s.Mutate(n)
		writeJSONType(w, http.StatusOK, "application/json", s.Counters())
	})
	mux.HandleFunc("POST /_sandbox/webhooks/{id}/disable", s.handleDisableWebhook)
	mux.HandleFunc("POST /_sandbox/tokens", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			User   int64    `json:"user"`
			Scopes []string `json:"scopes"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			controlError(w, http.StatusBadRequest, `send {"user": 1, "scopes": ["prospects.read"]}`)
			return
		}
		if body.User == 0 {
			body.User = 1
		}
		access, refresh, err := s.IssueToken(body.User, body.Scopes...)
		if err != nil {
			controlError(w, http.StatusConflict, err.Error())
			return
		}
		writeJSONType(w, http.StatusOK, "application/json", map[string]any{"access_token": access, "refresh_token": refresh,
			"token_type": "bearer", "expires_in": int(s.opts.AccessTokenTTL / time.Second)})
	})
}

func controlError(w http.ResponseWriter, status int, msg string) {
	writeJSONType(w, status, "application/json", map[string]string{"error": msg})
}

// parseDuration accepts Go durations and a days suffix ("15d").
func parseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(d, 64)
		if err != nil {
			return 0, err
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	return time.ParseDuration(s)
}

// handleTypes serves GET /api/v2/types: the org's custom fields.
func (s *Sandbox) handleTypes(w http.ResponseWriter, r *http.Request) {
	type validation struct {
		Type       string `json:"type"`
		Required   bool   `json:"required"`
		Label      string `json:"label"`
		Definition any    `json:"definition"`
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": []any{
		map[string]any{"type": "Prospect", "meta": map[string]any{"validations": map[string]validation{
			"custom1": {Type: "inclusion", Label: "Tier", Definition: []string{"Gold", "Silver", "Bronze"}},
			"custom2": {Type: "string", Label: "Region"},
			"custom3": {Type: "boolean", Label: "Newsletter"},
		}}},
		map[string]any{"type": "Account", "meta": map[string]any{"validations": map[string]validation{
			"custom1": {Type: "inclusion", Label: "Segment", Definition: []string{"SMB", "Mid-Market", "Enterprise"}},
			"custom2": {Type: "currency", Label: "ARR", Definition: "USD"},
		}}},
		map[string]any{"type": "Opportunity", "meta": map[string]any{"validations": map[string]validation{
			"custom1": {Type: "string", Label: "Source", Required: true},
		}}},
	}})
}

// handleSchema serves GET /api/v2/schema.json: Outreach's JSON
// hyper-schema of every type, the org's custom objects included, in the
// shape Outreach serves it: integers are {"type": "number", "format":
// "integer"}, strings keep their format ("email", "date-time"), arrays of
// strings carry their flags on items, readOnly and writeOnly appear only
// when true, a relationship names its target with $ref (anyOf when
// polymorphic; to-many as an array of items), and links carry their
// targetSchema. Outreach publishes no maxLength here; a custom object's
// attribute declares one when its definition has one, and its
// relationships name their target with anyOf.
func (s *Sandbox) handleSchema(w http.ResponseWriter, r *http.Request) {
	defs := map[string]any{}
	props := map[string]any{}
	for _, res := range s.cat.Resources() {
		attrs := map[string]any{}
		refs := map[string]any{}
		for _, a := range res.Attributes {
			attrs[a.Name] = schemaAttribute(res, &a)
			refs[a.Name] = map[string]string{"$ref": "#/definitions/" + res.Type + "/definitions/" + a.Name}
		}
		for _, rel := range res.Relationships {
			attrs[rel.Name] = schemaRelationship(res, &rel)
			refs[rel.Name] = map[string]string{"$ref": "#/definitions/" + res.Type + "/definitions/" + rel.Name}
		}
		self := map[string]string{"$ref": "#/definitions/" + res.Type}
		base := "/api/v2/" + res.Path
		links := []map[string]any{}
		add := func(ok bool, href, method, rel string, target any) {
			if ok {
				links = append(links, map[string]any{"href": href, "method": method, "rel": rel, "targetSchema": target})
			}
		}
		add(res.Ops.Get, base+"/{:id}", "GET", "self", self)
		add(res.Ops.List, base, "GET", "instances", map[string]any{"items": self, "type": "array"})
		add(res.Ops.Create, base, "POST", "create", self)
		add(res.Ops.Update, base+"/{:id}", "PATCH", "update", self)
		add(res.Ops.Delete, base+"/{:id}", "DELETE", "destroy", self)
		for _, act := range res.MemberActions {
			add(true, base+"/{:id}/actions/"+act, "POST", snakeCase(act), self)
		}
		for _, act := range res.CollectionActions {
			add(true, base+"/actions/"+act, "POST", act, map[string]any{})
		}
		def := map[string]any{"$schema": "http://json-schema.org/draft-07/hyper-schema#", "type": "object", "stability": "prototype",
			"definitions": attrs, "properties": refs, "links": links}
		if meta := schemaMeta(res); len(meta) > 0 {
			def["meta"] = meta
		}
		defs[res.Type] = def
		props[res.Type] = self
	}
	writeJSONType(w, http.StatusOK, "application/schema+json", map[string]any{
		"$schema": "http://json-schema.org/draft-07/hyper-schema#", "type": "object", "definitions": defs, "properties": props})
}

func schemaAttribute(res *catalog.Resource, a *catalog.Attribute) map[string]any {
	flags := func(p map[string]any) map[string]any {
		p["filterable"], p["sortable"] = a.Filterable, a.Sortable
		return p
	}
	var p map[string]any
	switch a.Type {
	case catalog.TypeInteger:
		p = flags(map[string]any{"type": "number", "format": "integer"})
	case catalog.TypeDateTime, catalog.TypeDate:
		p = flags(map[string]any{"type": "string", "format": string(a.Type)})
	case catalog.TypeArray:
		switch a.Items {
		case catalog.TypeString:
			item := flags(map[string]any{"type": "string"})
			if a.Format != "" {
				item["format"] = a.Format
			}
			p = map[string]any{"type": "array", "items": item}
		case catalog.TypeArray: // contactHistogram: [inbound, outbound] pairs
			p = flags(map[string]any{"type": "array", "items": map[string]any{"type": "number[]", "items": map[string]any{"type": "number", "format": "integer"}}})
		default:
			p = flags(map[string]any{"type": "array", "items": map[string]any{"type": "object"}})
		}
	default:
		p = flags(map[string]any{"type": string(a.Type)})
		if a.Format != "" {
			p["format"] = a.Format
		}
	}
	if a.ReadOnly {
		p["readOnly"] = true
	}
	if a.WriteOnly {
		p["writeOnly"] = true
	}
	if res.Custom && a.MaxLength > 0 {
		p["maxLength"] = a.MaxLength
	}
	return p
}

func schemaRelationship(res *catalog.Resource, rel *catalog.Relationship) map[string]any {
	var target map[string]any
	switch {
	case len(rel.Targets) == 1 && !res.Custom && (rel.ToMany || rel.FilterBy != nil):
		// Outreach names a single target with $ref, except on to-one
		// relationships that cannot filter (creator, updater): anyOf.
		target = map[string]any{"$ref": "#/definitions/" + rel.Targets[0]}
	case len(rel.Targets) > 0:
		var anyOf []map[string]string
		for _, t := range rel.Targets {
			anyOf = append(anyOf, map[string]string{"$ref": "#/definitions/" + t})
		}
		target = map[string]any{"anyOf": anyOf}
	}
	d := map[string]any{"data": !rel.LinksOnly, "links": true}
	if rel.ReadOnly {
		d["readOnly"] = true
	}
	if rel.ToMany {
		d["type"] = "array"
		if target != nil {
			d["items"] = target
		}
		return d
	}
	for k, v := range target {
		d[k] = v
	}
	return d
}

// dataConnectionTypes are the types whose schema offers the
// provideDataConnections meta parameter.
var dataConnectionTypes = []string{"account", "call", "event", "mailing", "opportunity", "opportunityStage", "product",
	"prospect", "purchase", "stage", "task", "user"}

func schemaMeta(res *catalog.Resource) map[string]any {
	meta := map[string]any{}
	authz := map[string]string{"param": "provideAuthorizationMeta"}
	if res.Ops.Delete {
		meta["canDelete"] = authz
	}
	if res.Ops.Update || len(res.CollectionActions) > 0 {
		meta["canWrite"] = authz
	}
	if slices.Contains(dataConnectionTypes, res.Type) {
		meta["dataConnections"] = map[string]string{"param": "provideDataConnections"}
	}
	return meta
}

// snakeCase turns "testSend" into "test_send", as the rel of an action
// link.
func snakeCase(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

var indexTmpl = template.Must(template.New("index").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Outreach Sandbox</title></head><body style="font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto">
<h1>Outreach Sandbox</h1><p>A local simulator of the Outreach REST API v2 and its OAuth 2.0 server.</p>
<dl><dt>API</dt><dd><code>{{.Base}}/api/v2</code></dd>
<dt>Authorize URL</dt><dd><code>{{.Base}}/oauth/authorize</code></dd>
<dt>Token URL</dt><dd><code>{{.Base}}/oauth/token</code></dd>
<dt>Client id</dt><dd><code>{{.ClientID}}</code></dd>
<dt>Redirect URI</dt><dd><code>{{.Redirect}}</code></dd>
<dt>Sign-in user</dt><dd><code>{{.Email}}</code> (password printed by the sandbox command)</dd></dl>
<p>Control API: <code>/_sandbox/counters</code>, <code>/_sandbox/faults</code>, <code>/_sandbox/clock</code>.</p></body></html>`))

func (s *Sandbox) handleIndex(w http.ResponseWriter, r *http.Request) {
	email, _ := s.SignInUser()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	indexTmpl.Execute(w, map[string]string{"Base": "http://" + r.Host, "ClientID": s.apps[0].ClientID,
		"Redirect": fmt.Sprint(s.apps[0].RedirectURIs), "Email": email})
}
