package web_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/outreach-connector/outreach-connector/internal/web"
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

// browser starts a headless Chromium. Every host but loopback goes
// through proxy, or when it is "" to a loopback server that answers 502,
// so nothing leaves the machine.
func browser(t *testing.T, proxy string) context.Context {
	t.Helper()
	path := chromium(t)
	if proxy == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		trap := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })}
		go trap.Serve(ln)
		t.Cleanup(func() { trap.Close() })
		proxy = "http://" + ln.Addr().String()
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900))
	opts = append(opts, chromedp.ProxyServer(proxy))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// screenshot saves the page as a PNG under $OUTREACH_TEST_SCREENSHOTS, or
// the test's temporary directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("OUTREACH_TEST_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o600); err != nil {
		t.Error(err)
	}
}

func TestBrowserAddAuthorizeDisconnectDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := browser(t, "")
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
		chromedp.Click("#preset-sync"),
	)
	if err != nil {
		t.Fatalf("browser run: %v", err)
	}
	coverage, err := chromedp.Run(ctx, chromedp.Text("#coverage-count"))
	if err != nil {
		t.Fatalf("browser run: %v", err)
	}
	if _, total := readable(nil); coverage != fmt.Sprint(total) {
		t.Errorf("with the sync preset chosen the form says %s streams are readable, want all %d", coverage, total)
	}
	screenshot(t, ctx, "new")
	// First Deny on Outreach's consent page: the page names the credential
	// and offers to authorize again.
	err = chromedp.Do(ctx,
		chromedp.Click("#save"),
		chromedp.WaitVisible("#authorize"),
		chromedp.Click("#authorize"),
		// Outreach's (the sandbox's) sign-in and consent pages.
		chromedp.WaitVisible("#email"),
		chromedp.SendKeys("#email", email),
		chromedp.SendKeys("#password", password),
		chromedp.Click("#sign-in"),
		chromedp.WaitVisible("#deny"),
		chromedp.Click("#deny"),
		chromedp.WaitVisible("#back"),
	)
	if err != nil {
		t.Fatalf("browser run: %v", err)
	}
	if page, err := chromedp.Run(ctx, chromedp.Text("main")); err != nil || !strings.Contains(page, "browser test") || !strings.Contains(page, "denied") {
		t.Errorf("the Deny page says %.500q (%v)", page, err)
	}
	screenshot(t, ctx, "denied")
	err = chromedp.Do(ctx,
		chromedp.Click("#authorize"),
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
	screenshot(t, ctx, "show")

	// Refresh now right after connecting: Outreach mints one token a
	// minute, and the page says to wait (not an Internal Server Error).
	if err := chromedp.Do(ctx, chromedp.Click("#refresh"), chromedp.WaitVisible("#back-to-credential")); err != nil {
		t.Fatal(err)
	}
	if page, err := chromedp.Run(ctx, chromedp.Text("main")); err != nil || !strings.Contains(page, "Try again in") {
		t.Errorf("Refresh now right after connecting shows %.500q (%v)", page, err)
	}
	screenshot(t, ctx, "refresh-429")
	if err := chromedp.Do(ctx, chromedp.Click("#back-to-credential"), chromedp.WaitVisible("#status")); err != nil {
		t.Fatal(err)
	}

	// Edit: replace the secret and grow the scopes; the page then asks
	// for a new authorization.
	if err := chromedp.Do(ctx, chromedp.Click("#edit"), chromedp.WaitVisible("#client_secret")); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "edit")
	err = chromedp.Do(ctx,
		chromedp.SendKeys("#client_secret", app.ClientSecret),
		chromedp.Click(`input[name="scopes"][value="webhooks.all"]`),
		chromedp.Click("#save"),
		chromedp.WaitVisible("#status"),
	)
	if err != nil {
		t.Fatal(err)
	}
	page, err = chromedp.Run(ctx, chromedp.Text("main"))
	if err != nil || !strings.Contains(page, "need a new authorization") || !strings.Contains(page, "webhooks.all") {
		t.Errorf("after adding a scope the page says %.600q (%v)", page, err)
	}
	screenshot(t, ctx, "edited")

	// Disconnect asks first; Cancel changes nothing.
	err = chromedp.Do(ctx,
		chromedp.Click("#revoke"),
		chromedp.WaitVisible("#confirm"),
	)
	if err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "confirm-disconnect")
	if err := chromedp.Do(ctx, chromedp.Click("#cancel"), chromedp.WaitVisible("#status")); err != nil {
		t.Fatal(err)
	}
	if status, err = chromedp.Run(ctx, chromedp.Text("#status")); err != nil || status != "Needs re-authorization" {
		t.Fatalf("after Cancel: %q %v", status, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click("#revoke"), chromedp.WaitVisible("#confirm"), chromedp.Click("#confirm"),
		chromedp.WaitVisible("#status")); err != nil {
		t.Fatal(err)
	}
	if status, err = chromedp.Run(ctx, chromedp.Text("#status")); err != nil || status != "Revoked" {
		t.Fatalf("after a confirmed Disconnect: %q %v", status, err)
	}
	// Delete asks first, then removes it.
	err = chromedp.Do(ctx,
		chromedp.Click("#delete"),
		chromedp.WaitVisible("#confirm"),
	)
	if err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "confirm-delete")
	if err := chromedp.Do(ctx, chromedp.Click("#confirm"), chromedp.WaitVisible("#add")); err != nil {
		t.Fatal(err)
	}
	if list, err := chromedp.Run(ctx, chromedp.Text("main")); err != nil || strings.Contains(list, "browser test") {
		t.Errorf("after a confirmed Delete the list is %q (%v)", list, err)
	}
}

