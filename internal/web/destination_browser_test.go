package web_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/outreach-connector/outreach-connector/internal/service"
)

// Rejects lets the UI read rejected rows through the late-bound service.
func (l *lateConns) Rejects(ctx context.Context, idOrName, runID string, limit int) (*service.RunRejects, error) {
	return l.Connections.(interface {
		Rejects(context.Context, string, string, int) (*service.RunRejects, error)
	}).Rejects(ctx, idOrName, runID, limit)
}

// TestBrowserDestinationConnection drives a destination connection in
// Chromium with the real service and the sandbox: New connection with the
// destination direction (a SQLite query into prospects) → Run now → the
// history shows the counts → the rejected row is on the page with its
// column and reason, and on the run's rejects page → Run now again writes
// nothing (all unchanged).
func TestBrowserDestinationConnection(t *testing.T) {
	t.Parallel()
	e, cred, _ := newServiceEnv(t)
	wh := filepath.Join(t.TempDir(), "warehouse.db")
	db, err := sql.Open("sqlite", wh)
	if err != nil {
		t.Fatal(err)
	}
	db.Exec(`CREATE TABLE signups (email TEXT, first TEXT)`)
	for i := range 12 {
		db.Exec(`INSERT INTO signups VALUES ($1, $2)`, fmt.Sprintf("ui%02d@dest.example", i), fmt.Sprintf("Person %d", i))
	}
	db.Exec(`INSERT INTO signups VALUES ('ui-bad@', 'Bad')`)
	db.Close()

	ctx := browser(t, "")
	err = chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/credentials/"+cred.ID),
		chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", e.admin),
		chromedp.Click("#sign-in"),
		chromedp.WaitVisible("#new-connection"),
		chromedp.Click("#new-connection"),
		chromedp.WaitVisible("#destination_url"),
		chromedp.Click("#direction-destination"),
		chromedp.WaitVisible("#source_url"),
		chromedp.WaitNotVisible("#destination_url"),
	)
	if err == nil {
		_, err = chromedp.Run(ctx, chromedp.Evaluate[any](`document.getElementById("name").value = ""; 0`))
	}
	if err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "destination-form")
	err = chromedp.Do(ctx,
		chromedp.SendKeys("#name", "signups"),
		chromedp.SendKeys("#source_url", "sqlite:"+wh+"?query=SELECT email, first FROM signups ORDER BY rowid"),
		chromedp.SendKeys("#load_type", "prospect"),
		chromedp.SendKeys("#load_match", "emails"),
		chromedp.SendKeys("#load_map", "email=emails\nfirst=firstName"),
		chromedp.Click("#schedule-manual"),
		chromedp.Click("#save"),
		chromedp.WaitVisible("#run-now"),
	)
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
	if d := text("#direction"); !strings.Contains(d, "Destination") || !strings.Contains(text("#load"), "prospect records, upsert matched by emails") {
		t.Fatalf("the page of the new connection: %q\n%s", d, text("main"))
	}
	where, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	// runNow clicks Run now and reloads (bounded) until the newest run has
	// ended; it returns the run's records cell.
	runNow := func(n int) string {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(where), chromedp.WaitVisible("#run-now"), chromedp.Click("#run-now"),
			chromedp.WaitVisible(`#notice[data-notice="queued"]`)); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			if err := chromedp.Do(ctx, chromedp.Navigate(where), chromedp.WaitVisible("#state")); err != nil {
				t.Logf("reload: %v", err)
			} else if c, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("tr.run").length`)); err == nil && c == n {
				if out := text("#run-0 .outcome"); out != "Running" && text("#state") != "Running" {
					if out != "Succeeded" {
						t.Fatalf("run %d: %s\n%s", n, out, text("main"))
					}
					return text("#run-0 .records")
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %d did not end within 60 s", n)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if got := runNow(1); !strings.Contains(got, "created 12, updated 0, unchanged 0, rejected 1") {
		t.Fatalf("first run's counts: %q", got)
	}
	screenshot(t, ctx, "destination-after-run")
	rejects := text("#rejects")
	if !strings.Contains(rejects, "13") || !strings.Contains(rejects, "email") || !strings.Contains(rejects, `"ui-bad@" is not an email address`) ||
		!strings.Contains(rejects, "email=ui-bad@") {
		t.Fatalf("rejected rows on the page: %q", rejects)
	}
	if err := chromedp.Do(ctx, chromedp.Click("#all-rejects"), chromedp.WaitVisible("#rejects-run")); err != nil {
		t.Fatal(err)
	}
	if run := text("#rejects-run"); !strings.Contains(run, "rejected 1") || !strings.Contains(text("#rejects"), "ui-bad@") {
		t.Fatalf("the run's rejects page: %q %q", run, text("#rejects"))
	}
	if got := runNow(2); !strings.Contains(got, "created 0, updated 0, unchanged 12, rejected 1") {
		t.Fatalf("second run's counts: %q", got)
	}
	// Edit: the destination fields come prefilled; a schedule set keeps the load.
	err = chromedp.Do(ctx, chromedp.Navigate(where), chromedp.WaitVisible("#edit"), chromedp.Click("#edit"), chromedp.WaitVisible("#source_url"))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("load_map").value + "|" + document.getElementById("load_match").value`)); err != nil ||
		v != "email=emails\nfirst=firstName|emails" {
		t.Fatalf("the edit form's load: %q %v", v, err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](`document.getElementById("every").value = ""; 0`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click("#schedule-every"), chromedp.SendKeys("#every", "1h"), chromedp.Click("#save"),
		chromedp.WaitVisible("#run-now")); err != nil {
		t.Fatal(err)
	}
	if sched, load := text("#schedule"), text("#load"); !strings.Contains(sched, "every 1h") || !strings.Contains(load, "prospect records, upsert matched by emails") {
		t.Fatalf("after the edit: schedule %q, load %q\n%s", sched, load, text("main"))
	}
}

