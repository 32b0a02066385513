// Command outreach-connector is the Outreach integration: credentials, API
// access, sync, and a local Outreach sandbox, in one binary.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

// newRootCommand builds the command tree. Output goes to stdout, logs and
// errors to stderr.
func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	var logLevel string
	root := &cobra.Command{
		Use:           "outreach-connector",
		Short:         "Connect Outreach (outreach.io) to your data: credentials, API access, sync, and a local sandbox",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	logger := func() (*slog.Logger, error) {
		var level slog.Level
		if err := level.UnmarshalText([]byte(logLevel)); err != nil {
			return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", logLevel)
		}
		return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})), nil
	}
	root.AddCommand(newSandboxCommand(logger))
	root.AddCommand(newAPICommand(logger))
	root.AddCommand(newServeCommand(logger))
	root.AddCommand(newCredentialsCommand(logger))
	root.AddCommand(newSyncCommand(logger))
	root.AddCommand(newStreamsCommand())
	root.AddCommand(newTapCommand(logger))
	return root
}
