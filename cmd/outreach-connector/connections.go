package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/jobs"
	"github.com/outreach-connector/outreach-connector/internal/service"
)

// connApp is what a connections subcommand works with: the connections
// service over the app database, and the job queue on the same database.
type connApp struct {
	log   *slog.Logger
	svc   *service.Service
	queue *jobs.Queue
	close func()
	live  *liveWiring
}

// openConnApp opens the app database (--db, --key-file), its connection
// store, the job queue on the same database, and the service. With work,
// the queue can also run connections on this process (run --wait): it is
// opened with the service's run function, recorded in the store.
func openConnApp(ctx context.Context, store *storeFlags, log *slog.Logger, stdout io.Writer, work bool) (*connApp, error) {
	m, credStore, closeStore, err := store.open(ctx, log.With("component", "credential"), nil)
	if err != nil {
		return nil, err
	}
	conns, err := connectionStoreOf(ctx, credStore, store.keys)
	if err != nil {
		closeStore()
		return nil, err
	}
	app := &connApp{log: log}
	var opts jobs.Options
	opts.Logger = log.With("component", "jobs")
	if opts.TimeScale, err = testTimeScale(); err != nil {
		closeStore()
		return nil, err
	}
	if work {
		// A node like serve's: named by host and process, so that a run it
		// leaves behind when killed is retried at once by the next.
		opts.ID, opts.NodeGone = defaultNodeID(), defaultNodeGone
		// The run function needs the service, which needs the queue: the
		// closure reads app.svc, set below before the queue starts.
		opts.Run = jobs.Recorded(conns, nil, log.With("component", "run"), func(ctx context.Context, run *connection.Run) error {
			return app.svc.Sync(ctx, run)
		})
	}
	q, err := store.openQueue(ctx, opts)
	if err != nil {
		closeStore()
		return nil, err
	}
	svc, err := service.New(service.Options{Store: conns, Queue: q, Credentials: m, Open: openConnectionDestination(stdout),
		Logger: log.With("component", "connections"), Stdout: stdout, SharedBudget: sharedBudget(credStore, log)})
	if err != nil {
		q.Close()
		closeStore()
		return nil, err
	}
	app.svc, app.queue = svc, q
	publicURL, err := checkPublicURLFlag(store.publicURL)
	if err == nil {
		app.live, err = wireWebhooks(store, credStore, conns, svc, publicURL, log.With("component", "webhooks"))
	}
	if err != nil {
		q.Close()
		closeStore()
		return nil, err
	}
	app.close = func() {
		q.Close()
		closeStore()
	}
	return app, nil
}

