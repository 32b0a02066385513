package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// These tests drive the built binary the way a user does: on a
// pseudo-terminal (160x50, as tmux gives), and through a pipe.

var binDir, pkgDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "outreach-connector-bin")
	if err != nil {
		panic(err)
	}
	binDir = dir
	if pkgDir, err = os.Getwd(); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildBinary builds the command once per test binary run.
var buildBinary = sync.OnceValues(func() (string, error) {
	path := filepath.Join(binDir, "outreach-connector")
	build := exec.Command("go", "build", "-o", path, ".")
	build.Dir = pkgDir
	out, err := build.CombinedOutput()
	if err != nil {
		return "", errors.New(string(out))
	}
	return path, nil
})

func binary(t *testing.T) string {
	t.Helper()
	path, err := buildBinary()
	if err != nil {
		t.Fatalf("go build: %v", err)
	}
	return path
}

// command runs the binary in dir with a clean environment.
func command(t *testing.T, dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(binary(t), args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OUTREACH_") && !strings.HasPrefix(kv, "TERM=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "TERM=xterm-256color")
	return cmd
}

// terminal is a command running on a pseudo-terminal, its output
// collected as it comes.
type terminal struct {
	t      *testing.T
	cmd    *exec.Cmd
	master *os.File
	mu     sync.Mutex
	out    bytes.Buffer
	more   chan struct{} // a token when output arrived or the reader ended
	read   sync.WaitGroup
	ended  bool
}

func startTerminal(t *testing.T, dir string, args ...string) *terminal {
	t.Helper()
	return startTerminalSized(t, dir, &pty.Winsize{Cols: 160, Rows: 50}, args...)
}

// startTerminalSized starts the command on a terminal of the size given
// (0 by 0: one nobody sized, as script's or a CI runner's).
func startTerminalSized(t *testing.T, dir string, size *pty.Winsize, args ...string) *terminal {
	t.Helper()
	cmd := command(t, dir, args...)
	master, err := pty.StartWithSize(cmd, size)
	if err != nil {
		t.Fatal(err)
	}
	tm := &terminal{t: t, cmd: cmd, master: master, more: make(chan struct{}, 1)}
	tm.read.Go(func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := master.Read(buf)
			tm.mu.Lock()
			tm.out.Write(buf[:n])
			tm.ended = err != nil // EIO once the program and its terminal are gone
			tm.mu.Unlock()
			select {
			case tm.more <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	})
	t.Cleanup(func() {
		if tm.cmd.ProcessState == nil {
			tm.cmd.Process.Kill()
			tm.cmd.Wait()
		}
		master.Close()
		tm.read.Wait()
	})
	return tm
}

func (tm *terminal) output() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.out.String()
}

// waitFor waits until the output matches re; limit only bounds a hang.
func (tm *terminal) waitFor(re *regexp.Regexp, limit time.Duration) bool {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		tm.mu.Lock()
		found, ended := re.Match(tm.out.Bytes()), tm.ended
		tm.mu.Unlock()
		if found {
			return true
		}
		if ended {
			return false
		}
		select {
		case <-tm.more:
		case <-deadline.C:
			return false
		}
	}
}

// wait waits for the program to exit (killing it after limit) and for
// the rest of its output; it returns the exit status.
func (tm *terminal) wait(limit time.Duration) int {
	tm.t.Helper()
	done := make(chan error, 1)
	go func() { done <- tm.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(limit):
		tm.cmd.Process.Kill()
		<-done
		tm.t.Fatalf("still running after %s; output:\n%s", limit, tm.output())
	}
	tm.read.Wait()
	return tm.cmd.ProcessState.ExitCode()
}

var (
	// A stream's bar: "prospects   400 / 1000  [=====>----]   40 %".
	barPattern = regexp.MustCompile(`\d+ / \d+\s+\[[=>-]+\]\s+\d+ %`)
	// The whole-run line: "all streams   3 / 48 streams".
	overallPattern = regexp.MustCompile(`all streams\s+(\d+) / (\d+) streams`)
	summary        = regexp.MustCompile(`\d+ records? in \d+ streams? into sqlite:outreach.db`)
)

