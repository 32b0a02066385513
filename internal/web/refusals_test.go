package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/service"
)

// TestRefusalsMappedByType: the service's typed refusals answer with
// their status, code and field problems whatever their text says, in the
// JSON API and on the form (each problem next to its field).
func TestRefusalsMappedByType(t *testing.T) {
	ce := newConnEnv(t)
	id := ce.create(t, nil)
	invalid := &service.InvalidError{Problems: []connection.FieldError{
		{Field: connection.FieldQuotaShare, Message: "quota share 3 is out of range; use a fraction in (0, 1]"},
		{Field: connection.FieldNamespace, Message: "namespace \"X\" is not usable; use lowercase letters"}}}
	nameTaken := &service.ConflictError{Field: connection.FieldName, Code: "name_taken", Name: "Acme EU", Err: connection.ErrNameTaken}
	nsTaken := &service.ConflictError{Field: connection.FieldNamespace, Code: "namespace_taken", Name: "Acme EU", Err: connection.ErrNamespaceTaken}
	tests := []struct {
		name, method, path string
		err                error
		status             int
		code               string
		fields             []string
	}{
		{"invalid", "POST", "/api/connections", reworded{"zzz", invalid}, 422, "invalid", []string{"quota_share", "namespace"}},
		{"name taken", "POST", "/api/connections", reworded{"zzz", nameTaken}, 409, "name_taken", []string{"name"}},
		{"namespace taken", "POST", "/api/connections", reworded{"zzz", nsTaken}, 409, "namespace_taken", []string{"namespace"}},
		{"running", "POST", "/api/connections/" + id + "/run", reworded{"zzz", fmt.Errorf("x: %w", service.ErrRunning)}, 409, "conflict", nil},
		{"no run", "POST", "/api/connections/" + id + "/run", reworded{"zzz", service.ErrNoRun}, 409, "conflict", nil},
		{"unsupported", "POST", "/api/connections/" + id + "/run", reworded{"zzz", service.ErrUnsupported}, 422, "unsupported", nil},
		{"not found", "POST", "/api/connections/" + id + "/run", reworded{"zzz", service.ErrNotFound}, 404, "not_found", nil},
		{"anything else", "POST", "/api/connections/" + id + "/run", reworded{"invalid name_taken not found", fmt.Errorf("disk full")}, 500, "internal", nil},
	}
	for _, tt := range tests {
		ce.fake.setRefuse(tt.err)
		status, body := ce.api(t, tt.method, tt.path, `{"name":"api","credential":"acme"}`)
		var got struct {
			Code     string `json:"code"`
			Message  string `json:"message"`
			Problems []struct{ Field, Message string }
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%s: %v: %s", tt.name, err, body)
		}
		if status != tt.status || got.Code != tt.code || got.Message == "" {
			t.Errorf("%s: %d %s, want %d %q", tt.name, status, body, tt.status, tt.code)
		}
		if len(got.Problems) != len(tt.fields) {
			t.Errorf("%s: problems %+v, want fields %v", tt.name, got.Problems, tt.fields)
			continue
		}
		for i, f := range tt.fields {
			if got.Problems[i].Field != f || got.Problems[i].Message == "" {
				t.Errorf("%s: problem %d = %+v, want field %s", tt.name, i, got.Problems[i], f)
			}
		}
	}
	if !strings.Contains(mustAPI(t, ce, reworded{"zzz", invalid}), `{"field":"quota_share","message":"Quota share 3 is out of range; use a fraction in (0, 1]"}`) {
		t.Error("the invalid answer lacks the quota share problem as a sentence")
	}

	// The form: each problem next to its field, the form kept.
	for _, tt := range []struct {
		err    error
		status int
		ids    []string
	}{
		{invalid, 422, []string{`id="quota_share-error"`, `id="namespace-error"`}},
		{nameTaken, 409, []string{`id="name-error"`}},
	} {
		ce.fake.setRefuse(tt.err)
		resp, body := ce.post(t, "/connections", ce.form(map[string][]string{"name": {"Second"}}))
		if resp.StatusCode != tt.status || !strings.Contains(body, `id="problems"`) || !strings.Contains(body, `value="Second"`) {
			t.Errorf("form refused with %v: %d", tt.err, resp.StatusCode)
		}
		for _, want := range tt.ids {
			if !strings.Contains(body, want) {
				t.Errorf("form refused with %v lacks %s", tt.err, want)
			}
		}
	}
	ce.fake.setRefuse(nil)
	resp, body := ce.post(t, "/connections", ce.form(map[string][]string{"name": {" Spaced "}, "quota_share": {"2"}}))
	for _, want := range []string{`id="name-error">Name &#34; Spaced &#34; starts or ends with a space`, `id="quota_share-error">Quota share 2 is out of range`,
		`name="name" value=" Spaced " required maxlength="100" aria-invalid="true"`} {
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, want) {
			t.Errorf("a bad form (%d) lacks %s", resp.StatusCode, want)
		}
	}
}

func mustAPI(t *testing.T, ce *connEnv, err error) string {
	t.Helper()
	ce.fake.setRefuse(err)
	defer ce.fake.setRefuse(nil)
	_, body := ce.api(t, "POST", "/api/connections", `{"name":"api","credential":"acme"}`)
	return body
}
