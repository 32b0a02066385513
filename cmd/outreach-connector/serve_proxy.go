package main

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/metrics"
	"github.com/outreach-connector/outreach-connector/internal/proxy"
	"github.com/outreach-connector/outreach-connector/internal/service"
	"github.com/outreach-connector/outreach-connector/internal/web"
)

// withProxy mounts the authenticating proxy at /proxy/ beside the web UI:
// API keys and kept answers in the app database, the service's rate
// limiters, the metrics, and the web UI's session for signed-in admins.
func withProxy(srv *web.Server, m *credential.Manager, store credential.Store, svc *service.Service, met *metrics.Metrics,
	log *slog.Logger, maxWait time.Duration) (http.Handler, error) {
	keys, err := keyStoreOf(store)
	if err != nil {
		return nil, err
	}
	kept, err := idempotencyStoreOf(store)
	if err != nil {
		return nil, err
	}
	p, err := proxy.New(proxy.Options{Credentials: m, Keys: keys, Idempotency: kept, Limiter: svc.RateLimiter, SignedIn: srv.SignedIn,
		MaxWait: maxWait, Metrics: met, ObserveRequests: met.ObserveRequests, Logger: log})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/proxy/", p)
	mux.Handle("/", srv)
	return mux, nil
}
