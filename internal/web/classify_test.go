package web_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/web"
)

// reworded is an error whose message is whatever a test says, wrapping
// err: what the credential package's errors could read like after any
// rewording.
type reworded struct {
	msg string
	err error
}

func (r reworded) Error() string { return r.msg }
func (r reworded) Unwrap() error { return r.err }

// TestClassifyByTypeNotByMessage: upstream trouble is recognised from the
// error's type and fields, whatever its message says; a message that
// merely reads like upstream trouble is not.
func TestClassifyByTypeNotByMessage(t *testing.T) {
	const misleading = "token endpoint answered 503 (no OAuth error code): unreachable: i/o timeout; try again in 7 seconds"
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter int
	}{
		{"429 with Retry-After", reworded{"la pasarela pidió paciencia",
			&credential.UpstreamError{Op: credential.OpRefresh, Status: 429, RetryAfter: 42 * time.Second}},
			http.StatusServiceUnavailable, "upstream_rate_limited", 42},
		{"429 without Retry-After", reworded{misleading, &credential.UpstreamError{Op: credential.OpExchange, Status: 429}},
			http.StatusServiceUnavailable, "upstream_rate_limited", 60},
		{"429 wrapped with ErrTryLater", fmt.Errorf("anything: %w: %w", credential.ErrTryLater,
			&credential.UpstreamError{Op: credential.OpRefresh, Status: 429, RetryAfter: 1500 * time.Millisecond}),
			http.StatusServiceUnavailable, "upstream_rate_limited", 2},
		{"5xx", reworded{"zzz", &credential.UpstreamError{Op: credential.OpRefresh, Status: 502}},
			http.StatusBadGateway, "upstream_error", 120},
		{"5xx with Retry-After", reworded{"zzz", &credential.UpstreamError{Op: credential.OpIdentity, Status: 503, RetryAfter: 30 * time.Second}},
			http.StatusBadGateway, "upstream_error", 30},
		{"in use by connections", fmt.Errorf("credential acme: %w: \"nightly\"", credential.ErrInUse), http.StatusConflict, "in_use", 0},
		{"timeout", reworded{"slow", &credential.UpstreamError{Op: credential.OpRefresh, Timeout: true, Err: errors.New("whatever the transport said")}},
			http.StatusGatewayTimeout, "upstream_timeout", 0},
		{"unreachable", reworded{"answered 429", &credential.UpstreamError{Op: credential.OpRefresh, Unreachable: true, Err: errors.New("no route")}},
			http.StatusBadGateway, "upstream_unreachable", 0},
		{"refused client", reworded{"nope", &credential.UpstreamError{Op: credential.OpExchange, Status: 401, Code: "invalid_client"}},
			http.StatusBadGateway, "upstream_refused", 0},
		{"other status", reworded{"nope", &credential.UpstreamError{Op: credential.OpRefresh, Status: 404}},
			http.StatusBadGateway, "upstream_error", 0},
		{"unreadable answer", reworded{"nope", &credential.UpstreamError{Op: credential.OpRefresh, Err: errors.New("garbled")}},
			http.StatusBadGateway, "upstream_error", 0},
		{"refused refresh token", fmt.Errorf("reworded entirely: %w (%w)", credential.ErrNeedsReauthorization,
			&credential.UpstreamError{Op: credential.OpRefresh, Status: 400, Code: "invalid_grant"}),
			http.StatusConflict, "needs_reauthorization", 0},
		{"revoke not confirmed", fmt.Errorf("x: %w: %w", credential.ErrRevokeFailed,
			&credential.UpstreamError{Op: credential.OpRevoke, Status: 503}),
			http.StatusBadGateway, "revoke_failed", 0},
		{"lease busy", reworded{"hold on", credential.ErrBusy}, http.StatusServiceUnavailable, "busy", 10},
		{"invalid input", reworded{"whatever", &credential.InvalidError{Problems: []string{"client id is required"}}},
			http.StatusUnprocessableEntity, "invalid", 0},

		// Text alone means nothing: these are our own failures.
		{"text that reads like a 429", errors.New("credential c: token endpoint answered 429 (rate_limit_exceeded): try again in 42 seconds"),
			http.StatusInternalServerError, "internal", 0},
		{"text that reads like trouble", errors.New(misleading), http.StatusInternalServerError, "internal", 0},
		{"text that reads like validation", errors.New("credential: name is required"), http.StatusInternalServerError, "internal", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, code, retryAfter := web.Classify(tt.err)
			if status != tt.status || code != tt.code || retryAfter != tt.retryAfter {
				t.Errorf("classify(%q) = %d %s (Retry-After %d), want %d %s (%d)", tt.err, status, code, retryAfter, tt.status, tt.code, tt.retryAfter)
			}
		})
	}
}
