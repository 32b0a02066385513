package sandbox

import (
	"cmp"
	"context"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
)

func (s *Sandbox) routes() {
	mux := http.NewServeMux()
	a := s.auth
	mux.HandleFunc("GET /oauth/authorize", a.handleAuthorize)
	mux.HandleFunc("POST /oauth/sign_in", a.handleSignIn)
	mux.HandleFunc("GET /oauth/consent", a.handleConsentPage)
	mux.HandleFunc("POST /oauth/consent", a.handleConsent)
	mux.HandleFunc("POST /oauth/token", a.handleToken)
	mux.HandleFunc("POST /oauth/revoke", a.handleRevoke)
	mux.Handle("/api/v2", s.api(s.handleRoot))
	mux.Handle("/api/v2/", s.api(s.handleResource))
	s.controlRoutes(mux)
	mux.HandleFunc("GET /{$}", s.handleIndex)
	s.mux = mux
}

type tokenKey struct{}

func tokenFrom(ctx context.Context) *accessToken {
	t, _ := ctx.Value(tokenKey{}).(*accessToken)
	return t
}

// api wraps an API handler with what Outreach does to every API request:
// faults, bearer authentication, the per-user rate limit with its headers,
// and the JSON:API media type check.
func (s *Sandbox) api(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.inject(w, r) {
			return
		}
		tok, ok := s.auth.authenticate(w, r)
		if !ok {
			return
		}
		user := strconv.FormatInt(tok.user, 10)
		now := s.clock.Now()
		d := s.limits.take(user, now)
		s.stats.userRequest(user)
		hdr := w.Header()
		hdr.Set("X-RateLimit-Limit", strconv.Itoa(d.limit))
		if s.opts.SingleRateLimitValue {
			hdr.Set("X-RateLimit-Remaining", strconv.Itoa(d.remaining))
		} else {
			hdr.Set("X-RateLimit-Remaining", strconv.Itoa(d.remaining)+", "+strconv.Itoa(2*d.limit-(d.limit-d.remaining)))
		}
		hdr.Set("X-RateLimit-Reset", strconv.FormatInt(d.reset.Unix(), 10))
		if !d.allowed {
			s.stats.rateLimited.Add(1)
			secs := int64(d.reset.Sub(now).Seconds() + 0.999)
			hdr.Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
			writeErrors(w, http.StatusTooManyRequests, apiError{ID: "rateLimitExceeded", Title: "Rate Limit Exceeded",
				Detail: fmt.Sprintf("You have exceeded your permitted rate limit of %s; please try again at %s.",
					thousands(d.limit), d.reset.Format("2006-01-02T15:04:05"))})
			return
		}
		if !s.mediaTypeAccepted(r) {
			writeErrors(w, http.StatusUnsupportedMediaType, apiError{ID: "unsupportedMediaType", Title: "Unsupported Media Type",
				Details: "Expected Content-Type header to be 'application/vnd.api+json'."})
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), tokenKey{}, tok)))
	})
}

