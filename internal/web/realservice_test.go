package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/destinations"
	"github.com/outreach-connector/outreach-connector/internal/jobs"
	"github.com/outreach-connector/outreach-connector/internal/service"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
	"github.com/outreach-connector/outreach-connector/internal/web"
)

// lateConns lets the server be built before the service it uses, which
// needs the server's credential manager.
type lateConns struct{ web.Connections }

// newServiceEnv serves the UI with the real connections service: the app
// database and its job queue in one SQLite file, runs worked on this
// node, SQLite destinations, and a credential of the sandbox connected
// with every scope.
func newServiceEnv(t *testing.T) (*env, *credential.Record, string) {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	appPath := filepath.Join(dir, "app.db")
	db, err := sqlite.Open(ctx, appPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	late := &lateConns{}
	e := newEnv(t, func(c *credential.Options, w *web.Options) {
		c.Store = db
		w.Connections = late
	})
	store := db.Connections()
	var svc *service.Service
	q, err := jobs.OpenSQLite(ctx, appPath, jobs.Options{MaxAttempts: 1, SchedulerInterval: time.Hour,
		Run: jobs.Recorded(store, nil, nil, func(ctx context.Context, r *connection.Run) error { return svc.Sync(ctx, r) })})
	if err != nil {
		t.Fatal(err)
	}
	svc, err = service.New(service.Options{Store: store, Queue: q, Credentials: e.manager, Logger: slog.New(slog.DiscardHandler),
		Open: func(ctx context.Context, url, ns string) (connection.Destination, func() error, error) {
			return destinations.Open(ctx, url, ns, io.Discard)
		}})
	if err != nil {
		t.Fatal(err)
	}
	late.Connections = svc
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := q.Stop(ctx); err != nil {
			t.Errorf("stop the queue: %v", err)
		}
		q.Close()
	})
	_, refresh, err := e.sandbox.IssueToken(1)
	if err != nil {
		t.Fatal(err)
	}
	e.sandbox.Clock().Advance(time.Minute)
	app := e.sandbox.Apps()[0]
	cred, err := e.manager.Import(ctx, credential.NewCredential{Name: "sandbox", ClientID: app.ClientID, ClientSecret: app.ClientSecret,
		Scopes: e.sandbox.Catalog().Scopes(), Environment: credential.Production, APIBaseURL: e.sandbox.URL + "/api/v2",
		RedirectURI: app.RedirectURIs[0]}, refresh)
	if err != nil {
		t.Fatal(err)
	}
	return e, cred, "sqlite:" + filepath.Join(dir, "outreach.db")
}

