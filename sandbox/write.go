package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
)

// writeDoc is the body of a POST or PATCH.
type writeDoc struct {
	Data *struct {
		Type          string                     `json:"type"`
		ID            json.RawMessage            `json:"id"`
		Attributes    map[string]json.RawMessage `json:"attributes"`
		Relationships map[string]struct {
			Data json.RawMessage `json:"data"`
		} `json:"relationships"`
	} `json:"data"`
}

// change is a validated write: attribute and relationship values by index.
type change struct {
	attrs map[int]any
	extra map[string]any
	rels  map[int]relRef
}

// extraAttribute is an attribute real payloads carry beyond the OpenAPI
// document. Every record of its type has it, seeded or created (null when
// empty); clients may write the writable ones back.
type extraAttribute struct {
	name     string
	writable bool
}

var extraAttributes = map[string][]extraAttribute{
	"prospect": {{"accountName", true}, {"smsOptStatus", true}},
	// Outreach's create answer shows these; cleanupToken only to the app
	// that created the webhook.
	"webhook": {{"cleanupToken", false}, {"creatorAppId", false}, {"creatorAppName", false}},
}

func extraAttributeOf(typ, name string) (extraAttribute, bool) {
	for _, x := range extraAttributes[typ] {
		if x.name == name {
			return x, true
		}
	}
	return extraAttribute{}, false
}

// requiredOnCreate lists what Outreach refuses to create without.
var requiredOnCreate = map[string][]string{
	"account": {"name"}, "opportunity": {"name"}, "sequence": {"name"}, "stage": {"name"},
	"opportunityStage": {"name"}, "user": {"email"}, "webhook": {"url"}, "team": {"name"},
}
var requiredRelsOnCreate = map[string][]string{"sequenceState": {"prospect", "sequence", "mailbox"}}

type writeFailure struct {
	status int
	err    apiError
}

func invalid(pointer, format string, args ...any) *writeFailure {
	return &writeFailure{422, apiError{ID: "validationError", Title: "Validation Error", Detail: fmt.Sprintf(format, args...)}.withPointer(pointer)}
}

