package web

// Exported for the tests of package web_test.
var (
	BrowserResolve = browserResolve
	HostileNexts   = hostileNexts
)
