package credential_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// upstreamOf returns the *credential.UpstreamError in err's chain.
func upstreamOf(t *testing.T, err error) *credential.UpstreamError {
	t.Helper()
	var ue *credential.UpstreamError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v (%T) holds no *credential.UpstreamError", err, err)
	}
	return ue
}

// noSecrets fails when msg shows any of secrets.
func noSecrets(t *testing.T, msg string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("the error shows a secret (%.8s...): %s", s, msg)
		}
	}
}

// blackhole is a loopback address that accepts connections and never
// answers; close the listener to end them.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return "http://" + ln.Addr().String()
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// TestUpstreamConditionsAreTyped: every way a call to Outreach's token,
// revoke or identity endpoint fails comes back as an *UpstreamError whose
// fields say what happened, wrapped with the sentinel that says what it
// means for the credential, and with no secret in its message.
func TestUpstreamConditionsAreTyped(t *testing.T) {
	e := newEnv(t, sandbox.Options{})
	ctx := context.Background()
	app := e.srv.Apps()[0]
	tokenURL := e.srv.URL + "/oauth/token"
	// addAt creates a credential on Outreach at base holding tokens whose
	// access token has expired, so the next Token call refreshes.
	addAt := func(t *testing.T, name, base string) *credential.Record {
		t.Helper()
		rec, err := e.manager.Create(ctx, credential.NewCredential{Name: name, ClientID: app.ClientID, ClientSecret: app.ClientSecret,
			Environment: credential.Production, APIBaseURL: base + "/api/v2", RedirectURI: app.RedirectURIs[0]})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.manager.SetTokensForTest(ctx, rec.ID, "access-"+name, "refresh-"+name, e.srv.Clock().Now().Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		return rec
	}
	// A short time limit, for the cases where Outreach never answers.
	impatient, err := credential.NewManager(credential.Options{Store: e.db, Keyring: e.keys, Now: e.srv.Clock().Now,
		HTTPClient: &http.Client{Timeout: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("429 from the token endpoint", func(t *testing.T) {
		e.srv.Clock().Advance(2 * time.Minute)
		e.create(t, "throttled")
		rec := e.authorize(t, "throttled") // mints a token now: the next one is a minute away
		access, _ := e.manager.Token(ctx, rec.ID)
		refresh, _ := e.manager.RefreshTokenForTest(ctx, rec.ID)
		_, err := e.manager.RefreshNow(ctx, rec.ID)
		if !errors.Is(err, credential.ErrTryLater) {
			t.Fatalf("RefreshNow within a minute of a mint: %v, want ErrTryLater", err)
		}
		ue := upstreamOf(t, err)
		want := credential.UpstreamError{Op: credential.OpRefresh, URL: tokenURL, Status: 429, Code: "rate_limit_exceeded", RetryAfter: time.Minute}
		if ue.Op != want.Op || ue.URL != want.URL || ue.Status != want.Status || ue.Code != want.Code || ue.RetryAfter != want.RetryAfter ||
			ue.Timeout || ue.Unreachable || ue.Err != nil || !ue.Transient() {
			t.Errorf("UpstreamError = %+v, want %+v", *ue, want)
		}
		noSecrets(t, err.Error(), app.ClientSecret, access, refresh)
	})

	t.Run("5xx from the token endpoint", func(t *testing.T) {
		rec := addAt(t, "gateway", e.srv.URL)
		e.srv.SetFaults(sandbox.Faults{TokenErrors: 1})
		defer e.srv.SetFaults(sandbox.Faults{})
		_, err := e.manager.Token(ctx, rec.ID)
		if !errors.Is(err, credential.ErrTryLater) {
			t.Fatalf("Token with the token endpoint answering 503: %v, want ErrTryLater", err)
		}
		ue := upstreamOf(t, err)
		if ue.Op != credential.OpRefresh || ue.Status != http.StatusServiceUnavailable || ue.Code != "" || ue.Timeout || ue.Unreachable || !ue.Transient() {
			t.Errorf("UpstreamError = %+v, want a refresh answered 503", *ue)
		}
		noSecrets(t, err.Error(), app.ClientSecret, "access-gateway", "refresh-gateway")
	})

	t.Run("refused refresh token", func(t *testing.T) {
		rec := addAt(t, "refused", e.srv.URL) // the sandbox never issued refresh-refused
		_, err := e.manager.Token(ctx, rec.ID)
		if !errors.Is(err, credential.ErrNeedsReauthorization) || errors.Is(err, credential.ErrTryLater) {
			t.Fatalf("Token with a refresh token Outreach refuses: %v, want ErrNeedsReauthorization", err)
		}
		ue := upstreamOf(t, err)
		if ue.Op != credential.OpRefresh || ue.Status != http.StatusBadRequest || ue.Code != "invalid_grant" || ue.Transient() {
			t.Errorf("UpstreamError = %+v, want a refresh answered 400 invalid_grant", *ue)
		}
		noSecrets(t, err.Error(), app.ClientSecret, "access-refused", "refresh-refused")
	})

	t.Run("token endpoint timeout", func(t *testing.T) {
		rec := addAt(t, "silent", blackhole(t))
		_, err := impatient.Token(ctx, rec.ID)
		if !errors.Is(err, credential.ErrTryLater) {
			t.Fatalf("Token with a token endpoint that never answers: %v, want ErrTryLater", err)
		}
		ue := upstreamOf(t, err)
		if ue.Op != credential.OpRefresh || !ue.Timeout || ue.Unreachable || ue.Status != 0 || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("UpstreamError = %+v, want a refresh that timed out", *ue)
		}
		noSecrets(t, err.Error(), app.ClientSecret, "access-silent", "refresh-silent")
	})

	t.Run("token endpoint unreachable", func(t *testing.T) {
		rec := addAt(t, "gone", closedPort(t))
		_, err := e.manager.Token(ctx, rec.ID)
		if !errors.Is(err, credential.ErrTryLater) {
			t.Fatalf("Token with nothing listening: %v, want ErrTryLater", err)
		}
		ue := upstreamOf(t, err)
		var opErr *net.OpError
		if ue.Op != credential.OpRefresh || !ue.Unreachable || ue.Timeout || ue.Status != 0 || !errors.As(err, &opErr) {
			t.Errorf("UpstreamError = %+v, want an unreachable refresh with the *net.OpError as cause", *ue)
		}
		noSecrets(t, err.Error(), app.ClientSecret, "access-gone", "refresh-gone")

		err = e.manager.Revoke(ctx, rec.ID)
		if !errors.Is(err, credential.ErrRevokeFailed) {
			t.Fatalf("Revoke with nothing listening: %v, want ErrRevokeFailed", err)
		}
		if ue := upstreamOf(t, err); ue.Op != credential.OpRevoke || !ue.Unreachable || !strings.HasSuffix(ue.URL, "/oauth/revoke") {
			t.Errorf("UpstreamError = %+v, want an unreachable revoke", *ue)
		}
		noSecrets(t, err.Error(), app.ClientSecret, "access-gone", "refresh-gone")
	})

	t.Run("revoke refused", func(t *testing.T) {
		rec := addAt(t, "wrong-secret", e.srv.URL)
		wrong := "not-the-client-secret"
		if _, _, err := e.manager.Update(ctx, rec.ID, credential.Changes{ClientSecret: &wrong}); err != nil {
			t.Fatal(err)
		}
		err := e.manager.Revoke(ctx, rec.ID)
		if !errors.Is(err, credential.ErrRevokeFailed) {
			t.Fatalf("Revoke with a wrong client secret: %v, want ErrRevokeFailed", err)
		}
		ue := upstreamOf(t, err)
		if ue.Op != credential.OpRevoke || ue.Status != http.StatusUnauthorized || ue.Code != "invalid_client" || ue.Transient() {
			t.Errorf("UpstreamError = %+v, want a revoke answered 401 invalid_client", *ue)
		}
		noSecrets(t, err.Error(), wrong, "access-wrong-secret", "refresh-wrong-secret")
	})

	t.Run("5xx from the code exchange", func(t *testing.T) {
		e.create(t, "exchange")
		authURL, browser, err := e.manager.BeginAuthorize(ctx, "exchange")
		if err != nil {
			t.Fatal(err)
		}
		cb := consent(t, e.srv, authURL, "accept")
		e.srv.SetFaults(sandbox.Faults{TokenErrors: 1})
		defer e.srv.SetFaults(sandbox.Faults{})
		code := cb.Query().Get("code")
		_, err = e.manager.CompleteAuthorize(ctx, cb.Query().Get("state"), code, "", browser)
		ue := upstreamOf(t, err)
		if ue.Op != credential.OpExchange || ue.URL != tokenURL || ue.Status != http.StatusServiceUnavailable {
			t.Errorf("UpstreamError = %+v, want an exchange answered 503", *ue)
		}
		noSecrets(t, err.Error(), app.ClientSecret, code)
	})

	// The identity lookup (GET /api/v2) under the sandbox's API faults.
	e.srv.Clock().Advance(2 * time.Minute)
	e.create(t, "who")
	who := e.authorize(t, "who")
	access, _ := e.manager.Token(ctx, who.ID)
	for _, tt := range []struct {
		name   string
		faults sandbox.Faults
		m      *credential.Manager
		check  func(*credential.UpstreamError) bool
	}{
		{"500", sandbox.Faults{ServerErrors: 1}, e.manager, func(ue *credential.UpstreamError) bool {
			return ue.Status == 500 && ue.Transient() && !ue.Timeout && !ue.Unreachable
		}},
		{"maintenance", sandbox.Faults{Maintenance: 1, MaintenanceSeconds: 90}, e.manager, func(ue *credential.UpstreamError) bool {
			return ue.Status == 503 && ue.RetryAfter == 90*time.Second // an ISO 8601 Retry-After
		}},
		{"connection reset", sandbox.Faults{ConnectionResets: 1}, e.manager, func(ue *credential.UpstreamError) bool {
			return ue.Unreachable && !ue.Timeout && ue.Status == 0 && ue.Err != nil
		}},
		{"hang", sandbox.Faults{Hangs: 1}, impatient, func(ue *credential.UpstreamError) bool {
			return ue.Timeout && !ue.Unreachable && ue.Status == 0
		}},
	} {
		t.Run("identity "+tt.name, func(t *testing.T) {
			e.srv.SetFaults(tt.faults)
			defer e.srv.SetFaults(sandbox.Faults{})
			err := tt.m.IdentityForTest(ctx, who.ID)
			ue := upstreamOf(t, err)
			if ue.Op != credential.OpIdentity || ue.URL != who.APIBaseURL || !tt.check(ue) {
				t.Errorf("UpstreamError = %+v (%v)", *ue, err)
			}
			noSecrets(t, err.Error(), app.ClientSecret, access)
		})
	}
}
