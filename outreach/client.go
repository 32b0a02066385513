// Package outreach is a Go client for the Outreach REST API v2
// (https://api.outreach.io/api/v2): JSON:API documents, cursor pagination
// as iterators, typed errors, a rate limiter shared per Outreach user, and
// retries that never repeat a write unless asked to.
//
// A Client is safe for concurrent use. It never logs; pass an Observer to
// see each request.
package outreach

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultBaseURL is Outreach's API.
const DefaultBaseURL = "https://api.outreach.io/api/v2/"

const mediaType = "application/vnd.api+json"

// TokenSource supplies access tokens. The credential layer provides one
// that refreshes and persists tokens; StaticToken serves a fixed token.
type TokenSource interface {
	// Token returns a valid access token.
	Token(ctx context.Context) (string, error)
}

// Refresher is implemented by token sources that can replace a token the
// server rejected. Refresh returns a token other than rejected, refreshing
// if no other is available; it may return rejected itself when nothing
// better can be had, and the client then gives up.
type Refresher interface {
	Refresh(ctx context.Context, rejected string) (string, error)
}

// StaticToken is a TokenSource for a fixed access token.
type StaticToken string

// Token returns the token.
func (t StaticToken) Token(context.Context) (string, error) { return string(t), nil }

// RetryPolicy says how requests are retried.
type RetryPolicy struct {
	// MaxAttempts counts the first try; 1 disables retries. Default 6.
	MaxAttempts int
	// BaseDelay is the first backoff (doubled each time, with full
	// jitter), MaxDelay the longest. Defaults 500 ms and 30 s.
	BaseDelay, MaxDelay time.Duration
	// MaxRetryAfter caps a wait the server asks for with Retry-After;
	// a longer one returns the error instead. Default 5 minutes.
	MaxRetryAfter time.Duration
	// RetryWrites allows retrying POST and PATCH. Outreach has no
	// idempotency keys, so a retried create can create twice: opt in only
	// for writes that are safe to repeat.
	RetryWrites bool
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = 6
	}
	if p.BaseDelay == 0 {
		p.BaseDelay = 500 * time.Millisecond
	}
	if p.MaxDelay == 0 {
		p.MaxDelay = 30 * time.Second
	}
	if p.MaxRetryAfter == 0 {
		p.MaxRetryAfter = 5 * time.Minute
	}
	return p
}

// RequestEvent describes one HTTP exchange, for an Observer.
type RequestEvent struct {
	Method     string
	URL        string // without the query's page cursor; never holds a token
	Attempt    int    // 1 for the first try
	StatusCode int    // 0 when there was no answer
	Err        error  // transport error, if any
	Duration   time.Duration
	RateLimit  struct{ Limit, Remaining int }
}

// Client talks to the Outreach API.
type Client struct {
	base      *url.URL
	http      *http.Client
	tokens    TokenSource
	limiter   *RateLimiter
	retry     RetryPolicy
	userAgent string
	observer  func(RequestEvent)
	sleep     func(ctx context.Context, d time.Duration) error
	// attemptTimeout bounds one HTTP exchange, answer body included.
	attemptTimeout time.Duration
	// bodyHint is the size of the last large body read without a known
	// length: the next is read into a buffer that big at once.
	bodyHint atomic.Int64
}

// DefaultAttemptTimeout bounds one attempt of a request unless
// WithAttemptTimeout says otherwise.
const DefaultAttemptTimeout = time.Minute

// Option configures a Client.
type Option func(*Client) error

// WithBaseURL sets the API's base URL, such as a sandbox's
// "http://127.0.0.1:8080/api/v2". Default DefaultBaseURL.
func WithBaseURL(raw string) Option {
	return func(c *Client) error {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("outreach: base URL %q must be an absolute http(s) URL", raw)
		}
		if !strings.HasSuffix(u.Path, "/") {
			u.Path += "/"
		}
		c.base = u
		return nil
	}
}

// WithHTTPClient sets the HTTP client (timeouts, transport, proxies).
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) error {
		if h == nil {
			return errors.New("outreach: nil HTTP client")
		}
		c.http = h
		return nil
	}
}

// WithTokenSource sets where access tokens come from. Required.
func WithTokenSource(ts TokenSource) Option {
	return func(c *Client) error { c.tokens = ts; return nil }
}

