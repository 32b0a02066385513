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

// TestDisconnectAndDeleteWhenOutreachCannotRevoke: the credential is kept,
// the page says so and offers to do it here only.
func TestDisconnectAndDeleteWhenOutreachCannotRevoke(t *testing.T) {
	e := newEnv(t)
	f := newFakeOutreach(t)
	client, csrf := signedIn(t, e)
	for _, action := range []string{"revoke", "delete"} {
		f.set("ok")
		rec := connect(t, e, f, "kept-"+action)
		f.set("503")
		status, body := readForm(t, client, e.url+"/credentials/"+rec.ID+"/"+action, url.Values{"csrf": {csrf}, "confirm": {"yes"}})
		if status != http.StatusBadGateway || !strings.Contains(body, `id="revoke-failed"`) || !strings.Contains(body, `name="local" value="yes"`) {
			t.Errorf("%s when Outreach answers 503 = %d:\n%.2000s", action, status, body)
		}
		if got, err := e.manager.Get(context.Background(), rec.ID); err != nil || got.Status != credential.StatusConnected {
			t.Fatalf("%s failed at Outreach but changed the credential: %v %v", action, got, err)
		}
		status, _ = readForm(t, client, e.url+"/credentials/"+rec.ID+"/"+action, url.Values{"csrf": {csrf}, "confirm": {"yes"}, "local": {"yes"}})
		got, err := e.manager.Get(context.Background(), rec.ID)
		switch {
		case status != http.StatusSeeOther:
			t.Errorf("%s here only = %d", action, status)
		case action == "revoke" && (err != nil || got.Status != credential.StatusRevoked):
			t.Errorf("after disconnecting here only: %v %v", got, err)
		case action == "delete" && err == nil:
			t.Errorf("the credential survived deleting here only")
		}
	}
}

func TestAPIRevokeWhenOutreachCannotRevoke(t *testing.T) {
	e := newEnv(t)
	f := newFakeOutreach(t)
	rec := connect(t, e, f, "api-kept")
	f.set("503")
	call := func(method, path string) (int, string) {
		req, _ := http.NewRequest(method, e.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+e.admin)
		return send(t, http.DefaultClient, req)
	}
	if status, body := call("POST", "/api/credentials/"+rec.ID+"/revoke"); status != http.StatusBadGateway || !strings.Contains(body, `"code":"revoke_failed"`) {
		t.Errorf("revoke = %d %s", status, body)
	}
	if status, body := call("DELETE", "/api/credentials/"+rec.ID); status != http.StatusBadGateway || !strings.Contains(body, `"code":"revoke_failed"`) {
		t.Errorf("delete = %d %s", status, body)
	}
	if status, body := call("POST", "/api/credentials/"+rec.ID+"/revoke?local=true"); status != 200 || !strings.Contains(body, `"status":"revoked"`) {
		t.Errorf("revoke here only = %d %s", status, body)
	}
	f.set("ok")
	rec = connect(t, e, f, "api-kept-2")
	f.set("503")
	if status, _ := call("DELETE", "/api/credentials/"+rec.ID+"?local=true"); status != http.StatusNoContent {
		t.Errorf("delete here only = %d", status)
	}
}
