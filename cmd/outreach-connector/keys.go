package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/proxy"
	"github.com/outreach-connector/outreach-connector/internal/sqlstore"
)

func newKeysCommand(logger func() (*slog.Logger, error)) *cobra.Command {
	var store storeFlags
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the API keys that callers of serve's /proxy/ present",
		Long: `API keys let your own services call any Outreach endpoint through serve's proxy
(/proxy/CREDENTIAL/PATH) without holding an Outreach token. A key may use only the credentials
it was created for. The key is shown once, when created; only its SHA-256 hash is stored.
See docs/proxy.md.`,
	}
	var credentials, publicURL string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a key for the named caller, allowed to use --credentials (shown once)",
		Long: `Creates a key for the named caller, allowed to use --credentials, and prints it once with the
proxy URL a caller uses: --public-url (or ` + PublicURLEnv + `, as serve has it) followed by
/proxy/CREDENTIAL/, or serve's default http://127.0.0.1:8787.`,
		Example: "  outreach-connector keys create billing-service --credentials sales,support\n" +
			"  outreach-connector keys create billing-service --credentials sales --public-url https://connector.example.com",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := logger()
			if err != nil {
				return err
			}
			if strings.TrimSpace(credentials) == "" {
				return errors.New("--credentials is required: name the credentials the key may use, such as --credentials sales,support")
			}
			base, err := checkPublicURLFlag(publicURL)
			if err != nil {
				return err
			}
			if base == "" {
				base = "http://" + defaultServeAddr
			}
			ctx := cmd.Context()
			m, cs, closeStore, err := store.openExisting(ctx, log.With("component", "credential"), nil)
			if err != nil {
				return err
			}
			defer closeStore()
			keys, err := keyStoreOf(cs)
			if err != nil {
				return err
			}
			var ids, names []string
			for _, c := range strings.Split(credentials, ",") {
				c = strings.TrimSpace(c)
				if c == "" {
					continue
				}
				rec, err := m.Get(ctx, c)
				if errors.Is(err, credential.ErrNotFound) {
					return fmt.Errorf("--credentials: no credential is named %q; %s", c, credentialNames(ctx, m, connection.RedactedURL(store.db)))
				}
				if err != nil {
					return err
				}
				ids, names = append(ids, rec.ID), append(names, rec.Name)
			}
			secret, key, err := proxy.NewKey(args[0], ids, time.Now())
			if err != nil {
				return err
			}
			if err := keys.CreateKey(ctx, key); err != nil {
				if errors.Is(err, proxy.ErrKeyExists) {
					return fmt.Errorf("a key named %s exists; choose another name, or revoke it first (keys revoke %s) and use a new name", key.Name, key.Name)
				}
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Created key %s for credentials %s.\n", key.Name, strings.Join(names, ", "))
			fmt.Fprintf(out, "Key (shown once; only its hash is kept): %s\n", secret)
			fmt.Fprintf(out, "Proxy: %s\n", proxyURL(base, names[0]))
			fmt.Fprintf(out, "Call: curl -H 'Authorization: Bearer %s' %sprospects\n", secret, proxyURL(base, names[0]))
			return nil
		},
	}
	create.Flags().StringVar(&credentials, "credentials", "", "comma-separated names (or ids) of the credentials the key may use (required)")
	create.Flags().StringVar(&publicURL, "public-url", envOr(PublicURLEnv, ""),
		"the URL serve is reached at (as serve --public-url), for the proxy URL printed (default http://"+defaultServeAddr+")")

	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the keys: name, credentials, created, last used, revoked",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logger()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			m, cs, closeStore, err := store.openExisting(ctx, log.With("component", "credential"), nil)
			if err != nil {
				return err
			}
			defer closeStore()
			keys, err := keyStoreOf(cs)
			if err != nil {
				return err
			}
			all, err := keys.ListKeys(ctx)
			if err != nil {
				return err
			}
			creds, err := m.List(ctx)
			if err != nil {
				return err
			}
			nameOf := map[string]string{}
			for _, c := range creds {
				nameOf[c.ID] = c.Name
			}
			rows := make([]keyJSON, 0, len(all))
			for _, k := range all {
				j := keyJSON{Name: k.Name, Created: k.Created, LastUsed: timePtr(k.LastUsed), Revoked: timePtr(k.Revoked)}
				for _, id := range k.Credentials {
					n := nameOf[id]
					if n == "" {
						n = id + " (deleted)"
					}
					j.Credentials = append(j.Credentials, n)
				}
				rows = append(rows, j)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(out, "No API keys. Create one: outreach-connector keys create NAME --credentials CREDENTIAL")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tCREDENTIALS\tCREATED\tLAST USED\tSTATUS")
			for _, r := range rows {
				status := "active"
				if r.Revoked != nil {
					status = "revoked " + r.Revoked.UTC().Format("2006-01-02 15:04")
				}
				used := "never"
				if r.LastUsed != nil {
					used = r.LastUsed.UTC().Format("2006-01-02 15:04")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, strings.Join(r.Credentials, ","), r.Created.UTC().Format("2006-01-02 15:04"), used, status)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	revoke := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a key: a running serve refuses it within 2 seconds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := logger()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			_, cs, closeStore, err := store.openExisting(ctx, log.With("component", "credential"), nil)
			if err != nil {
				return err
			}
			defer closeStore()
			keys, err := keyStoreOf(cs)
			if err != nil {
				return err
			}
			if err := keys.RevokeKey(ctx, args[0], time.Now()); err != nil {
				if errors.Is(err, proxy.ErrKeyNotFound) {
					return fmt.Errorf("no key is named %s (outreach-connector keys list shows them)", args[0])
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked key %s.\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	store.register(cmd.PersistentFlags())
	return cmd
}

// keyJSON is a key as keys list --json prints it (never the key or its hash).
type keyJSON struct {
	Name        string     `json:"name"`
	Credentials []string   `json:"credentials"`
	Created     time.Time  `json:"created"`
	LastUsed    *time.Time `json:"last_used"`
	Revoked     *time.Time `json:"revoked"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// keyStoreOf returns the API key store of the app database.
func keyStoreOf(s any) (*sqlstore.APIKeys, error) {
	if db, ok := s.(interface{ APIKeys() *sqlstore.APIKeys }); ok {
		return db.APIKeys(), nil
	}
	return nil, errors.New("the app database keeps no API keys")
}

// idempotencyStoreOf returns the store of kept proxy answers.
func idempotencyStoreOf(s any) (*sqlstore.Idempotency, error) {
	if db, ok := s.(interface{ Idempotency() *sqlstore.Idempotency }); ok {
		return db.Idempotency(), nil
	}
	return nil, errors.New("the app database keeps no idempotency keys")
}

// proxyURL is the proxy's URL for a credential on serve at base.
func proxyURL(base, credential string) string {
	return base + "/proxy/" + url.PathEscape(credential) + "/"
}
