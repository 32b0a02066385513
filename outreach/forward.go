package outreach

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// ForwardRequest is a request passed to Outreach as the caller wrote it
// (the authenticating proxy of `serve`), rather than built by the client.
type ForwardRequest struct {
	Method string
	// Path is relative to the base URL ("prospects?page[size]=5"), or an
	// absolute URL of the API's origin (a links.next).
	Path string
	// Header holds the headers to send. The client sets Authorization,
	// User-Agent, and Accept and Content-Type when they are missing; it
	// never sends Cookie.
	Header http.Header
	// Body is streamed to Outreach; nil for none. ContentLength is its
	// length when known, else -1.
	Body          io.Reader
	ContentLength int64
	// GetBody, when set, returns a fresh copy of the body, so that the
	// request can be sent again (after a refreshed token, or a retry).
	// A request with a Body and no GetBody is sent at most once.
	GetBody func() (io.Reader, error)
	// Retry allows retrying on timeouts, connection failures and 5xx: give
	// it only for requests that are safe to repeat (GET, HEAD, DELETE).
	// A 429 from Outreach and a 401 that a token refresh cures are
	// retried whenever the body can be sent again, since Outreach did not
	// act on them.
	Retry bool
}

// Forward sends fr through the client's pipeline (rate limiter → token →
// HTTP → retry rules) and returns Outreach's answer, its body unread: the
// caller must close it. Any status comes back as a response, 4xx and 5xx
// included, except a 401 that survives a refresh when the body cannot be
// sent again, which also comes back as is. Errors are what stopped the
// request from getting an answer: a *RateLimitError (quota or budget: the
// limiter refused to wait, see WithMaxWait), an *AttemptTimeoutError, a
// token error, or a transport error.
//
// A bound given with WithMaxWait covers every wait of the request together:
// for the rate-limit window, between retries, and a Retry-After, which is
// not waited when it would go past the bound (the answer that asked for it
// comes back).
//
// Redirects are followed only within the API's origin; a redirect elsewhere
// comes back as the 3xx answer, and the token is never sent to another host.
func (c *Client) Forward(ctx context.Context, fr *ForwardRequest) (*http.Response, error) {
	u, err := c.resolve(fr.Path)
	if err != nil {
		return nil, err
	}
	replayable := fr.Body == nil || fr.GetBody != nil
	p := c.retry
	refreshed := false
	maybeDone := false // an earlier attempt of a DELETE may have been done
	budget := newWaitBudget(ctx)
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		body := fr.Body
		if attempt > 1 && fr.GetBody != nil {
			if body, err = fr.GetBody(); err != nil {
				return nil, fmt.Errorf("outreach: read the body again: %w", err)
			}
		}
		tok, err := c.tokens.Token(ctx)
		if err != nil {
			return nil, fmt.Errorf("outreach: get access token: %w", err)
		}
		resp, err := c.forwardOnce(ctx, budget, fr, u, body, tok, attempt)
		last := attempt >= p.MaxAttempts
		if err != nil {
			var ne net.Error
			var slow *AttemptTimeoutError
			// An attempt that timed out is not repeated: its caller has
			// waited a whole attempt timeout already, and Outreach, hanging,
			// would likely hang again.
			retry := fr.Retry && replayable && !last && (errors.As(err, &ne) || isConnReset(err)) && !errors.As(err, &slow)
			if !retry {
				return nil, err
			}
			maybeDone = maybeDone || fr.Method == http.MethodDelete && MayHaveActed(err)
			if err := c.sleep(ctx, budget.cut(c.backoff(attempt))); err != nil {
				return nil, err
			}
			continue
		}
		if maybeDone && resp.StatusCode == http.StatusNotFound {
			resp.Header.Set(HeaderEarlierAttemptLost, "true")
			return resp, nil
		}
		var wait time.Duration
		switch {
		case resp.StatusCode == http.StatusUnauthorized && replayable && !refreshed:
			rf, ok := c.tokens.(Refresher)
			if !ok {
				return resp, nil
			}
			fresh, rerr := rf.Refresh(ctx, tok)
			if rerr != nil || fresh == tok {
				return resp, nil
			}
			refreshed = true
			attempt-- // a refresh is not a retry
		case resp.StatusCode == http.StatusTooManyRequests && replayable && !last:
			// The limiter has learnt that the window is spent: the next
			// acquire waits for it, or refuses within the caller's bound.
		case resp.StatusCode >= 500 && resp.StatusCode <= 504 && resp.StatusCode != 501 && fr.Retry && replayable && !last:
			maybeDone = maybeDone || fr.Method == http.MethodDelete && gatewayAnswered(resp.StatusCode)
			wait = c.backoff(attempt)
			if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), serverNow(resp.Header, time.Now())); ok {
				if d > p.MaxRetryAfter || !budget.fits(d) {
					return resp, nil // the caller hears when to come back
				}
				wait = d
			}
			wait = budget.cut(wait)
		default:
			return resp, nil
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err := c.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// waitBudget is a caller's bound on waiting (WithMaxWait), spent across the
// attempts of one forwarded request: the waits for the rate-limit window,
// the backoffs and the Retry-After waits together stay within it. Without
// a bound it bounds nothing.
type waitBudget struct {
	bounded bool
	left    time.Duration
}