// TestBrowserSignInNeverLeavesTheOrigin signs in, in Chromium, with next
// values a browser reads as another host, and checks where it ends up.
// Every host but loopback is proxied to an "evil" server on loopback, so
// an escape shows as a page from it.
func TestBrowserSignInNeverLeavesTheOrigin(t *testing.T) {
	t.Parallel()
	var evilHits atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	evil := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host == "evil.example" && r.URL.Path != "/favicon.ico" {
			evilHits.Add(1)
		}
		fmt.Fprint(w, "<!doctype html><title>evil</title><h1 id=evil>evil.example</h1>")
	})}
	go evil.Serve(ln)
	t.Cleanup(func() { evil.Close() })

	e := newEnv(t)
	ctx := browser(t, "http://"+ln.Addr().String())
	// Check the trap works: a link to evil.example lands on the evil server.
	if err := chromedp.Do(ctx, chromedp.Navigate("http://evil.example/"), chromedp.WaitVisible("#evil")); err != nil {
		t.Fatalf("the evil.example trap does not work: %v", err)
	}
	hits := evilHits.Load()

	for _, next := range web.HostileNexts {
		if strings.ContainsRune(next, 0) {
			continue // a form field cannot carry NUL
		}
		if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := chromedp.Do(cctx,
			chromedp.Navigate(e.url+"/signin"),
			chromedp.WaitVisible("#token"),
			chromedp.SetValue(`input[name="next"]`, next),
			chromedp.SendKeys("#token", e.admin),
			chromedp.Click("#sign-in"),
			// The credentials list, or the evil page.
			chromedp.WaitVisible("#add, #evil"),
		)
		where, lerr := chromedp.Run(cctx, chromedp.Location())
		cancel()
		if err = errors.Join(err, lerr); err != nil {
			t.Errorf("next=%q: %v", next, err)
			continue
		}
		if !strings.HasPrefix(where, e.url+"/") || evilHits.Load() != hits {
			t.Errorf("signed in with next=%q, the browser went to %s", next, where)
			hits = evilHits.Load()
		}
	}
	screenshot(t, ctx, "after-hostile-next")
}
