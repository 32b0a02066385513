package main

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// TestServeShowsConnectionsInTheUI: `serve --sandbox` gives the web UI its
// connections service, so the sandbox connection and its run are on the
// connections page and in the JSON API.
func TestServeShowsConnectionsInTheUI(t *testing.T) {
	t.Parallel()
	s := startServe(t, connectorBinary(t), t.TempDir(), "", "--sandbox")
	s.waitSucceeded()
	if status, body := s.get("/api/connections/sandbox", s.token); status != http.StatusOK || !strings.Contains(body, `"outcome":"succeeded"`) {
		t.Errorf("GET /api/connections/sandbox = %d %.500s", status, body)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	resp, err := client.PostForm(s.base+"/signin", url.Values{"token": {s.token}, "next": {"/connections"}})
	if err != nil {
		t.Fatal(err)
	}
	var page strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		page.Write(buf[:n])
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(page.String(), `id="connections"`) || !strings.Contains(page.String(), ">sandbox</a>") ||
		!strings.Contains(page.String(), "Succeeded") {
		t.Errorf("the connections page = %d:\n%.3000s", resp.StatusCode, page.String())
	}
	s.stop()
}
