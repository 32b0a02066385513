package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/jsonl"
	"github.com/outreach-connector/outreach-connector/internal/postgres"
	"github.com/outreach-connector/outreach-connector/internal/singer"
	"github.com/outreach-connector/outreach-connector/internal/sqlite"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

func newSyncCommand(logger func() (*slog.Logger, error)) *cobra.Command {
	var (
		credName, to, streamList, startDate string
		useSandbox, fullRefresh, reconcile  bool
		pageSize, concurrency               int
		quota                               float64
		scale                               int64
		store                               storeFlags
	)
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Sync Outreach streams incrementally into SQLite",
		Long: `Copies every Outreach stream (or those named with --streams) into a database, incrementally: each
run reads what changed since the last one, in updatedAt order, and commits each page with the
stream's cursor, so an interrupted run loses nothing. Streams run in parallel under one rate limiter
for the credential's Outreach user.

--sandbox starts a local Outreach sandbox, connects a credential named "sandbox" to it, and syncs it.`,
		Example: `  outreach-connector sync --sandbox
  outreach-connector sync --credential main --to sqlite:outreach.db --start-date 2024-01-01 --quota-limit 0.5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logger()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			start, err := time.Parse(time.DateOnly, startDate)
			if err != nil {
				return fmt.Errorf("--start-date %q: use YYYY-MM-DD", startDate)
			}
			if to == "singer" {
				out = cmd.ErrOrStderr() // stdout carries the Singer messages
			}
			dst, closeDst, err := openDestination(ctx, to, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			defer closeDst()
			m, _, closeStore, err := store.open(ctx, log.With("component", "credential"), nil)
			if err != nil {
				return err
			}
			defer closeStore()
			if useSandbox {
				sb, err := sandbox.Start("", sandbox.Options{Prospects: scale, Logger: log.With("component", "sandbox")})
				if err != nil {
					return err
				}
				defer sb.Close()
				if old, err := m.Get(ctx, "sandbox"); err == nil {
					m.Forget(ctx, old.ID) // a previous run's sandbox is gone: nothing to revoke
				}
				_, refresh, err := sb.IssueToken(1)
				if err != nil {
					return err
				}
				sb.Clock().Advance(time.Minute) // one token a minute per user and app
				app := sb.Apps()[0]
				if _, err := m.Import(ctx, credential.NewCredential{Name: "sandbox", Description: "local Outreach sandbox", ClientID: app.ClientID,
					ClientSecret: app.ClientSecret, Scopes: sb.Catalog().Scopes(), Environment: credential.Development,
					APIBaseURL: sb.URL + "/api/v2", RedirectURI: app.RedirectURIs[0]}, refresh); err != nil {
					return err
				}
				credName = "sandbox"
				fmt.Fprintf(out, "Sandbox on %s with %d prospects; credential \"sandbox\" connected.\n", sb.URL, scale)
			}
			if credName == "" {
				return errors.New("name a credential with --credential (see `credentials list`), or use --sandbox")
			}
			rec, err := m.Get(ctx, credName)
			if err != nil {
				return fmt.Errorf("--credential %s: %w", credName, err)
			}
			if rec.Status != credential.StatusConnected {
				return fmt.Errorf("credential %s is %s: authorize it first (outreach-connector serve)", rec.Name, strings.ReplaceAll(string(rec.Status), "_", " "))
			}
			limiter := outreach.NewRateLimiters(outreach.RateLimiterOptions{QuotaLimit: quota}).For(rec.OutreachUserID)
			client, err := outreach.NewClient(outreach.WithBaseURL(rec.APIBaseURL), outreach.WithTokenSource(m.TokenSource(rec.ID)),
				outreach.WithRateLimiter(limiter))
			if err != nil {
				return err
			}
			cat, err := syncer.Discover(ctx, client)
			if cat == nil {
				return err
			}
			if err != nil {
				log.Warn("sync standard streams only", "reason", err)
			}
			streams := syncer.Streams(cat)
			if streamList != "" {
				want := strings.Split(streamList, ",")
				var picked []*syncer.Stream
				for _, s := range streams {
					if slices.Contains(want, s.Name) {
						picked = append(picked, s)
					}
				}
				if len(picked) != len(want) {
					var names []string
					for _, s := range streams {
						names = append(names, s.Name)
					}
					return fmt.Errorf("--streams %s: unknown stream; the streams are %s", streamList, strings.Join(names, ", "))
				}
				streams = picked
			}
			engine := syncer.NewEngine(client, dst, log.With("component", "sync"), nil)
			progress := func(p syncer.Progress) {
				if p.Done {
					log.Debug("stream done", "stream", p.Stream, "records", p.Records, "pages", p.Pages)
				}
			}
			var live *liveProgress
			if to != "singer" && isTerminal(cmd.OutOrStdout()) {
				live = newLiveProgress(cmd.OutOrStdout())
				progress = live.update
			}
			began := time.Now()
			results := engine.Run(ctx, streams, syncer.Options{StartDate: start, PageSize: pageSize, FullRefresh: fullRefresh,
				Reconcile: reconcile, Concurrency: concurrency, Progress: progress})
			if live != nil {
				live.wait()
			}
			tw := tabwriter.NewWriter(out, 0, 2, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "STREAM\tRECORDS\tDELETED\tPAGES\tSECONDS\tSTATUS\t")
			total := 0
			for _, r := range results {
				status := "ok"
				if r.Err != nil {
					status = "FAILED"
				}
				total += r.Records
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f\t%s\t\n", r.Stream, r.Records, r.Deleted, r.Pages, r.Duration.Seconds(), status)
			}
			tw.Flush()
			fmt.Fprintf(out, "%d records in %d streams into %s in %.1f s (%d requests).\n", total, len(results), redactDSN(to), time.Since(began).Seconds(), limiter.Sent())
			if err := syncer.Failed(results); err != nil {
				return fmt.Errorf("some streams failed:\n%w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&credName, "credential", "", "the credential to sync with")
	f.BoolVar(&useSandbox, "sandbox", false, "sync a local Outreach sandbox")
	f.Int64Var(&scale, "sandbox-prospects", 1000, "prospects in the --sandbox org")
	f.StringVar(&to, "to", "sqlite:outreach.db", "destination: sqlite:PATH, postgres://..., jsonl:DIR, or singer (messages on stdout)")
	f.StringVar(&streamList, "streams", "", "comma-separated stream names (default: all)")
	f.StringVar(&startDate, "start-date", "2015-01-01", "earliest updatedAt to read on a first run (YYYY-MM-DD)")
	f.IntVar(&pageSize, "page-size", 0, "page size (default 1000; mailings 100)")
	f.Float64Var(&quota, "quota-limit", 1, "share of the user's hourly rate limit this run may use, in (0, 1]")
	f.IntVar(&concurrency, "concurrency", 4, "streams synced at once")
	f.BoolVar(&fullRefresh, "full-refresh", false, "ignore saved state and read everything again")
	f.BoolVar(&reconcile, "reconcile", false, "after each stream, mark rows deleted upstream (one request per 1000 records)")
	store.register(f)
	return cmd
}

// openDestination opens sqlite:PATH or postgres://... as a sync
// destination.
func openDestination(ctx context.Context, to string, stdout io.Writer) (syncer.Destination, func(), error) {
	switch {
	case to == "singer":
		w, err := singer.New(stdout, nil)
		if err != nil {
			return nil, nil, err
		}
		return w, func() {}, nil
	case strings.HasPrefix(to, "postgres://"), strings.HasPrefix(to, "postgresql://"):
		db, err := postgres.Open(ctx, to)
		if err != nil {
			return nil, nil, err
		}
		return db, func() { db.Close() }, nil
	case strings.HasPrefix(to, "jsonl:"):
		d, err := jsonl.Open(strings.TrimPrefix(to, "jsonl:"))
		if err != nil {
			return nil, nil, err
		}
		return d, func() {}, nil
	case strings.HasPrefix(to, "sqlite:"):
		db, err := sqlite.Open(ctx, strings.TrimPrefix(to, "sqlite:"))
		if err != nil {
			return nil, nil, err
		}
		return db, func() { db.Close() }, nil
	}
	return nil, nil, fmt.Errorf("--to %q: use sqlite:PATH, postgres://..., jsonl:DIR or singer", to)
}

// redactDSN hides a password in a destination URL.
func redactDSN(to string) string {
	if u, err := url.Parse(to); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	return to
}