// mediaTypeAccepted applies the Content-Type rule. Outreach documents the
// JSON:API media type on every request, reads included, yet serves clients
// in production that send GET and DELETE without any Content-Type and JSON
// bodies as application/json; the sandbox does the same unless
// StrictMediaType asks for the documented rule.
func (s *Sandbox) mediaTypeAccepted(r *http.Request) bool {
	raw := r.Header.Get("Content-Type")
	ct, _, _ := mime.ParseMediaType(raw)
	if s.opts.StrictMediaType {
		return ct == mediaType
	}
	if raw == "" {
		return r.ContentLength == 0 // no body, nothing to describe
	}
	return ct == mediaType || ct == "application/json"
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// allowed checks the token's scopes for level on res; on failure it has
// answered 403 unauthorizedOauthScope.
func allowed(w http.ResponseWriter, tok *accessToken, res *catalog.Resource, level string) bool {
	if slices.Contains(tok.scopes, res.Scope(level)) || slices.Contains(tok.scopes, res.Scope(catalog.LevelAll)) {
		return true
	}
	writeErrors(w, http.StatusForbidden, apiError{ID: "unauthorizedOauthScope", Title: "Unauthorized OAuth Scope",
		Detail: fmt.Sprintf("Your authorization does not include the required scope '%s'.", res.Scope(level))})
	return false
}

// governed types can be changed only by admins.
var governed = map[string]bool{"user": true, "team": true, "profile": true, "role": true, "orgSetting": true}

func permitted(w http.ResponseWriter, tok *accessToken, res *catalog.Resource) bool {
	if tok.user == 1 || !governed[res.Type] {
		return true
	}
	writeErrors(w, http.StatusForbidden, apiError{ID: "unauthorizedRequest", Title: "Unauthorized Request",
		Detail: "You are not authorized to perform that request."})
	return false
}

// viewer is the client id of the app whose token made the request.
func viewer(r *http.Request) string {
	if tok := tokenFrom(r.Context()); tok != nil && tok.app != nil {
		return tok.app.ClientID
	}
	return ""
}

func (s *Sandbox) apiURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/api/v2"
}

// handleResource routes /api/v2/<path>[/<id>[/actions/<name>]].
func (s *Sandbox) handleResource(w http.ResponseWriter, r *http.Request) {
	s.runBatches()
	segs := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/api/v2/"), "/"), "/")
	switch {
	case len(segs) == 1 && segs[0] == "types" && r.Method == http.MethodGet:
		s.handleTypes(w, r)
		return
	case len(segs) == 1 && segs[0] == "schema.json" && r.Method == http.MethodGet:
		s.handleSchema(w, r)
		return
	}
	if segs[0] == "customObjects" && len(segs) >= 2 {
		segs = append([]string{segs[0] + "/" + segs[1]}, segs[2:]...)
	}
	res, ok := s.cat.ByPath(segs[0])
	if !ok {
		routeNotFound(w)
		return
	}
	tok := tokenFrom(r.Context())
	var id int64
	if len(segs) >= 2 && segs[1] != "actions" {
		n, err := strconv.ParseInt(segs[1], 10, 64)
		if err != nil || n <= 0 {
			routeNotFound(w)
			return
		}
		id = n
	}
	if r.Method != http.MethodGet && r.URL.Query().Has("include") {
		writeErrors(w, http.StatusBadRequest, apiError{ID: "badRequest", Title: "Bad Request",
			Detail: "include is not supported on writes; send the write, then GET the related records."}.withParameter("include"))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.stats.writeRequests.Add(1)
	}
	switch {
	case len(segs) == 1 && r.Method == http.MethodGet && res.Ops.List:
		if allowed(w, tok, res, catalog.LevelRead) {
			s.handleList(w, r, res)
		}
	case len(segs) == 1 && r.Method == http.MethodPost && res.Ops.Create:
		if allowed(w, tok, res, catalog.LevelWrite) && permitted(w, tok, res) {
			s.handleCreate(w, r, res)
		}
	case len(segs) == 2 && id > 0 && r.Method == http.MethodGet && res.Ops.Get:
		if allowed(w, tok, res, catalog.LevelRead) {
			s.handleGet(w, r, res, id)
		}
	case len(segs) == 2 && id > 0 && r.Method == http.MethodPatch && res.Ops.Update:
		if allowed(w, tok, res, catalog.LevelWrite) && permitted(w, tok, res) {
			s.handleUpdate(w, r, res, id)
		}
	case len(segs) == 2 && id > 0 && r.Method == http.MethodDelete && res.Ops.Delete:
		if allowed(w, tok, res, catalog.LevelDelete) && permitted(w, tok, res) {
			s.handleDelete(w, r, res, id)
		}
	case len(segs) == 4 && id > 0 && segs[2] == "actions" && r.Method == http.MethodPost && res.HasMemberAction(segs[3]):
		if res.Type == "batch" {
			if allowed(w, tok, res, catalog.LevelWrite) {
				s.handleBatchMember(w, r, res, id, segs[3])
			}
			return
		}
		if allowed(w, tok, res, catalog.LevelWrite) && permitted(w, tok, res) {
			s.handleAction(w, r, res, id, segs[3])
		}
	case len(segs) == 3 && segs[1] == "actions" && r.Method == http.MethodPost && res.Type == "batch" && slices.Contains(res.CollectionActions, segs[2]):
		s.handleBulkAction(w, r, res, segs[2])
	case len(segs) == 3 && segs[1] == "actions" && r.Method == http.MethodPost && slices.Contains(res.CollectionActions, segs[2]):
		writeErrors(w, http.StatusNotImplemented, apiError{ID: "notImplemented", Title: "Not Implemented",
			Detail: "The sandbox does not simulate import actions (/" + res.Path + "/actions/" + segs[2] + ")."})
	default:
		routeNotFound(w)
	}
}

