package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/outreach-connector/outreach-connector/sandbox"
)

func newSandboxCommand(logger func() (*slog.Logger, error)) *cobra.Command {
	var (
		addr, scale, faults, redirect string
		seed                          int64
		prospects                     int64
		rateLimit                     int
		rateWindow                    time.Duration
		mutations                     float64
		batchItemsPerSecond           float64
		keepRotated, legacyCount      bool
		strictMedia, strictSort       bool
		expireDev, production         bool
		mintInterval                  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run a local Outreach simulator (OAuth, REST API v2, rate limits, faults, webhooks)",
		Long: `Runs a faithful simulator of Outreach's OAuth 2.0 server and REST API v2 on a local port.

It prints what you need to connect: the base URL, the OAuth client id and secret, the
redirect URI, and a user who can sign in on the authorize page. Seeded data is
deterministic for a seed; --scale sets the size of the org.`,
		Example: `  outreach-connector sandbox
  outreach-connector sandbox --addr 127.0.0.1:9000 --scale 1000000 --mutations 5
  outreach-connector sandbox --rate-limit 100 --rate-window 1m --faults '{"server_errors":0.05}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logger()
			if err != nil {
				return err
			}
			n, err := parseScale(scale)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("prospects") {
				n = prospects
			}
			opts := sandbox.Options{Seed: seed, Prospects: n, RateLimit: rateLimit, RateWindow: rateWindow,
				MutationsPerSecond: mutations, BatchItemsPerSecond: batchItemsPerSecond, KeepRotatedRefreshTokens: keepRotated, CountByDefault: legacyCount,
				RedirectURI: redirect, Logger: log, StrictMediaType: strictMedia, StrictSort: strictSort,
				ExpireDevelopmentGrants: expireDev}
			if cmd.Flags().Changed("mint-interval") {
				opts.MintInterval = mintInterval
				if mintInterval == 0 {
					opts.MintInterval = -1
				}
			}
			if production {
				app := sandbox.DefaultApp(seed, redirect)
				app.Production = true
				opts.Apps = []sandbox.App{app}
			}
			if faults != "" {
				dec := json.NewDecoder(strings.NewReader(faults))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&opts.Faults); err != nil {
					return fmt.Errorf("--faults: %w (example: '{\"server_errors\":0.05,\"latency_ms\":20}')", err)
				}
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w (choose another port with --addr)", addr, err)
			}
			sb, err := sandbox.New(opts)
			if err != nil {
				ln.Close()
				return err
			}
			defer sb.Close()
			base := "http://" + ln.Addr().String()
			app := sb.Apps()[0]
			email, password := sb.SignInUser()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Outreach sandbox listening on %s\n\n", base)
			fmt.Fprintf(out, "  API base URL    %s/api/v2\n", base)
			fmt.Fprintf(out, "  Authorize URL   %s/oauth/authorize\n", base)
			fmt.Fprintf(out, "  Token URL       %s/oauth/token\n", base)
			fmt.Fprintf(out, "  Client id       %s\n", app.ClientID)
			fmt.Fprintf(out, "  Client secret   %s\n", app.ClientSecret)
			fmt.Fprintf(out, "  Redirect URI    %s\n", strings.Join(app.RedirectURIs, " "))
			fmt.Fprintf(out, "  Sign in as      %s / %s (admin)\n", email, password)
			fmt.Fprintf(out, "                  %s / %s (restricted by governance)\n", sb.RestrictedUser(), password)
			fmt.Fprintf(out, "  Org             %d prospects, seed %d; rate limit %d per %s\n\n", n, opts.Seed, opts.RateLimit, rateWindow)
			fmt.Fprintf(out, "Try it:\n  TOKEN=$(curl -s -X POST %s/_sandbox/tokens -d '{\"user\":1}' | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')\n", base)
			fmt.Fprintf(out, "  curl -sg -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/vnd.api+json' '%s/api/v2/prospects?page[size]=2'\n\n", base)
			fmt.Fprintln(out, "Press Ctrl+C to stop.")
			srv := &http.Server{Handler: sb, ReadHeaderTimeout: 10 * time.Second}
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return err
			case <-cmd.Context().Done():
				log.Info("sandbox stopping")
				sb.Close() // ends the requests a fault holds open
				ctx, cancel := contextWithTimeout(5 * time.Second)
				defer cancel()
				return srv.Shutdown(ctx)
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	f.Int64Var(&seed, "seed", 1, "seed of the generated org: the same seed gives the same data")
	f.StringVar(&scale, "scale", "demo", "size of the org: demo (1,000 prospects), small (10,000), large (1,000,000) or a number of prospects")
	f.Int64Var(&prospects, "prospects", 0, "number of prospects (overrides --scale)")
	f.IntVar(&rateLimit, "rate-limit", 10000, "API requests per user per window")
	f.DurationVar(&rateWindow, "rate-window", time.Hour, "rate-limit window")
	f.Float64Var(&mutations, "mutations", 0, "records created, updated or deleted per second while clients read")
	f.Float64Var(&batchItemsPerSecond, "batch-items-per-second", 0, "how fast confirmed bulk-action batches process their items (0 means 100; negative: at once)")
	f.StringVar(&faults, "faults", "", `faults to inject, as JSON (see GET /_sandbox/faults), e.g. '{"server_errors":0.05}'`)
	f.StringVar(&redirect, "redirect-uri", sandbox.DefaultRedirectURI, "redirect URI registered for the OAuth app")
	f.BoolVar(&keepRotated, "keep-rotated-refresh-tokens", false, "keep refresh tokens valid after they are used (default: rotation revokes them)")
	f.BoolVar(&legacyCount, "count-by-default", false, "include meta.count without count=true, as for apps registered before October 2024")
	f.BoolVar(&strictMedia, "strict-media-type", false, "answer 415 unless every API request, reads included, says Content-Type: application/vnd.api+json (as documented)")
	f.BoolVar(&strictSort, "strict-sort", false, "refuse sort on attributes the OpenAPI document does not badge sortable")
	f.BoolVar(&expireDev, "expire-development-grants", false, "expire a development app's grants a week (sandbox clock) after each authorization, as Outreach does for users outside the owning org")
	f.DurationVar(&mintInterval, "mint-interval", time.Minute, "at most one token grant per user and app in this time, as Outreach allows (0: no limit, for tests)")
	f.BoolVar(&production, "production-app", false, "register the app as a published (production) app: no development warning, no weekly expiry")
	return cmd
}

func parseScale(s string) (int64, error) {
	switch s {
	case "demo":
		return 1000, nil
	case "small":
		return 10000, nil
	case "large":
		return 1000000, nil
	}
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil || n < 0 {
		return 0, fmt.Errorf("--scale %q: use demo, small, large or a number of prospects", s)
	}
	if n == 0 {
		n = -1 // an empty org
	}
	return n, nil
}
