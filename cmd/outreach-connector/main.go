// Command outreach-connector is the Outreach integration: credentials, API
// access, sync, and a local Outreach sandbox, in one binary.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
)

func main() { os.Exit(run()) }

// run executes the command line and returns the exit status: 0, 1 on
// error, or 128 plus the signal's number when SIGINT or SIGTERM stopped
// the command (130 for Ctrl-C). A first signal cancels the command's
// context so it can stop cleanly; a second one ends the process at once.
func run() int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	finished := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case s := <-sigs:
			signal.Stop(sigs) // the next signal has its default effect
			cancel(signalError{s.(syscall.Signal)})
		case <-finished:
		}
	})
	err := newRootCommand(os.Stdout, os.Stderr).ExecuteContext(ctx)
	close(finished)
	wg.Wait()
	signal.Stop(sigs)
	var sig signalError
	if err != nil && errors.As(context.Cause(ctx), &sig) {
		if err != errInterrupted { // a bare errInterrupted was reported by the command

			fmt.Fprintln(os.Stderr, "Error:", err)
		}
		return 128 + int(sig.Signal)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		var coded interface{ ExitCode() int }
		if errors.As(err, &coded) {
			return coded.ExitCode()
		}
		return 1
	}
	return 0
}

// signalError is the cause of a context cancelled by a signal.
type signalError struct{ syscall.Signal }

func (e signalError) Error() string { return "stopped by " + e.Signal.String() }

// errInterrupted is returned by a command that reported an interruption
// itself: main sets the exit status and prints nothing more.
var errInterrupted = errors.New("interrupted")

// newRootCommand builds the command tree. Output goes to stdout, logs and
// errors to stderr.
func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	logs := &logSink{w: stderr}
	root := &cobra.Command{
		Use:   "outreach-connector",
		Short: "Connect Outreach (outreach.io) to your data: credentials, API access, sync, and a local sandbox",
		Long: `Connect Outreach (outreach.io) to your data: named OAuth credentials kept valid, API access with rate
limits handled, incremental sync into SQLite, PostgreSQL, JSON Lines or Singer, and a local Outreach
sandbox to develop and test against.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return logs.parseLevel(cmd.Flags().Changed("log-level"))
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&logs.levelName, "log-level", "info", "log level: debug, info, warn or error")
	logger := func() (*slog.Logger, error) {
		return slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: &logs.level})), nil
	}
	root.AddCommand(newSandboxCommand(logger))
	root.AddCommand(newAPICommand(logger))
	root.AddCommand(newServeCommand(logger))
	root.AddCommand(newCredentialsCommand(logger))
	root.AddCommand(newConnectionsCommand(logger, logs))
	root.AddCommand(newSyncCommand(logger, logs))
	root.AddCommand(newStreamsCommand())
	root.AddCommand(newTapCommand(logger))
	root.AddCommand(newLoadCommand(logger))
	root.AddCommand(newKeysCommand(logger))
	root.AddCommand(newVersionCommand())
	return root
}

// logSink is where log lines go: stderr, or above the live progress bars
// while they are drawn, so that a log line never tears them.
type logSink struct {
	levelName string
	explicit  bool // --log-level was given
	level     slog.LevelVar

	mu sync.Mutex
	w  io.Writer
}

func (s *logSink) parseLevel(explicit bool) error {
	s.explicit = explicit
	switch s.levelName {
	case "debug":
		s.level.Set(slog.LevelDebug)
	case "info":
		s.level.Set(slog.LevelInfo)
	case "warn":
		s.level.Set(slog.LevelWarn)
	case "error":
		s.level.Set(slog.LevelError)
	default:
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", s.levelName)
	}
	return nil
}

func (s *logSink) Write(b []byte) (int, error) {
	s.mu.Lock()
	w := s.w
	s.mu.Unlock()
	return w.Write(b)
}

// redirect sends log lines to w until the returned function is called.
func (s *logSink) redirect(w io.Writer) (restore func()) {
	s.mu.Lock()
	old := s.w
	s.w = w
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.w = old
		s.mu.Unlock()
	}
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit it was built from, and the Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), versionText(debug.ReadBuildInfo()))
			return nil
		},
	}
}

// versionText describes a build: the module version ("(devel)" for a
// build from a checkout), the VCS revision and time when recorded, and
// the Go version.
func versionText(info *debug.BuildInfo, ok bool) string {
	if !ok {
		return "outreach-connector (no build information)"
	}
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	text := "outreach-connector " + version
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		text += ", commit " + rev
		if settings["vcs.modified"] == "true" {
			text += " (modified)"
		}
		if t := settings["vcs.time"]; t != "" {
			text += " of " + t
		}
	}
	return text + ", " + info.GoVersion
}
