//go:build !unix

package connection

// processAlive cannot tell here: a lease of a dead process lapses when it
// expires.
func processAlive(int) bool { return true }