// decodeWrite reads and validates a write document against the catalog.
func (s *Sandbox) decodeWrite(r *http.Request, res *catalog.Resource, id int64) (*change, *writeFailure) {
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 32<<20))
	if err != nil {
		return nil, &writeFailure{400, apiError{ID: "badRequest", Title: "Bad Request", Detail: "The request body could not be read."}}
	}
	var doc writeDoc
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil || doc.Data == nil {
		return nil, &writeFailure{400, apiError{ID: "badRequest", Title: "Bad Request", Detail: "The request body must be a JSON:API document with a data object."}}
	}
	d := doc.Data
	if d.Type != res.Type {
		return nil, invalid("/data/type", "Type must be '%s', got '%s'.", res.Type, d.Type)
	}
	if id > 0 {
		var got int64
		if json.Unmarshal(d.ID, &got) != nil {
			var str string
			if json.Unmarshal(d.ID, &str) != nil || fmt.Sprint(id) != str {
				return nil, invalid("/data/id", "The id in the body must match the id in the URL (%d).", id)
			}
			got = id
		}
		if got != id {
			return nil, invalid("/data/id", "The id in the body must match the id in the URL (%d).", id)
		}
	} else if len(d.ID) > 0 && string(d.ID) != "null" {
		return nil, invalid("/data/id", "Do not send an id when creating a %s; Outreach assigns it.", res.Type)
	}
	ch := &change{attrs: map[int]any{}, extra: map[string]any{}, rels: map[int]relRef{}}
	for _, name := range sortedKeys(d.Attributes) {
		val := d.Attributes[name]
		ptr := "/data/attributes/" + name
		i := res.AttributeIndex(name)
		if i < 0 {
			if x, ok := extraAttributeOf(res.Type, name); ok {
				if !x.writable {
					return nil, invalid(ptr, "'%s' is read-only.", name)
				}
				var v any
				json.Unmarshal(val, &v)
				ch.extra[name] = v
				continue
			}
			return nil, invalid(ptr, "'%s' is not an attribute of %s.", name, res.Type)
		}
		a := &res.Attributes[i]
		if a.ReadOnly {
			return nil, invalid(ptr, "'%s' is read-only.", name)
		}
		v, f := convertAttr(a, val, ptr)
		if f != nil {
			return nil, f
		}
		ch.attrs[i] = v
	}
	for _, name := range sortedKeys(d.Relationships) {
		ptr := "/data/relationships/" + name
		i := relIndex(res, name)
		if i < 0 {
			return nil, invalid(ptr, "'%s' is not a relationship of %s.", name, res.Type)
		}
		rel := &res.Relationships[i]
		if rel.ReadOnly {
			return nil, invalid(ptr, "Relationship '%s' is read-only.", name)
		}
		if rel.ToMany {
			return nil, invalid(ptr, "Relationship '%s' is to-many and cannot be written; set the to-one side on the related records instead.", name)
		}
		data := d.Relationships[name].Data
		if len(data) == 0 || string(data) == "null" {
			ch.rels[i] = relRef{}
			continue
		}
		var ref struct {
			Type string          `json:"type"`
			ID   json.RawMessage `json:"id"`
		}
		if json.Unmarshal(data, &ref) != nil {
			return nil, invalid(ptr+"/data", "Relationship data must be null or {\"type\": ..., \"id\": ...}.")
		}
		var rid int64
		if json.Unmarshal(ref.ID, &rid) != nil {
			var str string
			if json.Unmarshal(ref.ID, &str) != nil {
				return nil, invalid(ptr+"/data/id", "Relationship id must be an integer.")
			}
			if _, err := fmt.Sscan(str, &rid); err != nil {
				return nil, invalid(ptr+"/data/id", "Relationship id must be an integer.")
			}
		}
		if !slices.Contains(rel.Targets, ref.Type) {
			return nil, invalid(ptr+"/data/type", "Relationship '%s' must point at %s, not '%s'.", name, strings.Join(rel.Targets, " or "), ref.Type)
		}
		if !s.store.exists(ref.Type, rid) {
			return nil, invalid(ptr+"/data/id", "Could not find '%s' with ID '%d'.", ref.Type, rid)
		}
		ch.rels[i] = relRef{typ: ref.Type, id: rid}
	}
	return ch, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// convertAttr checks a JSON value against an attribute and converts it to
// the sandbox's value types.
func convertAttr(a *catalog.Attribute, raw json.RawMessage, ptr string) (any, *writeFailure) {
	if string(raw) == "null" {
		if !a.Nullable {
			return nil, invalid(ptr, "'%s' can't be blank.", a.Name)
		}
		return nil, nil
	}
	bad := func(want string) *writeFailure { return invalid(ptr, "'%s' must be %s.", a.Name, want) }
	switch a.Type {
	case catalog.TypeString:
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, bad("a string")
		}
		if a.MaxLength > 0 && utf8.RuneCountInString(s) > a.MaxLength {
			return nil, &writeFailure{422, apiError{ID: "validationDataTooLongError", Title: "Validation Data Too Long Error",
				Detail: fmt.Sprintf("Data provided is too long: '%s' allows at most %d characters.", a.Name, a.MaxLength)}.withPointer(ptr)}
		}
		return s, nil
	case catalog.TypeInteger:
		var n json.Number
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if d.Decode(&n) != nil {
			return nil, bad("an integer")
		}
		v, err := n.Int64()
		if err != nil {
			return nil, bad("an integer")
		}
		return v, nil
	case catalog.TypeNumber:
		var f float64
		if json.Unmarshal(raw, &f) != nil {
			return nil, bad("a number")
		}
		return f, nil
	case catalog.TypeBoolean:
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return nil, bad("true or false")
		}
		return b, nil
	case catalog.TypeDateTime:
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, bad("an ISO 8601 date-time string")
		}
		t, ok := parseTime(s)
		if !ok {
			return nil, bad("an ISO 8601 date-time string")
		}
		return ts(t.Truncate(time.Second)), nil
	case catalog.TypeDate:
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, bad("a date (YYYY-MM-DD)")
		}
		if _, err := time.Parse(time.DateOnly, s); err != nil {
			return nil, bad("a date (YYYY-MM-DD)")
		}
		return s, nil
	case catalog.TypeArray:
		if a.Items == catalog.TypeString {
			var ss []string
			if json.Unmarshal(raw, &ss) != nil {
				return nil, bad("an array of strings")
			}
			if a.MaxLength > 0 {
				for _, s := range ss {
					if utf8.RuneCountInString(s) > a.MaxLength {
						return nil, &writeFailure{422, apiError{ID: "validationDataTooLongError", Title: "Validation Data Too Long Error",
							Detail: "Data provided is too long."}.withPointer(ptr)}
					}
				}
			}
			return ss, nil
		}
		var xs []json.RawMessage
		if json.Unmarshal(raw, &xs) != nil {
			return nil, bad("an array")
		}
		return json.RawMessage(compactJSON(raw)), nil
	case catalog.TypeObject:
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return nil, bad("an object")
		}
		return json.RawMessage(compactJSON(raw)), nil
	}
	return nil, bad("valid")
}