func newWaitBudget(ctx context.Context) *waitBudget {
	d, ok := ctx.Value(maxWaitKey{}).(time.Duration)
	return &waitBudget{bounded: ok, left: max(d, 0)}
}

// narrow bounds ctx's wait for the window by what is left.
func (b *waitBudget) narrow(ctx context.Context) context.Context {
	if !b.bounded {
		return ctx
	}
	return WithMaxWait(ctx, b.left)
}

// fits reports whether a wait of d is within what is left.
func (b *waitBudget) fits(d time.Duration) bool { return !b.bounded || d <= b.left }

// cut spends d, or what is left of the budget when d is more, and returns
// what it spent.
func (b *waitBudget) cut(d time.Duration) time.Duration {
	if !b.bounded {
		return d
	}
	d = min(max(d, 0), b.left)
	b.left -= d
	return d
}

// forwardOnce is one attempt: the limiter's permit, the exchange up to the
// answer's headers (bounded by the attempt timeout), and the permit's
// release with what the headers say. The body streams afterwards, bounded
// by ctx alone.
func (c *Client) forwardOnce(ctx context.Context, budget *waitBudget, fr *ForwardRequest, u *url.URL, body io.Reader, tok string, attempt int) (*http.Response, error) {
	began := time.Now()
	err := c.limiter.acquire(budget.narrow(ctx), c.attemptTimeout)
	budget.cut(time.Since(began))
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(c.attemptTimeout, func() { cancel(errAttemptTimeout) })
	req, err := http.NewRequestWithContext(actx, fr.Method, u.String(), body)
	if err != nil {
		timer.Stop()
		cancel(nil)
		c.limiter.release(nil, 0)
		return nil, fmt.Errorf("outreach: build request: %w", err)
	}
	if body != nil {
		req.ContentLength = fr.ContentLength
		if fr.ContentLength == 0 {
			req.Body = http.NoBody
		}
	}
	for k, vs := range fr.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Authorization", "Cookie", "Host", "Content-Length", "Connection", "Transfer-Encoding":
			continue
		}
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", mediaType)
	}
	if req.Header.Get("Content-Type") == "" && body != nil && fr.ContentLength != 0 {
		req.Header.Set("Content-Type", mediaType)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	hc := *c.http
	hc.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if r.URL.Scheme != c.base.Scheme || r.URL.Host != c.base.Host || len(via) >= 5 {
			return http.ErrUseLastResponse
		}
		return nil
	}
	// The client's overall timeout would cut a long stream; the attempt
	// timeout bounds the wait for headers instead.
	hc.Timeout = 0
	ev := RequestEvent{Method: fr.Method, URL: redactedURL(u), Attempt: attempt}
	start := time.Now()
	resp, err := hc.Do(req)
	if !timer.Stop() && err == nil {
		// The attempt timeout fired as the headers came: the body is cut.
		resp.Body.Close()
		err = errAttemptTimeout
	}
	ev.Duration = time.Since(start)
	if err != nil {
		cancel(nil)
		c.limiter.release(nil, 0)
		if ctx.Err() == nil && errors.Is(context.Cause(actx), errAttemptTimeout) {
			err = &AttemptTimeoutError{Method: fr.Method, URL: ev.URL, After: c.attemptTimeout}
		} else {
			err = fmt.Errorf("outreach: %s %s: %w", fr.Method, ev.URL, err)
		}
		ev.Err = err
		c.observe(ev)
		return nil, err
	}
	c.limiter.release(resp.Header, resp.StatusCode)
	ev.StatusCode = resp.StatusCode
	if ri := rateFromHeaders(resp.Header, time.Now()); ri.ok {
		ev.RateLimit.Limit, ev.RateLimit.Remaining = ri.limit, ri.remaining
	}
	c.observe(ev)
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: func() { cancel(nil) }}
	return resp, nil
}

// cancelOnClose ends an attempt's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel func()
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
