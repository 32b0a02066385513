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
	"net/url"
	"os"
	"strings"
	"sync"
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
			if publicURL != "" {
				if err := checkPublicURL(publicURL); err != nil {
					return err
				}
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
			admin, fresh, err := adminToken(tokenFile)
			if err != nil {
				return err
			}
			m, _, closeStore, err := store.open(ctx, log.With("component", "credential"), nil)
			if err != nil {
				return err
			}
			defer closeStore()
			out := cmd.OutOrStdout()
			opts := web.Options{Manager: m, AdminToken: admin, CallbackURL: callback, PublicURL: publicURL, Logger: log.With("component", "web")}
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
			// The deferred closes (sandbox, store) run after run returns,
			// and run returns only when everything it started has ended.
			return runServer(ctx, ln, srv, m, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8787", "address to listen on (loopback by default)")
	f.StringVar(&publicURL, "public-url", envOr("OUTREACH_CONNECTOR_PUBLIC_URL", ""),
		"the URL browsers reach this server at, such as https://connector.example.com behind a TLS proxy: the OAuth callback is\nPUBLIC_URL/oauth/callback, and cookies are Secure when it is https (default http://ADDR)")
	f.StringVar(&tokenFile, "admin-token-file", envOr("OUTREACH_CONNECTOR_ADMIN_TOKEN_FILE", "outreach.admin"), "file holding the admin token")
	f.BoolVar(&withSandbox, "sandbox", false, "also run a local Outreach sandbox to connect to")
	store.register(cmd.Flags())
	return cmd
}

// adminToken returns the admin token from the environment, or from the
// token file, creating it (mode 0600) on first start; fresh reports a new
// token. A token file others can read is refused, as the key file is.
func adminToken(path string) (token string, fresh bool, err error) {
	if v := os.Getenv(AdminTokenEnv); v != "" {
		if len(v) < 16 {
			return "", false, fmt.Errorf("%s is too short: use at least 16 characters", AdminTokenEnv)
		}
		return v, false, nil
	}
	raw, err := os.ReadFile(path)
	if err == nil {
		info, err := os.Stat(path)
		if err != nil {
			return "", false, err
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			return "", false, fmt.Errorf("admin token file %s is readable by others (mode %04o); run chmod 600 %s", path, perm, path)
		}
		if t := strings.TrimSpace(string(raw)); len(t) >= 16 {
			return t, false, nil
		}
		return "", false, fmt.Errorf("admin token file %s is too short; delete it to get a new token", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("read admin token file: %w", err)
	}
	b := make([]byte, 24)
	rand.Read(b)
	token = hex.EncodeToString(b)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("create admin token file: %w", err)
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return "", false, fmt.Errorf("write admin token file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", false, fmt.Errorf("write admin token file: %w", err)
	}
	return token, true, nil
}

// checkPublicURL accepts an absolute http(s) URL without path, query or
// fragment.
func checkPublicURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--public-url %q: give the scheme and host browsers use, such as https://connector.example.com", s)
	}
	return nil
}

// runServer serves srv on ln and keeps credentials alive until ctx ends,
// then stops both and returns only when every goroutine it started,
// request handlers included, has finished, so the caller may close the
// store.
func runServer(ctx context.Context, ln net.Listener, srv http.Handler, m *credential.Manager, log *slog.Logger) error {
	var handlers sync.WaitGroup
	tracked := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		srv.ServeHTTP(w, r)
	})
	hs := &http.Server{Handler: tracked, ReadHeaderTimeout: 10 * time.Second}
	bg, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Go(func() { keepAlive(bg, m, log) })
	wg.Go(func() {
		err := hs.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		serveErr <- err
		stop() // the server failed: stop the rest
	})
	<-bg.Done()
	log.Info("shutting down: waiting for requests and background refreshes to finish")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	shutErr := hs.Shutdown(sctx)
	wg.Wait()
	// Shutdown stops waiting after its timeout; the handlers still run
	// (a refresh in flight finishes and stores its tokens): wait for them.
	handlers.Wait()
	log.Info("stopped")
	if err := <-serveErr; err != nil {
		return err
	}
	if shutErr != nil && !errors.Is(shutErr, context.DeadlineExceeded) {
		return shutErr
	}
	return nil
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