// TestSyncOnTerminal runs the README's command on a terminal: it must
// finish, draw bars with totals and percentages, and print the summary;
// its sandbox credential must not outlive it.
func TestSyncOnTerminal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tm := startTerminal(t, dir, "sync", "--sandbox")
	if code := tm.wait(2 * time.Minute); code != 0 {
		t.Fatalf("exit status %d; output:\n%s", code, tm.output())
	}
	out := tm.output()
	if !barPattern.MatchString(out) {
		t.Errorf("no stream bar with a total and a percentage in the output:\n%q", out)
	}
	if !summary.MatchString(out) || strings.Contains(out, "FAILED") || strings.Contains(out, "skip ") {
		t.Errorf("want a summary with every stream synced; output:\n%s", out)
	}
	if strings.Contains(out, "level=INFO") {
		t.Errorf("info log lines on a terminal by default:\n%s", out)
	}
	assertNoSandboxCredential(t, dir)
	// The released lock names no process.
	if holder, err := os.ReadFile(filepath.Join(dir, defaultAppDB+".sandbox.lock")); err != nil || len(holder) != 0 {
		t.Errorf("sandbox lock after the run: %q, %v; want an empty file", holder, err)
	}
}

// TestSyncOnUnsizedTerminal: on a terminal that reports no size the bars
// are drawn all the same (mpb alone would draw none).
func TestSyncOnUnsizedTerminal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tm := startTerminalSized(t, dir, &pty.Winsize{}, "sync", "--sandbox", "--sandbox-prospects", "200")
	if code := tm.wait(2 * time.Minute); code != 0 {
		t.Fatalf("exit status %d; output:\n%s", code, tm.output())
	}
	if out := tm.output(); !overallPattern.MatchString(out) || !summary.MatchString(out) {
		t.Errorf("no whole-run bar, or no summary, on a terminal without a size:\n%q", out)
	}
}

// TestSyncInterruptOnTerminal stops a long sync on a terminal once its
// first bar is drawn: with Ctrl-C typed on the terminal (exit 130) and
// with SIGTERM (exit 143). It must stop within a second or so, call the
// unfinished streams interrupted, not failed, and say the next run
// resumes.
func TestSyncInterruptOnTerminal(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		stop func(tm *terminal) error
		code int
	}{
		{"ctrl-c", func(tm *terminal) error { _, err := tm.master.Write([]byte{3}); return err }, 130},
		{"sigterm", func(tm *terminal) error { return tm.cmd.Process.Signal(syscall.SIGTERM) }, 143},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			tm := startTerminal(t, dir, "sync", "--sandbox", "--sandbox-prospects", "20000", "--page-size", "20")
			if !tm.waitFor(barPattern, time.Minute) {
				t.Fatalf("no bar drawn; output:\n%s", tm.output())
			}
			stopped := time.Now()
			if err := tt.stop(tm); err != nil {
				t.Fatal(err)
			}
			code := tm.wait(30 * time.Second)
			took := time.Since(stopped)
			out := tm.output()
			if code != tt.code {
				t.Errorf("exit status %d, want %d", code, tt.code)
			}
			if took > 2*time.Second {
				t.Errorf("took %s to stop, want about a second at most", took)
			}
			if testing.Verbose() {
				t.Logf("stopped in %s", took)
			}
			if !strings.Contains(out, "interrupted") || !strings.Contains(out, "the next run resumes") || !summary.MatchString(out) {
				t.Errorf("want a summary with interrupted streams and the resume hint; output:\n%s", out)
			}
			if strings.Contains(out, "FAILED") || strings.Contains(out, "Error:") {
				t.Errorf("an interruption reported as a failure:\n%s", out)
			}
			// The whole-run line counts the streams that finished, not the
			// interrupted ones.
			var last []string
			for _, line := range replay(out) {
				if m := overallPattern.FindStringSubmatch(line); m != nil {
					last = m
				}
			}
			ok := strconv.Itoa(len(regexp.MustCompile(`(?m)\sok\s*$`).FindAllString(out, -1)))
			if last == nil || last[1] != ok || last[1] == last[2] {
				t.Errorf("whole-run line %q after an interruption, want %s streams done (those the summary calls ok):\n%s", last, ok, out)
			}
			assertNoSandboxCredential(t, dir)
		})
	}
}

// TestSyncOffTerminal runs the README's command through pipes: no bars,
// no terminal control sequences, the summary on stdout and info logs on
// stderr.
func TestSyncOffTerminal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := command(t, dir, "sync", "--sandbox")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if !summary.MatchString(stdout.String()) || strings.Contains(stdout.String(), "\x1b[") {
		t.Errorf("stdout: want the summary and no control sequences:\n%q", stdout.String())
	}
	if !strings.Contains(stderr.String(), `msg="stream synced"`) {
		t.Errorf("stderr: want info logs per stream:\n%s", stderr.String())
	}
}