// WithRateLimiter shares a limiter; give every client of one Outreach user
// the same one. Default: a limiter of this client alone, quota 1.
func WithRateLimiter(l *RateLimiter) Option {
	return func(c *Client) error { c.limiter = l; return nil }
}

// WithRetryPolicy sets the retry policy.
func WithRetryPolicy(p RetryPolicy) Option {
	return func(c *Client) error {
		if p.MaxAttempts < 0 || p.BaseDelay < 0 || p.MaxDelay < 0 {
			return errors.New("outreach: retry policy values must not be negative")
		}
		c.retry = p.withDefaults()
		return nil
	}
}

// WithAttemptTimeout bounds each attempt of a request (sending it and
// reading the whole answer); an attempt that takes longer is abandoned and,
// for a request that may be retried, retried like a network error. It also
// bounds how long the first request of a rate-limit window (the probe that
// learns the window) holds back the other callers of the same RateLimiter.
// Default DefaultAttemptTimeout. The context passed to each call still bounds
// the request as a whole.
func WithAttemptTimeout(d time.Duration) Option {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("outreach: attempt timeout %s must be positive", d)
		}
		c.attemptTimeout = d
		return nil
	}
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *Client) error { c.userAgent = ua; return nil }
}

// WithObserver calls f after every HTTP exchange (from the goroutine that
// made it).
func WithObserver(f func(RequestEvent)) Option {
	return func(c *Client) error { c.observer = f; return nil }
}

// NewClient returns a client. A token source is required.
func NewClient(opts ...Option) (*Client, error) {
	base, _ := url.Parse(DefaultBaseURL)
	c := &Client{base: base, http: &http.Client{Timeout: 2 * time.Minute}, retry: RetryPolicy{}.withDefaults(),
		userAgent: "outreach-connector", sleep: sleepContext, attemptTimeout: DefaultAttemptTimeout}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.tokens == nil {
		return nil, errors.New("outreach: a token source is required (WithTokenSource)")
	}
	if c.limiter == nil {
		c.limiter = NewRateLimiter(RateLimiterOptions{})
	}
	return c, nil
}

// BaseURL returns the API base URL, ending in a slash.
func (c *Client) BaseURL() string { return c.base.String() }

// RateLimiter returns the client's limiter.
func (c *Client) RateLimiter() *RateLimiter { return c.limiter }

func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// resolve turns a path relative to the base ("prospects", "/prospects?x")
// or an absolute URL of the same origin into a URL.
func (c *Client) resolve(ref string) (*url.URL, error) {
	u, err := url.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("outreach: bad path %q: %w", ref, err)
	}
	if u.IsAbs() {
		if u.Scheme != c.base.Scheme || u.Host != c.base.Host {
			return nil, fmt.Errorf("outreach: refusing to send the token to %s://%s: not the API's origin", u.Scheme, u.Host)
		}
		return u, nil
	}
	if strings.Contains(u.Path, "..") {
		return nil, fmt.Errorf("outreach: path %q must not contain '..'", ref)
	}
	u.Path = strings.TrimPrefix(u.Path, "/")
	u.Path = strings.TrimPrefix(u.Path, strings.TrimPrefix(c.base.Path, "/"))
	return c.base.ResolveReference(u), nil
}

// request is one logical API call.
type request struct {
	method string
	url    *url.URL
	body   []byte
	// noRetryStatus lists statuses returned at once instead of retried
	// (the pager retries or halves the page on 500 and 502 itself).
	noRetryStatus []int
	// into, when its capacity suffices, receives the answer's body
	// (a buffer reused from an earlier page; see pages).
	into []byte
}

// response is a successful answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// Do sends a request to path (relative to the base URL, or an absolute
// URL of the same origin) with an optional JSON:API body and returns the
// raw body of a 2xx answer. Errors are *APIError, *AuthError or
// *RateLimitError (use errors.As) or transport errors.
func (c *Client) Do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	u, err := c.resolve(path)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, &request{method: method, url: u, body: body})
	if err != nil {
		return nil, err
	}
	return resp.body, nil
}

func retryableMethod(method string, p RetryPolicy) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodDelete, http.MethodOptions:
		return true
	}
	return p.RetryWrites
}

