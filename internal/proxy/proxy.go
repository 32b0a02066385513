// Package proxy forwards /proxy/{credential}/{path...} to that credential's
// Outreach API with its current access token: the caller authenticates with
// an API key (or the web UI's signed-in session), never with an Outreach
// token. Requests go through outreach.Client.Forward, so they share the
// Outreach user's rate limiter with syncs and loads, are retried when that
// is safe, and never make Outreach answer 429: a request that would pass
// the budget waits up to a bound, then gets our own 429 with Retry-After.
//
// Writes sent with an Idempotency-Key are answered once by Outreach and
// from the kept answer for 24 hours after; GET with "X-Paginate: all"
// follows links.next and answers NDJSON. docs/proxy.md is the user's guide.
package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/outreach"
)

// Headers the proxy reads (and never forwards).
const (
	HeaderMaxWait     = "X-Max-Wait"
	HeaderPaginate    = "X-Paginate"
	HeaderIdempotency = "Idempotency-Key"
	HeaderReplayed    = "Idempotent-Replayed"
)

// Metrics receives what the proxy counts (metrics.Metrics implements it).
type Metrics interface {
	// ProxyRequest counts an answered proxy request.
	ProxyRequest(credential string, status int)
	// ProxyRateLimited counts a 429 of our own.
	ProxyRateLimited(credential string)
	// ProxyUpstream records how long Outreach took to answer (headers).
	ProxyUpstream(credential string, d time.Duration)
}

// Options configure a Proxy.
type Options struct {
	Credentials *credential.Manager
	Keys        KeyStore
	Idempotency IdempotencyStore
	// Limiter returns the rate limiter of an Outreach user: the one syncs
	// and loads for that user use (service.RateLimiter).
	Limiter func(user string) *outreach.RateLimiter
	// SignedIn, when set, reports whether a request carries the web UI's
	// signed-in session, which may use every credential.
	SignedIn func(*http.Request) bool
	// MaxWait caps how long a request waits for the rate-limit window
	// (X-Max-Wait asks for less); it is also the wait of a request that
	// names none. Default 10 s; negative: never wait.
	MaxWait time.Duration
	// HTTPClient talks to Outreach; nil: a client with pooled connections.
	HTTPClient *http.Client
	// AttemptTimeout bounds the wait for Outreach's answer headers of one
	// attempt; default outreach.DefaultAttemptTimeout.
	AttemptTimeout time.Duration
	// ObserveRequests, when set, gives the observer of Outreach exchanges
	// made for a credential (metrics.ObserveRequests).
	ObserveRequests func(credential, user string) func(outreach.RequestEvent)
	Metrics         Metrics
	// Logger receives the access log (one line a request, secrets
	// redacted).
	Logger    *slog.Logger
	UserAgent string
	Now       func() time.Time
	// MaxIdempotentBody caps the body of a write with an Idempotency-Key
	// (it is read whole to be fingerprinted) and of the answer kept for
	// it; default 8 MiB.
	MaxIdempotentBody int64
	// Retry is the retry policy of forwarded requests; zero: the client's
	// defaults.
	Retry outreach.RetryPolicy
	// CacheFor is how long what was read of an API key or a credential is
	// trusted; default DefaultCacheFor, negative: read every time.
	CacheFor time.Duration
}

// Proxy is an http.Handler for /proxy/. Safe for concurrent use.
type Proxy struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time
	http *http.Client

	keys   ttlCache[*Key]               // by hash
	creds  ttlCache[*credential.Record] // by the name or id a path gave
	tokens ttlCache[string]             // by credential id

	buffers sync.Pool // *[]byte of 32 KiB, for copying answers

	mu      sync.Mutex
	clients map[string]*clientEntry // by credential id
	touched map[string]time.Time    // key id → last use written
}

type clientEntry struct {
	name, base, user string
	client           *outreach.Client
}