func TestVersionCommandOfBinary(t *testing.T) {
	out, err := command(t, t.TempDir(), "version").Output()
	if err != nil || !regexp.MustCompile(`^outreach-connector \S+.*, go1\.\d+`).Match(out) {
		t.Errorf("version: %v %q", err, out)
	}
}

// assertNoSandboxCredential checks that a sync --sandbox run in dir left
// no credential behind: its sandbox is gone.
func assertNoSandboxCredential(t *testing.T, dir string) {
	t.Helper()
	f := storeFlags{db: filepath.Join(dir, defaultAppDB), keyFile: filepath.Join(dir, "outreach.key")}
	m, _, closeStore, err := f.open(t.Context(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	if rec, err := m.Get(t.Context(), "sandbox"); err == nil {
		t.Errorf("credential sandbox left behind as %s, pointing at %s", rec.Status, rec.APIBaseURL)
	}
}

// TestSyncLogsDoNotTearBars runs sync on a terminal with info logs: every
// log line must survive on the screen whole, on a line of its own, after
// the bars have been redrawn around it many times.
func TestSyncLogsDoNotTearBars(t *testing.T) {
	t.Parallel()
	tm := startTerminal(t, t.TempDir(), "sync", "--sandbox", "--log-level", "info")
	if code := tm.wait(2 * time.Minute); code != 0 {
		t.Fatalf("exit status %d; output:\n%s", code, tm.output())
	}
	screen := replay(tm.output())
	synced := 0
	for _, line := range screen {
		if strings.Contains(line, "time=") && !strings.HasPrefix(line, "time=") {
			t.Errorf("a log line shares a line with something else: %q", line)
		}
		if strings.HasPrefix(line, "time=") && strings.Contains(line, `msg="stream synced"`) && strings.HasSuffix(line, " deleted=0") {
			synced++
		}
	}
	if synced != 48 {
		t.Errorf("%d whole \"stream synced\" lines on the screen, want 48:\n%s", synced, strings.Join(screen, "\n"))
	}
}

// replay plays terminal output onto a screen of unlimited height, as a
// terminal would show it with its scrollback: text, CR, LF, and the
// cursor-up (CSI n A) and erase (CSI J, CSI K) sequences the bars use.
// Other control sequences are dropped.
func replay(out string) []string {
	lines := []string{""}
	row, col := 0, 0
	put := func(s string) {
		for len(lines) <= row {
			lines = append(lines, "")
		}
		line := []rune(lines[row])
		for len(line) < col {
			line = append(line, ' ')
		}
		r := []rune(s)
		if col+len(r) < len(line) {
			line = append(append(line[:col:col], r...), line[col+len(r):]...)
		} else {
			line = append(line[:col], r...)
		}
		lines[row] = string(line)
		col += len(r)
	}
	for i := 0; i < len(out); {
		switch c := out[i]; {
		case c == '\r':
			col = 0
			i++
		case c == '\n':
			row, col = row+1, 0
			for len(lines) <= row {
				lines = append(lines, "")
			}
			i++
		case c == 0x1b && i+1 < len(out) && out[i+1] == '[':
			j := i + 2
			for j < len(out) && (out[j] < 0x40 || out[j] > 0x7e) {
				j++
			}
			if j == len(out) {
				return lines
			}
			arg := out[i+2 : j]
			switch out[j] {
			case 'A':
				n := 1
				if arg != "" {
					n, _ = strconv.Atoi(arg)
				}
				row = max(row-n, 0)
			case 'J':
				if row < len(lines) {
					lines[row] = string([]rune(lines[row])[:min(col, len([]rune(lines[row])))])
					lines = lines[:row+1]
				}
			case 'K':
				if row < len(lines) {
					lines[row] = string([]rune(lines[row])[:min(col, len([]rune(lines[row])))])
				}
			}
			i = j + 1
		default:
			j := i
			for j < len(out) && out[j] != '\r' && out[j] != '\n' && out[j] != 0x1b {
				j++
			}
			if j == i { // a lone ESC
				i++
				continue
			}
			put(out[i:j])
			i = j
		}
	}
	return lines
}