// send runs the request pipeline: rate limiter, token, HTTP, typed errors,
// one refresh on 401, and retries.
func (c *Client) send(ctx context.Context, r *request) (*response, error) {
	p := c.retry
	refreshed := false
	var lastErr error
	maybeDone := false // an earlier attempt of a DELETE may have been done
	for attempt := 1; attempt <= p.MaxAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		tok, err := c.tokens.Token(ctx)
		if err != nil {
			return nil, fmt.Errorf("outreach: get access token: %w", err)
		}
		resp, err := c.exchange(ctx, r, tok, attempt)
		if err == nil {
			return resp, nil
		}
		if maybeDone && errors.Is(err, ErrNotFound) {
			// Gone: maybe deleted by the attempt whose answer was lost,
			// maybe never there; the caller decides.
			return nil, fmt.Errorf("%w (an earlier attempt's answer was lost: it may have deleted the record)", err)
		}
		maybeDone = maybeDone || r.method == http.MethodDelete && MayHaveActed(err)
		lastErr = err
		var auth *AuthError
		if errors.As(err, &auth) && auth.Kind == TokenRejected {
			rf, ok := c.tokens.(Refresher)
			if !ok || refreshed {
				return nil, err
			}
			refreshed = true
			fresh, rerr := rf.Refresh(ctx, tok)
			if rerr != nil {
				return nil, fmt.Errorf("%w (refreshing the token failed: %v)", err, rerr)
			}
			if fresh == tok {
				return nil, err
			}
			attempt-- // a refresh is not a retry
			continue
		}
		wait, retry := c.shouldRetry(r, err, attempt)
		if !retry || attempt == p.MaxAttempts {
			return nil, err
		}
		if err := c.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
	return nil, lastErr
}

