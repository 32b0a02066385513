package outreach

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// ErrNotFound matches (with errors.Is) an APIError for a missing record or
// route (404).
var ErrNotFound = errors.New("outreach: not found")

// ErrorObject is one JSON:API error object.
type ErrorObject struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Code   string `json:"code,omitempty"`
	Source struct {
		Pointer   string `json:"pointer,omitempty"`
		Parameter string `json:"parameter,omitempty"`
	} `json:"source"`
}

// APIError is an unsuccessful answer from Outreach. Outreach's JSON:API
// error documents are decoded into Errors; other bodies (gateway pages)
// leave Errors empty and Body holds the start of the body.
type APIError struct {
	StatusCode int
	Method     string
	URL        string // without the query string
	Errors     []ErrorObject
	Body       string
	// RetryAfter is the wait the server asked for, when it said one.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "outreach: %s %s: %d %s", e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	for _, o := range e.Errors {
		b.WriteString(": ")
		if o.ID != "" {
			b.WriteString(o.ID)
			b.WriteString(": ")
		}
		switch {
		case o.Detail != "":
			b.WriteString(o.Detail)
		default:
			b.WriteString(o.Title)
		}
		if o.Source.Pointer != "" {
			fmt.Fprintf(&b, " (at %s)", o.Source.Pointer)
		}
		if o.Source.Parameter != "" {
			fmt.Fprintf(&b, " (parameter %s)", o.Source.Parameter)
		}
	}
	return b.String()
}

// Is reports ErrNotFound for 404s.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && e.StatusCode == http.StatusNotFound
}

// ErrorID returns the id of the first error object, such as
// "validationError", or "".
func (e *APIError) ErrorID() string {
	if len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].ID
}

// RateLimitError says Outreach's rate limit (or the client's own quota or
// budget) stops a request. Reset is when the window ends.
type RateLimitError struct {
	Limit     int
	Remaining int
	Reset     time.Time
	// Reason tells who stopped the request: "outreach" for a 429 answer,
	// "quota" when the client's quota limit would be passed and the wait is
	// longer than allowed, "budget" when the run's request budget is spent.
	Reason string
	Err    *APIError // the 429 answer, when there was one
}

func (e *RateLimitError) Error() string {
	switch e.Reason {
	case "budget":
		return fmt.Sprintf("outreach: the request budget of this run (%d requests) is spent", e.Limit)
	case "quota":
		return fmt.Sprintf("outreach: the quota limit allows no more requests until %s (limit %d, remaining %d)", e.Reset.Format(time.RFC3339), e.Limit, e.Remaining)
	}
	return fmt.Sprintf("outreach: rate limit of %d requests exceeded; it resets at %s", e.Limit, e.Reset.Format(time.RFC3339))
}

func (e *RateLimitError) Unwrap() error {
	if e.Err == nil {
		return nil
	}
	return e.Err
}

// AuthErrorKind tells why Outreach refused a token.
type AuthErrorKind int

// The kinds of authorization failure.
const (
	// TokenRejected: 401, the access token is expired, revoked or not a
	// token; refreshing it may help.
	TokenRejected AuthErrorKind = iota + 1
	// MissingScope: 403 unauthorizedOauthScope, the credential was not
	// authorized for the scope the request needs; re-authorize with it.
	MissingScope
	// GovernanceDenied: 403 unauthorizedRequest, the Outreach user may not
	// do this whatever the scopes.
	GovernanceDenied
)

func (k AuthErrorKind) String() string {
	switch k {
	case TokenRejected:
		return "token rejected"
	case MissingScope:
		return "missing scope"
	case GovernanceDenied:
		return "denied by governance"
	}
	return "unknown"
}

// AuthError is a 401 or 403 answer.
type AuthError struct {
	Kind AuthErrorKind
	// Scope is the scope a MissingScope error names, when it names one.
	Scope string
	Err   *APIError
}

func (e *AuthError) Error() string {
	if e.Kind == MissingScope && e.Scope != "" {
		return fmt.Sprintf("outreach: missing scope %s: %v", e.Scope, e.Err)
	}
	return fmt.Sprintf("outreach: %s: %v", e.Kind, e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

// checkResponse turns an unsuccessful response into a typed error: an
// *AuthError for 401 and 403, a *RateLimitError for 429, otherwise an
// *APIError. The body must already be read.
func checkResponse(resp *http.Response, body []byte, now time.Time) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	u := *resp.Request.URL
	u.RawQuery = ""
	apiErr := &APIError{StatusCode: resp.StatusCode, Method: resp.Request.Method, URL: u.String()}
	var doc struct {
		Errors []json.RawMessage `json:"errors"`
	}
	if json.Unmarshal(body, &doc) == nil && len(doc.Errors) > 0 {
		for _, raw := range doc.Errors {
			var o ErrorObject
			var alt struct {
				Details string `json:"details"` // Outreach's 415 spells it this way
			}
			json.Unmarshal(raw, &o)
			json.Unmarshal(raw, &alt)
			if o.Detail == "" {
				o.Detail = alt.Details
			}
			apiErr.Errors = append(apiErr.Errors, o)
		}
	} else {
		var gw struct {
			Error       string `json:"error"`
			Description string `json:"description"`
		}
		if json.Unmarshal(body, &gw) == nil && gw.Error != "" {
			apiErr.Errors = []ErrorObject{{Title: gw.Error, Detail: strings.TrimSpace(gw.Error + " " + gw.Description)}}
		} else {
			apiErr.Body = truncate(string(body), 200)
		}
	}
	if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), serverNow(resp.Header, now)); ok {
		apiErr.RetryAfter = d
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return &AuthError{Kind: TokenRejected, Err: apiErr}
	case http.StatusForbidden:
		switch apiErr.ErrorID() {
		case "unauthorizedOauthScope":
			return &AuthError{Kind: MissingScope, Scope: quotedScope(apiErr.Errors[0].Detail), Err: apiErr}
		case "unauthorizedRequest":
			return &AuthError{Kind: GovernanceDenied, Err: apiErr}
		}
	case http.StatusTooManyRequests:
		rl := rateFromHeaders(resp.Header, now)
		return &RateLimitError{Limit: rl.limit, Remaining: 0, Reset: rl.reset, Reason: "outreach", Err: apiErr}
	}
	return apiErr
}

// quotedScope finds 'prospects.read' in "... the required scope 'prospects.read'."
func quotedScope(detail string) string {
	i := strings.IndexByte(detail, '\'')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(detail[i+1:], '\'')
	if j < 0 {
		return ""
	}
	return detail[i+1 : i+1+j]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
