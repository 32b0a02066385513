package web_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserConnection drives a connection in Chromium with the fake
// service, whose runs complete within Run now: credential → New
// connection → Run now → history → Pause → Resume → Delete.
func TestBrowserConnection(t *testing.T) {
	t.Parallel()
	ce := newConnEnv(t, "prospects.read", "accounts.read")
	ctx := browser(t, "")
	err := chromedp.Do(ctx,
		chromedp.Navigate(ce.url+"/credentials/"+ce.cred.ID),
		chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", ce.admin),
		chromedp.Click("#sign-in"),
		chromedp.WaitVisible("#new-connection"),
	)
	if err != nil {
		t.Fatalf("browser run: %v", err)
	}
	screenshot(t, ctx, "conn-credential")
	err = chromedp.Do(ctx,
		chromedp.Click("#new-connection"),
		chromedp.WaitVisible("#destination_url"),
	)
	if err == nil {
		_, err = chromedp.Run(ctx, chromedp.Evaluate[any](`document.getElementById("name").value = ""`))
	}
	if err == nil {
		err = chromedp.Do(ctx, chromedp.SendKeys("#name", "Acme (EU) prod"))
	}
	if err != nil {
		t.Fatal(err)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	if ns, err := chromedp.Run(ctx, chromedp.AttributeValue("#namespace", "placeholder")); err != nil || ns.Value != "acme_eu_prod" {
		t.Errorf("the namespace placeholder follows the name: %q %v", ns.Value, err)
	}
	if got := text("#scope-summary"); got != "2 needed, all held" {
		t.Errorf("scope summary %q", got)
	}
	// Ticking a stream the credential cannot read shows its scope missing.
	if err := chromedp.Do(ctx, chromedp.Click(`input[name="streams"][value="calls"]`)); err != nil {
		t.Fatal(err)
	}
	if got := text("#scope-summary"); got != "3 needed, 1 missing" || !strings.Contains(text("#scope-needs"), "calls.read") {
		t.Errorf("with calls ticked: %q, %q", got, text("#scope-needs"))
	}
	if checked, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("streams-ticked").checked`)); err != nil || !checked {
		t.Errorf("ticking a stream did not choose the ticked streams")
	}
	screenshot(t, ctx, "conn-new-missing-scope")
	// Back to every readable stream, a manual schedule, and save.
	err = chromedp.Do(ctx,
		chromedp.Click("#streams-readable"),
		chromedp.Click("#schedule-manual"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := text("#scope-summary"); got != "2 needed, all held" {
		t.Errorf("back to the readable streams: %q", got)
	}
	screenshot(t, ctx, "conn-new")
	if err := chromedp.Do(ctx, chromedp.Click("#save"), chromedp.WaitVisible("#run-now")); err != nil {
		t.Fatal(err)
	}
	if got := text("#state"); got != "Idle" {
		t.Errorf("a new connection is %q", got)
	}
	if err := chromedp.Do(ctx, chromedp.Click("#run-now"), chromedp.WaitVisible("#runs")); err != nil {
		t.Fatal(err)
	}
	if got := text("#run-0 .records"); got != "14" {
		t.Errorf("the run shows %q records, want 14", got)
	}
	if !strings.Contains(text("#run-0"), "Succeeded") || !strings.Contains(text("#stream-table"), "prospects") {
		t.Errorf("history: %q", text("#run-0"))
	}
	screenshot(t, ctx, "conn-after-run")
	if err := chromedp.Do(ctx, chromedp.Click("#pause"), chromedp.WaitVisible("#resume")); err != nil {
		t.Fatal(err)
	}
	if got := text("#state"); got != "Paused" {
		t.Errorf("after Pause: %q", got)
	}
	screenshot(t, ctx, "conn-paused")
	if err := chromedp.Do(ctx, chromedp.Click("#resume"), chromedp.WaitVisible("#pause")); err != nil {
		t.Fatal(err)
	}
	if got := text("#state"); got != "Idle" {
		t.Errorf("after Resume: %q", got)
	}
	// Re-sync one stream asks first.
	if err := chromedp.Do(ctx, chromedp.Click("#resync-prospects"), chromedp.WaitVisible("#confirm")); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "conn-confirm-resync")
	if err := chromedp.Do(ctx, chromedp.Click("#confirm"), chromedp.WaitVisible(`#notice[data-notice="resync"]`)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text("#notice"), "cursors were forgotten") || text("#run-0 .records") != "14" {
		t.Errorf("after a re-sync: %q", text("#notice"))
	}
	// The list.
	if err := chromedp.Do(ctx, chromedp.Click("#nav-connections"), chromedp.WaitVisible("#connections")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text("#connections"), "Acme (EU) prod") {
		t.Errorf("the list: %q", text("#connections"))
	}
	screenshot(t, ctx, "conn-list")
	// Delete asks first; Cancel changes nothing; then delete with the data.
	err = chromedp.Do(ctx,
		chromedp.Click(`#connections a`),
		chromedp.WaitVisible("#delete"),
		chromedp.Click("#delete"),
		chromedp.WaitVisible("#confirm-drop"),
	)
	if err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "conn-confirm-delete")
	if err := chromedp.Do(ctx, chromedp.Click("#cancel"), chromedp.WaitVisible("#delete"), chromedp.Click("#delete"),
		chromedp.WaitVisible("#confirm-drop"), chromedp.Click("#confirm-drop"), chromedp.WaitVisible(`#notice[data-notice="deleted_data"]`)); err != nil {
		t.Fatal(err)
	}
	if page := text("main"); strings.Contains(page, "Acme (EU) prod") || !strings.Contains(page, "its data were deleted") {
		t.Errorf("after Delete: %q", page)
	}
	if calls := ce.fake.called(); calls[len(calls)-1] != "delete Acme (EU) prod drop=true" {
		t.Errorf("calls %q", calls)
	}
}

// TestBrowserNewConnectionFromTheList: Connections → New connection →
// the credential → the form.
func TestBrowserNewConnectionFromTheList(t *testing.T) {
	t.Parallel()
	ce := newConnEnv(t, "prospects.read")
	ctx := browser(t, "")
	err := chromedp.Do(ctx,
		chromedp.Navigate(ce.url+"/connections"),
		chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", ce.admin),
		chromedp.Click("#sign-in"),
		chromedp.WaitVisible("#new-connection"),
		chromedp.Click("#new-connection"),
		chromedp.WaitVisible("#choose-credential a"),
	)
	if err != nil {
		t.Fatalf("browser run: %v", err)
	}
	screenshot(t, ctx, "conn-choose")
	err = chromedp.Do(ctx,
		chromedp.Click("#choose-credential a"),
		chromedp.WaitVisible("#destination_url"),
	)
	var credential string
	if err == nil {
		credential, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('input[name="credential"]').value`))
	}
	if err != nil || credential != ce.cred.ID {
		t.Fatalf("choosing the credential: %v (form for %q, want %q)", err, credential, ce.cred.ID)
	}
}