// shouldRetry decides whether err is worth another attempt, and after how
// long.
func (c *Client) shouldRetry(r *request, err error, attempt int) (time.Duration, bool) {
	p := c.retry
	backoff := c.backoff(attempt)
	var rl *RateLimitError
	if errors.As(err, &rl) {
		if rl.Reason != "outreach" {
			return 0, false
		}
		// The limiter now knows the window is spent and waits for it.
		return 0, true
	}
	if !retryableMethod(r.method, p) {
		return 0, false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		switch apiErr.StatusCode {
		case 500, 502, 503, 504:
			for _, s := range r.noRetryStatus {
				if s == apiErr.StatusCode {
					return 0, false
				}
			}
			if apiErr.RetryAfter > 0 {
				if apiErr.RetryAfter > p.MaxRetryAfter {
					return 0, false
				}
				return apiErr.RetryAfter, true
			}
			return backoff, true
		}
		return 0, false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || isConnReset(err) {
		return backoff, true
	}
	return 0, false
}

// HeaderEarlierAttemptLost is set (to "true") on Outreach's 404 to a
// DELETE that was retried after an attempt whose answer was lost (a
// timeout, a dropped connection, a 502 or 504): the record is gone, but
// whether that attempt deleted it or it was never there cannot be told.
const HeaderEarlierAttemptLost = "X-Earlier-Attempt-Lost"

// MayHaveActed reports whether Outreach may have carried out a request
// whose attempt failed with err: the request went out and no answer came
// back, or a gateway answered for it. Not when the limiter refused it or
// the connection could not be made.
func MayHaveActed(err error) bool {
	var rl *RateLimitError
	var op *net.OpError
	var apiErr *APIError
	switch {
	case errors.As(err, &rl), errors.As(err, &op) && op.Op == "dial":
		return false
	case errors.As(err, &apiErr):
		return gatewayAnswered(apiErr.StatusCode)
	}
	return true
}

// gatewayAnswered reports whether status is a gateway's answer in
// Outreach's place (502, 504): the request may have been carried out.
func gatewayAnswered(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusGatewayTimeout
}

// backoff is the wait before retry number attempt: exponential, capped,
// with full jitter.
func (c *Client) backoff(attempt int) time.Duration {
	p := c.retry
	d := p.BaseDelay << (attempt - 1)
	if d > p.MaxDelay || d <= 0 {
		d = p.MaxDelay
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

func isConnReset(err error) bool {
	s := err.Error()
	return strings.Contains(s, "connection reset") || strings.Contains(s, "broken pipe") || strings.Contains(s, "EOF")
}

// errAttemptTimeout is the cause of an attempt's context when the attempt
// took longer than the client allows.
var errAttemptTimeout = errors.New("attempt timeout")

// AttemptTimeoutError says that one attempt got no complete answer within
// the client's attempt timeout (see WithAttemptTimeout).
type AttemptTimeoutError struct {
	Method, URL string
	After       time.Duration // the attempt timeout
}

func (e *AttemptTimeoutError) Error() string {
	return fmt.Sprintf("outreach: %s %s: no complete answer within %s (the attempt timeout)", e.Method, e.URL, e.After)
}

// Timeout reports true: the error is a timeout (net.Error).
func (e *AttemptTimeoutError) Timeout() bool { return true }

// Temporary reports true (net.Error).
func (e *AttemptTimeoutError) Temporary() bool { return true }

// exchange sends one HTTP request through the rate limiter, bounded by the
// attempt timeout.
func (c *Client) exchange(ctx context.Context, r *request, tok string, attempt int) (*response, error) {
	if err := c.limiter.acquire(ctx, c.attemptTimeout); err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeoutCause(ctx, c.attemptTimeout, errAttemptTimeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(actx, r.method, r.url.String(), body)
	if err != nil {
		c.limiter.release(nil, 0)
		return nil, fmt.Errorf("outreach: build request: %w", err)
	}
	req.Header.Set("Content-Type", mediaType)
	req.Header.Set("Accept", mediaType)
	req.Header.Set("Authorization", "Bearer "+tok)
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	ev := RequestEvent{Method: r.method, URL: redactedURL(r.url), Attempt: attempt}
	timedOut := func(err error) error {
		if ctx.Err() == nil && errors.Is(context.Cause(actx), errAttemptTimeout) {
			return &AttemptTimeoutError{Method: r.method, URL: ev.URL, After: c.attemptTimeout}
		}
		return err
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	ev.Duration = time.Since(start)
	if err != nil {
		c.limiter.release(nil, 0)
		ev.Err = timedOut(err)
		c.observe(ev)
		if ev.Err != err {
			return nil, ev.Err
		}
		return nil, fmt.Errorf("outreach: %s %s: %w", r.method, ev.URL, err)
	}
	data, err := c.readBody(resp, r.into)
	resp.Body.Close()
	c.limiter.release(resp.Header, resp.StatusCode)
	ev.StatusCode, ev.Duration = resp.StatusCode, time.Since(start)
	if ri := rateFromHeaders(resp.Header, time.Now()); ri.ok {
		ev.RateLimit.Limit, ev.RateLimit.Remaining = ri.limit, ri.remaining
	}
	if err != nil {
		ev.Err = timedOut(err)
		c.observe(ev)
		if ev.Err != err {
			return nil, ev.Err
		}
		return nil, fmt.Errorf("outreach: %s %s: read body: %w", r.method, ev.URL, err)
	}
	c.observe(ev)
	if err := checkResponse(resp, data, time.Now()); err != nil {
		return nil, err
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

func (c *Client) observe(ev RequestEvent) {
	if c.observer != nil {
		c.observer(ev)
	}
}

// redactedURL drops the opaque cursor from a URL for logs.
func redactedURL(u *url.URL) string {
	q := u.Query()
	if q.Has("page[after]") {
		q.Set("page[after]", "…")
	}
	c := *u
	c.RawQuery = q.Encode()
	return c.String()
}

// readBody reads an answer's body whole, into a buffer made the size the
// answer announces, or as big as the last large body (pages are megabytes:
// growing a buffer to that size costs copies and cleared memory).
func (c *Client) readBody(resp *http.Response, into []byte) ([]byte, error) {
	size := resp.ContentLength
	if size <= 0 || size > 1<<30 {
		size = c.bodyHint.Load()
	}
	if size <= 0 {
		size = 512
	}
	if int64(cap(into)) < size+bytes.MinRead {
		// An eighth more than asked: the next body of a chunked answer
		// (no length, sized from the last one) is often a little larger,
		// and growing would copy it and clear twice the size.
		into = make([]byte, 0, size+size/8+bytes.MinRead)
	}
	buf := bytes.NewBuffer(into[:0])
	_, err := buf.ReadFrom(resp.Body)
	if resp.ContentLength <= 0 && buf.Len() >= 1<<16 {
		c.bodyHint.Store(int64(buf.Len()))
	}
	return buf.Bytes(), err
}
