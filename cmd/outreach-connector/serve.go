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
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/jobs"
	"github.com/outreach-connector/outreach-connector/internal/metrics"
	"github.com/outreach-connector/outreach-connector/internal/service"
	"github.com/outreach-connector/outreach-connector/internal/sqlstore"
	"github.com/outreach-connector/outreach-connector/internal/web"
	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

// defaultServeAddr is where serve listens unless --addr says otherwise.
const defaultServeAddr = "127.0.0.1:8787"

// AdminTokenEnv can hold the admin token instead of the token file.
const AdminTokenEnv = "OUTREACH_CONNECTOR_ADMIN_TOKEN"

func newServeCommand(logger func() (*slog.Logger, error)) *cobra.Command {
	var (
		addr, publicURL, tokenFile  string
		notifyURL, notifySecretFile string
		workers                     int
		withSandbox                 bool
		webhookCheck                time.Duration
		store                       storeFlags
		proxyMaxWait                time.Duration
		nodes                       nodeFlags
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the service: web UI, JSON API, connections on their schedules, proxy, webhooks (127.0.0.1:8787 by default)",
		Long: `Serves the web UI where you add Outreach credentials and authorize them, the JSON API for the
same operations, and the OAuth callback. It keeps connected credentials alive (a refresh at least
daily) while it runs, and runs the connections: their scheduled and manual runs are jobs in a queue
kept in the app database (--workers at once on this node). A run that fails, recovers, or finds its
credential needing re-authorization is POSTed, signed, to the connection's notify URL or --notify-url.
GET /metrics (Prometheus; the admin token as a bearer token, or a signed-in session) and GET /readyz
sit beside /healthz.

On first start it creates an admin token, prints it and keeps it in --admin-token-file (mode 0600);
sign in with it. With --sandbox it also runs a local Outreach sandbox, connects a credential
"sandbox" to it, and keeps a connection "sandbox" that syncs it into sqlite:./outreach.db every 15
minutes (it runs at once on start); the Add Credential form is filled with the sandbox's app.`,
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
			// The flags first, before any file is made.
			if notifyURL != "" {
				if err := service.CheckNotifyURL(notifyURL); err != nil {
					return fmt.Errorf("--notify-url: %w", err)
				}
			}
			if workers < 1 {
				return fmt.Errorf("--workers %d: give how many connections this node runs at once, at least 1", workers)
			}
			if webhookCheck <= 0 {
				return fmt.Errorf("--webhook-check %s: give how often webhooks are checked, such as 1m", webhookCheck)
			}
			qopts, err := nodes.options()
			if err != nil {
				return err
			}
			var notifySecret []byte
			if notifySecretFile != "" {
				if notifySecret, err = readSecretFile(notifySecretFile); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w (choose another with --addr)", addr, err)
			}
			defer ln.Close()
			// A start that fails removes the files it made (admin token,
			// key, app database), and only those.
			made := notThereYet(serveFiles(tokenFile, &store)...)
			serving := false
			defer func() {
				if !serving {
					made.remove()
				}
			}()
			if publicURL == "" {
				publicURL = "http://" + ln.Addr().String()
			}
			publicURL = strings.TrimSuffix(publicURL, "/")
			callback := publicURL + "/oauth/callback"
			admin, fresh, err := adminToken(tokenFile)
			if err != nil {
				return err
			}
			m, credStore, closeStore, err := store.open(ctx, log.With("component", "credential"), nil)
			if err != nil {
				return err
			}
			defer closeStore()
			out := cmd.OutOrStdout()
			conns, err := connectionStoreOf(ctx, credStore, store.keys)
			if err != nil {
				return err
			}
			met := metrics.New(metrics.WithLogger(log.With("component", "metrics")))
			var svc *service.Service
			q, err := store.openQueue(ctx, jobs.Options{Logger: log.With("component", "jobs"), Workers: workers,
				ID: qopts.ID, RunTimeout: qopts.RunTimeout, RescueAfter: qopts.RescueAfter, TimeScale: qopts.TimeScale, NodeGone: qopts.NodeGone,
				Run: jobs.Recorded(conns, nil, log.With("component", "run"), func(ctx context.Context, run *connection.Run) error {
					return svc.Sync(ctx, run)
				})})
			if err != nil {
				return err
			}
			defer q.Close()
			svc, err = service.New(service.Options{Store: conns, Queue: q, Credentials: m, Open: openConnectionDestination(cmd.OutOrStdout()),
				Logger: log.With("component", "service"), NotifyURL: notifyURL, NotifySecret: notifySecret, SharedBudget: sharedBudget(credStore, log),
				ObserveRequests: func(cred, user string, share float64) func(outreach.RequestEvent) {
					if user != "" {
						met.SetQuotaShare(user, share)
					}
					return met.ObserveRequests(cred, user)
				},
				Observe: func(c *connection.Connection, r *connection.Run) {
					// Records first: a scrape that sees the run sees its records.
					for _, st := range r.Streams {
						met.RecordsSynced(c.Name, st.Stream, st.Records)
					}
					met.RunFinished(c.Name, string(r.Outcome))
				}})
			if err != nil {
				return err
			}
			if notifyURL != "" && len(notifySecret) == 0 {
				log.Warn("notifications to --notify-url are not signed: give --notify-secret-file so receivers can check them")
			}
			// Live connections: webhooks made at PUBLIC_URL/webhooks/<id>,
			// deliveries applied by the receiver, and the check loop.
			live, err := wireWebhooks(&store, credStore, conns, svc, publicURL, log.With("component", "webhooks"))
			if err != nil {
				return err
			}
			recv, err := live.newReceiver(conns, cmd.OutOrStdout(), metrics.NewWebhooks(met), log.With("component", "webhooks"))
			if err != nil {
				return err
			}
			defer recv.Close()
			checkCtx, stopCheck := context.WithCancel(ctx)
			var checks sync.WaitGroup
			checks.Go(func() { live.manager.Run(checkCtx, webhookCheck) })
			defer checks.Wait()
			defer stopCheck()
			met.SetTokenReader(tokenReader(m))
			met.SetQueueReader(q.Depth)
			met.SetCursorReader(cursorReader(svc))
			var started atomic.Bool
			opts := web.Options{Manager: m, AdminToken: admin, CallbackURL: callback, PublicURL: publicURL, Logger: log.With("component", "web"),
				Metrics: met.Handler(), Connections: svc,
				Ready: func(ctx context.Context) error {
					if _, err := m.List(ctx); err != nil {
						return errors.New("the app database does not answer")
					}
					if !started.Load() {
						return errors.New("the job queue is not running")
					}
					return nil
				}}
			if withSandbox {
				unlock, err := lockSandbox(store.db)
				if err != nil {
					return err
				}
				defer unlock()
				sb, err := sandbox.Start("", sandbox.Options{RedirectURI: callback, Logger: log.With("component", "sandbox")})
				if err != nil {
					return err
				}
				defer sb.Close()
				app := sb.Apps()[0]
				opts.Defaults = credential.NewCredential{Name: "sandbox-oauth", Description: "Local Outreach sandbox", ClientID: app.ClientID,
					ClientSecret: app.ClientSecret, APIBaseURL: sb.URL + "/api/v2", RedirectURI: callback, Environment: credential.Development}
				email, password := sb.SignInUser()
				fmt.Fprintf(out, "Outreach sandbox on %s (sign in on its consent page as %s / %s)\n", sb.URL, email, password)
				if err := sandboxConnection(ctx, sb, m, svc); err != nil {
					return fmt.Errorf("sandbox connection: %w", err)
				}
				fmt.Fprintf(out, "Connection \"sandbox\" syncs the sandbox into sqlite:%s every %s; its first run is queued.\n", sandboxDestination, sandboxEvery)
			}
			if opts.Keys, err = keyStoreOf(credStore); err != nil {
				return err
			}
			if db, ok := credStore.(interface{ Sessions() *sqlstore.Sessions }); ok {
				opts.Sessions = db.Sessions() // every node knows every sign-in
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
			handler, err := withProxy(srv, m, credStore, svc, met, log.With("component", "proxy"), proxyMaxWait)
			if err != nil {
				return err
			}
			serving = true
			return runServer(ctx, ln, withWebhooks(handler, recv), m, q, &started, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", defaultServeAddr, "address to listen on (loopback by default)")
	f.StringVar(&publicURL, "public-url", envOr(PublicURLEnv, ""),
		"the URL browsers reach this server at, such as https://connector.example.com behind a TLS proxy: the OAuth callback is\nPUBLIC_URL/oauth/callback, and cookies are Secure when it is https (default http://ADDR)")
	f.StringVar(&tokenFile, "admin-token-file", envOr("OUTREACH_CONNECTOR_ADMIN_TOKEN_FILE", "outreach.admin"), "file holding the admin token")
	f.BoolVar(&withSandbox, "sandbox", false, "also run a local Outreach sandbox, with a credential and a connection \"sandbox\" syncing it every 15m")
	f.StringVar(&notifyURL, "notify-url", envOr("OUTREACH_CONNECTOR_NOTIFY_URL", ""),
		"where failures, recoveries and re-authorization needs of connections without their own notify URL are POSTed")
	f.StringVar(&notifySecretFile, "notify-secret-file", envOr("OUTREACH_CONNECTOR_NOTIFY_SECRET_FILE", ""),
		"file (mode 0600) holding the secret that signs notifications (X-Outreach-Connector-Signature: sha256=HMAC of the body)")
	f.IntVar(&workers, "workers", jobs.DefaultWorkers, "connections this node runs at once")
	f.DurationVar(&webhookCheck, "webhook-check", time.Minute,
		"how often live connections' webhooks are checked at Outreach (made, re-enabled when disabled, with a catch-up run)")
	f.DurationVar(&proxyMaxWait, "proxy-max-wait", 10*time.Second,
		"longest a /proxy/ request waits for the Outreach user's rate-limit window (callers ask for less with X-Max-Wait); then 429 with Retry-After")
	nodes.register(f)
	store.register(cmd.Flags())
	return cmd
}

// serveFiles are the files a start of serve may make: the admin token
// file, the key file and the SQLite app database with its companions,
// those that the environment does not replace.
func serveFiles(tokenFile string, store *storeFlags) []string {
	var paths []string
	if os.Getenv(AdminTokenEnv) == "" {
		paths = append(paths, tokenFile)
	}
	if os.Getenv(credential.KeysEnv) == "" {
		paths = append(paths, store.keyFile)
	}
	if !isPostgresURL(store.db) {
		db := strings.TrimPrefix(store.db, "sqlite:")
		paths = append(paths, db, db+"-wal", db+"-shm", db+"-journal", sandboxLockPath(store.db))
	}
	return paths
}

// newFiles are paths that did not exist when a start began.
type newFiles []string

// notThereYet returns those of paths that do not exist.
func notThereYet(paths ...string) newFiles {
	var out newFiles
	for _, p := range paths {
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			out = append(out, p)
		}
	}
	return out
}

// remove removes the files made since notThereYet.
func (n newFiles) remove() {
	for _, p := range n {
		os.Remove(p)
	}
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
func runServer(ctx context.Context, ln net.Listener, srv http.Handler, m *credential.Manager, q *jobs.Queue, started *atomic.Bool, log *slog.Logger) error {
	var handlers sync.WaitGroup
	tracked := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		srv.ServeHTTP(w, r)
	})
	// Requests' contexts end when the shutdown's grace period does: a
	// request still waiting on Outreach (the proxy) is cancelled rather
	// than held until Outreach answers. Token refreshes finish regardless.
	reqCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	hs := &http.Server{Handler: tracked, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return reqCtx }}
	if q != nil {
		if err := q.Start(ctx); err != nil {
			return err
		}
		started.Store(true)
	}
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
	log.Info("shutting down: waiting for runs, requests and background refreshes to finish")
	var queueErr error
	if q != nil {
		// Runs first: each is put back in the queue from its committed
		// state for the next node (or the next start).
		started.Store(false)
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		queueErr = q.Stop(qctx)
		cancel()
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	shutErr := hs.Shutdown(sctx)
	cancelRequests()
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
	if queueErr != nil {
		return fmt.Errorf("stop the job queue: %w", queueErr)
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
