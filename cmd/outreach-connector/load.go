package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/credential"
	"github.com/outreach-connector/outreach-connector/internal/load"
	"github.com/outreach-connector/outreach-connector/internal/sqlstore"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
	"github.com/outreach-connector/outreach-connector/outreach"
)

// exitCodeError carries an exit status other than 1.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string { return e.err.Error() }
func (e *exitCodeError) Unwrap() error { return e.err }

// ExitCode is the process's exit status.
func (e *exitCodeError) ExitCode() int { return e.code }

func newLoadCommand(logger func() (*slog.Logger, error)) *cobra.Command {
	var (
		credName, from, mode, match, rejects, loadID string
		maps, thens                                  []string
		mailbox                                      string
		dryRun                                       bool
		quota                                        float64
		store                                        storeFlags
	)
	cmd := &cobra.Command{
		Use:   "load TYPE",
		Short: "Write rows from a CSV, JSON Lines file or SQL query into Outreach: create, update or upsert, exactly once",
		Long: `Writes the rows of a source into Outreach records of TYPE (prospect, account, opportunity, task, ...):
--mode create, update or upsert, each row matched to its record by --match. Existing records are fetched in
bulk by their match keys and only changed attributes are sent; unchanged rows cost no write. Values are
checked against the catalog before any request. Every row ends created, updated, unchanged or rejected;
--rejects writes the rejected rows with Outreach's reason and the column at fault (CSV, or JSON Lines for
a .jsonl path). The exit status is 2 when rows were rejected.

A journal in the app database records each row's intent before its request and the Outreach id after, so
a load stopped at any instant (Ctrl-C, kill -9, a lost connection) and run again with the same command
resumes: no duplicates, no lost rows, done rows not written again. A write whose answer was lost is
resolved by looking the record up before anything is sent again.

Columns go to the attribute of their own name unless --map says otherwise: --map col=attribute,
--map col=owner.email (a relationship by a lookup), --map col=account.id, --map col=Tier (a custom field
by its label), --map col= (skip the column).

After the rows, --then acts on the loaded records (created, updated or unchanged; never rejected):
add-to-sequence:SEQUENCE with --mailbox MAILBOX enrols prospects (prospects already in the sequence are
skipped and counted), assign-owner:EMAIL and add-tags:a,b change them. One request per record or one of
Outreach's bulk actions, whichever costs fewer; journaled like the rows, so a rerun does not act twice.`,
		Example: `  outreach-connector load prospect --credential main --from csv:signups.csv --mode upsert --match emails --map email=emails
  outreach-connector load account --credential main --from "sqlite:warehouse.db?query=SELECT domain, name, tier AS custom1 FROM accounts" --mode upsert --match domain --dry-run
  outreach-connector load prospect --credential main --from csv:signups.csv --mode upsert --match emails --then add-to-sequence:'Welcome series' --mailbox sdr@example.com
  outreach-connector load prospect --credential main --from jsonl:people.jsonl --mode update --match emails --map owner=owner.email --rejects rejects.csv`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := logger()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			if mode == "" {
				return errors.New("--mode is required: create, update or upsert")
			}
			m, err := load.ParseMode(mode)
			if err != nil {
				return fmt.Errorf("--%w", err)
			}
			if !(quota > 0 && quota <= 1) {
				return fmt.Errorf("--quota-limit %v: give the share of the hourly rate limit to use, more than 0 and at most 1 (0.5 is half)", quota)
			}
			if from == "" {
				return errors.New("--from: name the rows to load: csv:PATH, jsonl:PATH, sqlite:PATH?query=SQL or postgres://...?query=SQL")
			}
			mapping := map[string]string{}
			for _, kv := range maps {
				col, attr, ok := strings.Cut(kv, "=")
				if !ok || strings.TrimSpace(col) == "" {
					return fmt.Errorf("--map %q: write COLUMN=ATTRIBUTE (or COLUMN= to skip the column)", kv)
				}
				mapping[strings.TrimSpace(col)] = strings.TrimSpace(attr)
			}
			var matchAttrs []string
			for _, a := range strings.Split(match, ",") {
				if a = strings.TrimSpace(a); a != "" {
					matchAttrs = append(matchAttrs, a)
				}
			}
			var then []load.Then
			for _, s := range thens {
				t, err := load.ParseThen(s, mailbox)
				if err != nil {
					return err
				}
				then = append(then, t)
			}
			if mailbox != "" && !slices.ContainsFunc(then, func(t load.Then) bool { return t.Kind == load.ThenAddToSequence }) {
				return errors.New("--mailbox is the mailbox of --then add-to-sequence:SEQUENCE; give that too, or leave --mailbox out")
			}
			if credName == "" {
				return errors.New("name a credential with --credential (see `credentials list`)")
			}
			src, err := load.OpenSource(ctx, from)
			if err != nil {
				return err
			}
			defer src.Close()
			mgr, st, closeStore, err := store.openExisting(ctx, log.With("component", "credential"), nil)
			if err != nil {
				return err
			}
			defer closeStore()
			journal, ok := st.(interface{ Loads() *sqlstore.Loads })
			if !ok {
				return errors.New("the app database keeps no load journal")
			}
			rec, err := store.credential(ctx, mgr, credName)
			if err != nil {
				return err
			}
			if rec.Status != credential.StatusConnected {
				return fmt.Errorf("credential %s is %s: authorize it first (outreach-connector serve)", rec.Name, strings.ReplaceAll(string(rec.Status), "_", " "))
			}
			status := &statusLine{out: out, log: log}
			limiter := outreach.NewRateLimiters(outreach.RateLimiterOptions{QuotaLimit: quota, OnWait: status.rateWait}).For(rec.OutreachUserID)
			client, err := outreach.NewClient(outreach.WithBaseURL(rec.APIBaseURL), outreach.WithTokenSource(mgr.TokenSource(rec.ID)),
				outreach.WithRateLimiter(limiter), outreach.WithObserver(logHungRequests(log)))
			if err != nil {
				return err
			}
			cat := catalog.Default()
			if _, ok := cat.ByType(args[0]); !ok {
				if _, ok := cat.ByPath(args[0]); !ok {
					// Perhaps one of the org's custom objects: only schema.json knows them.
					if found, err := syncer.Discover(ctx, client); found != nil {
						cat = found
					} else if err != nil {
						return err
					}
				}
			}
			// A long load (Outreach allows 10,000 requests an hour) says how
			// far it is every 30 seconds.
			lastProgress := time.Now()
			progress := func(s load.Summary) {
				if time.Since(lastProgress) < 30*time.Second {
					return
				}
				lastProgress = time.Now()
				log.Info("loading", "load", s.LoadID, "rows", s.Rows, "created", s.Created, "updated", s.Updated,
					"unchanged", s.Unchanged, "rejected", s.Rejected, "requests", limiter.Sent())
			}
			sum, err := load.Run(ctx, src, client, journal.Loads(), load.Options{Type: args[0], Mode: m, Match: matchAttrs, Map: mapping,
				DryRun: dryRun, LoadID: loadID, Catalog: cat, Logger: log.With("component", "load"), Progress: progress,
				Then: then, Requests: limiter.Sent})
			if sum == nil {
				return err
			}
			printLoadSummary(out, sum, limiter.Sent(), rejects == "")
			if rejects != "" && len(sum.Rejections) > 0 {
				if werr := load.WriteRejects(rejects, sum.Columns, sum.Rejections); werr != nil {
					return werr
				}
				fmt.Fprintf(out, "%s written to %s.\n", counted(len(sum.Rejections), "rejected row"), rejects)
			}
			switch {
			case err == nil:
				return nil
			case errors.Is(err, load.ErrRowsRejected) || errors.Is(err, load.ErrActionsFailed):
				return &exitCodeError{code: 2, err: err}
			case ctx.Err() != nil:
				fmt.Fprintf(out, "Interrupted: run the same command again to resume load %s; rows done are not written again.\n", sum.LoadID)
				return errInterrupted
			}
			return fmt.Errorf("%w\nThe load stopped; run the same command again to resume load %s.", err, sum.LoadID)
		},
	}
	f := cmd.Flags()
	f.StringVar(&credName, "credential", "", "the credential to write with")
	f.StringVar(&from, "from", "", "the rows: csv:PATH, jsonl:PATH, sqlite:PATH?query=SQL or postgres://...?query=SQL")
	f.StringVar(&mode, "mode", "", "create, update or upsert")
	f.StringVar(&match, "match", "", "attribute(s) that identify a record, comma-separated: emails, domain, customId, externalId, id, ...")
	f.StringArrayVar(&maps, "map", nil, "COLUMN=ATTRIBUTE, COLUMN=rel.attr (owner.email), COLUMN=rel.id, COLUMN=custom field label, or COLUMN= to skip; repeat for each column")
	f.BoolVar(&dryRun, "dry-run", false, "print the plan (create, update, unchanged, reject, first diffs) and write nothing")
	f.StringVar(&rejects, "rejects", "", "write rejected rows here: CSV, or JSON Lines when the path ends in .jsonl")
	f.Float64Var(&quota, "quota-limit", 1, "share of the user's hourly rate limit this load may use, in (0, 1]")
	f.StringArrayVar(&thens, "then", nil, "after the rows, act on the loaded records: add-to-sequence:SEQUENCE (id or name; needs --mailbox), assign-owner:EMAIL, add-tags:TAG,TAG; repeat for several")
	f.StringVar(&mailbox, "mailbox", "", "the mailbox (id or email) add-to-sequence enrols prospects with")
	f.StringVar(&loadID, "load-id", "", "name the load in the journal (default: derived from type, source, mode and match, so the same command resumes)")
	store.register(f)
	return cmd
}

