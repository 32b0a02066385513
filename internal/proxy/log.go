package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// accessLog writes one line per request. It names the caller by its key's
// name, never the key; query values whose name suggests a secret (token,
// code, secret, password, key, signature, cursor) are replaced by "…", and
// no header is logged.
func (p *Proxy) accessLog(r *http.Request, ex *exchange) {
	attrs := []any{"method", r.Method, "path", redactPath(r.URL), "status", ex.status,
		"duration_ms", float64(time.Since(ex.start).Microseconds()) / 1000, "bytes", ex.bytes,
		"caller", ex.caller, "credential", ex.credential, "remote", r.RemoteAddr}
	if ex.replayed {
		attrs = append(attrs, "replayed", true)
	}
	if ex.pages > 0 {
		attrs = append(attrs, "pages", ex.pages)
	}
	if ex.err != nil {
		attrs = append(attrs, "err", redactText(ex.err.Error()))
	}
	p.log.Info("proxy", attrs...)
}

var secretWords = []string{"token", "code", "secret", "password", "passwd", "key", "signature", "sig", "auth", "after", "cursor", "session"}

func secretName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// redactPath is the request's path with secret-looking query values hidden.
func redactPath(u *url.URL) string {
	if u.RawQuery == "" {
		return u.EscapedPath()
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return u.EscapedPath() + "?…"
	}
	for k := range q {
		if secretName(k) {
			q[k] = []string{"…"}
		}
	}
	return u.EscapedPath() + "?" + q.Encode()
}

// redactText hides bearer tokens and API keys inside an error message.
func redactText(s string) string {
	for _, marker := range []string{"Bearer ", KeyPrefix} {
		for i := strings.Index(s, marker); i >= 0; i = strings.Index(s, marker) {
			j := i + len(marker)
			for j < len(s) && s[j] != ' ' && s[j] != '"' && s[j] != '\'' && s[j] != ',' {
				j++
			}
			s = s[:i] + "[redacted]" + s[j:]
		}
	}
	// Query strings inside messages (URLs) lose their values.
	var b strings.Builder
	for len(s) > 0 {
		i := strings.IndexByte(s, '?')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i+1])
		b.WriteString("…")
		j := strings.IndexAny(s[i:], " \"'")
		if j < 0 {
			break
		}
		s = s[i+j:]
	}
	return b.String()
}