// New returns a proxy.
func New(opts Options) (*Proxy, error) {
	if opts.Credentials == nil || opts.Keys == nil || opts.Idempotency == nil || opts.Limiter == nil {
		return nil, errors.New("proxy: Credentials, Keys, Idempotency and Limiter are required")
	}
	if opts.MaxWait == 0 {
		opts.MaxWait = 10 * time.Second
	}
	if opts.MaxIdempotentBody <= 0 {
		opts.MaxIdempotentBody = 8 << 20
	}
	if opts.CacheFor == 0 {
		opts.CacheFor = DefaultCacheFor
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = outreach.DefaultAttemptTimeout
	}
	p := &Proxy{opts: opts, log: opts.Logger, now: opts.Now, http: opts.HTTPClient, clients: map[string]*clientEntry{}, touched: map[string]time.Time{}}
	p.buffers.New = func() any { b := make([]byte, 32<<10); return &b }
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.http == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		p.http = &http.Client{Transport: t}
	}
	return p, nil
}

// exchange is one proxied request as the access log tells it.
type exchange struct {
	start      time.Time
	caller     string // key name, or "session"
	credential string // the credential's name once known
	status     int
	bytes      int64
	replayed   bool
	pages      int
	err        error
}

// ServeHTTP serves /proxy/{credential}/{path...}.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := &exchange{start: time.Now()}
	cw := &countingWriter{ResponseWriter: w}
	p.serve(cw, r, ex)
	ex.status, ex.bytes = cw.status, cw.n
	if ex.status == 0 {
		ex.status = http.StatusOK
	}
	p.accessLog(r, ex)
	if p.opts.Metrics != nil {
		name := ex.credential
		if name == "" {
			name = "unknown"
		}
		p.opts.Metrics.ProxyRequest(name, ex.status)
	}
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, ex *exchange) {
	credName, rest, ok := splitPath(r.URL.EscapedPath())
	if !ok {
		writeError(w, http.StatusNotFound, "notFound", "Not Found", "Call /proxy/{credential}/{path}, such as /proxy/sales/prospects?page[size]=5.")
		return
	}
	key, ok := p.authenticate(w, r)
	if !ok {
		return
	}
	if key != nil {
		ex.caller = key.Name
	} else {
		ex.caller = "session"
	}
	rec, err := p.credential(r.Context(), credName)
	if err != nil && !errors.Is(err, credential.ErrNotFound) {
		p.log.Error("proxy: read credential", "err", err)
		writeError(w, http.StatusServiceUnavailable, "storeUnavailable", "Service Unavailable", "The app database does not answer; try again.")
		return
	}
	if err != nil || (key != nil && !key.Allows(rec.ID)) {
		if key != nil {
			writeError(w, http.StatusForbidden, "credentialNotAllowed", "Forbidden",
				fmt.Sprintf("This API key may not use credential %q; create a key with --credentials naming it.", credName))
			return
		}
		writeError(w, http.StatusNotFound, "credentialNotFound", "Not Found", fmt.Sprintf("No credential is named %q.", credName))
		return
	}
	ex.credential = rec.Name
	if rec.Status != credential.StatusConnected {
		writeError(w, http.StatusBadGateway, "credentialNotConnected", "Bad Gateway",
			fmt.Sprintf("Credential %s is %s; authorize it again (outreach-connector credentials authorize %s).", rec.Name,
				strings.ReplaceAll(string(rec.Status), "_", " "), rec.Name))
		return
	}
	client, err := p.client(rec)
	if err != nil {
		writeError(w, http.StatusBadGateway, "credentialUnusable", "Bad Gateway", err.Error())
		return
	}
	ctx, ok := p.withMaxWait(w, r)
	if !ok {
		return
	}
	if r.URL.RawQuery != "" {
		rest += "?" + r.URL.RawQuery
	}
	fr := &outreach.ForwardRequest{Method: r.Method, Path: rest, Header: forwardHeader(r.Header), ContentLength: r.ContentLength}
	if r.ContentLength != 0 {
		fr.Body = r.Body
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodDelete, http.MethodOptions:
		fr.Retry = fr.Body == nil
	case http.MethodPost, http.MethodPatch, http.MethodPut:
		if k := r.Header.Get(HeaderIdempotency); k != "" {
			p.idempotent(ctx, w, r, ex, client, fr, owner(key), k)
			return
		}
	default:
		writeError(w, http.StatusMethodNotAllowed, "methodNotAllowed", "Method Not Allowed", r.Method+" is not an Outreach API method.")
		return
	}
	if v := r.Header.Get(HeaderPaginate); v != "" {
		if !strings.EqualFold(v, "all") {
			writeError(w, http.StatusBadRequest, "badPaginate", "Bad Request", fmt.Sprintf("X-Paginate %q: the one value is all (every page of a list, as NDJSON).", v))
			return
		}
		if r.Method != http.MethodGet {
			writeError(w, http.StatusBadRequest, "badPaginate", "Bad Request", "X-Paginate: all works on GET requests of a list only.")
			return
		}
		p.paginate(ctx, w, ex, client, fr)
		return
	}
	resp, err := client.Forward(ctx, fr)
	if err != nil {
		ex.err = err
		if !fr.Retry && sentMaybe(err) {
			writeUnknownOutcome(w, err, false) // a write without a key, sent once
			return
		}
		p.writeForwardError(w, ex, err)
		return
	}
	defer resp.Body.Close()
	copyHeader(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	if r.Method != http.MethodHead {
		buf := p.buffers.Get().(*[]byte)
		if _, err := io.CopyBuffer(w, resp.Body, *buf); err != nil {
			ex.err = err
		}
		p.buffers.Put(buf)
	}
}

// splitPath splits "/proxy/{credential}/{rest}" into the credential and
// the rest (without the leading slash; the query is added by the caller).
func splitPath(escaped string) (cred, rest string, ok bool) {
	s, found := strings.CutPrefix(escaped, "/proxy/")
	if !found {
		return "", "", false
	}
	cred, rest, _ = strings.Cut(s, "/")
	cred, err := url.PathUnescape(cred)
	if err != nil || cred == "" {
		return "", "", false
	}
	for _, seg := range strings.Split(rest, "/") {
		// Dot segments, escaped or not (".%2e", "%2E."), would climb
		// out of the API.
		u, err := url.PathUnescape(seg)
		if err != nil || u == ".." || u == "." || strings.Contains(u, "/..") || strings.Contains(u, "../") {
			return "", "", false
		}
	}
	return cred, rest, true
}

// authenticate returns the caller's key (nil for the signed-in session);
// when neither is presented, or the key is bad, it has answered and ok is
// false.
func (p *Proxy) authenticate(w http.ResponseWriter, r *http.Request) (*Key, bool) {
	secret, presented := keyFrom(r)
	if !presented {
		if p.opts.SignedIn != nil && p.opts.SignedIn(r) {
			// The session cookie is SameSite=Lax; a browser that says the
			// request comes from another site is refused all the same.
			if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
				writeError(w, http.StatusForbidden, "crossSite", "Forbidden", "The proxy does not answer requests of other sites made with the session.")
				return nil, false
			}
			return nil, true
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="outreach-connector proxy"`)
		writeError(w, http.StatusUnauthorized, "unauthenticated", "Unauthorized",
			"Send an API key (Authorization: Bearer ock_... or X-Api-Key: ock_...); create one with outreach-connector keys create NAME --credentials CREDENTIAL.")
		return nil, false
	}
	if !strings.HasPrefix(secret, KeyPrefix) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="outreach-connector proxy", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "invalidKey", "Unauthorized", "That is not an API key of this connector (they start with "+KeyPrefix+").")
		return nil, false
	}
	key, err := p.keyByHash(r.Context(), HashKey(secret))
	if err != nil && !errors.Is(err, ErrKeyNotFound) {
		p.log.Error("proxy: read API key", "err", err)
		writeError(w, http.StatusServiceUnavailable, "storeUnavailable", "Service Unavailable", "The app database does not answer; try again.")
		return nil, false
	}
	if key == nil || !key.Revoked.IsZero() {
		w.Header().Set("WWW-Authenticate", `Bearer realm="outreach-connector proxy", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "invalidKey", "Unauthorized", "That API key is unknown or revoked.")
		return nil, false
	}
	p.touch(r.Context(), key)
	return key, true
}

