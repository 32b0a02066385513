package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/destinations"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
	"github.com/outreach-connector/outreach-connector/outreach"
	"github.com/outreach-connector/outreach-connector/sandbox"
)

func newSyncCommand(logger func() (*slog.Logger, error), logs *logSink) *cobra.Command {
	var (
		credName, to, streamList, startDate string
		namespace                           string
		useSandbox, fullRefresh, reconcile  bool
		pageSize, concurrency               int
		quota                               float64
		scale, seed                         int64
		store                               storeFlags
	)
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Sync Outreach streams incrementally into SQLite, PostgreSQL, JSON Lines or Singer",
		Long: `Copies every Outreach stream (or those named with --streams) into a destination (--to: SQLite,
PostgreSQL, JSON Lines or Singer), incrementally: each run reads what changed since the last one, in
updatedAt order, and commits each page with the stream's cursor, so an interrupted run (Ctrl-C) loses
nothing and the next run resumes. Streams run in parallel under one rate limiter for the credential's
Outreach user. Streams the credential's scopes cannot read are skipped, one line each.

--namespace keeps this sync's tables, cursors and locks apart from other syncs into the same database,
file or directory (a schema on PostgreSQL, a table prefix NS__ on SQLite, a subdirectory of jsonl:). A
namespace belongs to the Outreach org that first synced into it; another org's sync into it is refused.

--sandbox starts a local Outreach sandbox, connects a credential named "sandbox" to it for the
run (it is forgotten when the run ends, since the sandbox is gone; "sandbox-<id>" while the
connections of serve --sandbox use that name), and syncs it.`,
		Example: `  outreach-connector sync --sandbox
  outreach-connector sync --credential main --to sqlite:outreach.db --start-date 2024-01-01 --quota-limit 0.5
  outreach-connector sync --credential main --to postgres://localhost/analytics --streams prospects,accounts`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			// A run stopped before its streams start (starting the sandbox,
			// refreshing the token, discovering, waiting for the rate limit)
			// has nothing to sum up but must still say so, as one stopped
			// later does.
			defer func() {
				if err != nil && !errors.Is(err, errInterrupted) && cmd.Context().Err() != nil {
					w := cmd.OutOrStdout()
					if to == "singer" {
						w = cmd.ErrOrStderr()
					}
					fmt.Fprintln(w, "Interrupted before any stream started: nothing was written. The next run resumes where the last finished one stopped.")
					err = errInterrupted
				}
			}()
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
			if !(quota > 0 && quota <= 1) {
				return fmt.Errorf("--quota-limit %v: give the share of the hourly rate limit to use, more than 0 and at most 1 (0.5 is half)", quota)
			}
			if cmd.Flags().Changed("page-size") && (pageSize < 1 || pageSize > 1000) {
				return fmt.Errorf("--page-size %d: give 1 to 1000 records a page (Outreach's most), or leave it out for the default (1000; 100 for mailings)", pageSize)
			}
			if concurrency < 1 {
				return fmt.Errorf("--concurrency %d: give the number of streams to sync at once, 1 or more", concurrency)
			}
			if scale < 0 {
				return fmt.Errorf("--sandbox-prospects %d: give 0 or more prospects", scale)
			}
			if cmd.Flags().Changed("seed") && !useSandbox {
				return errors.New("--seed works with --sandbox only")
			}
			var want []string
			if streamList != "" {
				for _, name := range strings.Split(streamList, ",") {
					if name = strings.TrimSpace(name); name != "" && !slices.Contains(want, name) {
						want = append(want, name)
					}
				}
			}
			if to == "singer" {
				out = cmd.ErrOrStderr() // stdout carries the Singer messages
			}
			showBars := to != "singer" && isTerminal(cmd.OutOrStdout())
			if showBars && !logs.explicit {
				logs.level.Set(slog.LevelWarn) // the bars tell what info lines would
			}
			if err := destinations.Check(to, ""); err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			if err := destinations.CheckNamespace(namespace); err != nil {
				return fmt.Errorf("--namespace: %w", err)
			}
			openStore := store.open
			if !useSandbox {
				openStore = store.openExisting // --credential names one added earlier
			}
			m, _, closeStore, err := openStore(ctx, log.With("component", "credential"), nil)
			if err != nil {
				return err
			}
			defer closeStore()
			if useSandbox {
				unlock, err := lockSandbox(store.db)
				if err != nil {
					return err
				}
				defer unlock()
				sb, err := sandbox.Start("", sandbox.Options{Seed: seed, Prospects: scale, OrgName: sandboxOrgName(seed, scale),
					Logger: log.With("component", "sandbox")})
				if err != nil {
					return err
				}
				defer func() {
					// A connection dialled for a request the interruption cancelled
					// sits unused in the client's pool, and the sandbox's graceful
					// shutdown would wait seconds for it: close those first.
					if t, ok := http.DefaultTransport.(interface{ CloseIdleConnections() }); ok {
						t.CloseIdleConnections()
					}
					sb.Close()
				}()
				credName = sandboxCredential(ctx, m)
				_, refresh, err := sb.IssueToken(1)
				if err != nil {
					return err
				}
				sb.Clock().Advance(time.Minute) // one token a minute per user and app
				app := sb.Apps()[0]
				rec, err := m.Import(ctx, credential.NewCredential{Name: credName, Description: syncSandboxDescription,
					ClientID: app.ClientID, ClientSecret: app.ClientSecret, Scopes: sb.Catalog().Scopes(), Environment: credential.Development,
					APIBaseURL: sb.URL + "/api/v2", RedirectURI: app.RedirectURIs[0]}, refresh)
				if err != nil {
					return err
				}
				// The sandbox lives as long as this run: forget its credential
				// with it, so none is left pointing at a dead port.
				defer m.Forget(context.WithoutCancel(ctx), rec.ID)
				fmt.Fprintf(out, "Sandbox on %s with %d prospects (seed %d); credential %q connected for this run.\n", sb.URL, scale, seed, credName)
			}
			if credName == "" {
				return errors.New("name a credential with --credential (see `credentials list`), or use --sandbox")
			}
			rec, err := store.credential(ctx, m, credName)
			if err != nil {
				return err
			}
			if rec.Status != credential.StatusConnected {
				return fmt.Errorf("credential %s is %s: authorize it first (outreach-connector serve)", rec.Name, strings.ReplaceAll(string(rec.Status), "_", " "))
			}
			status := &statusLine{out: out, log: log, terminal: showBars}
			limiter := outreach.NewRateLimiters(outreach.RateLimiterOptions{QuotaLimit: quota, OnWait: status.rateWait}).For(rec.OutreachUserID)
			client, err := outreach.NewClient(outreach.WithBaseURL(rec.APIBaseURL), outreach.WithTokenSource(m.TokenSource(rec.ID)),
				outreach.WithRateLimiter(limiter), outreach.WithObserver(logHungRequests(log)))
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
			if ctx.Err() != nil {
				return ctx.Err()
			}
			streams, skipped, err := pickStreams(cat, syncer.Streams(cat), want, rec)
			if err != nil {
				return err
			}
			dst, closeDst, err := destinations.Open(ctx, to, namespace, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			defer closeDst()
			// The namespace is the org's: another org's sync into it is
			// refused before anything is written. Discover's requests have
			// taught the credential its org by now.
			if fresh, err := m.Get(ctx, rec.ID); err == nil {
				rec = fresh
			}
			owner := connection.Owner{Org: rec.OutreachOrg, CredentialID: rec.ID, Credential: rec.Name}
			if err := connection.Claim(ctx, dst, owner); err != nil {
				var owned *connection.OwnedError
				if errors.As(err, &owned) && useSandbox {
					return fmt.Errorf("%w with --namespace, or another --to (this run's sandbox, %s, is another org: another --seed or --sandbox-prospects is other data)", err, owner.Org)
				}
				if errors.As(err, &owned) {
					return fmt.Errorf("%w with --namespace", err)
				}
				return fmt.Errorf("claim the destination's namespace: %w", err)
			}
			for _, u := range skipped {
				fmt.Fprintf(out, "skip %s: credential %s lacks scope %s\n", u.Stream.Name, rec.Name, strings.Join(u.Scopes, " or "))
			}
			engine := syncer.NewEngine(client, dst, log.With("component", "sync"), nil)
			var progress func(syncer.Progress)
			var live *liveProgress
			restoreLogs := func() {}
			if showBars {
				live = newLiveProgress(cmd.OutOrStdout(), len(streams))
				status.above(live)
				progress = live.update
				if isTerminal(cmd.ErrOrStderr()) {
					restoreLogs = logs.redirect(live) // log lines above the bars, never through them
				}
			}
			began := time.Now()
			results := engine.Run(ctx, streams, syncer.Options{StartDate: start, PageSize: pageSize, FullRefresh: fullRefresh,
				Reconcile: reconcile, Concurrency: concurrency, Progress: progress, Total: true, Owner: owner})
			if live != nil {
				restoreLogs()
				status.above(nil)
				live.finish()
			}
			interrupted := ctx.Err() != nil
			tw := tabwriter.NewWriter(out, 0, 2, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "STREAM\tRECORDS\tDELETED\tPAGES\tSECONDS\tSTATUS\t")
			total, stopped := 0, 0
			var failed []error
			for _, r := range results {
				status := "ok"
				switch {
				case r.Err != nil && interrupted && isCancel(ctx, r.Err) && r.Duration == 0:
					status = "not started"
					stopped++
				case r.Err != nil && interrupted && isCancel(ctx, r.Err):
					status = "interrupted"
					stopped++
				case r.Err != nil:
					status = "FAILED"
					failed = append(failed, r.Err)
				}
				total += r.Records
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f\t%s\t\n", r.Stream, r.Records, r.Deleted, r.Pages, r.Duration.Seconds(), status)
			}
			tw.Flush()
			where := redactDSN(to)
			if namespace != "" && to != destinations.Singer {
				where += " (namespace " + namespace + ")"
			}
			fmt.Fprintf(out, "%s in %s into %s in %.1f s (%s).\n", counted(total, "record"), counted(len(results), "stream"), where,
				time.Since(began).Seconds(), counted(limiter.Sent(), "request"))
			if len(skipped) > 0 {
				fmt.Fprintf(out, "%s skipped for lack of scopes; to sync them, give credential %s these scopes and authorize it again: %s\n",
					counted(len(skipped), "stream"), rec.Name, strings.Join(missingScopes(skipped), " "))
			}
			if interrupted {
				fmt.Fprintf(out, "Interrupted: %d of %s did not finish. Every committed page is kept; the next run resumes where this one stopped.\n",
					stopped, counted(len(results), "stream"))
				if len(failed) > 0 {
					return fmt.Errorf("%w; some streams failed:\n%w", errInterrupted, errors.Join(failed...))
				}
				return errInterrupted
			}
			if len(failed) > 0 {
				return fmt.Errorf("some streams failed:\n%w", errors.Join(failed...))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&credName, "credential", "", "the credential to sync with")
	f.BoolVar(&useSandbox, "sandbox", false, "sync a local Outreach sandbox (its credential lasts for the run)")
	f.Int64Var(&scale, "sandbox-prospects", 1000, "prospects in the --sandbox org")
	f.Int64Var(&seed, "seed", 1, "seed of the --sandbox org: the same seed gives the same data")
	f.StringVar(&to, "to", "sqlite:outreach.db", "destination: sqlite:PATH, postgres://..., jsonl:DIR, or singer (messages on stdout)")
	f.StringVar(&namespace, "namespace", "", "keep this sync's tables, state and locks apart in the destination: a PostgreSQL schema, a SQLite table prefix NS__, a JSONL subdirectory (default: none)")
	f.StringVar(&streamList, "streams", "", "comma-separated stream names (default: every stream the credential can read)")
	f.StringVar(&startDate, "start-date", "2015-01-01", "earliest updatedAt to read on a first run (YYYY-MM-DD)")
	f.IntVar(&pageSize, "page-size", 0, "records a page, 1 to 1000 (default: 1000; 100 for mailings)")
	f.Float64Var(&quota, "quota-limit", 1, "share of the user's hourly rate limit this run may use, in (0, 1]")
	f.IntVar(&concurrency, "concurrency", 4, "streams synced at once")
	f.BoolVar(&fullRefresh, "full-refresh", false, "ignore saved state and read everything again")
	f.BoolVar(&reconcile, "reconcile", false, "after each stream, mark rows deleted upstream (one request per 1000 records)")
	store.register(f)
	return cmd
}

// logHungRequests is a client observer that logs, at warn, each attempt
// Outreach did not answer within the attempt timeout: the client retries
// it, and without the line a run would seem stuck for that minute.
func logHungRequests(log *slog.Logger) func(outreach.RequestEvent) {
	return func(ev outreach.RequestEvent) {
		var hung *outreach.AttemptTimeoutError
		if errors.As(ev.Err, &hung) {
			log.Warn("Outreach did not answer within the attempt timeout; the request is retried",
				"method", ev.Method, "url", ev.URL, "attempt", ev.Attempt, "timeout", hung.After)
		}
	}
}

// statusLine tells the user why a run does not move: off a terminal as
// an info log line, on a terminal as a line above the bars (or on its
// own before they are drawn).
type statusLine struct {
	out      io.Writer
	log      *slog.Logger
	terminal bool

	mu   sync.Mutex
	bars io.Writer // the live display once it runs
}

func (s *statusLine) above(w io.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bars = w
}

// rateWait is the rate limiter's OnWait.
func (s *statusLine) rateWait(w outreach.RateWait) {
	msg := fmt.Sprintf("waiting for Outreach's rate-limit window until %s (%d requests left of %d)",
		w.Until.Local().Format(time.TimeOnly), w.Remaining, w.Limit)
	if !s.terminal {
		s.log.Info(msg, "until", w.Until, "remaining", w.Remaining, "limit", w.Limit)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dst := s.out
	if s.bars != nil {
		dst = s.bars
	}
	fmt.Fprintln(dst, msg)
}

// pickStreams chooses the streams to sync: those named (an unknown name,
// or one the credential's scopes cannot read, is an error), or every
// stream the credential can read, with the others returned as skipped.
func pickStreams(cat *catalog.Catalog, all []*connection.Stream, want []string, rec *credential.Record) ([]*connection.Stream, []syncer.Unreadable, error) {
	streams := all
	if len(want) > 0 {
		streams = nil
		var unknown []string
		for _, name := range want {
			i := slices.IndexFunc(all, func(s *connection.Stream) bool { return s.Name == name })
			if i < 0 {
				unknown = append(unknown, name)
				continue
			}
			streams = append(streams, all[i])
		}
		if len(unknown) > 0 {
			var names []string
			for _, s := range all {
				names = append(names, s.Name)
			}
			return nil, nil, fmt.Errorf("--streams: unknown stream %s; the streams are %s", strings.Join(unknown, ", "), strings.Join(names, ", "))
		}
	}
	readable, unreadable := syncer.SplitByScopes(cat, streams, rec.Scopes)
	if len(want) > 0 && len(unreadable) > 0 {
		var lines []string
		for _, u := range unreadable {
			lines = append(lines, fmt.Sprintf("%s needs scope %s", u.Stream.Name, strings.Join(u.Scopes, " or ")))
		}
		return nil, nil, fmt.Errorf("--streams: credential %s cannot read %s; give it the scopes (%s) and authorize it again, or leave those streams out",
			rec.Name, strings.Join(lines, ", "), strings.Join(missingScopes(unreadable), " "))
	}
	return readable, unreadable, nil
}

// missingScopes returns the read scope of each unreadable stream, once.
func missingScopes(us []syncer.Unreadable) []string {
	var out []string
	for _, u := range us {
		if len(u.Scopes) > 0 && !slices.Contains(out, u.Scopes[0]) {
			out = append(out, u.Scopes[0])
		}
	}
	return out
}

// isCancel reports whether err is a stream stopping because ctx, the
// run's context, was cancelled (the error may carry the cancel's cause).
func isCancel(ctx context.Context, err error) bool {
	if cause := context.Cause(ctx); cause != nil && errors.Is(err, cause) {
		return true
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
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

// syncSandboxDescription describes the credential of a sync --sandbox run;
// a credential so described that is still there was left by a run that
// was killed.
const syncSandboxDescription = "local Outreach sandbox of one sync --sandbox run"

// sandboxCredential chooses the name of a sync --sandbox run's credential
// and forgets those earlier runs left (their sandbox is gone: nothing to
// revoke). It is "sandbox", unless connections use a credential of that
// name (serve --sandbox's, which serve replaces when it starts): then a
// name of the run's own.
func sandboxCredential(ctx context.Context, m *credential.Manager) string {
	if list, err := m.List(ctx); err == nil {
		for _, r := range list {
			if r.Description == syncSandboxDescription {
				m.Forget(ctx, r.ID) // in use by a connection made by hand: kept
			}
		}
	}
	if old, err := m.Get(ctx, "sandbox"); err == nil && m.Forget(ctx, old.ID) != nil {
		return "sandbox-" + credential.NewID()[:8]
	}
	return "sandbox"
}

// sandboxOrgName names the org of sync --sandbox: the default org (seed
// 1, 1000 prospects) "Sandbox Org", as every sandbox was before, and any
// other by its seed and size. Another seed or size is other data, much of
// it older than the cursors a sync of the first left, so a destination of
// one refuses the other (its owner check) rather than take part of it.
func sandboxOrgName(seed, prospects int64) string {
	if seed == 1 && prospects == 1000 {
		return "Sandbox Org"
	}
	return fmt.Sprintf("Sandbox Org (seed %d, %d prospects)", seed, prospects)
}
