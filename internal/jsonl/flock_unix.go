//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package jsonl

import (
	"os"
	"syscall"
)

// flock takes an exclusive advisory lock on f, held until f is closed.
func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			return err
		}
	}
}