func compactJSON(raw []byte) []byte {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

// checkRules applies Outreach's own rules beyond types. prevID is the id of
// the record being updated (0 on create). The caller holds the write lock.
func (s *Sandbox) checkRules(res *catalog.Resource, rec *record, prevID int64, creating bool) *writeFailure {
	if creating {
		for _, name := range requiredOnCreate[res.Type] {
			if i := res.AttributeIndex(name); i >= 0 && isBlank(rec.attrs[i]) {
				return invalid("/data/attributes/"+name, "%s can't be blank.", strings.ToUpper(name[:1])+name[1:])
			}
		}
		for _, name := range requiredRelsOnCreate[res.Type] {
			if i := relIndex(res, name); i >= 0 && rec.rels[i].id == 0 {
				return invalid("/data/relationships/"+name, "%s is required to add a prospect to a sequence.", strings.ToUpper(name[:1])+name[1:])
			}
		}
	}
	switch res.Type {
	case "prospect":
		if emails, ok := rec.attrs[res.AttributeIndex("emails")].([]string); ok {
			for _, e := range emails {
				if other, ok := s.store.prospectWithEmail(e); ok && other != prevID {
					return invalid("/data", "Contacts email hash has already been taken.")
				}
			}
		}
	case "sequenceState":
		if creating {
			pi, si := relIndex(res, "prospect"), relIndex(res, "sequence")
			prospect, seq := rec.rels[pi].id, rec.rels[si].id
			dup := false
			s.store.children("sequenceState", pi, prospect, false, func(other *record) bool {
				if other.rels[si].id == seq {
					dup = true
					return false
				}
				return true
			})
			if dup {
				return &writeFailure{422, apiError{ID: "validationError", Title: "Validation Error", Code: "has already been in this sequence",
					Detail: "Prospect has already been in this sequence."}.withPointer("/data/relationships/prospect")}
			}
		}
	case "webhook":
		if u, ok := rec.attrs[res.AttributeIndex("url")].(string); ok {
			if err := webhookURLAllowed(u); err != "" {
				return invalid("/data/attributes/url", "%s", err)
			}
		}
		resource, _ := rec.attrs[res.AttributeIndex("resource")].(string)
		action, _ := rec.attrs[res.AttributeIndex("action")].(string)
		if acts, ok := webhookActions[resource]; !ok || !slices.Contains(acts, action) {
			return invalid("/data/attributes/action", "The combination of resource '%s' and action '%s' is not supported.", resource, action)
		}
	}
	return nil
}

func isBlank(v any) bool {
	s, ok := v.(string)
	return v == nil || (ok && strings.TrimSpace(s) == "")
}

// webhookURLAllowed requires HTTPS, except for loopback hosts so local
// receivers can be tested. It returns a message, or "" when allowed.
func webhookURLAllowed(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "Url must be an absolute URL."
	}
	host := u.Hostname()
	loopback := host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
	if u.Scheme != "https" && !(u.Scheme == "http" && loopback) {
		return "Url must use HTTPS."
	}
	return ""
}