// TestBrowserConnectionWithTheService drives a connection in Chromium
// with the real service: the run is a River job on this node, so the page
// is reloaded (bounded) until the history shows it ended.
func TestBrowserConnectionWithTheService(t *testing.T) {
	t.Parallel()
	e, cred, dest := newServiceEnv(t)
	ctx := browser(t, "")
	err := chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/credentials/"+cred.ID),
		chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", e.admin),
		chromedp.Click("#sign-in"),
		chromedp.WaitVisible("#new-connection"),
		chromedp.Click("#new-connection"),
		chromedp.WaitVisible("#destination_url"),
	)
	if err == nil {
		// Untick every stream; two are ticked below.
		_, err = chromedp.Run(ctx, chromedp.Evaluate[any](`document.getElementById("destination_url").value = "";
			document.querySelectorAll("input[name=streams]").forEach(function (c) { c.checked = false; }); 0`))
	}
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys("#destination_url", dest),
		chromedp.Click(`input[name="streams"][value="accounts"]`), // chooses the ticked streams
		chromedp.Click(`input[name="streams"][value="prospects"]`),
		chromedp.Click("#schedule-manual"),
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
	if got := text("#scope-summary"); got != "2 needed, all held" {
		t.Errorf("scope summary %q", got)
	}
	if err := chromedp.Do(ctx, chromedp.Click("#save"), chromedp.WaitVisible("#run-now")); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "service-created")
	if err := chromedp.Do(ctx, chromedp.Click("#run-now"), chromedp.WaitVisible(`#notice[data-notice="queued"]`)); err != nil {
		t.Fatal(err)
	}
	// Reload until the run has ended: bounded, the run is the queue's.
	where, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	outcome := ""
	for {
		if err := chromedp.Do(ctx, chromedp.Navigate(where), chromedp.WaitVisible("#state")); err != nil {
			// A reload can be aborted by the one before; try again.
			t.Logf("reload: %v", err)
		} else if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#run-0 .outcome").length`)); err == nil && n == 1 {
			// The job ends just after the run's record does.
			if outcome = text("#run-0 .outcome"); outcome != "Running" && text("#state") != "Running" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run did not end within 60 s (outcome %q)", outcome)
		}
		time.Sleep(200 * time.Millisecond)
	}
	screenshot(t, ctx, "service-after-run")
	records, _ := strconv.Atoi(text("#run-0 .records"))
	if outcome != "Succeeded" || records == 0 {
		t.Fatalf("the run: %s with %d records:\n%s", outcome, records, text("main"))
	}
	// The destination's own account of the streams: rows and cursors.
	if rows := text("#stream-table"); !strings.Contains(rows, "prospects") || !regexp.MustCompile(`prospects\s+\d{4}-\d\d-\d\dT\S+\s+\S+\s+20\b`).MatchString(rows) {
		t.Errorf("streams table: %q", rows)
	}
	if err := chromedp.Do(ctx, chromedp.Click("#pause"), chromedp.WaitVisible("#resume")); err != nil {
		t.Fatal(err)
	}
	if got := text("#state"); got != "Paused" {
		t.Errorf("after Pause: %q", got)
	}
	if err := chromedp.Do(ctx, chromedp.Click("#resume"), chromedp.WaitVisible("#pause")); err != nil {
		t.Fatal(err)
	}
	if got := text("#state"); got == "Paused" {
		t.Errorf("after Resume: %q", got)
	}
	if err := chromedp.Do(ctx, chromedp.Click("#delete"), chromedp.WaitVisible("#confirm-drop"), chromedp.Click("#confirm-drop"),
		chromedp.WaitVisible(`#notice[data-notice="deleted_data"]`)); err != nil {
		t.Fatal(err)
	}
	if page := text("main"); strings.Contains(page, cred.Name+" → ") || !strings.Contains(page, "The connection and its data were deleted.") {
		t.Errorf("after Delete: %q", page)
	}
	screenshot(t, ctx, "service-deleted")
}

// TestConnectionsAPIWithTheService: the JSON API over the real service.
func TestConnectionsAPIWithTheService(t *testing.T) {
	t.Parallel()
	e, _, dest := newServiceEnv(t)
	ce := &connEnv{env: e}
	status, body := ce.api(t, "POST", "/api/connections", `{"name":"api","credential":"sandbox","destination_url":"`+dest+`","streams":["prospects"],"schedule":"manual"}`)
	if status != http.StatusCreated || !strings.Contains(body, `"namespace":"api"`) {
		t.Fatalf("create = %d %s", status, body)
	}
	for _, tt := range []struct {
		method, path, body string
		want               int
		contains           string
	}{
		{"POST", "/api/connections", `{"name":"calls","credential":"sandbox","streams":["nope"]}`, 422, "unknown"},
		{"POST", "/api/connections", `{"name":"api","credential":"sandbox","destination_url":"` + dest + `"}`, 409, "name_taken"},
		{"POST", "/api/connections", `{"name":"api2","namespace":"api","credential":"sandbox","destination_url":"` + dest + `"}`, 409, "namespace_taken"},
		{"GET", "/api/connections/api", "", 200, `"state":"idle"`},
		{"POST", "/api/connections/api/cancel", "", 409, "conflict"},
		{"POST", "/api/connections/api/run", "", 202, `"job"`},
	} {
		status, body := ce.api(t, tt.method, tt.path, tt.body)
		if status != tt.want || !strings.Contains(body, tt.contains) {
			t.Errorf("%s %s %s = %d %.300s, want %d containing %q", tt.method, tt.path, tt.body, status, body, tt.want, tt.contains)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, body := ce.api(t, "GET", "/api/connections/api/runs", "")
		if strings.Contains(body, `"outcome":"succeeded"`) && strings.Contains(body, `"records":20`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no finished run within 60 s: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if status, body := ce.api(t, "DELETE", "/api/connections/api", ""); status != 204 {
		t.Errorf("delete = %d %s", status, body)
	}
}

// SetLive forwards the optional live toggle to the service.
func (l *lateConns) SetLive(ctx context.Context, idOrName string, on bool) (*service.LiveResult, error) {
	return l.Connections.(interface {
		SetLive(context.Context, string, bool) (*service.LiveResult, error)
	}).SetLive(ctx, idOrName, on)
}
