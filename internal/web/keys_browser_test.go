package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/proxy"
	"github.com/outreach-connector/outreach-connector/internal/sqlstore"
	"github.com/outreach-connector/outreach-connector/internal/web"
)

// TestBrowserAPIKeys drives the API keys page in Chromium: create a key for
// a credential (shown once, stored only as its hash, scoped to the
// credential), see it listed as never used, revoke it.
func TestBrowserAPIKeys(t *testing.T) {
	t.Parallel()
	var keys *sqlstore.APIKeys
	e := newEnv(t, func(c *credential.Options, w *web.Options) {
		keys = c.Store.(interface{ APIKeys() *sqlstore.APIKeys }).APIKeys()
		w.Keys = keys
	})
	_, refresh, err := e.sandbox.IssueToken(1)
	if err != nil {
		t.Fatal(err)
	}
	e.sandbox.Clock().Advance(time.Minute)
	app := e.sandbox.Apps()[0]
	cred, err := e.manager.Import(context.Background(), credential.NewCredential{Name: "sales", ClientID: app.ClientID, ClientSecret: app.ClientSecret,
		Scopes: e.sandbox.Catalog().Scopes(), Environment: credential.Production, APIBaseURL: e.sandbox.URL + "/api/v2",
		RedirectURI: app.RedirectURIs[0]}, refresh)
	if err != nil {
		t.Fatal(err)
	}
	ctx := browser(t, "")
	err = chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/"),
		chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", e.admin),
		chromedp.Click("#sign-in"),
		chromedp.WaitVisible("#nav-keys"),
		chromedp.Click("#nav-keys"),
		chromedp.WaitVisible("#key-name"),
		chromedp.SendKeys("#key-name", "billing"),
		chromedp.Click("#cred-sales"),
		chromedp.Click("#create-key"),
		chromedp.WaitVisible("#new-key"),
	)
	if err != nil {
		t.Fatalf("browser run: %v", err)
	}
	shown, err := chromedp.Run(ctx, chromedp.Text("#new-key"))
	if err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "keys-created")
	k, err := keys.KeyByHash(context.Background(), proxy.HashKey(strings.TrimSpace(shown)))
	if err != nil || k.Name != "billing" || !k.Allows(cred.ID) {
		t.Fatalf("the key shown (%q) is not the stored key for sales: %+v, %v", shown, k, err)
	}
	row, err := chromedp.Run(ctx, chromedp.Text("#key-billing"))
	if err != nil || !strings.Contains(row, "sales") || !strings.Contains(row, "never") || !strings.Contains(row, "active") {
		t.Fatalf("the row says %q (%v)", row, err)
	}
	// Reloading the page does not show the key again.
	err = chromedp.Do(ctx, chromedp.Navigate(e.url+"/keys"), chromedp.WaitVisible("#keys"))
	if err != nil {
		t.Fatal(err)
	}
	if page, err := chromedp.Run(ctx, chromedp.Text("main")); err != nil || strings.Contains(page, strings.TrimSpace(shown)) {
		t.Fatalf("the key is shown again (%v)", err)
	}
	err = chromedp.Do(ctx, chromedp.Click("#revoke-billing"), chromedp.WaitVisible("#notice"))
	if err != nil {
		t.Fatal(err)
	}
	status, err := chromedp.Run(ctx, chromedp.Text("#key-billing .key-status"))
	if err != nil || !strings.HasPrefix(status, "revoked") {
		t.Fatalf("status after revoke %q (%v)", status, err)
	}
	screenshot(t, ctx, "keys-revoked")
	if k, err := keys.KeyByHash(context.Background(), proxy.HashKey(strings.TrimSpace(shown))); err != nil || k.Revoked.IsZero() {
		t.Fatalf("stored key after revoke: %+v, %v", k, err)
	}
}