func newConnectionsCommand(logger func() (*slog.Logger, error), logs *logSink) *cobra.Command {
	var store storeFlags
	cmd := &cobra.Command{
		Use:     "connections",
		Aliases: []string{"connection", "conn"},
		Short:   "Manage connections: credentials synced into a destination on a schedule",
		Long: `A connection is a credential put to use: Outreach synced into a destination (sqlite:, postgres://,
jsonl:) on a schedule, in its own namespace, with a history of its runs. A running serve process runs
connections when due and when asked; run --wait runs one here. Listings take --json (see
docs/connections.md for the fields).`,
	}
	store.register(cmd.PersistentFlags())
	// withApp opens the app for a subcommand; work opens the queue able to
	// run connections here.
	withApp := func(work bool, run func(ctx context.Context, app *connApp, c *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
		return func(c *cobra.Command, args []string) error {
			if !logs.explicit {
				// What a command did is its output; the queue's and the
				// service's info lines (migrations, streams) would be noise.
				logs.level.Set(slog.LevelWarn)
			}
			log, err := logger()
			if err != nil {
				return err
			}
			if err := store.requireExisting(c.Context(), log); err != nil {
				return err // every connection needs a credential added earlier
			}
			app, err := openConnApp(c.Context(), &store, log, c.OutOrStdout(), work)
			if err != nil {
				return err
			}
			defer app.close()
			return refused(run(c.Context(), app, c, args))
		}
	}
	cmd.AddCommand(connAddCommand(withApp), connEditCommand(withApp), connListCommand(withApp), connShowCommand(withApp), connRunCommand(withApp),
		connPauseCommand(withApp, true), connPauseCommand(withApp, false), connResyncCommand(withApp),
		connHistoryCommand(withApp), connCancelCommand(withApp), connDeleteCommand(withApp), connLiveCommand(withApp))
	cmd.PersistentFlags().StringVar(&store.publicURL, "public-url", envOr(PublicURLEnv, ""),
		"the URL serve is reached at (as serve --public-url): live connections get their webhooks at once")
	cmd.AddCommand(connRejectsCommand(withApp))
	return cmd
}

type connAppRun func(work bool, run func(ctx context.Context, app *connApp, c *cobra.Command, args []string) error) func(*cobra.Command, []string) error

func connAddCommand(withApp connAppRun) *cobra.Command {
	var (
		n                                   service.NewConnection
		streams, every, cron, start, notify string
		asJSON, manual                      bool
		dest                                destinationFlags
	)
	cmd := &cobra.Command{
		Use:   "add NAME --credential C (--to URL | --direction destination --from SOURCE --type T --mode M --match A)",
		Short: "Add a connection: a credential synced into a destination, or rows written into Outreach (--direction destination), manually or on a schedule",
		Long: `Adds a source connection: the credential's Outreach synced into the destination --to (sqlite:PATH,
postgres://..., jsonl:DIR), in its own namespace there (a table prefix on SQLite, a schema on
PostgreSQL, a subdirectory for JSON Lines; defaulted from the name). Without --every or --cron it runs
only when asked (connections run NAME).

With --direction destination it adds a destination connection, the scheduled form of load: each run
writes the rows of --from (sqlite:PATH?query=SQL or postgres://...?query=SQL) into Outreach records of
--type, --mode create, update or upsert, matched by --match, mapped by --map, then --then actions; only
what changed is written, rejected rows are kept per run (connections rejects NAME), and a run stopped at
any instant resumes without writing a row twice.`,
		Example: `  outreach-connector connections add acme --credential main --to sqlite:outreach.db --every 15m
  outreach-connector connections add signups --credential main --direction destination --from "sqlite:/data/warehouse.db?query=SELECT email, first_name FROM signups" --type prospect --mode upsert --match emails --map email=emails --map first_name=firstName --every 15m
  outreach-connector connections add eu --credential eu --to postgres://user@db/analytics --cron "0 */6 * * *" --streams prospects,accounts --quota-limit 0.5`,
		Args: exactArgs("NAME"),
	}
	cmd.RunE = withApp(false, func(ctx context.Context, app *connApp, c *cobra.Command, args []string) error {
		f := c.Flags()
		n.Name = args[0]
		if err := dest.apply(f, &n); err != nil {
			return err
		}
		schedule, given, err := scheduleFlags(every, cron, manual)
		if err != nil {
			return errors.New("give one schedule: --every, --cron or --manual")
		}
		n.Schedule = "manual"
		if given {
			n.Schedule = schedule
		}
		if f.Changed("streams") {
			list, err := streamList(streams)
			if err != nil {
				return err
			}
			n.Streams = list
		}
		if start != "" {
			t, err := time.Parse(time.DateOnly, start)
			if err != nil {
				return fmt.Errorf("--start-date %q: use YYYY-MM-DD", start)
			}
			n.StartDate = t
		}
		n.NotifyURL = notify
		conn, err := app.svc.Create(ctx, n)
		if err != nil {
			return err
		}
		st, err := app.svc.Get(ctx, conn.ID)
		if err != nil {
			return err
		}
		out := c.OutOrStdout()
		if asJSON {
			return writeJSON(out, toConnectionJSON(st))
		}
		if conn.Direction == connection.DirectionDestination {
			fmt.Fprintf(out, "Added destination connection %s (%s): the rows of %s into Outreach %s with credential %s, %s.\n", conn.Name, conn.ID,
				connection.RedactedURL(conn.DestinationURL), loadText(conn), dash(st.CredentialName), scheduleText(st))
		} else {
			fmt.Fprintf(out, "Added connection %s (%s): credential %s into %s, namespace %s, %s.\n", conn.Name, conn.ID,
				dash(st.CredentialName), connection.RedactedURL(conn.DestinationURL), conn.Namespace, scheduleText(st))
		}
		if len(st.ScopesMissing) > 0 {
			fmt.Fprintf(out, "Credential %s lacks scopes its streams need: %s. Give it those scopes and authorize it again, or choose other --streams.\n",
				dash(st.CredentialName), strings.Join(st.ScopesMissing, " "))
		}
		fmt.Fprintf(out, "Run it now: outreach-connector connections run %s --wait\n", shellQuote(conn.Name))
		return nil
	})
	f := cmd.Flags()
	f.StringVar(&n.Credential, "credential", "", "the credential (name or id) whose Outreach is synced (required)")
	f.StringVar(&n.DestinationURL, "to", "", "destination: sqlite:PATH, postgres://USER@HOST/DB or jsonl:DIR (required)")
	f.StringVar(&streams, "streams", "", "comma-separated streams (default: every stream the credential's scopes can read)")
	f.StringVar(&every, "every", "", "run on an interval, such as 15m or 1h (at least 1m)")
	f.StringVar(&cron, "cron", "", `run at the times of a five-field cron expression, in UTC, such as "0 */6 * * *"`)
	f.BoolVar(&manual, "manual", false, "run only when asked (the default without --every or --cron)")
	f.StringVar(&start, "start-date", "", "earliest updatedAt a first sync reads (YYYY-MM-DD; default: all history)")
	f.IntVar(&n.PageSize, "page-size", 0, "records per request, 1 to 1000 (default: the engine's)")
	f.Float64Var(&n.QuotaShare, "quota-limit", 1, "share of the Outreach user's hourly rate limit the connection may use, in (0, 1]")
	f.StringVar(&n.Namespace, "namespace", "", "namespace in the destination: lowercase letters, digits and _ (default: from the name)")
	f.StringVar(&notify, "notify-url", "", "http(s) URL that receives a signed POST when a run fails or recovers (default: none, or serve's)")
	f.BoolVar(&n.Paused, "paused", false, "add it paused: no scheduled run until resumed")
	f.BoolVar(&asJSON, "json", false, "print the new connection as JSON")
	dest.register(f)
	cmd.MarkFlagRequired("credential")
	return cmd
}

func connEditCommand(withApp connAppRun) *cobra.Command {
	var (
		name, to, streams, every, cron, notify, cred string
		manual, allStreams, asJSON                   bool
		pageSize                                     int
		quota                                        float64
		dest                                         destinationEditFlags
	)
	cmd := &cobra.Command{
		Use:   "edit NAME [--name N] [--credential C] [--to URL] [--streams a,b | --all-streams] [--every D | --cron E | --manual] ...",
		Short: "Change a connection's name, credential, destination or source and load, streams, schedule, page size, quota share or notify URL",
		Long: `Changes what is given and nothing else; a new schedule takes effect at once (the next run moves to
it). The namespace stays: to change it, add a new connection.

A destination connection's source and load change with --from, --type, --mode, --match, --map,
--then and --mailbox, as connections add takes them: --map and --then replace the whole mapping and
every action, --no-map and --no-then drop them. The load is checked (and the source query prepared)
as by connections add before anything is stored.`,
		Example: `  outreach-connector connections edit acme --every 1h
  outreach-connector connections edit acme --streams prospects,accounts --quota-limit 0.25
  outreach-connector connections edit signups --from "sqlite:/data/warehouse.db?query=SELECT email FROM signups" --map email=emails --no-then`,
		Args: exactArgs("NAME"),
	}
	cmd.RunE = withApp(false, func(ctx context.Context, app *connApp, c *cobra.Command, args []string) error {
		f := c.Flags()
		var ch service.Changes
		if dest.given(f) || f.Changed("to") || f.Changed("streams") || allStreams {
			cur, err := app.svc.Get(ctx, args[0])
			if err != nil {
				return err
			}
			if err := dest.changes(f, cur.Connection, &ch); err != nil {
				return err
			}
		}
		if f.Changed("name") {
			ch.Name = &name
		}
		if f.Changed("credential") {
			ch.Credential = &cred
		}
		if f.Changed("to") {
			ch.DestinationURL = &to
		}
		switch {
		case f.Changed("streams") && allStreams:
			return errors.New("give --streams or --all-streams, not both")
		case allStreams:
			ch.Streams = []string{} // every stream the credential can read
		case f.Changed("streams"):
			list, err := streamList(streams)
			if err != nil {
				return err
			}
			ch.Streams = list
		}
		schedule, given, err := scheduleFlags(every, cron, manual)
		if err != nil {
			return err
		}
		if given {
			ch.Schedule = &schedule
		}
		if f.Changed("page-size") {
			ch.PageSize = &pageSize
		}
		if f.Changed("quota-limit") {
			ch.QuotaShare = &quota
		}
		if f.Changed("notify-url") {
			ch.NotifyURL = &notify
		}
		if ch.Name == nil && ch.Credential == nil && ch.DestinationURL == nil && ch.Streams == nil && ch.Schedule == nil && ch.PageSize == nil &&
			ch.QuotaShare == nil && ch.NotifyURL == nil && ch.Load == nil {
			return errors.New("nothing to change: give --name, --credential, --to, --streams, --all-streams, --every, --cron, --manual, --page-size, " +
				"--quota-limit or --notify-url; for a destination connection --from, --type, --mode, --match, --map, --no-map, --then, --no-then or --mailbox")
		}
		conn, err := app.svc.Update(ctx, args[0], ch)
		if err != nil {
			return err
		}
		st, err := app.svc.Get(ctx, conn.ID)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(c.OutOrStdout(), toConnectionJSON(st))
		}
		if conn.Direction == connection.DirectionDestination {
			fmt.Fprintf(c.OutOrStdout(), "Updated %s: from %s, %s, %s.\n", conn.Name, connection.RedactedURL(conn.DestinationURL), loadText(conn), scheduleText(st))
			return nil
		}
		fmt.Fprintf(c.OutOrStdout(), "Updated %s: into %s, %s.\n", conn.Name, connection.RedactedURL(conn.DestinationURL), scheduleText(st))
		return nil
	})
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "new name")
	f.StringVar(&cred, "credential", "", "another credential (name or id) to sync with")
	f.StringVar(&to, "to", "", "new destination URL (the data already synced stays where it is)")
	f.StringVar(&streams, "streams", "", "the comma-separated streams to sync (all of them)")
	f.BoolVar(&allStreams, "all-streams", false, "sync every stream the credential can read")
	f.StringVar(&every, "every", "", "run on an interval, such as 15m")
	f.StringVar(&cron, "cron", "", "run at the times of a five-field cron expression (UTC)")
	f.BoolVar(&manual, "manual", false, "run only when asked")
	f.IntVar(&pageSize, "page-size", 0, "records per request, 1 to 1000, or 0 for the default")
	f.Float64Var(&quota, "quota-limit", 1, "share of the Outreach user's hourly rate limit, in (0, 1]")
	f.StringVar(&notify, "notify-url", "", "where failures and recoveries are POSTed; empty for the default")
	f.BoolVar(&asJSON, "json", false, "print the connection as JSON")
	dest.register(f)
	return cmd
}

