package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/metrics"
	"github.com/outreach-connector/outreach-connector/internal/service"
	"github.com/outreach-connector/outreach-connector/internal/sqlstore"
	"github.com/outreach-connector/outreach-connector/internal/webhooks"
)

// PublicURLEnv is where serve and the connections commands read the public
// URL when --public-url is not given.
const PublicURLEnv = "OUTREACH_CONNECTOR_PUBLIC_URL"

// webhookStoreOf returns the webhook subscription store of the app
// database that store.open returned.
func webhookStoreOf(s credential.Store) (*sqlstore.Webhooks, error) {
	if db, ok := s.(interface{ Webhooks() *sqlstore.Webhooks }); ok {
		return db.Webhooks(), nil
	}
	return nil, errors.New("the app database keeps no webhooks")
}

// liveWiring is what live connections need: the subscriptions, the
// keyring that seals their secrets, and the manager.
type liveWiring struct {
	store   *sqlstore.Webhooks
	keys    *credential.Keyring
	manager *webhooks.Manager
}

// wireWebhooks makes the webhooks manager of svc (publicURL may be empty:
// then serve subscribes live connections) and gives it to svc.
func wireWebhooks(store *storeFlags, credStore credential.Store, conns connection.Store, svc *service.Service, publicURL string,
	log *slog.Logger) (*liveWiring, error) {
	subs, err := webhookStoreOf(credStore)
	if err != nil {
		return nil, err
	}
	keys := store.keys // loaded by store.open, which checks it against the database's secrets
	if keys == nil {
		return nil, errors.New("the app database is not open")
	}
	m, err := webhooks.NewManager(webhooks.ManagerOptions{Store: subs, Connections: conns, Keys: keys, PublicURL: publicURL,
		Client: svc.Client, CatchUp: svc.CatchUp, Logger: log})
	if err != nil {
		return nil, err
	}
	svc.SetWebhooks(m)
	return &liveWiring{store: subs, keys: keys, manager: m}, nil
}

// newReceiver makes the receiver of POST /webhooks/{connection}.
func (w *liveWiring) newReceiver(conns connection.Store, stdout io.Writer, met *metrics.Webhooks, log *slog.Logger) (*webhooks.Receiver, error) {
	open := openConnectionDestination(stdout)
	return webhooks.NewReceiver(webhooks.ReceiverOptions{Store: w.store, Connections: conns, Keys: w.keys, Metrics: met, Logger: log,
		Open: func(ctx context.Context, url, ns string) (connection.Destination, func() error, error) {
			return open(ctx, url, ns)
		}})
}

// connLiveCommand is `connections live NAME on|off`.
func connLiveCommand(withApp connAppRun) *cobra.Command {
	cmd := &cobra.Command{Use: "live NAME on|off", Short: "Make a connection live (Outreach pushes its changes as webhooks) or not",
		Long: `A live connection's destination follows Outreach within seconds: Outreach POSTs every create,
update and delete to serve (at PUBLIC_URL/webhooks/<connection id>), which applies it at once.
Scheduled runs go on beside it. Only SQLite and PostgreSQL destinations can be live.

With the public URL known here (--public-url or ` + PublicURLEnv + `, as serve has it) the webhooks are
made at Outreach at once and a catch-up run is queued; otherwise a running serve makes them at its
next webhook check (--webhook-check). See docs/webhooks.md.`,
		Example: "  outreach-connector connections live acme on\n  outreach-connector connections live acme off",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 || (args[1] != "on" && args[1] != "off") {
				return errors.New("give the connection's name and on or off, as in: connections live acme on")
			}
			return nil
		}}
	cmd.RunE = withApp(false, func(ctx context.Context, app *connApp, c *cobra.Command, args []string) error {
		out := c.OutOrStdout()
		on := args[1] == "on"
		res, err := app.svc.SetLive(ctx, args[0], on)
		var cannot *connection.CannotApplyError
		if errors.As(err, &cannot) {
			return refusal{fmt.Errorf("%w; sync it into sqlite: or postgres:// to make it live", err)}
		}
		if err != nil {
			return refused(err)
		}
		name := res.Connection.Name
		switch {
		case !on:
			fmt.Fprintf(out, "%s is not live: its webhooks at Outreach are deleted; scheduled runs go on.\n", name)
		case res.Subscribed:
			fmt.Fprintf(out, "%s is live: Outreach delivers its changes to %s.\n", name, app.live.manager.URL(res.Connection.ID))
			if res.CatchUp != 0 {
				fmt.Fprintf(out, "A catch-up run is queued (job %d) for what changed before.\n", res.CatchUp)
			}
		default:
			fmt.Fprintf(out, "%s is live. serve makes its webhooks at Outreach at its next check (no public URL here: give --public-url or %s to make them now).\n",
				name, PublicURLEnv)
		}
		return nil
	})
	return cmd
}

// checkPublicURLFlag checks a public URL given to a connections command.
func checkPublicURLFlag(u string) (string, error) {
	if u == "" {
		return "", nil
	}
	if err := checkPublicURL(u); err != nil {
		return "", err
	}
	return strings.TrimSuffix(u, "/"), nil
}

// withWebhooks serves POST /webhooks/{connection} (public: deliveries
// prove themselves by their signature) beside everything else of srv.
func withWebhooks(srv http.Handler, recv *webhooks.Receiver) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/{connection}", recv)
	mux.Handle("/", srv)
	return mux
}

// resealWebhookSecrets seals the live connections' webhook secrets with
// the keyring's current key (credentials rotate-key).
func resealWebhookSecrets(ctx context.Context, credStore credential.Store, keys *credential.Keyring, out io.Writer) error {
	subs, err := webhookStoreOf(credStore)
	if err != nil {
		return nil // an app database without webhooks: nothing to re-seal
	}
	n, err := webhooks.Reseal(ctx, subs, keys)
	if err != nil {
		return fmt.Errorf("re-sealed %s, then: %w (the key file keeps every key; run rotate-key again)", counted(n, "webhook secret"), err)
	}
	if n > 0 {
		fmt.Fprintf(out, "Re-sealed %s of live connections.\n", counted(n, "webhook secret"))
	}
	return nil
}

// liveText says in `connections show` whether a connection is live.
func liveText(live bool) string {
	if live {
		return "yes: Outreach pushes changes as webhooks (connections live NAME off to stop)"
	}
	return "no (connections live NAME on)"
}
