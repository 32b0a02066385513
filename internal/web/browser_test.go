package web_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds Debian's chromium, or skips (fails when CI requires it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("OUTREACH_TEST_BROWSER_REQUIRED") != "" {
		t.Fatal("Chromium is required (apt-get install chromium) and was not found")
	}
	t.Skip("Chromium not found; install Debian's chromium package to run the browser test")
	return ""
}

func TestBrowserAddAndAuthorize(t *testing.T) {
	path := chromium(t)
	e := newEnv(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.UserDataDir(t.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	email, password := e.sandbox.SignInUser()
	app := e.sandbox.Apps()[0]
	err := chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/"),
		chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", e.admin),
		chromedp.Click("#sign-in"),
		chromedp.WaitVisible("#add"),
		chromedp.Click("#add"),
		chromedp.WaitVisible("#name"),
		chromedp.SendKeys("#name", "browser test"),
		chromedp.SetValue("#client_id", app.ClientID),
		chromedp.SetValue("#client_secret", app.ClientSecret),
		chromedp.Click("#save"),
		chromedp.WaitVisible("#authorize"),
		chromedp.Click("#authorize"),
		// Outreach's (the sandbox's) sign-in and consent pages.
		chromedp.WaitVisible("#email"),
		chromedp.SendKeys("#email", email),
		chromedp.SendKeys("#password", password),
		chromedp.Click("#sign-in"),
		chromedp.WaitVisible("#accept"),
		chromedp.Click("#accept"),
		// Back on outreach-connector.
		chromedp.WaitVisible("#status"),
	)
	if err != nil {
		t.Fatalf("browser run: %v", err)
	}
	status, err := chromedp.Run(ctx, chromedp.Text("#status"))
	if err != nil {
		t.Fatal(err)
	}
	page, err := chromedp.Run(ctx, chromedp.Text("main"))
	if err != nil {
		t.Fatal(err)
	}
	if status != "Connected" || !strings.Contains(page, email) {
		t.Errorf("status %q, page %.300q; want Connected as %s", status, page, email)
	}
}
