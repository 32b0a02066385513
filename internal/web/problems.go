package web

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/service"
)

// problem is what a page or an API answer says about a failed operation:
// what happened, what to do, and the status that fits. Only our own
// failures are 500; Outreach's trouble is a 502, 503 or 504 that says so.
type problem struct {
	Status int
	// Code is a stable identifier for API clients.
	Code  string
	Title string
	// Message says what happened and what to do.
	Message string
	// Detail is the underlying error, shown below the message.
	Detail string
	// RetryAfter, in seconds, is sent as the Retry-After header when set.
	RetryAfter int
	// Reauthorize offers the Authorize button.
	Reauthorize bool
	// Problems, of an invalid request, name each field and what to fix.
	Problems []fieldProblem
	// State is the connection's state, when it is why the action waits.
	State string
}

// fieldProblem is one problem of a field, as the JSON API and the forms
// show it: the field (as the JSON API names it; "" for the form as a
// whole) and what to fix, a sentence.
type fieldProblem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// fieldProblemOf is a problem of field.
func fieldProblemOf(field, message string) fieldProblem {
	return fieldProblem{Field: field, Message: message}
}

// fieldProblems returns the field problems of a refusal (an
// *service.InvalidError, or the domain's field errors); nil when err has
// none.
func fieldProblems(err error) []fieldProblem {
	var inv *service.InvalidError
	errs := connection.FieldErrorsOf(err)
	if errors.As(err, &inv) {
		errs = inv.Problems
	}
	var out []fieldProblem
	for _, e := range errs {
		// The domain's messages are clauses: made sentences.
		msg := e.Message
		if msg != "" {
			msg = strings.ToUpper(msg[:1]) + msg[1:]
		}
		out = append(out, fieldProblemOf(e.Field, msg))
	}
	return out
}

// messages are the problems' messages.
func messages(ps []fieldProblem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Message
	}
	return out
}

// byField groups the problems' messages by field, for the form to show
// each next to its field.
func byField(ps []fieldProblem) map[string][]string {
	out := map[string][]string{}
	for _, p := range ps {
		out[p.Field] = append(out[p.Field], p.Message)
	}
	return out
}

// writeProblem answers an API request with p: its status, a stable code,
// what happened and what to do (and, for invalid input, each field's
// problem); err, when set, is logged for a 500 and given as "error".
func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, p problem, err error) {
	if p.Status == http.StatusInternalServerError {
		s.log.Error("API request failed", "path", r.URL.Path, "err", err)
	}
	if p.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	text := p.Message
	if err != nil {
		text = err.Error()
	}
	body := map[string]any{"error": text, "code": p.Code, "message": p.Message}
	if p.RetryAfter > 0 {
		body["retry_after"] = p.RetryAfter
	}
	if p.Problems != nil {
		body["problems"] = p.Problems
	}
	if p.State != "" {
		body["state"] = p.State
	}
	writeJSON(w, p.Status, body)
}

// invalidProblem is the answer to a request refused for its fields.
func invalidProblem(ps []fieldProblem) problem {
	return problem{Status: http.StatusUnprocessableEntity, Code: "invalid", Title: "Please correct the form",
		Message: strings.Join(messages(ps), " "), Problems: ps}
}

// classify turns an error of the credential manager into a problem. It
// looks only at the error's types and sentinels (errors.Is, errors.As),
// never at its message, which is shown as the detail.
func classify(err error) problem {
	detail := err.Error()
	var maxErr *http.MaxBytesError
	var invalid *credential.InvalidError
	var up *credential.UpstreamError
	var netErr net.Error
	switch {
	case errors.As(err, &maxErr):
		return problem{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Title: "Form too large",
			Message: "The form sent more than " + strconv.FormatInt(maxErr.Limit/1024, 10) + " KiB. Shorten the values (a name is at most 100 characters) and send it again."}
	case errors.Is(err, credential.ErrBadState):
		return problem{Status: http.StatusBadRequest, Code: "bad_state", Title: "Authorization failed",
			Message: "This authorization link is unknown, expired (10 minutes), already used, or was started in another browser. " +
				"Start again from the credential's page."}
	case errors.Is(err, credential.ErrNotFound):
		return problem{Status: http.StatusNotFound, Code: "not_found", Title: "No such credential",
			Message: "There is no credential with this id or name. It may have been deleted.", Detail: detail}
	case errors.Is(err, credential.ErrNameTaken):
		return problem{Status: http.StatusConflict, Code: "name_taken", Title: "Name taken",
			Message: "A credential with this name exists already; choose another name.", Detail: detail}
	case errors.Is(err, credential.ErrInUse):
		return problem{Status: http.StatusConflict, Code: "in_use", Title: "The credential is in use",
			Message: "Connections use this credential, so it was kept and nothing was revoked. Delete those connections " +
				"(the credential's page lists them) or move them to another credential first.", Detail: detail}
	case errors.As(err, &invalid):
		return problem{Status: http.StatusUnprocessableEntity, Code: "invalid", Title: "Please correct the form",
			Message: strings.Join(invalid.Problems, "; ")}
	case errors.Is(err, credential.ErrNeedsReauthorization):
		return problem{Status: http.StatusConflict, Code: "needs_reauthorization", Title: "Authorize again",
			Message: "Outreach no longer accepts this credential's refresh token (it was revoked, expired after 14 idle days, " +
				"or the app's grant ended), or the credential was never authorized. Nothing is wrong on this server: " +
				"authorize the credential again to get new tokens.", Detail: detail, Reauthorize: true}
	case errors.Is(err, credential.ErrRevokeFailed):
		return problem{Status: http.StatusBadGateway, Code: "revoke_failed", Title: "Outreach did not revoke the token",
			Message: "Outreach did not confirm the revocation, so nothing was changed: the credential and its tokens are kept. " +
				"Try again later, or do it here only (the tokens then stay valid at Outreach until they expire).", Detail: detail}
	case errors.As(err, &up):
		return upstreamProblem(up, detail)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return timeoutProblem(detail)
	case errors.As(err, &netErr):
		return unreachableProblem(detail)
	case errors.Is(err, credential.ErrTryLater):
		return problem{Status: http.StatusServiceUnavailable, Code: "upstream_unavailable", Title: "Outreach cannot be used right now",
			Message: "Outreach's token endpoint cannot be used right now. Nothing is lost: the credential and its tokens are unchanged. " +
				"Try again in a few minutes.", Detail: detail, RetryAfter: 60}
	case errors.Is(err, credential.ErrBusy):
		return problem{Status: http.StatusServiceUnavailable, Code: "busy", Title: "The credential is busy",
			Message: "Another process is refreshing this credential right now. Nothing is lost; try again in a few seconds.",
			Detail:  detail, RetryAfter: 10}
	}
	return problem{Status: http.StatusInternalServerError, Code: "internal", Title: "Something went wrong here",
		Message: "This server failed to do that; the failure is logged. Try again, and report it if it persists.", Detail: detail}
}