func connListCommand(withApp connAppRun) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{Use: "list", Short: "List connections: state, schedule, last and next run, records, destination", Args: cobra.NoArgs}
	cmd.RunE = withApp(false, func(ctx context.Context, app *connApp, c *cobra.Command, _ []string) error {
		all, err := app.svc.List(ctx)
		if err != nil {
			return err
		}
		out := c.OutOrStdout()
		if asJSON {
			list := make([]connectionJSON, 0, len(all))
			for _, st := range all {
				list = append(list, toConnectionJSON(st))
			}
			return writeJSON(out, map[string]any{"connections": list})
		}
		if len(all) == 0 {
			fmt.Fprintln(out, "No connections. Add one: outreach-connector connections add NAME --credential C --to sqlite:outreach.db --every 15m")
			return nil
		}
		tw := tabwriter.NewWriter(out, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATE\tSCHEDULE\tLAST RUN\tNEXT RUN\tRECORDS\tDESTINATION")
		for _, st := range all {
			records := "—"
			if st.LastRun != nil {
				records = fmt.Sprint(st.LastRun.Totals().Records)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st.Connection.Name, st.State, st.Connection.Schedule, lastRunText(st.LastRun),
				nextRunText(st), records, destinationText(st.Connection))
		}
		return tw.Flush()
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: {\"connections\": [...]}")
	return cmd
}

// destinationText is where a connection's data goes, for a listing: its
// destination URL, or for a destination connection Outreach's records of
// its load's type and the source they come from.
func destinationText(c *connection.Connection) string {
	if c.Direction != connection.DirectionDestination || c.Load == nil {
		return connection.RedactedURL(c.DestinationURL)
	}
	return "Outreach " + c.Load.Type + "s from " + connection.RedactedURL(c.DestinationURL)
}

func connShowCommand(withApp connAppRun) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{Use: "show NAME", Short: "Show a connection: settings, state, streams (cursor, rows, last error), recent runs",
		Args: exactArgs("NAME")}
	cmd.RunE = withApp(false, func(ctx context.Context, app *connApp, c *cobra.Command, args []string) error {
		st, err := app.svc.Get(ctx, args[0])
		if err != nil {
			return err
		}
		streams, streamsErr := app.svc.Streams(ctx, st.Connection.ID)
		runs, err := app.svc.History(ctx, st.Connection.ID, 5)
		if err != nil {
			return err
		}
		out := c.OutOrStdout()
		if asJSON {
			v := connectionDetailJSON{connectionJSON: toConnectionJSON(st), StreamStatus: []streamStatusJSON{}, Runs: []runJSON{}}
			if streamsErr != nil {
				v.StreamStatus, v.StreamStatusError = nil, streamsErr.Error()
			}
			for _, s := range streams {
				v.StreamStatus = append(v.StreamStatus, streamStatusJSON{Stream: s.Stream, Cursor: s.Cursor, Rows: s.Rows, LastError: s.LastError})
			}
			for _, r := range runs {
				v.Runs = append(v.Runs, toRunJSON(r, false))
			}
			return writeJSON(out, v)
		}
		conn := st.Connection
		streamsText := "every stream the credential can read"
		if conn.Streams != nil {
			streamsText = strings.Join(conn.Streams, ", ")
		}
		startText := "all history"
		if !conn.StartDate.IsZero() {
			startText = conn.StartDate.UTC().Format(time.DateOnly)
		}
		pageText := "default"
		if conn.PageSize > 0 {
			pageText = fmt.Sprint(conn.PageSize)
		}
		tw := tabwriter.NewWriter(out, 0, 2, 2, ' ', 0)
		for _, row := range [][2]string{{"Name", conn.Name}, {"ID", conn.ID}, {"State", st.State},
			{"Credential", dash(st.CredentialName)}, {"Direction", string(conn.Direction)},
			{destinationLabel(conn), connection.RedactedURL(conn.DestinationURL)}, {"Namespace", conn.Namespace},
			{streamsLabel(conn), streamsTextOf(conn, streamsText)}, {"Map", mapText(conn.Load)}, {"Mailbox", mailboxText(conn.Load)},
			{"Schedule", conn.Schedule.String()}, {"Live", liveText(conn.Live)}, {"Next run", nextRunText(st)},
			{"Last run", lastRunText(st.LastRun)}, {"Start date", startText}, {"Page size", pageText},
			{"Quota share", fmt.Sprintf("%g of the hourly limit", conn.QuotaShare)}, {"Notify URL", dash(conn.NotifyURL)},
			{"Scopes needed", dash(strings.Join(st.ScopesNeeded, " "))}, {"Scopes missing", dash(strings.Join(st.ScopesMissing, " "))}} {
			if conn.Direction == connection.DirectionDestination && (row[0] == "Live" || row[0] == "Start date" || row[0] == "Page size") {
				continue // a sync's settings: a destination connection has none
			}
			if conn.Direction != connection.DirectionDestination && (row[0] == "Map" || row[0] == "Mailbox") {
				continue // a load's settings
			}
			fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
		}
		tw.Flush()
		fmt.Fprintln(out, "\nStreams:")
		switch {
		case conn.Direction == connection.DirectionDestination:
			fmt.Fprintln(out, "  none: it writes into Outreach (see the runs' counts, and connections rejects NAME)")
		case streamsErr != nil:
			fmt.Fprintf(out, "  could not read the destination: %v\n", streamsErr)
		case len(streams) == 0:
			fmt.Fprintln(out, "  none synced yet")
		default:
			tw = tabwriter.NewWriter(out, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "  STREAM\tCURSOR\tROWS\tLAST ERROR")
			for _, s := range streams {
				fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\n", s.Stream, dash(s.Cursor), s.Rows, dash(oneLine(s.LastError)))
			}
			tw.Flush()
		}
		fmt.Fprintln(out, "\nRecent runs:")
		if len(runs) == 0 {
			fmt.Fprintln(out, "  none yet")
			return nil
		}
		return writeRunsTable(out, runs, "  ")
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: the connection with stream_status and runs")
	return cmd
}

func connRunCommand(withApp connAppRun) *cobra.Command {
	var wait, asJSON bool
	cmd := &cobra.Command{
		Use:   "run NAME [--wait]",
		Short: "Run a connection now: queue a run for serve, or with --wait run it here",
		Long: `Queues a manual run (or reports the one already queued or running). A running serve process works the
queue. With --wait this process works the queue itself until the run ends, prints what it synced per
stream, and exits non-zero when it failed; Ctrl-C interrupts it, keeping every committed page, and
the run resumes on the next run (or in serve).`,
		Args: exactArgs("NAME"),
	}
	// --wait decides how the queue is opened: known once flags are parsed.
	cmd.RunE = func(c *cobra.Command, args []string) error {
		return withApp(wait, func(ctx context.Context, app *connApp, c *cobra.Command, args []string) error {
			st, err := app.svc.Get(ctx, args[0])
			if err != nil {
				return err
			}
			return queueAndMaybeWait(ctx, app, c.OutOrStdout(), st.Connection, wait, asJSON, "Queued a run of %s (job %d).", func(ctx context.Context) (jobs.Job, error) {
				return app.svc.RunNow(ctx, st.Connection.ID)
			})
		})(c, args)
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "run it in this process, wait for it to end, and print what it synced")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: the queued job, or with --wait the finished run")
	return cmd
}

func connResyncCommand(withApp connAppRun) *cobra.Command {
	var streams string
	var wait, asJSON bool
	cmd := &cobra.Command{
		Use:   "resync NAME [--streams a,b]",
		Short: "Forget the cursors of some streams (default all) and queue a run that reads them again",
		Long: `Forgets the committed cursors of the streams named (all of the connection's when --streams is left
out) and queues a run, which reads them again from the start date. Rows already synced stay and are
updated in place. --wait runs it here, as for run.`,
		Args: exactArgs("NAME"),
	}
	cmd.RunE = func(c *cobra.Command, args []string) error {
		return withApp(wait, func(ctx context.Context, app *connApp, c *cobra.Command, args []string) error {
			var list []string
			if c.Flags().Changed("streams") {
				var err error
				if list, err = streamList(streams); err != nil {
					return err
				}
			}
			st, err := app.svc.Get(ctx, args[0])
			if err != nil {
				return err
			}
			what := "Forgot the cursors of every stream of %s; queued a run that reads them again (job %d)."
			if list != nil {
				what = "Forgot the cursors of " + strings.Join(list, ", ") + " of %s; queued a run that reads them again (job %d)."
			}
			return queueAndMaybeWait(ctx, app, c.OutOrStdout(), st.Connection, wait, asJSON, what, func(ctx context.Context) (jobs.Job, error) {
				return app.svc.Resync(ctx, st.Connection.ID, list)
			})
		})(c, args)
	}
	cmd.Flags().StringVar(&streams, "streams", "", "comma-separated streams to read again (default: all)")
	cmd.Flags().BoolVar(&wait, "wait", false, "run it in this process and wait for it to end")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: the queued job, or with --wait the finished run")
	return cmd
}

// queueAndMaybeWait queues a run with enqueue; without wait it reports the
// job (what is the sentence, given the name and the job id), with wait it
// works the queue here until the job ends.
func queueAndMaybeWait(ctx context.Context, app *connApp, out io.Writer, conn *connection.Connection, wait, asJSON bool, what string,
	enqueue func(context.Context) (jobs.Job, error)) error {
	if !wait {
		job, err := enqueue(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(out, toJobJSON(job))
		}
		if job.Duplicate {
			fmt.Fprintf(out, "A run of %s is already %s (job %d); it covers this request.\n", conn.Name, jobStateText(job.State), job.ID)
		} else {
			fmt.Fprintf(out, what, conn.Name, job.ID)
			fmt.Fprintf(out, " A running `outreach-connector serve` runs it; or run it here: outreach-connector connections run %s --wait\n", shellQuote(conn.Name))
		}
		return nil
	}
	return runAndWait(ctx, app, out, conn, asJSON, enqueue)
}

// runAndWait queues a run, works the queue on this process until that job
// ends (or ctx is cancelled: the run is interrupted and goes back to the
// queue), and prints the run's summary.
func runAndWait(ctx context.Context, app *connApp, out io.Writer, conn *connection.Connection, asJSON bool,
	enqueue func(context.Context) (jobs.Job, error)) error {
	// The runs recorded before, to tell this job's runs (one per time
	// slice) from them afterwards.
	before, err := app.svc.History(ctx, conn.ID, 50)
	if err != nil {
		return err
	}
	// Subscribe before the node starts so that no event of the job is missed.
	events, unsubscribe := app.queue.Subscribe()
	defer unsubscribe()
	job, err := enqueue(ctx)
	if err != nil {
		return err
	}
	if !asJSON {
		if job.Duplicate {
			fmt.Fprintf(out, "A run of %s is already %s (job %d); waiting for it.\n", conn.Name, jobStateText(job.State), job.ID)
		} else {
			fmt.Fprintf(out, "Running %s (job %d) %s %s…\n", conn.Name, job.ID, directionWord(conn), connection.RedactedURL(conn.DestinationURL))
		}
	}
	if err := app.queue.Start(ctx); err != nil {
		return err
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		// Stopping interrupts a run still going: River puts it back in
		// the queue, and it resumes from its committed state.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := app.queue.Stop(sctx); err != nil {
			app.log.Warn("could not stop the queue cleanly", "error", err)
		}
	}
	defer stop()
	// A run waiting to be retried has one failed attempt over already:
	// wait for the next attempt, not for that one.
	over := 0
	if job.State == "retryable" {
		over = job.Attempt
	}
	final, err := waitForJob(ctx, app.queue, events, job.ID, over)
	stop()
	rctx := context.WithoutCancel(ctx)
	runs, herr := app.svc.History(rctx, conn.ID, 50)
	if herr != nil {
		return herr
	}
	mine := newRuns(before, runs)
	if err != nil { // ctx done: interrupted
		if asJSON {
			writeJSON(out, toWaitJSON(job, "interrupted", mine))
		} else {
			writeRunSummary(out, conn, mine)
			fmt.Fprintf(out, "Interrupted: %s stopped at its last committed page; its run stays queued and resumes where it stopped (serve, or run --wait again).\n", conn.Name)
		}
		return errInterrupted
	}
	outcome := outcomeOfJob(final, mine)
	if asJSON {
		if err := writeJSON(out, toWaitJSON(final, outcome, mine)); err != nil {
			return err
		}
	} else {
		writeRunSummary(out, conn, mine)
	}
	switch outcome {
	case "succeeded":
		return nil
	case "cancelled":
		return fmt.Errorf("the run of %s was cancelled", conn.Name)
	}
	msg := "the run of " + conn.Name + " failed"
	if len(mine) > 0 && mine[0].Error != "" {
		msg += ": " + mine[0].Error
	}
	if final.State == "retryable" {
		msg += fmt.Sprintf(" (attempt %d; the queue retries it with backoff while serve runs)", final.Attempt)
	}
	return errors.New(msg)
}

// Job states River leaves a job in once its run is over for now.
func jobOver(state string) bool {
	switch state {
	case "completed", "cancelled", "discarded", "retryable":
		return true
	}
	return false
}

// waitForJob waits for job id to end on this node (its events) or on
// another one (its state, looked at every few seconds: a serve process may
// have been running it). An attempt up to over (attempts already failed
// when the wait began) that is waiting to be retried does not end the
// wait. It returns the job as it ended, or ctx's error.
func waitForJob(ctx context.Context, q *jobs.Queue, events <-chan jobs.Event, id int64, over int) (jobs.Job, error) {
	poll := time.NewTicker(3 * time.Second)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return jobs.Job{}, ctx.Err()
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.Job.ID != id {
				continue
			}
			switch ev.Kind {
			case jobs.JobCompleted, jobs.JobCancelled:
				return ev.Job, nil
			case jobs.JobFailed:
				if ev.Job.Attempt > over {
					return ev.Job, nil
				}
			}
			// Snoozed (its time slice ended; it continues at once) or
			// interrupted: keep waiting.
		case <-poll.C:
			j, err := q.Get(ctx, id)
			if err == nil && jobOver(j.State) && (j.State != "retryable" || j.Attempt > over) {
				return j, nil
			}
		}
	}
}