func (s *Sandbox) handleCreate(w http.ResponseWriter, r *http.Request, res *catalog.Resource) {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	ch, f := s.decodeWrite(r, res, 0)
	if f != nil {
		writeErrors(w, f.status, f.err)
		return
	}
	tok := tokenFrom(r.Context())
	rec, f := s.create(res, ch, tok.user, tok.app)
	if f != nil {
		writeErrors(w, f.status, f.err)
		return
	}
	s.stats.creates.Add(1)
	if s.loseAnswer(w) {
		return
	}
	s.writeRecord(w, r, http.StatusCreated, res, rec, nil)
}

// create builds, checks and stores a new record for user through app (nil
// for the sandbox's own mutations). A created record has the shape of a
// seeded one: every attribute and relationship, the extra attributes,
// read-only counters 0 and flags false unless the type sets them. The
// caller holds the write lock.
func (s *Sandbox) create(res *catalog.Resource, ch *change, user int64, app *App) (*record, *writeFailure) {
	now := ts(s.clock.Now().Truncate(time.Second))
	rec := &record{attrs: make([]any, len(res.Attributes)), rels: make([]relRef, len(res.Relationships))}
	for i := range res.Attributes {
		if res.Attributes[i].Type == catalog.TypeArray && res.Attributes[i].Items == catalog.TypeString {
			rec.attrs[i] = []string{}
		}
	}
	setIf := func(name string, v any) {
		if i := res.AttributeIndex(name); i >= 0 {
			rec.attrs[i] = v
		}
	}
	for i := range res.Attributes {
		switch a := &res.Attributes[i]; {
		case a.WriteOnly:
		case a.Type == catalog.TypeBoolean:
			rec.attrs[i] = false
		case a.Type == catalog.TypeInteger && a.ReadOnly:
			rec.attrs[i] = int64(0)
		}
	}
	setIf("createdAt", now)
	setIf("updatedAt", now)
	switch res.Type {
	case "sequenceState":
		setIf("state", "active")
		setIf("stateChangedAt", now)
		setIf("activeAt", now)
	case "task":
		setIf("state", "incomplete")
		setIf("taskType", "manual")
		setIf("completed", false)
	case "webhook":
		setIf("active", true)
		setIf("resource", "*")
		setIf("action", "*")
		setIf("payloadVersion", int64(1))
	case "sequence":
		setIf("enabled", false)
		setIf("locked", false)
	case "prospect":
		setIf("contactHistogram", make(histogram, 12))
	}
	for i, v := range ch.attrs {
		rec.attrs[i] = v
	}
	if xs := extraAttributes[res.Type]; len(xs) > 0 {
		rec.extra = map[string]any{}
		for _, x := range xs {
			rec.extra[x.name] = nil
		}
	}
	for k, v := range ch.extra {
		rec.extra[k] = v
	}
	if res.Type == "webhook" {
		rec.extra["cleanupToken"] = randomToken(32)
		if app != nil {
			rec.extra["creatorAppId"], rec.extra["creatorAppName"] = app.ClientID, app.Name
		}
	}
	for i, v := range ch.rels {
		rec.rels[i] = v
	}
	for _, name := range []string{"creator", "updater", "owner", "user"} {
		if i := relIndex(res, name); i >= 0 && rec.rels[i].id == 0 && slices.Contains(res.Relationships[i].Targets, "user") {
			if _, written := ch.rels[i]; !written {
				rec.rels[i] = relRef{typ: "user", id: user}
			}
		}
	}
	if res.Type == "prospect" {
		s.computeProspectName(res, rec)
		s.computeAccountName(res, rec, ch)
	}
	if f := s.checkRules(res, rec, 0, true); f != nil {
		return nil, f
	}
	rec.id = s.store.newID(res.Type)
	s.store.put(res.Type, rec)
	s.hooks.dispatch(res, rec, nil, "created", nil)
	return rec, nil
}

func (s *Sandbox) computeProspectName(res *catalog.Resource, rec *record) {
	first, _ := rec.attrs[res.AttributeIndex("firstName")].(string)
	last, _ := rec.attrs[res.AttributeIndex("lastName")].(string)
	if n := strings.TrimSpace(first + " " + last); n != "" {
		rec.attrs[res.AttributeIndex("name")] = n
	}
}

