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

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
)

func newCredentialsCommand(logger func() (*slog.Logger, error)) *cobra.Command {
	var store storeFlags
	cmd := &cobra.Command{
		Use:   "credentials",
		Short: "Manage named Outreach OAuth credentials",
		Long: `Adds, lists, edits, authorizes, imports, refreshes, revokes and deletes credentials, and rotates the
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
			if c.Name() != "add" && c.Name() != "import" {
				if err := store.requireExisting(c.Context(), log); err != nil {
					return err
				}
			}
			m, _, closeStore, err := store.open(c.Context(), log, nil)
			if err != nil {
				return err
			}
			defer closeStore()
			err = run(c.Context(), m, args, c.OutOrStdout())
			if len(args) == 1 && errors.Is(err, credential.ErrNotFound) && err.Error() == credential.ErrNotFound.Error() {
				// The bare "not found" of the credential NAME names: say which there are.
				return fmt.Errorf("credential %s: %w; %s", args[0], err, credentialNames(c.Context(), m, connection.RedactedURL(store.db)))
			}
			return err
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
	needSecret := func() error {
		if n.ClientSecret == "" {
			return errors.New("the app's client secret is required: give --client-secret-file FILE (- reads stdin), or set OUTREACH_CLIENT_SECRET")
		}
		return nil
	}

	add := &cobra.Command{Use: "add", Short: "Add a credential (then authorize it in the web UI)", Args: cobra.NoArgs}
	addFlags(add)
	add.RunE = withManager(func(ctx context.Context, m *credential.Manager, _ []string, out io.Writer) error {
		if err := fill(add.InOrStdin()); err != nil {
			return err
		}
		if err := needSecret(); err != nil {
			return err
		}
		rec, err := m.Create(ctx, n)
		if errors.Is(err, credential.ErrNameTaken) {
			return fmt.Errorf("a credential named %q exists: choose another --name, or see `outreach-connector credentials list`", n.Name)
		}
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
				APIBaseURL   string `json:"api_base_url"`
			}
			if err := json.Unmarshal(raw, &cfg); err != nil {
				return fmt.Errorf("--tap-config %s: %w", tapConfig, err)
			}
			if err := checkRefreshToken(cfg.RefreshToken); err != nil {
				return fmt.Errorf("--tap-config %s: refresh_token %w", tapConfig, err)
			}
			n.ClientID, n.ClientSecret, refresh = cfg.ClientID, cfg.ClientSecret, cfg.RefreshToken
			if cfg.RedirectURI != "" {
				n.RedirectURI = cfg.RedirectURI
			}
			if cfg.APIBaseURL != "" && !imp.Flags().Changed("api-base-url") { // as the tap does; the flag overrides
				n.APIBaseURL = cfg.APIBaseURL
			}
		} else if err := checkRefreshToken(refresh); err != nil {
			return fmt.Errorf("the refresh token (--refresh-token-file or OUTREACH_REFRESH_TOKEN) %w", err)
		}
		rec, err := m.Import(ctx, n, refresh)
		if errors.Is(err, credential.ErrNameTaken) {
			return fmt.Errorf("a credential named %q exists: choose another --name, or see `outreach-connector credentials list`; the refresh token was not used", n.Name)
		}
		if err != nil {
			return fmt.Errorf("%w\nNothing was saved; the refresh token was not revoked", err)
		}
		if rec.OutreachUserEmail == "" {
			fmt.Fprintf(out, "Imported %s (%s): connected; Outreach did not say who the token belongs to yet (it is asked again on the next refresh).\n", rec.Name, rec.ID)
			return nil
		}
		fmt.Fprintf(out, "Imported %s (%s): connected as %s.\n", rec.Name, rec.ID, rec.OutreachUserEmail)
		return nil
	})

	var asJSON bool
	list := &cobra.Command{Use: "list", Short: "List credentials", Args: cobra.NoArgs,
		RunE: withManager(func(ctx context.Context, m *credential.Manager, _ []string, out io.Writer) error {
			recs, err := m.List(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				all := make([]credentialJSON, 0, len(recs))
				for _, r := range recs {
					all = append(all, toCredentialJSON(r))
				}
				return writeCredentialsJSON(out, map[string]any{"credentials": all})
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
			if asJSON {
				events, err := m.Events(ctx, r.ID, 10)
				if err != nil {
					return err
				}
				c := toCredentialJSON(r)
				c.Events = []eventJSON{}
				for _, e := range events {
					c.Events = append(c.Events, eventJSON{At: e.At.UTC().Format(time.RFC3339), Kind: e.Kind, Message: e.Message})
				}
				return writeCredentialsJSON(out, c)
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

	list.Flags().BoolVar(&asJSON, "json", false, "print JSON (no secrets)")
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON with the recent events (no secrets)")

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
	authorize.Flags().StringVar(&uiURL, "ui-url", envOr(PublicURLEnv, "http://"+defaultServeAddr),
		"URL of the web UI that outreach-connector serve runs (serve's --public-url; env "+PublicURLEnv+")")

	refresh := &cobra.Command{Use: "refresh NAME|ID", Short: "Refresh a credential's access token now", Args: cobra.ExactArgs(1),
		RunE: withManager(func(ctx context.Context, m *credential.Manager, args []string, out io.Writer) error {
			if _, err := m.RefreshNow(ctx, args[0]); err != nil {
				return err
			}
			r, _ := m.Get(ctx, args[0])
			fmt.Fprintf(out, "Refreshed %s; the token expires %s.\n", r.Name, when(r.TokenExpiresAt))
			return nil
		})}

	var localOnly bool
	revoke := &cobra.Command{Use: "revoke NAME|ID", Short: "Disconnect: revoke at Outreach and delete the tokens", Args: cobra.ExactArgs(1),
		Long: `Revokes the credential's refresh token at Outreach, then deletes its tokens here. When Outreach does
not confirm the revocation, nothing changes here and the command fails: run it again later, or add
--local-only to delete the tokens here anyway (they then stay valid at Outreach until they expire).`,
		RunE: withManager(func(ctx context.Context, m *credential.Manager, args []string, out io.Writer) error {
			if localOnly {
				if err := m.RevokeLocally(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(out, "Deleted the tokens of %s here without revoking them at Outreach, where they stay valid until they expire.\n", args[0])
				return nil
			}
			if err := m.Revoke(ctx, args[0]); err != nil {
				if errors.Is(err, credential.ErrRevokeFailed) {
					return fmt.Errorf("%w\nTo delete the tokens here anyway: outreach-connector credentials revoke %s --local-only", err, args[0])
				}
				return err
			}
			fmt.Fprintf(out, "Revoked %s at Outreach and deleted its tokens.\n", args[0])
			return nil
		})}
	revoke.Flags().BoolVar(&localOnly, "local-only", false, "delete the tokens here without asking Outreach to revoke them")

	del := &cobra.Command{Use: "delete NAME|ID", Short: "Revoke and remove a credential", Args: cobra.ExactArgs(1),
		Long: `Revokes the credential's tokens at Outreach and removes the credential. When the revoke fails the
credential stays; --local-only removes it without contacting Outreach.`,
		RunE: withManager(func(ctx context.Context, m *credential.Manager, args []string, out io.Writer) error {
			if localOnly {
				if err := m.Forget(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(out, "Removed %s without revoking its tokens at Outreach.\n", args[0])
				return nil
			}
			if err := m.Delete(ctx, args[0]); err != nil {
				if errors.Is(err, credential.ErrRevokeFailed) {
					return fmt.Errorf("%w\nTo remove it anyway: outreach-connector credentials delete %s --local-only", err, args[0])
				}
				return err
			}
			fmt.Fprintf(out, "Deleted %s.\n", args[0])
			return nil
		})}
	del.Flags().BoolVar(&localOnly, "local-only", false, "remove the credential without revoking its tokens at Outreach")

	edit := newEditCommand(withManager)

	rotate := &cobra.Command{Use: "rotate-key", Short: "Add a new encryption key and re-encrypt every secret with it", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if os.Getenv(credential.KeysEnv) != "" {
				return fmt.Errorf("the keys come from %s: generate a new key, put it first in that variable (keep the old ones), then run rotate-key again with the key file unset", credential.KeysEnv)
			}
			log, err := logger()
			if err != nil {
				return err
			}
			// Opening the store loads the key file, and refuses when it is
			// missing while the database holds secrets sealed with it.
			_, _, closeFirst, err := store.openExisting(c.Context(), log, nil)
			if err != nil {
				return err
			}
			closeFirst()
			next, err := store.keys.Rotated()
			if err != nil {
				return err
			}
			if err := writeKeyFile(store.keyFile, next); err != nil {
				return err
			}
			m, credStore, closeStore, err := store.open(c.Context(), log, nil)
			if err != nil {
				return err
			}
			defer closeStore()
			n, err := m.ReencryptAll(c.Context())
			if err != nil {
				return fmt.Errorf("re-encrypted %s, then: %w (the key file keeps every key; run rotate-key again)", counted(n, "credential"), err)
			}
			if err := resealWebhookSecrets(c.Context(), credStore, store.keys, c.OutOrStdout()); err != nil {
				return err
			}
			// Connections' destination passwords too.
			_, sealed, err := sealConnections(c.Context(), credStore, store.keys)
			if err != nil {
				return fmt.Errorf("re-encrypted %s, then: %w (the key file keeps every key; run rotate-key again)", counted(n, "credential"), err)
			}
			fmt.Fprintf(c.OutOrStdout(), "New key %s; re-encrypted %s and %s. Old keys stay in %s for ciphertexts written meanwhile.\n",
				next.Current(), counted(n, "credential"), counted(sealed, "connection destination password"), store.keyFile)
			return nil
		}}

	cmd.AddCommand(add, imp, list, show, edit, authorize, refresh, revoke, del, rotate)
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

type managerRun func(run func(ctx context.Context, m *credential.Manager, args []string, out io.Writer) error) func(*cobra.Command, []string) error

// newEditCommand is `credentials edit`: Manager.Update from flags. The
// client secret comes from stdin or a file, never from a flag value.
func newEditCommand(withManager managerRun) *cobra.Command {
	var name, description, secretFile, scopes string
	var secretStdin bool
	cmd := &cobra.Command{
		Use:   "edit NAME|ID [--name N] [--description D] [--client-secret-stdin | --client-secret-file F] [--scopes a,b]",
		Short: "Change a credential's name, description, client secret or scopes",
		Long: `Changes what is given and nothing else. A new client secret (after "Regenerate" on Outreach) keeps
the tokens: no new authorization. Fewer scopes keep the tokens too; added scopes need a new
authorization, and the credential shows needs_reauthorization until it is authorized again.`,
		Example: `  outreach-connector credentials edit main --client-secret-stdin < new-secret.txt
  outreach-connector credentials edit main --name prod --scopes prospects.read,accounts.read`,
		Args: cobra.ExactArgs(1),
	}
	cmd.RunE = withManager(func(ctx context.Context, m *credential.Manager, args []string, out io.Writer) error {
		f := cmd.Flags()
		var c credential.Changes
		if f.Changed("name") {
			c.Name = &name
		}
		if f.Changed("description") {
			c.Description = &description
		}
		if secretStdin && secretFile != "" {
			return errors.New("give the new client secret once: --client-secret-stdin or --client-secret-file")
		}
		if secretStdin {
			secretFile = "-"
		}
		if secretFile != "" {
			secret, err := readSecret(secretFile, "", cmd.InOrStdin())
			if err != nil {
				return fmt.Errorf("client secret: %w", err)
			}
			c.ClientSecret = &secret
		}
		if f.Changed("scopes") {
			c.Scopes = []string{}
			for _, s := range strings.Split(scopes, ",") {
				if s = strings.TrimSpace(s); s != "" {
					c.Scopes = append(c.Scopes, s)
				}
			}
		}
		if c.Name == nil && c.Description == nil && c.ClientSecret == nil && c.Scopes == nil {
			return errors.New("nothing to change: give --name, --description, --client-secret-stdin, --client-secret-file or --scopes")
		}
		rec, reauthorize, err := m.Update(ctx, args[0], c)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "Updated %s (%s); status %s.\n", rec.Name, rec.ID, rec.Status)
		if reauthorize {
			fmt.Fprintf(out, "The added scopes need a new authorization: run `outreach-connector credentials authorize %s` to see where.\n", rec.Name)
		}
		return nil
	})
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "new name")
	f.StringVar(&description, "description", "", "new description")
	f.BoolVar(&secretStdin, "client-secret-stdin", false, "read the new client secret from stdin")
	f.StringVar(&secretFile, "client-secret-file", "", "read the new client secret from this file (- for stdin)")
	f.StringVar(&scopes, "scopes", "", "the new comma-separated scopes (all of them)")
	return cmd
}

// credentialJSON is a credential as list --json and show --json print it:
// the fields of the web API's credential, never a secret.
type credentialJSON struct {
	ID                string      `json:"id"`
	Name              string      `json:"name"`
	Description       string      `json:"description"`
	ClientID          string      `json:"client_id"`
	Scopes            []string    `json:"scopes"`
	Environment       string      `json:"environment"`
	APIBaseURL        string      `json:"api_base_url"`
	RedirectURI       string      `json:"redirect_uri"`
	Status            string      `json:"status"`
	OutreachUserID    string      `json:"outreach_user_id"`
	OutreachUserEmail string      `json:"outreach_user_email"`
	OutreachOrg       string      `json:"outreach_org"`
	TokenExpiresAt    *string     `json:"token_expires_at"`
	LastRefreshAt     *string     `json:"last_refresh_at"`
	LastError         string      `json:"last_error"`
	CreatedAt         string      `json:"created_at"`
	UpdatedAt         string      `json:"updated_at"`
	Events            []eventJSON `json:"events,omitempty"`
}

type eventJSON struct {
	At      string `json:"at"`
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

func toCredentialJSON(r *credential.Record) credentialJSON {
	ts := func(t time.Time) *string {
		if t.IsZero() {
			return nil
		}
		s := t.UTC().Format(time.RFC3339)
		return &s
	}
	scopes := r.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return credentialJSON{ID: r.ID, Name: r.Name, Description: r.Description, ClientID: r.ClientID, Scopes: scopes,
		Environment: string(r.Environment), APIBaseURL: r.APIBaseURL, RedirectURI: r.RedirectURI, Status: string(r.Status),
		OutreachUserID: r.OutreachUserID, OutreachUserEmail: r.OutreachUserEmail, OutreachOrg: r.OutreachOrg,
		TokenExpiresAt: ts(r.TokenExpiresAt), LastRefreshAt: ts(r.LastRefreshAt), LastError: r.LastError,
		CreatedAt: r.CreatedAt.UTC().Format(time.RFC3339), UpdatedAt: r.UpdatedAt.UTC().Format(time.RFC3339)}
}

func writeCredentialsJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
