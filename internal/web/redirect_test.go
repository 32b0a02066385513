package web

import (
	"net/url"
	"strings"
	"testing"
)

// browserResolve resolves a Location value against base the way a
// browser's URL parser reads it (WHATWG URL): leading and trailing C0
// controls and spaces stripped, every tab, CR and LF removed, and for
// http(s) a backslash read as a slash.
func browserResolve(base *url.URL, loc string) (*url.URL, error) {
	loc = strings.TrimFunc(loc, func(r rune) bool { return r <= 0x20 })
	loc = strings.NewReplacer("\t", "", "\n", "", "\r", "", `\`, "/").Replace(loc)
	return base.Parse(loc)
}

// hostileNexts are next values that leave the origin in a browser, or
// must be refused for their control characters.
var hostileNexts = []string{
	"//evil.example",
	"//evil.example/x",
	"/\t/evil.example",
	"/\n/evil.example",
	"/\r/evil.example",
	"/\r\n/evil.example",
	"\t//evil.example",
	" //evil.example",
	"\x00//evil.example",
	"/\x00/evil.example",
	"\\\\evil.example",
	"/\\evil.example",
	"\\/evil.example",
	"/\t\\evil.example",
	"/a/../\\evil.example",
	"/./\\evil.example",
	"/\x7f/evil.example",
	"/\x1f/evil.example",
	"https://evil.example",
	"http:evil.example",
	"javascript:alert(1)",
	"evil.example",
	"/x\x0b/y",
	"/x\x0c/y",
}

func TestSafeNextRefusesWhatLeavesTheOrigin(t *testing.T) {
	base, _ := url.Parse("http://127.0.0.1:8787/signin")
	for _, next := range hostileNexts {
		got := safeNext(next)
		if got != "/" {
			t.Errorf("safeNext(%q) = %q, want /", next, got)
		}
		// And whatever it returns, a browser stays here.
		u, err := browserResolve(base, got)
		if err != nil || u.Host != base.Host || u.Scheme != base.Scheme {
			t.Errorf("safeNext(%q) = %q resolves to %v", next, got, u)
		}
	}
}

func TestSafeNextKeepsLocalPaths(t *testing.T) {
	for _, next := range []string{"/", "/credentials/new", "/credentials/abc?notice=connected", "/%09/evil.example",
		"/%2F%2Fevil.example", "/%5Cevil.example", "/a/b/", "/credentials/x#events", "/a//b"} {
		if got := safeNext(next); got != next {
			t.Errorf("safeNext(%q) = %q, want it kept", next, got)
		}
	}
}

func TestSignInURLEscapesNext(t *testing.T) {
	got := signInURL("/credentials/x?a=1&b=2")
	u, _ := url.Parse(got)
	if u.Path != "/signin" || u.Query().Get("next") != "/credentials/x?a=1&b=2" {
		t.Errorf("signInURL = %q", got)
	}
}