func (s *Sandbox) queryRules() queryRules {
	return queryRules{countByDefault: s.opts.CountByDefault, strictSort: s.opts.StrictSort}
}

func (s *Sandbox) handleList(w http.ResponseWriter, r *http.Request, res *catalog.Resource) {
	lq, err := parseListQuery(res, s.cat, r.URL.Query(), s.queryRules())
	if err != nil {
		writeQueryError(w, err)
		return
	}
	s.store.mu.RLock()
	page, err := s.store.list(lq)
	if err != nil {
		s.store.mu.RUnlock()
		writeQueryError(w, err)
		return
	}
	// The cursor comes from the last record in sort order, even when the
	// page is then served shuffled, as Outreach's keyset does.
	var next *cursor
	if n := len(page.records); n > 0 && lq.cursor && page.more {
		next = lq.cursorFor(page.records[n-1])
	}
	if s.faults.roll(func(f Faults) float64 { return f.UnsortedPages }) {
		s.stats.faults.Add(1)
		s.faults.shuffle(len(page.records), func(i, j int) { page.records[i], page.records[j] = page.records[j], page.records[i] })
	}
	enc := newEncoder(s.store, s.layouts, s.apiURL(r), lq.fields)
	enc.viewer = viewer(r)
	buf := s.buffers.Get().(*[]byte)
	defer s.buffers.Put(buf)
	b := append((*buf)[:0], `{"data":[`...)
	for i, rec := range page.records {
		if i > 0 {
			b = append(b, ',')
		}
		b = enc.appendResource(b, res, rec)
	}
	b = append(b, ']')
	if len(lq.include) > 0 {
		b = append(b, `,"included":`...)
		b = enc.appendIncluded(b, res, page.records, lq.include)
	}
	s.store.mu.RUnlock()
	if len(page.records) > 0 {
		b = append(b, `,"links":{"first":`...)
		b = appendString(b, s.pageURL(r, lq, nil, 0))
		if next != nil {
			b = append(b, `,"next":`...)
			b = appendString(b, s.pageURL(r, lq, next, 0))
		}
		if !lq.cursor {
			if lq.offset > 0 {
				b = append(b, `,"prev":`...)
				b = appendString(b, s.pageURL(r, lq, nil, max(lq.offset-lq.size, 0)+1))
			}
			if page.more && lq.offset+lq.size <= maxOffset {
				b = append(b, `,"next":`...)
				b = appendString(b, s.pageURL(r, lq, nil, lq.offset+lq.size+1))
			}
		}
		b = append(b, '}')
	}
	if lq.count {
		b = append(b, `,"meta":{"count":`...)
		b = strconv.AppendInt(b, int64(page.total), 10)
		b = append(b, `,"count_truncated":`...)
		b = strconv.AppendBool(b, page.capped)
		b = append(b, '}')
	}
	b = append(b, '}')
	large := s.faults.get().LargePageSize
	if large == 0 {
		large = 100
	}
	if lq.size > large && s.faults.roll(func(f Faults) float64 { return f.BadGateway }) {
		s.stats.faults.Add(1)
		writeGatewayPage(w, http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", mediaType)
	w.Write(b)
	if cap(b) <= 64<<20 {
		*buf = b
	}
}

// pageURL is the absolute URL of another page of the same query: with
// page[after] in cursor mode, or page[offset] (offset+1, 0 for none).
func (s *Sandbox) pageURL(r *http.Request, lq *listQuery, c *cursor, offsetPlus1 int) string {
	q := r.URL.Query()
	q.Del("page[after]")
	q.Del("page[offset]")
	if c != nil {
		q.Set("page[after]", encodeCursor(c))
	}
	if offsetPlus1 > 1 {
		q.Set("page[offset]", strconv.Itoa(offsetPlus1-1))
	}
	return s.apiURL(r) + "/" + lq.res.Path + "?" + q.Encode()
}

func writeQueryError(w http.ResponseWriter, err error) {
	if qe, ok := err.(*queryError); ok {
		writeErrors(w, qe.status, apiError{ID: qe.id, Title: qe.title, Detail: qe.detail}.withParameter(qe.param))
		return
	}
	writeErrors(w, http.StatusInternalServerError, apiError{ID: "internalServerError", Title: "Internal Server Error", Detail: err.Error()})
}

func (s *Sandbox) handleGet(w http.ResponseWriter, r *http.Request, res *catalog.Resource, id int64) {
	q := r.URL.Query()
	lq, err := parseListQuery(res, s.cat, q, queryRules{strictSort: s.opts.StrictSort})
	if err != nil {
		writeQueryError(w, err)
		return
	}
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	rec, ok := s.store.get(res.Type, id)
	if !ok {
		notFound(w, res.Type, id)
		return
	}
	s.writeRecord(w, r, http.StatusOK, res, rec, lq)
}

// writeRecord answers with one resource document. The caller holds the
// store lock.
func (s *Sandbox) writeRecord(w http.ResponseWriter, r *http.Request, status int, res *catalog.Resource, rec *record, lq *listQuery) {
	var fields map[string][]string
	if lq != nil {
		fields = lq.fields
	}
	enc := newEncoder(s.store, s.layouts, s.apiURL(r), fields)
	enc.viewer = viewer(r)
	b := append([]byte(`{"data":`), nil...)
	b = enc.appendResource(b, res, rec)
	if lq != nil && len(lq.include) > 0 {
		b = append(b, `,"included":`...)
		b = enc.appendIncluded(b, res, []*record{rec}, lq.include)
	}
	b = append(b, '}')
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(status)
	w.Write(b)
}

// handleRoot serves GET /api/v2: who the token belongs to.
func (s *Sandbox) handleRoot(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		routeNotFound(w)
		return
	}
	tok := tokenFrom(r.Context())
	s.store.mu.RLock()
	ures, _ := s.cat.ByType("user")
	u, _ := s.store.get("user", tok.user)
	s.store.mu.RUnlock()
	str := func(name string) any {
		if u == nil {
			return nil
		}
		return u.attrs[ures.AttributeIndex(name)]
	}
	org := cmp.Or(s.opts.OrgName, "Sandbox Org")
	writeJSON(w, http.StatusOK, map[string]any{
		"data": map[string]any{"type": "org", "id": 1, "attributes": map[string]any{
			"name": org, "timeZone": "America/Los_Angeles", "prospectLabel1": "Tier", "prospectLabel2": "Region",
			"prospectLabel3": "Newsletter", "accountLabel1": "Segment", "opportunityLabel1": "Source",
		}},
		"meta": map[string]any{
			"instanceUrl": "https://sandbox.outreach.example",
			"application": map[string]any{"name": tok.app.Name, "clientId": tok.app.ClientID},
			"scopes":      tok.scopes,
			"user":        map[string]any{"id": tok.user, "email": str("email"), "firstName": str("firstName"), "lastName": str("lastName")},
			"token":       map[string]any{"createdAt": tok.created.Format(timeLayout), "expiresAt": tok.expires.Format(timeLayout)},
		},
	})
}
