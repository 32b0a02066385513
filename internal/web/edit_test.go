package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/credential"
)

func TestEditCredentialPage(t *testing.T) {
	e := newEnv(t)
	f := newFakeOutreach(t)
	rec := connect(t, e, f, "editable")
	connect(t, e, f, "taken")
	client, csrf := signedIn(t, e)

	status, form := readGet(t, client, e.url+"/credentials/"+rec.ID+"/edit")
	if status != 200 || !strings.Contains(form, `value="editable"`) || strings.Contains(form, "client-secret-value") ||
		!strings.Contains(form, `name="client_secret" type="password" value=""`) {
		t.Fatalf("edit form = %d:\n%.2000s", status, form)
	}

	// A new name, description and secret: no new authorization.
	edit := func(v url.Values) (*http.Response, string) {
		v.Set("csrf", csrf)
		resp, err := client.PostForm(e.url+"/credentials/"+rec.ID+"/edit", v)
		_, body := read(t, resp, err)
		return resp, body
	}
	resp, _ := edit(url.Values{"name": {"renamed"}, "description": {"nightly sync"}, "client_secret": {"regenerated-secret"},
		"scopes": {"prospects.read"}, "preset": {"ticked"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(resp.Header.Get("Location"), "notice=updated") {
		t.Fatalf("save = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	got, _ := e.manager.Get(context.Background(), rec.ID)
	if got.Name != "renamed" || got.Description != "nightly sync" || got.Status != credential.StatusConnected {
		t.Errorf("after the edit: %+v", got)
	}
	f.set("ok")
	if _, err := e.manager.RefreshNow(context.Background(), rec.ID); err != nil {
		t.Fatal(err)
	}
	if f.lastSecret() != "regenerated-secret" {
		t.Errorf("the refresh after replacing the secret sent %q", f.lastSecret())
	}

	// A taken name comes back with what to fix, without the secret.
	resp, body := edit(url.Values{"name": {"taken"}, "client_secret": {"another-new-secret"}, "scopes": {"prospects.read"}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "exists") || strings.Contains(body, "another-new-secret") {
		t.Errorf("a taken name = %d:\n%.1500s", resp.StatusCode, body)
	}

	// More scopes: saved, and the page says a new authorization is needed.
	resp, _ = edit(url.Values{"name": {"renamed"}, "scopes": {"prospects.read", "accounts.read"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(resp.Header.Get("Location"), "notice=reauthorize") {
		t.Fatalf("growing the scopes = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page := readGet(t, client, e.url+resp.Header.Get("Location"))
	if !strings.Contains(page, "need a new authorization") || !strings.Contains(page, `id="authorize"`) || !strings.Contains(page, "Re-authorize") {
		t.Errorf("after growing the scopes the page does not offer the authorization:\n%.3000s", page)
	}
}

func TestEditCredentialAPI(t *testing.T) {
	e := newEnv(t)
	f := newFakeOutreach(t)
	rec := connect(t, e, f, "api-edit")
	connect(t, e, f, "other")
	patch := func(body string) (int, map[string]any) {
		req, _ := http.NewRequest("PATCH", e.url+"/api/credentials/"+rec.ID, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e.admin)
		status, text := send(t, http.DefaultClient, req)
		var out map[string]any
		json.Unmarshal([]byte(text), &out)
		return status, out
	}
	if status, out := patch(`{"description":"d","client_secret":"new-secret"}`); status != 200 || out["reauthorize"] != false ||
		out["credential"].(map[string]any)["description"] != "d" {
		t.Errorf("PATCH description and secret = %d %v", status, out)
	}
	if status, out := patch(`{"scopes":["prospects.read","accounts.read"]}`); status != 200 || out["reauthorize"] != true ||
		out["credential"].(map[string]any)["status"] != "needs_reauthorization" {
		t.Errorf("PATCH growing scopes = %d %v", status, out)
	}
	for body, want := range map[string]int{`{"scopes":[]}`: 422, `{"name":"other"}`: 409, `{"colour":"red"}`: 400, `{"name":""}`: 422} {
		if status, out := patch(body); status != want || strings.Contains(jsonText(out), "new-secret") {
			t.Errorf("PATCH %s = %d %v, want %d", body, status, out, want)
		}
	}
	req, _ := http.NewRequest("PATCH", e.url+"/api/credentials/missing", strings.NewReader(`{"description":"x"}`))
	req.Header.Set("Authorization", "Bearer "+e.admin)
	if status, _ := send(t, http.DefaultClient, req); status != 404 {
		t.Errorf("PATCH of a missing credential = %d", status)
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
