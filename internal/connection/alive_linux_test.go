package connection

import (
	"os/exec"
	"syscall"
	"testing"
)

// A process killed but not yet reaped by its parent (a zombie) is gone.
func TestZombieIsNotAlive(t *testing.T) {
	cmd := exec.Command("sleep", "3600")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer cmd.Wait()
	pid := cmd.Process.Pid
	if !ProcessAlive(pid) {
		t.Fatal("a running process is not alive")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Wait for the exit without reaping: waitid(P_PID, pid, NULL, WEXITED|WNOWAIT).
	const pPID, wNoWait = 1, 0x1000000
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid), 0, syscall.WEXITED|wNoWait, 0, 0)
		if errno != syscall.EINTR {
			if errno != 0 {
				t.Skipf("waitid: %v", errno)
			}
			break
		}
	}
	if ProcessAlive(pid) {
		t.Error("a zombie counts as alive")
	}
}
