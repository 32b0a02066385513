package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/webhooks"
	"github.com/outreach-connector/outreach-connector/outreach"
)

// SetWebhooks gives the service the manager of live connections' webhooks
// (it needs the service's clients, so it is made after the service). Call
// it before the service is used concurrently.
func (s *Service) SetWebhooks(m *webhooks.Manager) { s.webhooks = m }

// Client returns an Outreach client acting with c's credential, pacing
// through the same rate limiter as c's runs.
func (s *Service) Client(ctx context.Context, c *connection.Connection) (*outreach.Client, error) {
	rec, err := s.opts.Credentials.Get(ctx, c.CredentialID)
	if err != nil {
		return nil, fmt.Errorf("connection %s: its credential: %w", c.Name, err)
	}
	if rec.Status != credential.StatusConnected {
		return nil, fmt.Errorf("credential %s is %s: %w; authorize it again", rec.Name, strings.ReplaceAll(string(rec.Status), "_", " "),
			credential.ErrNeedsReauthorization)
	}
	return outreach.NewClient(outreach.WithBaseURL(rec.APIBaseURL), outreach.WithTokenSource(s.opts.Credentials.TokenSource(rec.ID)),
		outreach.WithRateLimiter(s.limiter(rec.OutreachUserID, c.QuotaShare)), outreach.WithUserAgent(s.opts.UserAgent))
}

// LiveResult is what SetLive did.
type LiveResult struct {
	Connection *connection.Connection
	// Subscribed says the webhooks exist at Outreach now; false when
	// turning live on left subscribing to serve (no public URL here).
	Subscribed bool
	// CatchUp is the run queued to cover changes before the webhooks
	// existed (zero when none was queued).
	CatchUp int64
}

// SetLive makes a source connection live (Outreach pushes its changes as
// webhooks, applied as they arrive) or not. Turning it on needs a
// destination that is a connection.Applier (else a
// *connection.CannotApplyError); the webhooks are made at Outreach at once
// when this service knows the public URL, else by serve's next check.
// Then a run is queued to catch up with what changed before. Turning it
// off deletes the webhooks at Outreach (what cannot be deleted now is
// retried by serve's checks).
func (s *Service) SetLive(ctx context.Context, idOrName string, on bool) (*LiveResult, error) {
	c, err := s.lookup(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	res := &LiveResult{Connection: c}
	if !on {
		if c.Live {
			c.Live, c.UpdatedAt = false, s.now()
			if err := s.opts.Store.UpdateConnection(ctx, c); err != nil {
				return nil, fmt.Errorf("connection %q: %w", c.Name, err)
			}
		}
		if s.webhooks != nil {
			if err := s.webhooks.Unsubscribe(ctx, c, false); err != nil {
				return res, fmt.Errorf("%w (the connection is not live; serve deletes the webhooks at its next check)", err)
			}
		}
		return res, nil
	}
	if c.Direction != connection.DirectionSource {
		return nil, fmt.Errorf("connection %s: only a source connection (Outreach into a destination) can be live", c.Name)
	}
	dst, closeDst, err := s.open(ctx, c)
	if err != nil {
		return nil, err
	}
	_, ok := dst.(connection.Applier)
	closeDst()
	if !ok {
		return nil, &connection.CannotApplyError{Connection: c.Name}
	}
	if s.webhooks != nil {
		switch err := s.webhooks.Subscribe(ctx, c); {
		case err == nil:
			res.Subscribed = true
		case !errors.Is(err, webhooks.ErrNoPublicURL):
			return nil, err
		}
	}
	if !c.Live {
		c.Live, c.UpdatedAt = true, s.now()
		if err := s.opts.Store.UpdateConnection(ctx, c); err != nil {
			if res.Subscribed {
				s.webhooks.Unsubscribe(context.WithoutCancel(ctx), c, false)
			}
			return nil, fmt.Errorf("connection %q: %w", c.Name, err)
		}
	}
	if res.Subscribed && s.opts.Queue != nil {
		j, err := s.opts.Queue.Enqueue(ctx, c.ID, connection.ManualRun)
		if err != nil {
			return res, fmt.Errorf("connection %s is live; queue its catch-up run: %w", c.Name, err)
		}
		res.CatchUp = j.ID
	}
	return res, nil
}

// CatchUp queues a run of the connection (webhooks.ManagerOptions.CatchUp):
// an incremental run from its committed cursors.
func (s *Service) CatchUp(ctx context.Context, connectionID string) error {
	if s.opts.Queue == nil {
		return errNoQueue
	}
	_, err := s.opts.Queue.Enqueue(ctx, connectionID, connection.ManualRun)
	return err
}
