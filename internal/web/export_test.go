package web

// Exported for the tests of package web_test.
var (
	BrowserResolve = browserResolve
	HostileNexts   = hostileNexts
)

// Classify returns the status, code and Retry-After (seconds) of the
// problem classify makes of err.
func Classify(err error) (status int, code string, retryAfter int) {
	p := classify(err)
	return p.Status, p.Code, p.RetryAfter
}