// TestDestinationConnectionsAPIWithTheService: the JSON API creates a
// destination connection (source_url and load), its runs carry the
// counts, and /rejects gives the rejected rows.
func TestDestinationConnectionsAPIWithTheService(t *testing.T) {
	t.Parallel()
	e, _, dest := newServiceEnv(t)
	ce := &connEnv{env: e}
	wh := filepath.Join(t.TempDir(), "warehouse.db")
	db, err := sql.Open("sqlite", wh)
	if err != nil {
		t.Fatal(err)
	}
	db.Exec(`CREATE TABLE signups (email TEXT)`)
	db.Exec(`INSERT INTO signups VALUES ('api1@dest.example'), ('api2@dest.example'), ('api-bad')`)
	db.Close()
	status, body := ce.api(t, "POST", "/api/connections", `{"name":"api-dest","credential":"sandbox","direction":"destination",
		"source_url":"sqlite:`+wh+`?query=SELECT email FROM signups","schedule":"manual",
		"load":{"type":"prospect","mode":"upsert","match":["emails"],"map":{"email":"emails"}}}`)
	if status != http.StatusCreated || !strings.Contains(body, `"direction":"destination"`) || !strings.Contains(body, `"load":{"type":"prospect"`) {
		t.Fatalf("create = %d %s", status, body)
	}
	for _, tt := range []struct{ body, says string }{
		{`{"name":"d2","credential":"sandbox","direction":"destination","source_url":"postgres://u:hunter2@h/db?query=SELECT 1","load":{"type":"prospect","mode":"upsert","match":["emails"]}}`, "carries a password"},
		{`{"name":"d3","credential":"sandbox","direction":"destination","source_url":"sqlite:` + wh + `?query=SELECT 1"}`, "needs what to load"},
	} {
		if status, body := ce.api(t, "POST", "/api/connections", tt.body); status != 422 || !strings.Contains(body, tt.says) || strings.Contains(body, "hunter2") {
			t.Errorf("create %s = %d %s; want 422 saying %q", tt.body, status, body, tt.says)
		}
	}
	if status, body := ce.api(t, "POST", "/api/connections/api-dest/run", ""); status != 202 {
		t.Fatalf("run = %d %s", status, body)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, body := ce.api(t, "GET", "/api/connections/api-dest/runs", "")
		if strings.Contains(body, `"outcome":"succeeded"`) {
			if !strings.Contains(body, `"created":2,"updated":0,"unchanged":0,"rejected":1`) {
				t.Fatalf("runs: %s", body)
			}
			break
		}
		if strings.Contains(body, `"outcome":"failed"`) || time.Now().After(deadline) {
			t.Fatalf("no succeeded run: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	status, body = ce.api(t, "GET", "/api/connections/api-dest/rejects", "")
	if status != 200 || !strings.Contains(body, `"line":3`) || !strings.Contains(body, `"column":"email"`) || !strings.Contains(body, `"row":{"email":"api-bad"}`) {
		t.Fatalf("rejects = %d %s", status, body)
	}
	ce.api(t, "POST", "/api/connections", `{"name":"src","credential":"sandbox","destination_url":"`+dest+`","streams":["prospects"],"schedule":"manual"}`)
	if status, body := ce.api(t, "GET", "/api/connections/src/rejects", ""); status != 404 {
		t.Errorf("rejects of a source connection = %d %s", status, body)
	}
}
