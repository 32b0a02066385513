package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// checkSinger validates tap output against the Singer spec: JSON lines;
// SCHEMA before a stream's RECORDs; records with only schema properties of
// the declared types; STATE values with bookmarks. It returns records per
// stream and the last state.
func checkSinger(t *testing.T, out string) (map[string]int, json.RawMessage) {
	t.Helper()
	schemas := map[string]map[string]any{}
	records := map[string]int{}
	var last json.RawMessage
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var msg struct {
			Type          string          `json:"type"`
			Stream        string          `json:"stream"`
			Schema        map[string]any  `json:"schema"`
			KeyProperties []string        `json:"key_properties"`
			Record        map[string]any  `json:"record"`
			Value         json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
			t.Fatalf("not a JSON message: %.200s", sc.Text())
		}
		switch msg.Type {
		case "SCHEMA":
			if msg.Schema["properties"] == nil || len(msg.KeyProperties) != 1 || msg.KeyProperties[0] != "id" {
				t.Fatalf("SCHEMA of %s lacks properties or key_properties [id]", msg.Stream)
			}
			schemas[msg.Stream] = msg.Schema["properties"].(map[string]any)
		case "RECORD":
			props, ok := schemas[msg.Stream]
			if !ok {
				t.Fatalf("RECORD of %s before its SCHEMA", msg.Stream)
			}
			for k, v := range msg.Record {
				p, ok := props[k].(map[string]any)
				if !ok {
					t.Fatalf("%s record field %s is not in the schema", msg.Stream, k)
				}
				if !typeAllowed(p["type"], v) {
					t.Fatalf("%s.%s = %v does not match schema type %v", msg.Stream, k, v, p["type"])
				}
			}
			if _, ok := msg.Record["id"]; !ok {
				t.Fatalf("%s record without id", msg.Stream)
			}
			records[msg.Stream]++
		case "STATE":
			var v struct {
				Bookmarks map[string]map[string]string `json:"bookmarks"`
			}
			if err := json.Unmarshal(msg.Value, &v); err != nil || v.Bookmarks == nil {
				t.Fatalf("STATE value %s lacks bookmarks", msg.Value)
			}
			last = msg.Value
		default:
			t.Fatalf("unknown message type %q", msg.Type)
		}
	}
	return records, last
}

func typeAllowed(types any, v any) bool {
	list, _ := types.([]any)
	kind := "null"
	switch v := v.(type) {
	case string:
		kind = "string"
	case bool:
		kind = "boolean"
	case float64:
		kind = "number"
		if v == float64(int64(v)) {
			kind = "integer"
		}
	case []any:
		kind = "array"
	case map[string]any:
		kind = "object"
	}
	for _, x := range list {
		if x == kind || (kind == "integer" && x == "number") {
			return true
		}
	}
	return false
}

