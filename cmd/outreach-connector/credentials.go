package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/outreach-connector/outreach-connector/internal/credential"
)

func newCredentialsCommand(logger func() (*slog.Logger, error)) *cobra.Command {
	var store storeFlags
	cmd := &cobra.Command{
		Use:   "credentials",
		Short: "Manage named Outreach OAuth credentials",
		Long: `Adds, lists, authorizes, imports, refreshes, revokes and deletes credentials, and rotates the
encryption key. Credentials live in the database given by --db (SQLite file or PostgreSQL URL),
their secrets sealed with the key in --key-file.`,
	}
	store.register(cmd.PersistentFlags())
	withManager := func(run func(ctx context.Context, m *credential.Manager, args []string, out io.Writer) error) func(*cobra.Command, []string) error {
		return func(c *cobra.Command, args []string) error {
			log, err := logger()
			if err != nil {
				return err
			}
			m, _, closeStore, err := store.open(c.Context(), log, nil)
			if err != nil {
				return err
			}
			defer closeStore()
			return run(c.Context(), m, args, c.OutOrStdout())
		}
	}

	var n credential.NewCredential
	var scopes, environment, secretFile, refreshFile, tapConfig, uiURL string
	addFlags := func(c *cobra.Command) {
		f := c.Flags()
		f.StringVar(&n.Name, "name", "", "credential name (required)")
		f.StringVar(&n.Description, "description", "", "description")
		f.StringVar(&n.ClientID, "client-id", "", "OAuth client id of the Outreach app")
		f.StringVar(&secretFile, "client-secret-file", "", "file holding the client secret, - for stdin (or env OUTREACH_CLIENT_SECRET)")
		f.StringVar(&scopes, "scopes", "", "comma-separated scopes (default: "+strings.Join(credential.DefaultScopes(), ",")+")")
		f.StringVar(&environment, "environment", "development", "development or production app")
		f.StringVar(&n.APIBaseURL, "api-base-url", credential.DefaultAPIBaseURL, "Outreach API base URL (a sandbox's for tests)")
		f.StringVar(&n.RedirectURI, "redirect-uri", "http://127.0.0.1:8787/oauth/callback", "redirect URI registered on the app (serve's /oauth/callback)")
	}
	fill := func(stdin io.Reader) error {
		n.Environment = credential.Environment(environment)
		if scopes != "" {
			n.Scopes = strings.Split(scopes, ",")
		}
		secret, err := readSecret(secretFile, "OUTREACH_CLIENT_SECRET", stdin)
		if err != nil {
			return fmt.Errorf("client secret: %w", err)
		}
		if secret != "" {
			n.ClientSecret = secret
		}
		return nil
	}

	add := &cobra.Command{Use: "add", Short: "Add a credential (then authorize it in the web UI)", Args: cobra.NoArgs}
	addFlags(add)
	add.RunE = withManager(func(ctx context.Context, m *credential.Manager, _ []string, out io.Writer) error {
		if err := fill(add.InOrStdin()); err != nil {
			return err
		}
		rec, err := m.Create(ctx, n)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "Added %s (%s), awaiting authorization: run `outreach-connector serve` and click Authorize.\n", rec.Name, rec.ID)
		return nil
	})

	imp := &cobra.Command{Use: "import", Short: "Add a connected credential from a refresh token (tap-outreach config or flags)", Args: cobra.NoArgs}
	addFlags(imp)
	imp.Flags().StringVar(&refreshFile, "refresh-token-file", "", "file holding the refresh token, - for stdin (or env OUTREACH_REFRESH_TOKEN)")
	imp.Flags().StringVar(&tapConfig, "tap-config", "", "tap-outreach config.json with client_id, client_secret, redirect_uri, refresh_token")
	imp.RunE = withManager(func(ctx context.Context, m *credential.Manager, _ []string, out io.Writer) error {
		if err := fill(imp.InOrStdin()); err != nil {
			return err
		}
		refresh, err := readSecret(refreshFile, "OUTREACH_REFRESH_TOKEN", imp.InOrStdin())
		if err != nil {
			return fmt.Errorf("refresh token: %w", err)
		}
		if tapConfig != "" {
			raw, err := os.ReadFile(tapConfig)
			if err != nil {
				return err
			}
			var cfg struct {
				ClientID     string `json:"client_id"`
				ClientSecret string `json:"client_secret"`
				RedirectURI  string `json:"redirect_uri"`
				RefreshToken string `json:"refresh_token"`
			}
			if err := json.Unmarshal(raw, &cfg); err != nil {
				return fmt.Errorf("--tap-config %s: %w", tapConfig, err)
			}
			n.ClientID, n.ClientSecret, refresh = cfg.ClientID, cfg.ClientSecret, cfg.RefreshToken
			if cfg.RedirectURI != "" {
				n.RedirectURI = cfg.RedirectURI
			}
		}
		rec, err := m.Import(ctx, n, refresh)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "Imported %s (%s): connected as %s.\n", rec.Name, rec.ID, rec.OutreachUserEmail)
		return nil
	})

	list := &cobra.Command{Use: "list", Short: "List credentials", Args: cobra.NoArgs,
		RunE: withManager(func(ctx context.Context, m *credential.Manager, _ []string, out io.Writer) error {
			recs, err := m.List(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(out, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATUS\tOUTREACH USER\tTOKEN EXPIRES\tID")
			for _, r := range recs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Status, dash(r.OutreachUserEmail), when(r.TokenExpiresAt), r.ID)
			}
			return tw.Flush()
		})}

	show := &cobra.Command{Use: "show NAME|ID", Short: "Show a credential and its recent events", Args: cobra.ExactArgs(1),
		RunE: withManager(func(ctx context.Context, m *credential.Manager, args []string, out io.Writer) error {
			r, err := m.Get(ctx, args[0])
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(out, 0, 2, 2, ' ', 0)
			for _, row := range [][2]string{{"Name", r.Name}, {"ID", r.ID}, {"Description", dash(r.Description)}, {"Status", string(r.Status)},
				{"Client id", r.ClientID}, {"Client secret", "stored encrypted"}, {"Scopes", strings.Join(r.Scopes, " ")},
				{"Environment", string(r.Environment)}, {"API", r.APIBaseURL}, {"Redirect URI", r.RedirectURI},
				{"Outreach user", dash(r.OutreachUserEmail)}, {"Token expires", when(r.TokenExpiresAt)}, {"Last refresh", when(r.LastRefreshAt)},
				{"Last error", dash(r.LastError)}} {
				fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
			}
			tw.Flush()
			events, _ := m.Events(ctx, r.ID, 10)
			if len(events) > 0 {
				fmt.Fprintln(out, "\nRecent events:")
				for _, e := range events {
					fmt.Fprintf(out, "  %s  %s  %s\n", when(e.At), e.Kind, e.Message)
				}
			}
			return nil
		})}

	authorize := &cobra.Command{Use: "authorize NAME|ID", Short: "Tell where to authorize a credential (a browser flow)", Args: cobra.ExactArgs(1),
		RunE: withManager(func(ctx context.Context, m *credential.Manager, args []string, out io.Writer) error {
			r, err := m.Get(ctx, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "Authorization runs in a browser. With `outreach-connector serve` running, open\n  %s/credentials/%s\nsign in and click Authorize.\n",
				strings.TrimSuffix(uiURL, "/"), r.ID)
			return nil
		})}
	authorize.Flags().StringVar(&uiURL, "ui-url", "http://127.0.0.1:8787", "where `serve` runs")

	refresh := &cobra.Command{Use: "refresh NAME|ID", Short: "Refresh a credential's access token now", Args: cobra.ExactArgs(1),
		RunE: withManager(func(ctx context.Context, m *credential.Manager, args []string, out io.Writer) error {
			if _, err := m.RefreshNow(ctx, args[0]); err != nil {
				return err
			}
			r, _ := m.Get(ctx, args[0])
			fmt.Fprintf(out, "Refreshed %s; the token expires %s.\n", r.Name, when(r.TokenExpiresAt))
			return nil
		})}

	revoke := &cobra.Command{Use: "revoke NAME|ID", Short: "Disconnect: revoke at Outreach and delete the tokens", Args: cobra.ExactArgs(1),
		RunE: withManager(func(ctx context.Context, m *credential.Manager, args []string, out io.Writer) error {
			if err := m.Revoke(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(out, "Revoked %s.\n", args[0])
			return nil
		})}

	del := &cobra.Command{Use: "delete NAME|ID", Short: "Revoke and remove a credential", Args: cobra.ExactArgs(1),
		RunE: withManager(func(ctx context.Context, m *credential.Manager, args []string, out io.Writer) error {
			if err := m.Delete(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(out, "Deleted %s.\n", args[0])
			return nil
		})}

	rotate := &cobra.Command{Use: "rotate-key", Short: "Add a new encryption key and re-encrypt every secret with it", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if os.Getenv(credential.KeysEnv) != "" {
				return fmt.Errorf("the keys come from %s: generate a new key, put it first in that variable (keep the old ones), then run rotate-key again with the key file unset", credential.KeysEnv)
			}
			log, err := logger()
			if err != nil {
				return err
			}
			old, err := credential.LoadKeyring(store.keyFile, nil)
			if err != nil {
				return err
			}
			next, err := old.Rotated()
			if err != nil {
				return err
			}
			if err := writeKeyFile(store.keyFile, next); err != nil {
				return err
			}
			m, _, closeStore, err := store.open(c.Context(), log, nil)
			if err != nil {
				return err
			}
			defer closeStore()
			n, err := m.ReencryptAll(c.Context())
			if err != nil {
				return fmt.Errorf("re-encrypted %d credentials, then: %w (the key file keeps every key; run rotate-key again)", n, err)
			}
			fmt.Fprintf(c.OutOrStdout(), "New key %s; re-encrypted %d credentials. Old keys stay in %s for ciphertexts written meanwhile.\n", next.Current(), n, store.keyFile)
			return nil
		}}

	cmd.AddCommand(add, imp, list, show, authorize, refresh, revoke, del, rotate)
	return cmd
}

// readSecret reads a secret from a file, stdin ("-") or an environment
// variable, never from the command line where ps would show it.
func readSecret(file, env string, stdin io.Reader) (string, error) {
	switch {
	case file == "-":
		b, err := io.ReadAll(io.LimitReader(stdin, 1<<16))
		return strings.TrimSpace(string(b)), err
	case file != "":
		b, err := os.ReadFile(file)
		return strings.TrimSpace(string(b)), err
	}
	return os.Getenv(env), nil
}

// writeKeyFile replaces the key file atomically, mode 0600.
func writeKeyFile(path string, k *credential.Keyring) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".outreach-key-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(k.Export() + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return errors.Join(errors.New("replace the key file"), err)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