// touch records a key's use, at most once a minute per key.
func (p *Proxy) touch(ctx context.Context, k *Key) {
	now := p.now()
	p.mu.Lock()
	last := p.touched[k.ID]
	due := now.Sub(last) >= time.Minute
	if due {
		p.touched[k.ID] = now
	}
	p.mu.Unlock()
	if due {
		if err := p.opts.Keys.TouchKey(ctx, k.ID, now); err != nil {
			p.log.Warn("proxy: record API key use", "key", k.Name, "err", err)
		}
	}
}

func owner(k *Key) string {
	if k == nil {
		return "session"
	}
	return k.ID
}

// client returns the Outreach client of a credential, built once per
// credential (and again when its API, name or Outreach user changes).
func (p *Proxy) client(rec *credential.Record) (*outreach.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.clients[rec.ID]; ok && e.base == rec.APIBaseURL && e.name == rec.Name && e.user == rec.OutreachUserID {
		return e.client, nil
	}
	opts := []outreach.Option{outreach.WithBaseURL(rec.APIBaseURL), outreach.WithTokenSource(&cachedTokens{p: p, id: rec.ID, src: p.opts.Credentials.TokenSource(rec.ID)}),
		outreach.WithRateLimiter(p.opts.Limiter(rec.OutreachUserID)), outreach.WithHTTPClient(p.http),
		outreach.WithAttemptTimeout(p.opts.AttemptTimeout)}
	if p.opts.UserAgent != "" {
		opts = append(opts, outreach.WithUserAgent(p.opts.UserAgent))
	}
	if p.opts.Retry != (outreach.RetryPolicy{}) {
		opts = append(opts, outreach.WithRetryPolicy(p.opts.Retry))
	}
	var observers []func(outreach.RequestEvent)
	if p.opts.ObserveRequests != nil {
		observers = append(observers, p.opts.ObserveRequests(rec.Name, rec.OutreachUserID))
	}
	if m := p.opts.Metrics; m != nil {
		name := rec.Name
		observers = append(observers, func(ev outreach.RequestEvent) {
			if ev.StatusCode != 0 {
				m.ProxyUpstream(name, ev.Duration)
			}
		})
	}
	if len(observers) > 0 {
		opts = append(opts, outreach.WithObserver(func(ev outreach.RequestEvent) {
			for _, o := range observers {
				o(ev)
			}
		}))
	}
	c, err := outreach.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("credential %s: %w", rec.Name, err)
	}
	p.clients[rec.ID] = &clientEntry{name: rec.Name, base: rec.APIBaseURL, user: rec.OutreachUserID, client: c}
	return c, nil
}