// outcomeOfJob names how a finished job's run ended.
func outcomeOfJob(j jobs.Job, runs []*connection.Run) string {
	switch j.State {
	case "completed":
		return "succeeded"
	case "cancelled":
		if len(runs) > 0 && runs[0].Outcome == connection.Failed {
			return "failed" // a final error (jobs.NoRetry) cancels the job
		}
		return "cancelled"
	}
	return "failed"
}

// newRuns returns the runs of after that before did not have, or had
// still running (a run another node had begun), newest first: a run cut
// into time slices is recorded once per slice.
func newRuns(before, after []*connection.Run) []*connection.Run {
	old := map[string]bool{}
	for _, r := range before {
		old[r.ID] = r.Outcome != connection.Running
	}
	var out []*connection.Run
	for _, r := range after {
		if !old[r.ID] {
			out = append(out, r)
		}
	}
	return out
}

// writeRunSummary prints what runs (one run's slices, newest first) did,
// per stream.
func writeRunSummary(out io.Writer, conn *connection.Connection, runs []*connection.Run) {
	if len(runs) == 0 {
		fmt.Fprintln(out, "No run was recorded.")
		return
	}
	var sum connection.Run
	for i := len(runs) - 1; i >= 0; i-- {
		for _, s := range runs[i].Streams {
			t := sum.Stream(s.Stream)
			t.Records += s.Records
			t.Pages += s.Pages
			t.Requests += s.Requests
			t.Deletions += s.Deletions
			t.Created += s.Created
			t.Updated += s.Updated
			t.Unchanged += s.Unchanged
			t.Rejected += s.Rejected
			t.Error = s.Error
		}
	}
	load := conn.Direction == connection.DirectionDestination
	// A stopped or cancelled run's streams end with the stop's error, which
	// the run's own error says once in words.
	stopped := runs[0].Outcome == connection.Interrupted || runs[0].Outcome == connection.Cancelled
	if len(sum.Streams) > 0 {
		tw := tabwriter.NewWriter(out, 0, 2, 2, ' ', tabwriter.AlignRight)
		if load {
			fmt.Fprintln(tw, "TYPE\tCREATED\tUPDATED\tUNCHANGED\tREJECTED\tREQUESTS\tSTATUS\t")
		} else {
			fmt.Fprintln(tw, "STREAM\tRECORDS\tDELETED\tPAGES\tREQUESTS\tSTATUS\t")
		}
		for _, s := range sum.Streams {
			status := "ok"
			switch {
			case s.Error != "" && stopped:
				status = "stopped"
			case s.Error != "":
				status = "FAILED"
			}
			if load {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t\n", s.Stream, s.Created, s.Updated, s.Unchanged, s.Rejected, s.Requests, status)
			} else {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t\n", s.Stream, s.Records, s.Deletions, s.Pages, s.Requests, status)
			}
		}
		tw.Flush()
	}
	for _, s := range sum.Streams {
		if s.Error != "" && !stopped {
			fmt.Fprintf(out, "%s: %s\n", s.Stream, oneLine(s.Error))
		}
	}
	last := runs[0]
	took := "—"
	if !last.EndedAt.IsZero() {
		took = fmt.Sprintf("%.1f s", last.EndedAt.Sub(runs[len(runs)-1].StartedAt).Seconds())
	}
	t := sum.Totals()
	if !load {
		fmt.Fprintf(out, "%s in %s into %s in %s: %s.\n", counted(t.Records, "record"), counted(len(sum.Streams), "stream"),
			connection.RedactedURL(conn.DestinationURL), took, outcomeText(last.Outcome))
		return
	}
	fmt.Fprintf(out, "%s from %s into Outreach in %s: %s.\n", counted(t.Created+t.Updated+t.Unchanged+t.Rejected, "row"),
		connection.RedactedURL(conn.DestinationURL), took, outcomeText(last.Outcome))
	if t.Rejected > 0 {
		fmt.Fprintf(out, "%s: outreach-connector connections rejects %s\n", counted(t.Rejected, "rejected row"), conn.Name)
	}
}

