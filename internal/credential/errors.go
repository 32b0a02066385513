package credential

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// The operations an UpstreamError names: the calls to Outreach.
const (
	OpRefresh  = "refresh"  // POST /oauth/token with a refresh token
	OpExchange = "exchange" // POST /oauth/token with an authorization code
	OpRevoke   = "revoke"   // POST /oauth/revoke
	OpIdentity = "identity" // GET /api/v2, which names the token's user and org
)

// UpstreamError is a failed call to Outreach's token, revoke or identity
// endpoint: what Outreach answered, or why it did not. Callers classify
// it by its fields, never by its message. It never holds a secret, token,
// authorization code or response body; Err is the transport's cause (a
// *net.OpError, context.DeadlineExceeded, ...) or nil when Outreach
// answered.
//
// The manager wraps it together with the sentinel that says what it
// means for the credential: ErrTryLater (the same call works later),
// ErrNeedsReauthorization (Outreach refused the refresh token or the
// app) or ErrRevokeFailed.
type UpstreamError struct {
	// Op is the call: OpRefresh, OpExchange, OpRevoke or OpIdentity.
	Op string
	// URL is the endpoint called (without query).
	URL string
	// Status is the HTTP status Outreach answered; 0 when it did not
	// answer (Timeout, Unreachable) or its answer could not be read.
	Status int
	// Code is the OAuth error code of the answer (invalid_grant,
	// rate_limit_exceeded, ...), when it had one.
	Code string
	// RetryAfter is how long Outreach asked us to wait (its Retry-After
	// header, in seconds or as a date); 0 when it did not say.
	RetryAfter time.Duration
	// Timeout: Outreach did not answer within the time limit.
	Timeout bool
	// Unreachable: the connection failed (refused, reset, DNS, TLS).
	Unreachable bool
	// Err is the cause, without secrets; nil when Outreach answered.
	Err error
}

func (e *UpstreamError) Error() string {
	var b strings.Builder
	switch e.Op {
	case OpRefresh:
		b.WriteString("token endpoint (refresh)")
	case OpExchange:
		b.WriteString("token endpoint (code exchange)")
	case OpRevoke:
		b.WriteString("revoke endpoint")
	case OpIdentity:
		b.WriteString("identity lookup (GET /api/v2)")
	default:
		b.WriteString("Outreach")
	}
	if e.URL != "" {
		b.WriteString(" " + e.URL)
	}
	switch {
	case e.Status != 0:
		fmt.Fprintf(&b, " answered %d", e.Status)
		if e.Code != "" {
			b.WriteString(" (" + e.Code + ")")
		} else if e.Op != OpIdentity {
			b.WriteString(" (no OAuth error code)")
		}
	case e.Timeout:
		b.WriteString(" did not answer in time")
	case e.Unreachable:
		b.WriteString(" is unreachable")
	default:
		b.WriteString(" failed")
	}
	if e.Err != nil && e.Status == 0 {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

func (e *UpstreamError) Unwrap() error { return e.Err }

// Transient reports whether the same call may work later: a 429, a 5xx,
// a timeout or a failed connection.
func (e *UpstreamError) Transient() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500 || e.Timeout || e.Unreachable
}

// errUnreadable stands for an answer that could not be read; the
// original error may quote the answer, so it is not kept.
var errUnreadable = errors.New("the answer could not be read")

// upstreamFromOAuth makes an UpstreamError of a failure of the oauth2
// package's token request.
func upstreamFromOAuth(op, endpoint string, err error, now time.Time) *UpstreamError {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		ue := &UpstreamError{Op: op, URL: endpoint, Code: safeCode(re.ErrorCode)}
		if re.Response != nil {
			ue.Status = re.Response.StatusCode
			ue.RetryAfter = retryAfter(re.Response.Header, now)
		}
		if ue.Status == 0 {
			ue.Err = errUnreadable
		}
		return ue
	}
	return transportError(op, endpoint, err)
}

// transportError makes an UpstreamError of a failed HTTP round trip
// (http.Client.Do's error).
func transportError(op, endpoint string, err error) *UpstreamError {
	ue := &UpstreamError{Op: op, URL: endpoint}
	var uerr *url.Error
	if !errors.As(err, &uerr) {
		// Not the transport (the oauth2 package could not read the
		// answer, for example): its message may quote the answer.
		ue.Err = errUnreadable
		return ue
	}
	ue.Err = uerr.Err // without the URL, which the message has already
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		ue.Timeout = true
	default:
		ue.Unreachable = true
	}
	return ue
}

// answerError makes an UpstreamError of an answer other than the one
// expected.
func answerError(op, endpoint string, resp *http.Response, code string, now time.Time) *UpstreamError {
	return &UpstreamError{Op: op, URL: endpoint, Status: resp.StatusCode, Code: safeCode(code), RetryAfter: retryAfter(resp.Header, now)}
}

// safeCode keeps an OAuth error code only when it looks like one (RFC
// 6749 codes are short, lower case and underscores), so nothing a server
// echoes reaches a message.
func safeCode(code string) string {
	if code == "" || len(code) > 64 {
		return ""
	}
	for _, r := range code {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '_' && r != '-' && r != '.' {
			return ""
		}
	}
	return code
}

// retryAfter reads a Retry-After header: seconds, an HTTP date, or the
// ISO 8601 time Outreach sends during maintenance. It returns 0 when
// there is none, or it is in the past or more than a day ahead.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else if t, err := time.Parse(time.RFC3339, v); err == nil {
		d = t.Sub(now)
	} else if t, err := time.Parse("2006-01-02T15:04:05", v); err == nil {
		d = t.Sub(now)
	}
	if d <= 0 || d > 24*time.Hour {
		return 0
	}
	return d
}

// InvalidError is input a person must correct: each problem says what to
// fix.
type InvalidError struct {
	Problems []string
}

func (e *InvalidError) Error() string { return "credential: " + strings.Join(e.Problems, "; ") }

// ErrBusy: another process holds the credential's refresh lease and has
// not finished; the same call works in a few seconds.
var ErrBusy = errors.New("credential: another process holds the refresh lease and has not finished; try again in a few seconds")

// alsoWrapping is err with cause added to its chain, for errors.Is and
// errors.As, without changing its message.
type alsoWrapping struct {
	err, cause error
}

func (e *alsoWrapping) Error() string   { return e.err.Error() }
func (e *alsoWrapping) Unwrap() []error { return []error{e.err, e.cause} }