// withMaxWait reads X-Max-Wait ("2s", "500ms" or seconds) and bounds the
// request's wait for the rate-limit window by it and by MaxWait.
func (p *Proxy) withMaxWait(w http.ResponseWriter, r *http.Request) (context.Context, bool) {
	d := p.opts.MaxWait
	if v := strings.TrimSpace(r.Header.Get(HeaderMaxWait)); v != "" {
		asked, err := time.ParseDuration(v)
		if err != nil {
			secs, err2 := strconv.ParseFloat(v, 64)
			if err2 != nil || math.IsInf(secs, 0) || math.IsNaN(secs) {
				secs = -1
			}
			asked = time.Duration(secs * float64(time.Second))
		}
		if asked < 0 {
			writeError(w, http.StatusBadRequest, "badMaxWait", "Bad Request",
				fmt.Sprintf("X-Max-Wait %q: give a duration of 0 or more such as 2s or 500ms, or seconds such as 1.5.", v))
			return nil, false
		}
		if d >= 0 && asked < d {
			d = asked
		}
	}
	return outreach.WithMaxWait(r.Context(), d), true
}

// forwardHeader is what of the caller's headers goes to Outreach: content
// negotiation and conditions, never credentials or cookies.
func forwardHeader(in http.Header) http.Header {
	out := make(http.Header, 4)
	for k, vs := range in {
		switch k {
		case "Accept", "Content-Type", "Accept-Language", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since":
			out[k] = vs
		}
	}
	return out
}

