package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/web"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// AdminTokenEnv can hold the admin token instead of the token file.
const AdminTokenEnv = "OUTREACH_CONNECTOR_ADMIN_TOKEN"

func newServeCommand(logger func() (*slog.Logger, error)) *cobra.Command {
	var (
		addr, publicURL, tokenFile string
		withSandbox                bool
		store                      storeFlags
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the credentials web UI and JSON API (127.0.0.1:8787 by default)",
		Long: `Serves the web UI where you add Outreach credentials and authorize them, the JSON API for the
same operations, and the OAuth callback. It keeps connected credentials alive (a refresh at least
daily) while it runs.

On first start it creates an admin token, prints it and keeps it in --admin-token-file (mode 0600);
sign in with it. With --sandbox it also runs a local Outreach sandbox and fills the Add Credential
form with the sandbox's app.`,
		Example: "  outreach-connector serve --sandbox\n  outreach-connector serve --db postgres://user@db:5432/outreach --addr 127.0.0.1:8787",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logger()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w (choose another with --addr)", addr, err)
			}
			defer ln.Close()
			if publicURL == "" {
				publicURL = "http://" + ln.Addr().String()
			}
			publicURL = strings.TrimSuffix(publicURL, "/")
			callback := publicURL + "/oauth/callback"
			m, _, closeStore, err := store.open(ctx, log.With("component", "credential"), nil)
			if err != nil {
				return err
			}
			defer closeStore()
			admin, fresh, err := adminToken(tokenFile)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			opts := web.Options{Manager: m, AdminToken: admin, CallbackURL: callback, Logger: log.With("component", "web")}
			if withSandbox {
				sb, err := sandbox.Start("", sandbox.Options{RedirectURI: callback, Logger: log.With("component", "sandbox")})
				if err != nil {
					return err
				}
				defer sb.Close()
				app := sb.Apps()[0]
				opts.Defaults = credential.NewCredential{Name: "sandbox", Description: "Local Outreach sandbox", ClientID: app.ClientID,
					ClientSecret: app.ClientSecret, APIBaseURL: sb.URL + "/api/v2", RedirectURI: callback, Environment: credential.Development}
				email, password := sb.SignInUser()
				fmt.Fprintf(out, "Outreach sandbox on %s (sign in on its consent page as %s / %s)\n", sb.URL, email, password)
			}
			srv, err := web.New(opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "outreach-connector serving on %s\n", publicURL)
			if fresh {
				fmt.Fprintf(out, "Admin token (shown once; kept in %s): %s\n", tokenFile, admin)
			} else {
				fmt.Fprintf(out, "Sign in with the admin token in %s (or %s)\n", tokenFile, AdminTokenEnv)
			}
			go keepAlive(ctx, m, log)
			hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(ln) }()
			select {
			case err := <-errc:
				if errors.Is(err, http.ErrServerClosed) {
					return nil
				}
				return err
			case <-ctx.Done():
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				return hs.Shutdown(sctx)
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8787", "address to listen on (loopback by default)")
	f.StringVar(&publicURL, "public-url", "", "the URL browsers reach this server at (default http://ADDR)")
	f.StringVar(&tokenFile, "admin-token-file", envOr("OUTREACH_CONNECTOR_ADMIN_TOKEN_FILE", "outreach.admin"), "file holding the admin token")
	f.BoolVar(&withSandbox, "sandbox", false, "also run a local Outreach sandbox to connect to")
	store.register(cmd.Flags())
	return cmd
}

// adminToken returns the admin token from the environment, or from the
// token file, creating it (mode 0600) on first start; fresh reports a new
// token.
func adminToken(path string) (token string, fresh bool, err error) {
	if v := os.Getenv(AdminTokenEnv); v != "" {
		return v, false, nil
	}
	raw, err := os.ReadFile(path)
	if err == nil {
		if t := strings.TrimSpace(string(raw)); len(t) >= 16 {
			return t, false, nil
		}
		return "", false, fmt.Errorf("admin token file %s is too short; delete it to get a new token", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", false, err
	}
	b := make([]byte, 24)
	rand.Read(b)
	token = hex.EncodeToString(b)
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("write admin token file: %w", err)
	}
	return token, true, nil
}

// keepAlive refreshes idle credentials hourly, so none passes a day
// without a refresh (Outreach refresh tokens die after 14 idle days).
func keepAlive(ctx context.Context, m *credential.Manager, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := m.KeepAlive(ctx, 24*time.Hour); err != nil {
			log.Warn("keep-alive", "refreshed", n, "err", err)
		} else if n > 0 {
			log.Info("keep-alive", "refreshed", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
