package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/outreach-connector/outreach-connector/sandbox"
)

func runCommand(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCommand(&out, &errOut)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestAPICommand(t *testing.T) {
	srv, err := sandbox.Start("", sandbox.Options{Prospects: 45})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	access, _, err := srv.IssueToken(1)
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"api", "--base-url", srv.URL + "/api/v2", "--token", access}
	tests := []struct {
		name      string
		args      []string
		stdin     string
		wantErr   string
		checkBody func(t *testing.T, out string)
	}{
		{"get with query flags", []string{"GET", "prospects", "-q", "page[size]=2", "-q", "sort=-id"}, "", "", func(t *testing.T, out string) {
			var doc struct {
				Data []struct{ ID int64 }
			}
			if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Data) != 2 || doc.Data[0].ID != 45 {
				t.Errorf("output %.200s: want the 2 newest prospects", out)
			}
		}},
		{"paginate", []string{"GET", "prospects?page[size]=10", "--paginate"}, "", "", func(t *testing.T, out string) {
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 45 || !strings.Contains(lines[44], `"type":"prospect"`) {
				t.Errorf("paginate printed %d lines, want 45 records", len(lines))
			}
		}},
		{"post from stdin", []string{"POST", "accounts", "--data", "-"}, `{"data":{"type":"account","attributes":{"name":"Acme"}}}`, "", func(t *testing.T, out string) {
			if !strings.Contains(out, `"name":"Acme"`) {
				t.Errorf("output %.200s: want the created account", out)
			}
		}},
		{"action", []string{"post", "sequences/1/actions/activate"}, "", "", func(t *testing.T, out string) {
			if !strings.Contains(out, `"enabled":true`) {
				t.Errorf("output %.200s: want an enabled sequence", out)
			}
		}},
		{"not found", []string{"GET", "prospects/99999"}, "", "resourceNotFound", nil},
		{"validation", []string{"POST", "prospects", "--data", `{"data":{"type":"prospect","attributes":{"openCount":"x"}}}`}, "", "/data/attributes/openCount", nil},
		{"bad json", []string{"POST", "accounts", "--data", `{"data":`}, "", "not valid JSON", nil},
		{"bad method", []string{"PUT", "accounts"}, "", "use GET, POST, PATCH or DELETE", nil},
		{"paginate a write", []string{"POST", "accounts", "--paginate"}, "", "GET only", nil},
		{"bad query", []string{"GET", "accounts", "-q", "novalue"}, "", "key=value", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runCommand(t, tt.stdin, append(base, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			tt.checkBody(t, out)
		})
	}
	t.Run("error never shows the token", func(t *testing.T) {
		_, _, err := runCommand(t, "", "api", "--base-url", srv.URL+"/api/v2", "--token", "secret-token-value", "GET", "prospects")
		if err == nil || strings.Contains(err.Error(), "secret-token-value") {
			t.Errorf("error = %v, want a failure that does not echo the token", err)
		}
	})
	t.Run("sandbox flag", func(t *testing.T) {
		out, _, err := runCommand(t, "", "api", "--sandbox", "GET", "stages")
		if err != nil || !strings.Contains(out, `"type":"stage"`) {
			t.Errorf("api --sandbox: %v %.100s", err, out)
		}
	})
}
