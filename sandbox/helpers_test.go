package sandbox_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/outreach-connector/outreach-connector/sandbox"
)

// start serves a sandbox for one test with a frozen clock.
func start(t testing.TB, opts sandbox.Options) *sandbox.Server {
	t.Helper()
	if opts.Clock == nil {
		opts.Clock = sandbox.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	}
	if opts.Prospects == 0 {
		opts.Prospects = 200
	}
	srv, err := sandbox.Start("", opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// token mints an access token for user 1 with every scope, or the given ones.
func token(t testing.TB, srv *sandbox.Server, scopes ...string) string {
	t.Helper()
	return tokenFor(t, srv, 1, scopes...)
}

func tokenFor(t testing.TB, srv *sandbox.Server, user int64, scopes ...string) string {
	t.Helper()
	access, _, err := srv.IssueToken(user, scopes...)
	if err != nil {
		t.Fatalf("IssueToken: %v", err)
	}
	return access
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) doc(t testing.TB) document {
	t.Helper()
	var d document
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatalf("decode %d response %.200s: %v", r.status, r.body, err)
	}
	return d
}

type document struct {
	Data     json.RawMessage `json:"data"`
	Included []resource      `json:"included"`
	Links    struct {
		First string `json:"first"`
		Next  string `json:"next"`
		Prev  string `json:"prev"`
	} `json:"links"`
	Meta struct {
		Count          *int `json:"count"`
		CountTruncated bool `json:"count_truncated"`
	} `json:"meta"`
	Errors []struct {
		ID      string `json:"id"`
		Title   string `json:"title"`
		Detail  string `json:"detail"`
		Details string `json:"details"`
		Code    string `json:"code"`
		Source  struct {
			Pointer   string `json:"pointer"`
			Parameter string `json:"parameter"`
		} `json:"source"`
	} `json:"errors"`
}

type resource struct {
	Type          string                     `json:"type"`
	ID            int64                      `json:"id"`
	Attributes    map[string]json.RawMessage `json:"attributes"`
	Relationships map[string]struct {
		Data  json.RawMessage `json:"data"`
		Links struct {
			Related string `json:"related"`
		} `json:"links"`
		Meta struct {
			Count int `json:"count"`
		} `json:"meta"`
	} `json:"relationships"`
	Links struct {
		Self string `json:"self"`
	} `json:"links"`
}

func (d document) list(t testing.TB) []resource {
	t.Helper()
	var rs []resource
	if err := json.Unmarshal(d.Data, &rs); err != nil {
		t.Fatalf("data is not a list: %.200s", d.Data)
	}
	return rs
}

func (d document) one(t testing.TB) resource {
	t.Helper()
	var r resource
	if err := json.Unmarshal(d.Data, &r); err != nil {
		t.Fatalf("data is not a resource: %.200s", d.Data)
	}
	return r
}

func (r resource) str(name string) string {
	var s string
	json.Unmarshal(r.Attributes[name], &s)
	return s
}

func (r resource) relID(name string) int64 {
	var ref struct {
		ID int64 `json:"id"`
	}
	json.Unmarshal(r.Relationships[name].Data, &ref)
	return ref.ID
}

// call sends an API request with the JSON:API media type and a bearer token.
func call(t testing.TB, srv *sandbox.Server, tok, method, path, body string) response {
	t.Helper()
	u := path
	if !strings.HasPrefix(path, "http") {
		u = srv.URL + path
	}
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/vnd.api+json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return send(t, req)
}

func send(t testing.TB, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func q(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return "?" + v.Encode()
}

// listAll follows links.next to the end and returns every record.
func listAll(t testing.TB, srv *sandbox.Server, tok, path string) []resource {
	t.Helper()
	var all []resource
	next := path
	for pages := 0; next != ""; pages++ {
		if pages > 10000 {
			t.Fatal("pagination does not end")
		}
		r := call(t, srv, tok, "GET", next, "")
		if r.status != 200 {
			t.Fatalf("GET %s: %d %s", next, r.status, r.body)
		}
		d := r.doc(t)
		all = append(all, d.list(t)...)
		next = d.Links.Next
	}
	return all
}
