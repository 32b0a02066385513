package service

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
)

// SignatureHeader carries a notification's signature: "sha256=" and the
// hex HMAC-SHA256 of the raw body under the notify secret.
const SignatureHeader = "X-Outreach-Connector-Signature"

// The events a notification reports.
const (
	// EventRunFailed: a run failed after the last decisive run succeeded
	// (or on the connection's first failure). One per failing streak.
	EventRunFailed = "run_failed"
	// EventRunRecovered: a run succeeded after a failure.
	EventRunRecovered = "run_recovered"
	// EventNeedsReauthorization: a run could not go on because the
	// connection's credential needs to be authorized again.
	EventNeedsReauthorization = "credential_needs_reauthorization"
)

// Notification is the JSON document POSTed to a notify URL.
type Notification struct {
	Event      string       `json:"event"`
	Connection NotifiedConn `json:"connection"`
	Run        NotifiedRun  `json:"run"`
	At         time.Time    `json:"at"`
}

// NotifiedConn names the connection of a Notification.
type NotifiedConn struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// NotifiedRun is the run of a Notification.
type NotifiedRun struct {
	ID        string    `json:"id"`
	Outcome   string    `json:"outcome"`
	Error     string    `json:"error,omitempty"`
	StartedAt time.Time `json:"startedAt"`
	EndedAt   time.Time `json:"endedAt"`
}

// Sign returns the signature header value of body under secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// CheckNotifyURL accepts an absolute http(s) URL without user info.
func CheckNotifyURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("service: the notify URL must be an absolute http:// or https:// URL")
	}
	if u.User != nil {
		return errors.New("service: the notify URL must not carry a user or password; notifications are signed instead")
	}
	return nil
}

// reauthMarker is in the error of every run stopped by a credential that
// needs re-authorization (credential.ErrNeedsReauthorization wraps it).
const reauthMarker = "needs re-authorization"

// event decides what a finished run notifies, if anything: prev is the
// last decisive (succeeded or failed) run before it, nil when none.
func event(fin, prev *connection.Run) string {
	prevFailed := prev != nil && prev.Outcome == connection.Failed
	switch fin.Outcome {
	case connection.Failed:
		if strings.Contains(fin.Error, reauthMarker) {
			if prevFailed && strings.Contains(prev.Error, reauthMarker) {
				return ""
			}
			return EventNeedsReauthorization
		}
		if prevFailed {
			return "" // the streak was reported when it began
		}
		return EventRunFailed
	case connection.Succeeded:
		if prevFailed {
			return EventRunRecovered
		}
	}
	return ""
}

// previousDecisive returns the connection's last succeeded or failed run
// other than run id.
func (s *Service) previousDecisive(ctx context.Context, connID, runID string) (*connection.Run, error) {
	runs, err := s.opts.Store.ListRuns(ctx, connID, 50)
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		if r.ID != runID && (r.Outcome == connection.Succeeded || r.Outcome == connection.Failed) {
			return r, nil
		}
	}
	return nil, nil
}

// notifyAfter sends the notification a finished run calls for to the
// connection's notify URL (or the default). It never fails the run: a
// delivery problem is logged, into the run's log too, without the URL's
// path or query (which may hold a token).
func (s *Service) notifyAfter(ctx context.Context, c *connection.Connection, fin *connection.Run, runErr error, log *slog.Logger) {
	if fin.Outcome != connection.Failed && fin.Outcome != connection.Succeeded {
		return
	}
	target := c.NotifyURL
	if target == "" {
		target = s.opts.NotifyURL
	}
	if target == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.NotifyTimeout)
	defer cancel()
	prev, err := s.previousDecisive(ctx, c.ID, fin.ID)
	if err != nil {
		log.Warn("notification skipped: the run history could not be read", "error", err)
		return
	}
	ev := event(fin, prev)
	if ev == "" {
		return
	}
	n := Notification{Event: ev, Connection: NotifiedConn{ID: c.ID, Name: c.Name},
		Run: NotifiedRun{ID: fin.ID, Outcome: string(fin.Outcome), Error: fin.Error, StartedAt: fin.StartedAt.UTC(), EndedAt: fin.EndedAt.UTC()},
		At:  s.now().UTC()}
	dest := hostOf(target)
	if err := s.post(ctx, target, n); err != nil {
		log.Warn("notification failed", "event", ev, "to", dest, "error", err.Error())
		return
	}
	log.Info("notified", "event", ev, "to", dest)
}

// post sends n to target, signed.
func (s *Service) post(ctx context.Context, target string, n Notification) error {
	body, err := json.Marshal(n)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return errors.New("the notify URL is not usable")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.opts.UserAgent)
	req.Header.Set("X-Outreach-Connector-Event", n.Event)
	if len(s.opts.NotifySecret) > 0 {
		req.Header.Set(SignatureHeader, Sign(s.opts.NotifySecret, body))
	}
	resp, err := s.http.Do(req)
	if err != nil {
		// A *url.Error repeats the whole URL; keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no answer within %s", s.opts.NotifyTimeout)
		}
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return nil
}

// hostOf is the scheme and host of a URL, for logs.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Scheme + "://" + u.Host
}
