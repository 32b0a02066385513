package web_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/web"
)

func TestMetricsNeedTheAdminAndReadyzIsOpen(t *testing.T) {
	var down atomic.Bool
	e := newEnv(t, func(_ *credential.Options, o *web.Options) {
		o.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("metric_total 1\n")) })
		o.Ready = func(context.Context) error {
			if down.Load() {
				return errors.New("the job queue is not running")
			}
			return nil
		}
	})
	client := noRedirect(nil)
	get := func(c *http.Client, path, bearer string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", e.url+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		return send(t, c, req)
	}
	if status, _ := get(client, "/metrics", ""); status != http.StatusUnauthorized {
		t.Errorf("/metrics without credentials = %d", status)
	}
	if status, _ := get(client, "/metrics", "wrong-token-wrong-token"); status != http.StatusUnauthorized {
		t.Errorf("/metrics with a wrong token = %d", status)
	}
	if status, body := get(client, "/metrics", e.admin); status != http.StatusOK || body != "metric_total 1\n" {
		t.Errorf("/metrics with the admin token = %d %q", status, body)
	}
	jar, _ := cookiejar.New(nil)
	browser := noRedirect(jar)
	if status, _ := readForm(t, browser, e.url+"/signin", url.Values{"token": {e.admin}}); status != http.StatusSeeOther {
		t.Fatalf("sign-in = %d", status)
	}
	if status, _ := get(browser, "/metrics", ""); status != http.StatusOK {
		t.Errorf("/metrics in a signed-in session = %d", status)
	}
	if status, body := get(client, "/readyz", ""); status != http.StatusOK || body != "ready\n" {
		t.Errorf("/readyz = %d %q", status, body)
	}
	down.Store(true)
	if status, body := get(client, "/readyz", ""); status != http.StatusServiceUnavailable || body != "not ready: the job queue is not running\n" {
		t.Errorf("/readyz when down = %d %q", status, body)
	}
}