func TestTapIsASingerTap(t *testing.T) {
	srv, err := sandbox.Start("", sandbox.Options{Prospects: 40})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	app := srv.Apps()[0]
	_, refresh, _ := srv.IssueToken(1)
	srv.Clock().Advance(61 * time.Second)
	cfg := map[string]any{"client_id": app.ClientID, "client_secret": app.ClientSecret, "redirect_uri": app.RedirectURIs[0],
		"refresh_token": refresh, "start_date": "2015-01-01T00:00:00Z", "page_size": "25", "quota_limit": 0.8, "api_base_url": srv.URL + "/api/v2"}
	raw, _ := json.Marshal(cfg)
	config := filepath.Join(dir, "config.json")
	os.WriteFile(config, raw, 0o600)
	store := []string{"--db", filepath.Join(dir, "tap.db"), "--key-file", filepath.Join(dir, "tap.key")}

	catalogOut, _, err := runCommand(t, "", "tap", "--discover")
	if err != nil {
		t.Fatal(err)
	}
	var cat struct {
		Streams []map[string]any `json:"streams"`
	}
	if err := json.Unmarshal([]byte(catalogOut), &cat); err != nil || len(cat.Streams) < 40 {
		t.Fatalf("--discover: %v, %d streams", err, len(cat.Streams))
	}
	// With the config, the catalog has the org's custom objects too: the
	// streams sync has.
	full, _, err := runCommand(t, "", append([]string{"tap", "--config", config, "--discover", "--log-level", "warn"}, store...)...)
	if err != nil {
		t.Fatal(err)
	}
	var fullCat struct {
		Streams []map[string]any `json:"streams"`
	}
	json.Unmarshal([]byte(full), &fullCat)
	if want := len(syncerStreamsOf(t, srv)); len(fullCat.Streams) != want || len(fullCat.Streams) != len(cat.Streams)+1 {
		t.Errorf("tap --config --discover: %d streams, want %d as sync has (the standard %d and the custom object)", len(fullCat.Streams), want, len(cat.Streams))
	}
	srv.Clock().Advance(61 * time.Second) // the discovery refreshed the token
	var picked []map[string]any
	for _, s := range cat.Streams {
		switch s["stream"] {
		case "prospects", "accounts", "duties":
			if s["stream"] == "prospects" { // deselect two fields
				md := s["metadata"].([]any)
				md = append(md, map[string]any{"breadcrumb": []string{"properties", "title"}, "metadata": map[string]any{"selected": false}},
					map[string]any{"breadcrumb": []string{"properties", "accountId"}, "metadata": map[string]any{"selected": false}})
				s["metadata"] = md
			}
			picked = append(picked, s)
		}
	}
	raw, _ = json.Marshal(map[string]any{"streams": picked})
	catalogPath := filepath.Join(dir, "catalog.json")
	os.WriteFile(catalogPath, raw, 0o644)

	out, _, err := runCommand(t, "", append([]string{"tap", "--config", config, "--catalog", catalogPath, "--log-level", "warn"}, store...)...)
	if err != nil {
		t.Fatal(err)
	}
	records, state := checkSinger(t, out)
	if records["prospects"] != 40 || records["accounts"] != 5 || records["duties"] != 5 || len(records) != 3 {
		t.Errorf("records = %v, want the 3 selected streams in full", records)
	}
	if !strings.Contains(out, `"ownerId":`) || !strings.Contains(out, `"contactHistogram":[[`) {
		t.Error("records lack tap-outreach's ownerId or the nested contactHistogram")
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, `"stream":"prospects"`) && strings.Contains(line, `"type":"RECORD"`) &&
			(strings.Contains(line, `"title":`) || strings.Contains(line, `"accountId":`)) {
			t.Fatal("a deselected field (title or accountId) was emitted")
		}
	}
	statePath := filepath.Join(dir, "state.json")
	os.WriteFile(statePath, state, 0o644)
	// The config's refresh token was rotated away: the stored one is used.
	srv.Clock().Advance(3 * time.Hour)
	srv.Mutate(30)
	out, _, err = runCommand(t, "", append([]string{"tap", "--config", config, "--catalog", catalogPath, "--state", statePath, "--log-level", "warn"}, store...)...)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	again, _ := checkSinger(t, out)
	if again["prospects"] >= 40 {
		t.Errorf("second run read %d prospects; with the state it should read only changes", again["prospects"])
	}
	if _, _, err := runCommand(t, "", "tap", "--config", filepath.Join(dir, "missing.json")); err == nil {
		t.Error("a missing config was accepted")
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"client_id":"x"}`), 0o600)
	if _, _, err := runCommand(t, "", "tap", "--config", bad); err == nil || !strings.Contains(err.Error(), "client_secret") {
		t.Errorf("config without keys: %v", err)
	}
}

// syncerStreamsOf is the streams sync finds in srv's org: the standard
// ones and its custom objects.
func syncerStreamsOf(t *testing.T, srv *sandbox.Server) []*connection.Stream {
	t.Helper()
	srv.Clock().Advance(61 * time.Second) // one token a minute per user and app
	access, _, err := srv.IssueToken(1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := outreach.NewClient(outreach.WithBaseURL(srv.URL+"/api/v2"), outreach.WithTokenSource(outreach.StaticToken(access)))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := syncer.Discover(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return syncer.Streams(cat)
}
