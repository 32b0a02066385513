package web_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserLiveToggle makes a connection live and not live from its
// page (no public URL here: serve's check would make the webhooks), and a
// connection into JSON Lines is refused with 422 by the JSON API.
func TestBrowserLiveToggle(t *testing.T) {
	t.Parallel()
	e, cred, dest := newServiceEnv(t)
	api := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, e.url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e.admin)
		req.Header.Set("Content-Type", "application/json")
		return send(t, http.DefaultClient, req)
	}
	create := func(name, to string) string {
		t.Helper()
		status, body := api("POST", "/api/connections", `{"name":"`+name+`","credential":"`+cred.ID+`","destination_url":"`+to+`","streams":["prospects"],"schedule":"manual"}`)
		var c struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(body), &c); status != 201 || err != nil || c.ID == "" {
			t.Fatalf("create %s: %d %s", name, status, body)
		}
		return c.ID
	}
	id := create("acme", dest)
	filesID := create("files", "jsonl:"+filepath.Join(t.TempDir(), "out"))
	status, body := api("POST", "/api/connections/"+filesID+"/live", `{"live": true}`)
	if status != 422 || !strings.Contains(body, "cannot_be_live") {
		t.Errorf("live on for a JSON Lines connection: %d %s", status, body)
	}
	status, body = api("POST", "/api/connections/"+filesID+"/live", `{}`)
	if status != 422 || !strings.Contains(body, `"code":"invalid"`) {
		t.Errorf("live without a value: %d %s", status, body)
	}

	ctx := browser(t, "")
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/connections/"+id),
		chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", e.admin),
		chromedp.Click("#sign-in"),
		chromedp.WaitVisible("#live-toggle"),
	); err != nil {
		t.Fatal(err)
	}
	if got := text("#live"); !strings.HasPrefix(got, "no") {
		t.Errorf("live before: %q", got)
	}
	if err := chromedp.Do(ctx, chromedp.Click("#live-toggle"), chromedp.WaitVisible(`#notice[data-notice="live_pending"]`)); err != nil {
		t.Fatal(err)
	}
	if got := text("#live"); !strings.HasPrefix(got, "yes") {
		t.Errorf("live after making it live: %q", got)
	}
	if got := text("#live-toggle"); got != "Stop live updates" {
		t.Errorf("toggle: %q", got)
	}
	if status, body := api("GET", "/api/connections/"+id, ""); status != 200 || !strings.Contains(body, `"live":true`) {
		t.Errorf("the API after making it live: %d %s", status, body)
	}
	if err := chromedp.Do(ctx, chromedp.Click("#live-toggle"), chromedp.WaitVisible(`#notice[data-notice="live_off"]`)); err != nil {
		t.Fatal(err)
	}
	if got := text("#live"); !strings.HasPrefix(got, "no") {
		t.Errorf("live after stopping: %q", got)
	}
}