// upstreamProblem says what a failed call to Outreach means, from what
// Outreach answered (or why it did not).
func upstreamProblem(up *credential.UpstreamError, detail string) problem {
	status := strconv.Itoa(up.Status)
	switch {
	case up.Timeout:
		return timeoutProblem(detail)
	case up.Status == http.StatusTooManyRequests:
		wait := 60
		if s := int((up.RetryAfter + time.Second - 1) / time.Second); s > 0 && s <= 3600 {
			wait = s
		}
		again := "Try again in a minute."
		if wait != 60 {
			again = "Try again in " + humanSeconds(wait) + "."
		}
		why := "Outreach's rate limit for this user was reached."
		if up.Op == credential.OpRefresh || up.Op == credential.OpExchange {
			why = "Outreach hands out one new token a minute for each user and app, and one was just made (for example by " +
				"connecting or by another refresh)."
		}
		return problem{Status: http.StatusServiceUnavailable, Code: "upstream_rate_limited", Title: "Outreach asks us to wait",
			Message: why + " Nothing is lost: the credential and its current token are unchanged. " + again,
			Detail:  detail, RetryAfter: wait}
	case up.Status >= 500:
		wait := 120
		if s := int((up.RetryAfter + time.Second - 1) / time.Second); s > 0 && s <= 3600 {
			wait = s
		}
		return problem{Status: http.StatusBadGateway, Code: "upstream_error", Title: "Outreach had a problem",
			Message: "Outreach answered with a server error (" + status + "). Nothing changed here, and a token that was valid stays valid. " +
				"Try again in a few minutes; if it keeps happening, check Outreach's status page.", Detail: detail, RetryAfter: wait}
	case up.Status == http.StatusUnauthorized || up.Status == http.StatusForbidden || up.Status == http.StatusBadRequest:
		return problem{Status: http.StatusBadGateway, Code: "upstream_refused", Title: "Outreach refused the request",
			Message: "Outreach refused the request (" + status + "). Check the credential's client id and secret against the app in " +
				"Outreach, and authorize it again if needed.", Detail: detail, Reauthorize: true}
	case up.Status != 0:
		return problem{Status: http.StatusBadGateway, Code: "upstream_error", Title: "Unexpected answer from Outreach",
			Message: "Outreach answered " + status + ". Nothing changed here. Try again; if it keeps happening, check the API base URL of the credential.",
			Detail:  detail}
	case up.Unreachable:
		return unreachableProblem(detail)
	}
	return problem{Status: http.StatusBadGateway, Code: "upstream_error", Title: "Unexpected answer from Outreach",
		Message: "Outreach's answer could not be read. Nothing changed here. Try again; if it keeps happening, check the API base URL of the credential.",
		Detail:  detail}
}

func timeoutProblem(detail string) problem {
	return problem{Status: http.StatusGatewayTimeout, Code: "upstream_timeout", Title: "Outreach did not answer in time",
		Message: "Outreach did not answer within the time limit. Nothing changed here, and a token that was valid stays valid. " +
			"Try again in a few minutes; if it keeps happening, check your network and Outreach's status page.", Detail: detail}
}

func unreachableProblem(detail string) problem {
	return problem{Status: http.StatusBadGateway, Code: "upstream_unreachable", Title: "Outreach could not be reached",
		Message: "The connection to Outreach failed. Nothing changed here. Check the network and the credential's API base URL, then try again.",
		Detail:  detail}
}