// copyHeader copies an answer's headers but the hop-by-hop ones and
// cookies.
func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		switch k {
		case "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Set-Cookie":
			continue
		}
		dst[k] = vs
	}
}

// writeForwardError answers for a request that got no answer from Outreach.
func (p *Proxy) writeForwardError(w http.ResponseWriter, ex *exchange, err error) {
	st, id, title, detail := forwardProblem(err)
	if st == http.StatusTooManyRequests {
		var rl *outreach.RateLimitError
		errors.As(err, &rl)
		secs := 1
		if rl != nil && !rl.Reset.IsZero() {
			secs = max(1, int(math.Ceil(rl.Reset.Sub(p.now()).Seconds())))
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		if p.opts.Metrics != nil {
			p.opts.Metrics.ProxyRateLimited(ex.credential)
		}
	}
	writeError(w, st, id, title, detail)
}

// forwardProblem maps an error of Forward to our answer.
func forwardProblem(err error) (status int, id, title, detail string) {
	var rl *outreach.RateLimitError
	var to *outreach.AttemptTimeoutError
	switch {
	case errors.As(err, &rl):
		return http.StatusTooManyRequests, "rateLimited", "Too Many Requests",
			"The Outreach user's rate-limit budget is spent until the window resets; retry after Retry-After seconds, or send X-Max-Wait to wait for it."
	case errors.Is(err, credential.ErrNeedsReauthorization):
		return http.StatusBadGateway, "credentialNeedsReauthorization", "Bad Gateway", "The credential needs authorizing again: " + err.Error()
	case errors.As(err, &to), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "upstreamTimeout", "Gateway Timeout", "Outreach did not answer in time."
	}
	return http.StatusBadGateway, "upstreamUnavailable", "Bad Gateway", "Outreach could not be reached: " + err.Error()
}

// sentMaybe reports whether a failed Forward may have reached Outreach:
// not when our limiter refused it, the credential gave no token, or the
// connection to Outreach could not be made.
func sentMaybe(err error) bool {
	return outreach.MayHaveActed(err) && !errors.Is(err, credential.ErrNeedsReauthorization) && !strings.Contains(err.Error(), "get access token")
}

// writeUnknownOutcome answers a write sent to Outreach whose answer did
// not come back (the connection dropped, or no answer in time): whether
// Outreach did it is unknown, and the answer says so rather than invite a
// blind retry.
func writeUnknownOutcome(w http.ResponseWriter, err error, keyed bool) {
	detail := "The write was sent to Outreach but its answer was lost (" + err.Error() + "): it may or may not have been done. " +
		"Look the record up before writing it again"
	if keyed {
		detail += ", with a new Idempotency-Key."
	} else {
		detail += "; with an Idempotency-Key a repeat is safe."
	}
	writeError(w, http.StatusBadGateway, "outcomeUnknown", "Bad Gateway", detail)
}

// writeError answers a JSON:API error document.
func writeError(w http.ResponseWriter, status int, id, title, detail string) {
	w.Header().Set("Content-Type", "application/vnd.api+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"id": id, "status": strconv.Itoa(status), "title": title, "detail": detail}}})
}

// countingWriter remembers the status and counts the body.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (c *countingWriter) WriteHeader(s int) {
	if c.status == 0 {
		c.status = s
	}
	c.ResponseWriter.WriteHeader(s)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

// Flush passes a flush on.
func (c *countingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the writer.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// readLimited reads r whole, failing past limit bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	var b bytes.Buffer
	n, err := b.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, errTooLarge
	}
	return b.Bytes(), nil
}

var errTooLarge = errors.New("too large")
