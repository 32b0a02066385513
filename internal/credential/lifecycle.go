package credential

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Token returns a valid access token for the credential, refreshing it
// when it expires within RefreshBefore. Only one refresh per credential
// runs at a time, in this process (callers share its result) and across
// processes (a lease in the store; the others wait and re-read). The
// rotated refresh token is stored with the new access token, in one
// step, before the access token is handed out.
func (m *Manager) Token(ctx context.Context, id string) (string, error) {
	rec, err := m.store.GetCredential(ctx, id)
	if err != nil {
		return "", err
	}
	t, _, err := m.open(rec)
	if err != nil {
		return "", err
	}
	if m.fresh(t, "") {
		return t.Access, nil
	}
	return m.shared(ctx, rec.ID, "")
}

// Refresh returns an access token other than rejected (one the API just
// refused), refreshing unless another caller already did.
func (m *Manager) Refresh(ctx context.Context, id, rejected string) (string, error) {
	return m.shared(ctx, id, rejected)
}

// fresh reports whether t can be handed out: when rejected is set, any
// other unexpired token; otherwise one that lives past RefreshBefore.
func (m *Manager) fresh(t *tokens, rejected string) bool {
	if t == nil || t.Access == "" {
		return false
	}
	left := t.Expiry.Sub(m.now())
	if rejected != "" {
		return t.Access != rejected && left > 0
	}
	return left > m.refreshBefore
}

// shared runs one refresh per credential in this process; concurrent
// callers wait for its result.
func (m *Manager) shared(ctx context.Context, id, rejected string) (string, error) {
	m.mu.Lock()
	if f, ok := m.flights[id]; ok {
		m.mu.Unlock()
		select {
		case <-f.done:
			if f.err == nil && f.token == rejected {
				return "", fmt.Errorf("credential: the refreshed token was rejected too: %w", ErrNeedsReauthorization)
			}
			return f.token, f.err
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{})}
	m.flights[id] = f
	m.mu.Unlock()
	// The refresh outlives a caller that gives up: others wait on it.
	f.token, f.err = m.refreshAcrossProcesses(context.WithoutCancel(ctx), id, rejected)
	m.mu.Lock()
	delete(m.flights, id)
	m.mu.Unlock()
	close(f.done)
	return f.token, f.err
}

// refreshAcrossProcesses takes the credential's lease (never holding a
// database lock during the HTTP call), re-reads, and refreshes if still
// needed. Without the lease it waits for the holder's result.
func (m *Manager) refreshAcrossProcesses(ctx context.Context, id, rejected string) (string, error) {
	// Waiting is measured on the real clock, whatever m.now says: a
	// holder that never finishes must not keep us here forever.
	deadline := time.Now().Add(m.leaseTTL + 10*time.Second)
	for {
		now := m.now()
		ok, err := m.store.AcquireLease(ctx, id, m.owner, now, now.Add(m.leaseTTL))
		if err != nil {
			return "", fmt.Errorf("credential: take the refresh lease: %w", err)
		}
		if ok {
			break
		}
		// Another process is refreshing: wait, then use what it stored.
		time.Sleep(50*time.Millisecond + rand.N(50*time.Millisecond))
		rec, err := m.store.GetCredential(ctx, id)
		if err != nil {
			return "", err
		}
		if t, _, err := m.open(rec); err == nil && m.fresh(t, rejected) {
			return t.Access, nil
		}
		if rec.Status == StatusNeedsReauth {
			return "", fmt.Errorf("credential %s: %w: %s", rec.Name, ErrNeedsReauthorization, rec.LastError)
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("credential %s: %w", rec.Name, ErrBusy)
		}
	}
	defer func() {
		if err := m.store.ReleaseLease(context.WithoutCancel(ctx), id, m.owner); err != nil {
			m.log.Warn("release refresh lease", "credential", id, "err", err)
		}
	}()
	rec, err := m.store.GetCredential(ctx, id) // re-read: someone may have refreshed meanwhile
	if err != nil {
		return "", err
	}
	t, secret, err := m.open(rec)
	if err != nil {
		return "", err
	}
	if m.fresh(t, rejected) {
		return t.Access, nil
	}
	switch {
	case rec.Status == StatusNeedsReauth:
		return "", fmt.Errorf("credential %s: %w: %s", rec.Name, ErrNeedsReauthorization, rec.LastError)
	case rec.Status == StatusRevoked, t == nil || t.Refresh == "":
		return "", fmt.Errorf("credential %s: %w (it is %s)", rec.Name, ErrNeedsReauthorization, strings.ReplaceAll(string(rec.Status), "_", " "))
	}
	if b, ok := m.backoffFor(id); ok && m.now().Before(b.until) {
		if t.Access != "" && t.Access != rejected && t.Expiry.After(m.now()) {
			return t.Access, nil // still valid; the next try comes after the backoff
		}
	}
	return m.refresh(ctx, rec, t, secret, rejected)
}