// directionWord is "into" for a source connection (it writes into its
// destination) and "from" for a destination one (it reads its source).
func directionWord(c *connection.Connection) string {
	if c.Direction == connection.DirectionDestination {
		return "from"
	}
	return "into"
}

func connPauseCommand(withApp connAppRun, pause bool) *cobra.Command {
	use, short := "pause NAME", "Pause a connection: no scheduled run until resumed (a running run finishes)"
	if !pause {
		use, short = "resume NAME", "Resume a paused connection: scheduled again from now"
	}
	cmd := &cobra.Command{Use: use, Short: short, Args: exactArgs("NAME")}
	cmd.RunE = withApp(false, func(ctx context.Context, app *connApp, c *cobra.Command, args []string) error {
		out := c.OutOrStdout()
		if pause {
			if err := app.svc.Pause(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(out, "Paused %s: it runs only when asked until resumed.\n", args[0])
			return nil
		}
		if err := app.svc.Resume(ctx, args[0]); err != nil {
			return err
		}
		st, err := app.svc.Get(ctx, args[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "Resumed %s: %s.\n", st.Connection.Name, scheduleText(st))
		return nil
	})
	return cmd
}

func connHistoryCommand(withApp connAppRun) *cobra.Command {
	var asJSON bool
	var limit int
	cmd := &cobra.Command{Use: "history NAME", Short: "List a connection's runs, newest first", Args: exactArgs("NAME")}
	cmd.RunE = withApp(false, func(ctx context.Context, app *connApp, c *cobra.Command, args []string) error {
		if limit < 1 {
			return fmt.Errorf("--limit %d: give 1 or more", limit)
		}
		runs, err := app.svc.History(ctx, args[0], limit)
		if err != nil {
			return err
		}
		out := c.OutOrStdout()
		if asJSON {
			list := make([]runJSON, 0, len(runs))
			for _, r := range runs {
				list = append(list, toRunJSON(r, true))
			}
			return writeJSON(out, map[string]any{"runs": list})
		}
		if len(runs) == 0 {
			fmt.Fprintf(out, "%s has not run yet. Run it: outreach-connector connections run %s --wait\n", args[0], shellQuote(args[0]))
			return nil
		}
		return writeRunsTable(out, runs, "")
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: {\"runs\": [...]}, with each run's streams and log lines")
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many runs")
	return cmd
}

func connCancelCommand(withApp connAppRun) *cobra.Command {
	cmd := &cobra.Command{Use: "cancel NAME", Short: "Cancel a connection's queued or running run (it is not retried)", Args: exactArgs("NAME")}
	cmd.RunE = withApp(false, func(ctx context.Context, app *connApp, c *cobra.Command, args []string) error {
		if err := app.svc.Cancel(ctx, args[0]); err != nil {
			return err
		}
		fmt.Fprintf(c.OutOrStdout(), "Cancelled the run of %s; what it committed stays, and its next run resumes from there.\n", args[0])
		return nil
	})
	return cmd
}

func connDeleteCommand(withApp connAppRun) *cobra.Command {
	var dropData, yes bool
	cmd := &cobra.Command{
		Use:   "delete NAME [--drop-data] [--yes]",
		Short: "Delete a connection and its history; with --drop-data also its synced data",
		Long: `Unschedules and deletes the connection and its run history. Its synced data stays in the destination
unless --drop-data, which also removes the tables (or files) and sync state of its namespace there.
On a terminal it asks first; elsewhere it needs --yes.`,
		Args: exactArgs("NAME"),
	}
	cmd.RunE = withApp(false, func(ctx context.Context, app *connApp, c *cobra.Command, args []string) error {
		st, err := app.svc.Get(ctx, args[0])
		if err != nil {
			return err
		}
		conn := st.Connection
		dest := connection.RedactedURL(conn.DestinationURL)
		out := c.OutOrStdout()
		if !yes {
			in := c.InOrStdin()
			if !isTerminalInput(in) {
				return fmt.Errorf("deleting %s needs confirmation: add --yes (there is no terminal to ask on)", conn.Name)
			}
			question := fmt.Sprintf("Delete connection %s and its run history? Its data stays in %s (namespace %s).", conn.Name, dest, conn.Namespace)
			if dropData {
				question = fmt.Sprintf("Delete connection %s, its run history, AND its synced data: every table or file and the sync state of namespace %s in %s?",
					conn.Name, conn.Namespace, dest)
			}
			fmt.Fprintf(out, "%s [y/N] ", question)
			answer, _ := bufio.NewReader(in).ReadString('\n')
			if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
				return fmt.Errorf("%s was not deleted", conn.Name)
			}
		}
		if err := app.svc.Delete(ctx, conn.ID, dropData); err != nil {
			return err
		}
		if dropData {
			fmt.Fprintf(out, "Deleted %s, its history, and its data in %s (namespace %s).\n", conn.Name, dest, conn.Namespace)
		} else {
			fmt.Fprintf(out, "Deleted %s and its history; its data stays in %s (namespace %s).\n", conn.Name, dest, conn.Namespace)
		}
		return nil
	})
	cmd.Flags().BoolVar(&dropData, "drop-data", false, "also remove its tables or files and sync state in the destination")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// scheduleFlags reads --every, --cron and --manual into a schedule the
// service takes; given is false when none is set, and more than one is
// an error.
func scheduleFlags(every, cron string, manual bool) (schedule string, given bool, err error) {
	var set []string
	if every != "" {
		set = append(set, "every "+every)
	}
	if cron != "" {
		set = append(set, "cron "+cron)
	}
	if manual {
		set = append(set, "manual")
	}
	switch len(set) {
	case 0:
		return "", false, nil
	case 1:
		return set[0], true, nil
	}
	return "", false, errors.New("give one schedule: --every, --cron or --manual")
}

// refusal is a command the service refused: nothing was changed, and
// the message says what to fix.
type refusal struct{ err error }

func (r refusal) Error() string { return "Refused; nothing was changed. Fix: " + fixText(r.err) }
func (r refusal) Unwrap() error { return r.err }

// refused makes a refusal of the service's refusals (service.Refused);
// other errors stay as they are.
func refused(err error) error {
	var inv *service.InvalidError
	if errors.Is(err, service.ErrNotFound) && !errors.As(err, &inv) {
		return err // it says which name it looked for: nothing to fix but the name
	}
	if err != nil && service.Refused(err) {
		return refusal{err}
	}
	return err
}

// fixText says what to fix: each field problem with the flag that sets
// the field, or the refusal's own message.
func fixText(err error) string {
	var inv *service.InvalidError
	if !errors.As(err, &inv) {
		return err.Error()
	}
	var fixes []string
	for _, p := range inv.Problems {
		fix := p.Message
		if !strings.HasPrefix(p.Message, "--") { // a load's source problem names --from itself
			fix = flagOf(p.Field, inv.Direction) + ": " + p.Message
		}
		if !slices.Contains(fixes, fix) { // checked twice, said once
			fixes = append(fixes, fix)
		}
	}
	return strings.Join(fixes, "; ")
}

// flagOf names the flag (or argument) that sets a connection field of a
// connection of direction d.
func flagOf(field string, d connection.Direction) string {
	switch field {
	case connection.FieldName:
		return "NAME"
	case connection.FieldDestination:
		if d == connection.DirectionDestination {
			return "--from"
		}
		return "--to"
	case connection.FieldSchedule:
		return "--every/--cron"
	case connection.FieldQuotaShare:
		return "--quota-limit"
	case connection.FieldCredential, connection.FieldStreams, connection.FieldStartDate, connection.FieldPageSize,
		connection.FieldNamespace, connection.FieldNotifyURL:
		return "--" + strings.ReplaceAll(field, "_", "-")
	}
	return field
}

// isTerminalInput reports whether r is a terminal.
func isTerminalInput(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// exactArgs is cobra.ExactArgs(1) with a message naming what is missing.
func exactArgs(what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("%s takes one %s (got %s); see --help", c.CommandPath(), what, counted(len(args), "argument"))
		}
		return nil
	}
}

// streamList reads --streams a,b: names trimmed, none empty or repeated.
func streamList(s string) ([]string, error) {
	var out []string
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		for _, seen := range out {
			if seen == name {
				return nil, fmt.Errorf("--streams: %s is listed twice", name)
			}
		}
		out = append(out, name)
	}
	if len(out) == 0 {
		return nil, errors.New("--streams: name at least one stream, or leave the flag out for every readable stream")
	}
	return out, nil
}

// shellQuote quotes a name for a command line shown to the user.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.@/:", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func outcomeText(o connection.Outcome) string {
	if o == connection.Running {
		return "running"
	}
	return string(o)
}

func lastRunText(r *connection.Run) string {
	if r == nil {
		return "—"
	}
	return outcomeText(r.Outcome) + " " + when(r.StartedAt)
}

func nextRunText(st *service.Status) string {
	switch {
	case st.Connection.Paused:
		return "paused"
	case st.Connection.Schedule.IsManual():
		return "manual"
	}
	return when(st.NextDue)
}

// scheduleText says when a connection runs, for a sentence.
func scheduleText(st *service.Status) string {
	c := st.Connection
	switch {
	case c.Schedule.IsManual():
		return "runs when asked (manual)"
	case c.Paused:
		return "paused (" + c.Schedule.String() + ")"
	case st.NextDue.IsZero():
		return c.Schedule.String()
	}
	return c.Schedule.String() + ", next run " + when(st.NextDue)
}

func jobStateText(state string) string {
	switch state {
	case "available", "pending", "scheduled", "retryable":
		return "queued"
	}
	return state
}

func writeRunsTable(out io.Writer, runs []*connection.Run, indent string) error {
	tw := tabwriter.NewWriter(out, 0, 2, 2, ' ', 0)
	fmt.Fprintf(tw, "%sSTARTED\tTRIGGER\tATTEMPT\tOUTCOME\tSECONDS\tRECORDS\tERROR\tDUE\n", indent)
	for _, r := range runs {
		secs := "—"
		if !r.EndedAt.IsZero() {
			secs = fmt.Sprintf("%.1f", r.EndedAt.Sub(r.StartedAt).Seconds())
		}
		records := fmt.Sprint(r.Totals().Records)
		if counts := loadCounts(r); counts != "" {
			records = counts
		}
		due := "—"
		if !r.DueAt.IsZero() {
			due = when(r.DueAt)
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", indent, when(r.StartedAt), r.Trigger, r.Attempt, outcomeText(r.Outcome), secs,
			records, dash(truncate(oneLine(r.Error), 80)), due)
	}
	return tw.Flush()
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// The JSON the connections commands print. Field names are stable (see
// docs/connections.md, "CLI"); times are RFC 3339 in UTC, null when unset.

type connectionJSON struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	State         string   `json:"state"`
	CredentialID  string   `json:"credential_id"`
	Credential    string   `json:"credential"`
	Direction     string   `json:"direction"`
	Destination   string   `json:"destination"`
	Namespace     string   `json:"namespace"`
	Streams       []string `json:"streams"`
	Schedule      string   `json:"schedule"`
	Paused        bool     `json:"paused"`
	Live          bool     `json:"live"`
	NextRunAt     *string  `json:"next_run_at"`
	StartDate     *string  `json:"start_date"`
	PageSize      int      `json:"page_size"`
	QuotaShare    float64  `json:"quota_share"`
	NotifyURL     string   `json:"notify_url"`
	ScopesNeeded  []string `json:"scopes_needed"`
	ScopesMissing []string `json:"scopes_missing"`
	// Load is a destination connection's load; absent for a source one.
	Load      *connection.LoadSpec `json:"load,omitempty"`
	LastRun   *runJSON             `json:"last_run"`
	CreatedAt string               `json:"created_at"`
	UpdatedAt string               `json:"updated_at"`
}

type connectionDetailJSON struct {
	connectionJSON
	StreamStatus      []streamStatusJSON `json:"stream_status"`
	StreamStatusError string             `json:"stream_status_error,omitempty"`
	Runs              []runJSON          `json:"runs"`
}

type streamStatusJSON struct {
	Stream    string `json:"stream"`
	Cursor    string `json:"cursor"`
	Rows      int64  `json:"rows"`
	LastError string `json:"last_error"`
}

type runJSON struct {
	ID        string           `json:"id"`
	Trigger   string           `json:"trigger"`
	Attempt   int              `json:"attempt"`
	StartedAt string           `json:"started_at"`
	EndedAt   *string          `json:"ended_at"`
	Outcome   string           `json:"outcome"`
	Error     string           `json:"error"`
	Records   int64            `json:"records"`
	Streams   []streamStatJSON `json:"streams"`
	Log       []string         `json:"log,omitempty"`
	// DueAt is the due time a scheduled run fulfils; null for others.
	DueAt *string `json:"due_at"`
}

type streamStatJSON struct {
	Stream    string `json:"stream"`
	Records   int64  `json:"records"`
	Pages     int64  `json:"pages"`
	Requests  int64  `json:"requests"`
	Deletions int64  `json:"deletions"`
	Error     string `json:"error"`
	// A destination connection's rows (its stream is the type written).
	Created   *int64 `json:"created,omitempty"`
	Updated   *int64 `json:"updated,omitempty"`
	Unchanged *int64 `json:"unchanged,omitempty"`
	Rejected  *int64 `json:"rejected,omitempty"`
}

type jobJSON struct {
	JobID        int64  `json:"job_id"`
	ConnectionID string `json:"connection_id"`
	Trigger      string `json:"trigger"`
	State        string `json:"state"`
	Attempt      int    `json:"attempt"`
	Duplicate    bool   `json:"duplicate"`
}

type waitJSON struct {
	Job     jobJSON   `json:"job"`
	Outcome string    `json:"outcome"`
	Records int64     `json:"records"`
	Runs    []runJSON `json:"runs"`
}

func jsonTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func toConnectionJSON(st *service.Status) connectionJSON {
	c := st.Connection
	v := connectionJSON{ID: c.ID, Name: c.Name, State: st.State, CredentialID: c.CredentialID, Credential: st.CredentialName,
		Direction: string(c.Direction), Destination: connection.RedactedURL(c.DestinationURL), Namespace: c.Namespace,
		Streams: c.Streams, Schedule: c.Schedule.String(), Paused: c.Paused, Live: c.Live, NextRunAt: jsonTime(st.NextDue), PageSize: c.PageSize,
		QuotaShare: c.QuotaShare, NotifyURL: c.NotifyURL, ScopesNeeded: nonNil(st.ScopesNeeded), ScopesMissing: nonNil(st.ScopesMissing),
		CreatedAt: c.CreatedAt.UTC().Format(time.RFC3339), UpdatedAt: c.UpdatedAt.UTC().Format(time.RFC3339), Load: c.Load}
	if !c.StartDate.IsZero() {
		d := c.StartDate.UTC().Format(time.DateOnly)
		v.StartDate = &d
	}
	if st.LastRun != nil {
		r := toRunJSON(st.LastRun, false)
		v.LastRun = &r
	}
	return v
}

func toRunJSON(r *connection.Run, withLog bool) runJSON {
	v := runJSON{ID: r.ID, Trigger: string(r.Trigger), Attempt: r.Attempt, StartedAt: r.StartedAt.UTC().Format(time.RFC3339),
		EndedAt: jsonTime(r.EndedAt), Outcome: outcomeText(r.Outcome), Error: r.Error, Records: r.Totals().Records,
		Streams: []streamStatJSON{}}
	if !r.DueAt.IsZero() {
		due := r.DueAt.UTC().Format(time.RFC3339Nano)
		v.DueAt = &due
	}
	for _, s := range r.Streams {
		js := streamStatJSON{Stream: s.Stream, Records: s.Records, Pages: s.Pages, Requests: s.Requests,
			Deletions: s.Deletions, Error: s.Error}
		if s.Created+s.Updated+s.Unchanged+s.Rejected > 0 {
			js.Created, js.Updated, js.Unchanged, js.Rejected = &s.Created, &s.Updated, &s.Unchanged, &s.Rejected
		}
		v.Streams = append(v.Streams, js)
	}
	if withLog {
		v.Log = nonNil(r.Log)
	}
	return v
}

func toJobJSON(j jobs.Job) jobJSON {
	return jobJSON{JobID: j.ID, ConnectionID: j.ConnectionID, Trigger: string(j.Trigger), State: j.State, Attempt: j.Attempt, Duplicate: j.Duplicate}
}

func toWaitJSON(j jobs.Job, outcome string, runs []*connection.Run) waitJSON {
	v := waitJSON{Job: toJobJSON(j), Outcome: outcome, Runs: []runJSON{}}
	for _, r := range runs {
		v.Runs = append(v.Runs, toRunJSON(r, true))
		v.Records += r.Totals().Records
	}
	return v
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