// plural is word for one, word+"s" for any other count.
func plural[N int | int64](n N, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// counted is n and word, in the plural unless n is 1: "1 stream",
// "2 streams".
func counted[N int | int64](n N, word string) string {
	return fmt.Sprintf("%d %s", n, plural(n, word))
}

// printLoadSummary prints the plan or the outcome, the first writes and
// the rejections.
func printLoadSummary(w io.Writer, s *load.Summary, requests int64, allRejects bool) {
	verb := "Load"
	if s.DryRun {
		verb = "Dry run of load"
	}
	resumed := ""
	if s.Resumed {
		resumed = ", resumed"
	}
	fmt.Fprintf(w, "%s %s (%s, %s%s)\n", verb, s.LoadID, s.Type, s.Mode, resumed)
	if len(s.Diffs) > 0 {
		fmt.Fprintln(w, "First writes:")
		for _, d := range s.Diffs {
			target := "new " + s.Type
			if d.Action == load.ActionUpdate {
				target = fmt.Sprintf("%s %d", s.Type, d.ID)
			}
			var parts []string
			for _, c := range d.Changes {
				if d.Action == load.ActionUpdate {
					parts = append(parts, fmt.Sprintf("%s %s → %s", c.Name, c.Before, c.After))
				} else {
					parts = append(parts, fmt.Sprintf("%s=%s", c.Name, c.After))
				}
			}
			fmt.Fprintf(w, "  line %d %s %s (%s): %s\n", d.Line, d.Action, target, d.Key, strings.Join(parts, ", "))
		}
	}
	if len(s.Rejections) > 0 {
		fmt.Fprintln(w, "Rejected:")
		for i, r := range s.Rejections {
			if i == 20 && allRejects {
				fmt.Fprintf(w, "  ... %d more; --rejects PATH writes them all\n", len(s.Rejections)-20)
				break
			}
			if i == 20 {
				break
			}
			fmt.Fprintf(w, "  %s\n", r)
		}
	}
	if s.DryRun {
		fmt.Fprintf(w, "Plan: %s: create %d, update %d, unchanged %d, reject %d. Nothing was written (%s).\n",
			counted(s.Rows, "row"), s.Created, s.Updated, s.Unchanged, s.Rejected, counted(s.ReadRequests, "read request"))
		return
	}
	fmt.Fprintf(w, "%s: created %d, updated %d, unchanged %d, rejected %d", counted(s.Rows, "row"), s.Created, s.Updated, s.Unchanged, s.Rejected)
	if s.FromEarlierRuns > 0 {
		fmt.Fprintf(w, " (%d done by an earlier run)", s.FromEarlierRuns)
	}
	fmt.Fprintf(w, ". %s and %s (%s)", counted(s.WriteRequests, "write request"), counted(s.ReadRequests, "read request"),
		counted(requests, "HTTP request"))
	if s.Resolved > 0 {
		fmt.Fprintf(w, "; %s resolved by lookup", counted(s.Resolved, "unknown outcome"))
	}
	fmt.Fprintln(w, ".")
	printActions(w, s.Actions)
}

// printActions prints what each --then did.
func printActions(w io.Writer, actions []load.ActionSummary) {
	for _, a := range actions {
		fmt.Fprintf(w, "Then %s: %s: done %d, already %d, failed %d", a.Action, counted(a.Records, "record"), a.Done, a.Already, a.Failed)
		if a.FromEarlierRuns > 0 {
			fmt.Fprintf(w, " (%d by an earlier run)", a.FromEarlierRuns)
		}
		if pending := a.Records - a.Done - a.Already - a.Failed; pending > 0 {
			fmt.Fprintf(w, ", not done %d", pending)
		}
		fmt.Fprintf(w, ". %s.\n", counted(a.Requests, "request"))
		for i, f := range a.Failures {
			if i == 20 {
				fmt.Fprintf(w, "  ... %d more\n", len(a.Failures)-20)
				break
			}
			fmt.Fprintf(w, "  line %d, record %d: %s\n", f.Line, f.ID, f.Reason)
		}
	}
}
