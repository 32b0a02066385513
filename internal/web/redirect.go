package web

import (
	"net/url"
	"path"
	"strings"
)

// safeNext returns p when a browser, resolving it as a redirect target
// against this server's URL, stays on this origin; otherwise "/".
//
// Browsers parse a Location by the WHATWG URL rules: they strip leading
// and trailing C0 controls and spaces, delete every tab, CR and LF, and
// for http(s) read a backslash as a slash. So "/\t/evil.example" and
// "/\\evil.example" both mean "//evil.example", another host. Rather than
// imitate every rule, safeNext accepts only what needs none of them: no
// control character, no backslash, no leading space, and a path that
// starts with exactly one slash, before and after the cleaning
// http.Redirect applies.
func safeNext(p string) string {
	if p == "" || len(p) > 2048 {
		return "/"
	}
	for _, c := range []byte(p) {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	if !onePathSlash(p) {
		return "/"
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	// http.Redirect cleans the part before "?" (dot segments, double
	// slashes); what it sends must pass the same test.
	before, _, _ := strings.Cut(p, "?")
	if !onePathSlash(path.Clean(before)) {
		return "/"
	}
	return p
}

// onePathSlash reports whether p starts with "/" not followed by another
// slash, that is, a path on this host rather than a scheme-relative URL.
func onePathSlash(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//")
}

// signInURL is the sign-in page that returns to r's page afterwards.
func signInURL(pathAndQuery string) string {
	return "/signin?" + url.Values{"next": {safeNext(pathAndQuery)}}.Encode()
}