func (m *Manager) backoffFor(id string) (backoff, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.backoffs[id]
	return b, ok
}

// refresh calls the token endpoint. The caller holds the lease.
func (m *Manager) refresh(ctx context.Context, rec *Record, t *tokens, secret, rejected string) (string, error) {
	hctx := context.WithValue(ctx, oauth2.HTTPClient, m.http)
	src := oauthConfig(rec, secret).TokenSource(hctx, &oauth2.Token{RefreshToken: t.Refresh, Expiry: time.Unix(1, 0)})
	nt, err := src.Token()
	now := m.now().UTC()
	if err == nil {
		fresh := &tokens{Access: nt.AccessToken, Refresh: nt.RefreshToken, Expiry: nt.Expiry.UTC()}
		if fresh.Refresh == "" {
			fresh.Refresh = t.Refresh // Outreach did not rotate it: keep the old one
		}
		fresh.Expiry = m.expiry(nt, now)
		sealed, err := m.sealTokens(rec.ID, fresh)
		if err != nil {
			return "", err
		}
		// Persist before anyone uses the new token: the old refresh token
		// may be dead already.
		if err := m.store.SaveTokens(ctx, rec.ID, TokenUpdate{Tokens: sealed, TokenExpiresAt: fresh.Expiry, LastRefreshAt: now,
			Status: StatusConnected, UpdatedAt: now}); err != nil {
			return "", fmt.Errorf("credential %s: store the refreshed tokens: %w", rec.Name, err)
		}
		m.clearBackoff(rec.ID)
		m.event(ctx, rec.ID, "refreshed", "access token refreshed")
		m.log.Info("credential refreshed", "credential", rec.Name, "expires", fresh.Expiry)
		if rec.OutreachUserID == "" { // after an import, or a lookup that failed at authorization
			m.tryIdentity(ctx, rec.ID)
		}
		return fresh.Access, nil
	}
	ue := upstreamFromOAuth(OpRefresh, oauthConfig(rec, secret).Endpoint.TokenURL, err, m.now())
	msg := ue.Error()
	switch {
	case ue.Status == http.StatusTooManyRequests:
		// Outreach mints one token a minute: someone just refreshed. Use
		// what is stored, or the current token while it lives.
		if cur, err := m.store.GetCredential(ctx, rec.ID); err == nil {
			if ct, _, err := m.open(cur); err == nil && ct != nil && ct.Access != "" &&
				(m.fresh(ct, rejected) || (ct.Access != rejected && ct.Expiry.After(m.now()))) {
				return ct.Access, nil
			}
		}
		m.noteTransient(ctx, rec, msg)
		wait := "a minute"
		if ue.RetryAfter > 0 {
			wait = fmt.Sprintf("%d seconds", int((ue.RetryAfter+time.Second-1)/time.Second))
		}
		return "", fmt.Errorf("credential %s: %w: %w: Outreach mints one token a minute for each user and app, and one was minted "+
			"less than a minute ago; the refresh token was not used up: try again in %s", rec.Name, ErrTryLater, ue, wait)
	case ue.Code == "invalid_grant" || ue.Code == "invalid_client" || ue.Code == "unauthorized_client":
		reason := reauthReason(rec, ue.Code, msg)
		if err := m.store.SaveTokens(ctx, rec.ID, TokenUpdate{Tokens: rec.Tokens, TokenExpiresAt: rec.TokenExpiresAt,
			LastRefreshAt: rec.LastRefreshAt, Status: StatusNeedsReauth, LastError: reason, UpdatedAt: now}); err != nil {
			return "", err
		}
		m.event(ctx, rec.ID, "needs_reauthorization", reason)
		m.log.Warn("credential needs re-authorization", "credential", rec.Name, "reason", reason)
		return "", &alsoWrapping{err: fmt.Errorf("credential %s: %w: %s", rec.Name, ErrNeedsReauthorization, reason), cause: ue}
	}
	m.noteTransient(ctx, rec, msg)
	if t.Access != "" && t.Access != rejected && t.Expiry.After(m.now()) {
		return t.Access, nil // the refresh failed for now; the current token still works
	}
	return "", fmt.Errorf("credential %s: refresh failed: %w: %w; the refresh token was kept: try again later", rec.Name, ErrTryLater, ue)
}