// computeAccountName fills prospect.accountName from the prospect's
// account unless the write set it. The caller holds the write lock.
func (s *Sandbox) computeAccountName(res *catalog.Resource, rec *record, ch *change) {
	if _, written := ch.extra["accountName"]; written {
		return
	}
	if rec.extra == nil {
		rec.extra = map[string]any{}
	}
	var name any
	if ref := rec.rels[relIndex(res, "account")]; ref.id != 0 {
		if acc, ok := s.store.get("account", ref.id); ok {
			ares := s.store.cols["account"].res
			name = acc.attrs[ares.AttributeIndex("name")]
		}
	}
	rec.extra["accountName"] = name
}

func (s *Sandbox) handleUpdate(w http.ResponseWriter, r *http.Request, res *catalog.Resource, id int64) {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if !s.store.exists(res.Type, id) {
		notFound(w, res.Type, id)
		return
	}
	ch, f := s.decodeWrite(r, res, id)
	if f != nil {
		writeErrors(w, f.status, f.err)
		return
	}
	rec, f := s.update(res, id, ch)
	if f != nil {
		writeErrors(w, f.status, f.err)
		return
	}
	s.stats.updates.Add(1)
	if s.loseAnswer(w) {
		return
	}
	s.writeRecord(w, r, http.StatusOK, res, rec, nil)
}

// update applies ch to record id. The caller holds the write lock.
func (s *Sandbox) update(res *catalog.Resource, id int64, ch *change) (*record, *writeFailure) {
	old, _ := s.store.get(res.Type, id)
	rec := old.clone()
	for i, v := range ch.attrs {
		rec.attrs[i] = v
	}
	for k, v := range ch.extra {
		if rec.extra == nil {
			rec.extra = map[string]any{}
		}
		rec.extra[k] = v
	}
	for i, v := range ch.rels {
		rec.rels[i] = v
	}
	if res.Type == "prospect" {
		s.computeProspectName(res, rec)
		if old.rels[relIndex(res, "account")] != rec.rels[relIndex(res, "account")] {
			s.computeAccountName(res, rec, ch)
		}
	}
	if res.Type == "webhook" {
		s.clearDisabled(res, rec)
	}
	if f := s.checkRules(res, rec, id, false); f != nil {
		return nil, f
	}
	s.touch(res, rec)
	s.store.put(res.Type, rec)
	s.hooks.dispatch(res, rec, old, "updated", changes(res, old, rec))
	return rec, nil
}

// touch sets updatedAt to now, never before the previous value.
func (s *Sandbox) touch(res *catalog.Resource, rec *record) {
	if i := res.AttributeIndex("updatedAt"); i >= 0 {
		now := ts(s.clock.Now().Truncate(time.Second))
		if prev, ok := rec.attrs[i].(timestamp); ok && prev > now {
			now = prev
		}
		rec.attrs[i] = now
	}
}

func (s *Sandbox) handleDelete(w http.ResponseWriter, r *http.Request, res *catalog.Resource, id int64) {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if !s.deleteRecord(res, id) {
		notFound(w, res.Type, id)
		return
	}
	s.stats.deletes.Add(1)
	if s.loseAnswer(w) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deleteRecord removes a record. The caller holds the write lock.
func (s *Sandbox) deleteRecord(res *catalog.Resource, id int64) bool {
	old, ok := s.store.get(res.Type, id)
	if !ok {
		return false
	}
	s.store.remove(res.Type, id)
	s.hooks.dispatch(res, old, nil, "destroyed", nil)
	return true
}

// changes names the attributes and relationships that differ between two
// versions of a record.
func changes(res *catalog.Resource, old, cur *record) map[string]bool {
	out := map[string]bool{}
	for i := range res.Attributes {
		if compare(old.attrs[i], cur.attrs[i]) != 0 {
			out[res.Attributes[i].Name] = true
		}
	}
	for i := range res.Relationships {
		if old.rels[i] != cur.rels[i] {
			out[res.Relationships[i].Name] = true
		}
	}
	for k, v := range cur.extra {
		if compare(old.extra[k], v) != 0 {
			out[k] = true
		}
	}
	return out
}