// reauthReason says why Outreach refused a refresh and what to do, for
// LastError and the event. msg carries the status and OAuth error code.
func reauthReason(rec *Record, code, msg string) string {
	switch code {
	case "invalid_client":
		return "Outreach refused the app's client id or secret (" + msg + "): if the secret was regenerated on Outreach, " +
			"replace it (credentials edit --client-secret-file, or Edit in the UI); otherwise authorize again"
	case "unauthorized_client":
		return "Outreach no longer lets this app use refresh tokens (" + msg + "): check the app on Outreach, then authorize again"
	}
	reason := "Outreach refused the refresh token (" + msg + "): the grant expired or was revoked; authorize the credential again"
	if rec.Environment == Development {
		reason += ". This is a development app: Outreach expires the grants of development apps weekly for users outside " +
			"the app's own org, or beyond its first ten users, and revokes their tokens; use the app's production " +
			"credentials to avoid weekly re-authorization"
	}
	return reason
}

func (m *Manager) clearBackoff(id string) {
	m.mu.Lock()
	delete(m.backoffs, id)
	m.mu.Unlock()
}

// noteTransient records a failure that does not change the status, and
// backs off exponentially (5 s to 5 minutes) before the next attempt.
func (m *Manager) noteTransient(ctx context.Context, rec *Record, msg string) {
	m.mu.Lock()
	b := m.backoffs[rec.ID]
	b.delay = min(max(b.delay*2, 5*time.Second), 5*time.Minute)
	b.until = m.now().Add(b.delay)
	m.backoffs[rec.ID] = b
	m.mu.Unlock()
	if err := m.store.SaveTokens(ctx, rec.ID, TokenUpdate{Tokens: rec.Tokens, TokenExpiresAt: rec.TokenExpiresAt,
		LastRefreshAt: rec.LastRefreshAt, Status: rec.Status, LastError: msg, UpdatedAt: m.now().UTC()}); err != nil {
		m.log.Warn("record refresh failure", "credential", rec.Name, "err", err)
	}
	m.event(ctx, rec.ID, "refresh_failed", msg)
	m.log.Warn("credential refresh failed", "credential", rec.Name, "reason", msg)
}

// KeepAlive refreshes every connected credential whose last refresh is
// older than maxIdle, so refresh tokens (14 days on Outreach) never
// lapse, and looks up the Outreach identity of connected credentials
// whose lookup failed at authorization. It returns how many it refreshed
// and the first error.
func (m *Manager) KeepAlive(ctx context.Context, maxIdle time.Duration) (int, error) {
	recs, err := m.store.ListCredentials(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	var first error
	for _, rec := range recs {
		if rec.Status != StatusConnected {
			continue
		}
		if rec.OutreachUserID == "" {
			m.tryIdentity(ctx, rec.ID)
		}
		if m.now().Sub(rec.LastRefreshAt) < maxIdle {
			continue
		}
		t, _, err := m.open(rec)
		if err != nil {
			first = errors.Join(first, err)
			continue
		}
		if _, err := m.shared(ctx, rec.ID, t.Access); err != nil {
			first = errors.Join(first, err)
			continue
		}
		n++
	}
	return n, first
}

// TokenSource returns the credential's token source for the outreach
// client: it hands out valid tokens and refreshes once on a 401.
func (m *Manager) TokenSource(id string) *TokenSource { return &TokenSource{m: m, id: id} }

// TokenSource adapts a Manager to outreach.TokenSource and
// outreach.Refresher.
type TokenSource struct {
	m  *Manager
	id string
}

// Token returns a valid access token.
func (s *TokenSource) Token(ctx context.Context) (string, error) { return s.m.Token(ctx, s.id) }

// Refresh returns a token other than rejected.
func (s *TokenSource) Refresh(ctx context.Context, rejected string) (string, error) {
	return s.m.Refresh(ctx, s.id, rejected)
}

// Revoke disconnects a credential: it revokes the refresh token at
// Outreach, then deletes the tokens and marks the credential revoked.
// When Outreach does not confirm the revocation (unreachable, 5xx, a
// refused client) it returns ErrRevokeFailed with the reason and keeps
// the credential and its tokens as they were, so the revoke can be
// retried; RevokeLocally forgets the tokens without asking Outreach.
func (m *Manager) Revoke(ctx context.Context, idOrName string) error {
	rec, err := m.lookup(ctx, idOrName)
	if err != nil {
		return err
	}
	return m.withLease(ctx, rec.ID, func(rec *Record) error {
		t, secret, err := m.open(rec)
		if err != nil {
			return err
		}
		if t != nil && t.Refresh != "" {
			if err := m.revokeUpstream(ctx, rec, secret, t.Refresh); err != nil {
				m.event(ctx, rec.ID, "revoke_failed", err.Error()+"; tokens kept")
				m.log.Warn("revoke upstream", "credential", rec.Name, "err", err)
				return fmt.Errorf("credential %s: %w: %w; the credential and its tokens are kept: revoke again, or forget the "+
					"tokens here only (they then stay valid at Outreach until they expire)", rec.Name, ErrRevokeFailed, err)
			}
		}
		return m.dropTokens(ctx, rec, "revoked", "revoked at Outreach; tokens deleted")
	})
}

// RevokeLocally deletes a credential's tokens and marks it revoked
// without contacting Outreach, where the tokens stay valid until they
// expire (a refresh token lives 14 days).
func (m *Manager) RevokeLocally(ctx context.Context, idOrName string) error {
	rec, err := m.lookup(ctx, idOrName)
	if err != nil {
		return err
	}
	return m.withLease(ctx, rec.ID, func(rec *Record) error {
		return m.dropTokens(ctx, rec, "revoked_locally", "tokens deleted here without revoking them at Outreach")
	})
}

func (m *Manager) dropTokens(ctx context.Context, rec *Record, kind, msg string) error {
	if err := m.store.SaveTokens(ctx, rec.ID, TokenUpdate{Status: StatusRevoked, UpdatedAt: m.now().UTC()}); err != nil {
		return err
	}
	m.event(ctx, rec.ID, kind, msg)
	return nil
}

// revokeUpstream asks Outreach to revoke token (RFC 7009) and reports
// anything but a 200 as an *UpstreamError (never with the token or
// secret in it).
func (m *Manager) revokeUpstream(ctx context.Context, rec *Record, secret, token string) error {
	conf := oauthConfig(rec, secret)
	revokeURL := strings.TrimSuffix(conf.Endpoint.TokenURL, "/token") + "/revoke"
	form := url.Values{"token": {token}, "client_id": {rec.ClientID}, "client_secret": {secret}}
	req, err := http.NewRequestWithContext(ctx, "POST", revokeURL, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := m.http.Do(req)
	if err != nil {
		return transportError(OpRevoke, revokeURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var body struct {
		Error string `json:"error"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&body)
	return answerError(OpRevoke, revokeURL, resp, body.Error, m.now())
}

// Delete revokes and removes a credential. When the revoke fails the
// credential stays (ErrRevokeFailed); Forget removes it without revoking.
func (m *Manager) Delete(ctx context.Context, idOrName string) error {
	rec, err := m.lookup(ctx, idOrName)
	if err != nil {
		return err
	}
	// A credential that connections use is refused before its tokens are
	// revoked, not after.
	if u, ok := m.store.(InUseChecker); ok {
		names, err := u.CredentialConnections(ctx, rec.ID)
		if err != nil {
			return fmt.Errorf("credential %s: %w", rec.Name, err)
		}
		if len(names) > 0 {
			quoted := make([]string, len(names))
			for i, n := range names {
				quoted[i] = strconv.Quote(n)
			}
			return fmt.Errorf("credential %s: %w: %s", rec.Name, ErrInUse, strings.Join(quoted, ", "))
		}
	}
	if rec.Tokens != nil {
		if err := m.Revoke(ctx, rec.ID); err != nil {
			return err
		}
	}
	return m.store.DeleteCredential(ctx, rec.ID)
}

// InUseChecker is a Store that knows which connections use a credential.
// Delete asks it before revoking anything.
type InUseChecker interface {
	CredentialConnections(ctx context.Context, id string) ([]string, error)
}

// withLease runs fn on a fresh read of credential id while holding its
// refresh lease, so no concurrent refresh writes tokens fn would
// overwrite (or rotates a token fn is revoking).
func (m *Manager) withLease(ctx context.Context, id string, fn func(rec *Record) error) error {
	// Waiting is measured on the real clock, as in refreshAcrossProcesses.
	deadline := time.Now().Add(m.leaseTTL + 10*time.Second)
	for {
		now := m.now()
		ok, err := m.store.AcquireLease(ctx, id, m.owner, now, now.Add(m.leaseTTL))
		if err != nil {
			return fmt.Errorf("credential: take the refresh lease: %w", err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			return ErrBusy
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50*time.Millisecond + rand.N(50*time.Millisecond)):
		}
	}
	defer func() {
		if err := m.store.ReleaseLease(context.WithoutCancel(ctx), id, m.owner); err != nil {
			m.log.Warn("release refresh lease", "credential", id, "err", err)
		}
	}()
	rec, err := m.store.GetCredential(ctx, id)
	if err != nil {
		return err
	}
	return fn(rec)
}

// RefreshNow refreshes the credential's tokens now, whatever their age
// (Outreach allows one token a minute per user and app).
func (m *Manager) RefreshNow(ctx context.Context, idOrName string) (string, error) {
	rec, err := m.lookup(ctx, idOrName)
	if err != nil {
		return "", err
	}
	t, _, err := m.open(rec)
	if err != nil {
		return "", err
	}
	current := "\x00none"
	if t != nil && t.Access != "" {
		current = t.Access
	}
	return m.shared(ctx, rec.ID, current)
}

// Forget removes a credential without contacting Outreach: for one whose
// Outreach is gone (a finished sandbox). Its tokens stay valid there until
// they expire; use Delete to revoke them.
func (m *Manager) Forget(ctx context.Context, idOrName string) error {
	rec, err := m.lookup(ctx, idOrName)
	if err != nil {
		return err
	}
	return m.store.DeleteCredential(ctx, rec.ID)
}
