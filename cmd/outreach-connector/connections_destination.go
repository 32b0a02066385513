package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/load"
	"github.com/outreach-connector/outreach-connector/internal/service"
)

// destinationFlags are the flags of `connections add` for a destination
// connection: the scheduled form of `load`.
type destinationFlags struct {
	direction, from, typ, mode, match, mailbox string
	maps, then                                 []string
}

func (d *destinationFlags) register(f *pflag.FlagSet) {
	f.StringVar(&d.direction, "direction", "source", "source (Outreach into --to) or destination (the rows of --from written into Outreach)")
	f.StringVar(&d.from, "from", "", "destination connections: the rows, sqlite:PATH?query=SQL or postgres://USER@HOST/DB?query=SQL (no password: use PGPASSWORD or ~/.pgpass)")
	f.StringVar(&d.typ, "type", "", "destination connections: the records to write: prospect, account, ... (as load TYPE)")
	f.StringVar(&d.mode, "mode", "", "destination connections: create, update or upsert")
	f.StringVar(&d.match, "match", "", "destination connections: attribute(s) that identify a record, comma-separated (emails, domain, customId, id, ...)")
	f.StringArrayVar(&d.maps, "map", nil, "destination connections: COLUMN=ATTRIBUTE (as load --map); repeat for each column")
	f.StringArrayVar(&d.then, "then", nil, "destination connections: after the rows, add-to-sequence:SEQUENCE (needs --mailbox), assign-owner:EMAIL or add-tags:a,b")
	f.StringVar(&d.mailbox, "mailbox", "", "destination connections: the mailbox (id or email) add-to-sequence enrols with")
}

// apply fills n from the flags; it checks that each flag fits the
// direction.
func (d *destinationFlags) apply(f *pflag.FlagSet, n *service.NewConnection) error {
	own := []string{"from", "type", "mode", "match", "map", "then", "mailbox"}
	switch strings.ToLower(d.direction) {
	case "source", "":
		n.Direction = connection.DirectionSource
		for _, name := range own {
			if f.Changed(name) {
				return fmt.Errorf("--%s is for destination connections (--direction destination); a source connection syncs Outreach into --to", name)
			}
		}
		if n.DestinationURL == "" {
			return errors.New("--to: name the destination: sqlite:PATH, postgres://USER@HOST/DB or jsonl:DIR")
		}
		return nil
	case "destination":
	default:
		return fmt.Errorf("--direction %q: use source or destination", d.direction)
	}
	n.Direction = connection.DirectionDestination
	if n.DestinationURL != "" {
		return errors.New("--to is where a source connection writes; a destination connection writes into Outreach and reads --from")
	}
	if f.Changed("streams") {
		return errors.New("--streams is for source connections; a destination connection writes --type")
	}
	if d.from == "" {
		return errors.New("--from: name the rows to load: sqlite:PATH?query=SQL or postgres://USER@HOST/DB?query=SQL")
	}
	n.DestinationURL = absoluteSource(d.from)
	spec := &connection.LoadSpec{Type: d.typ, Mode: strings.ToLower(d.mode), Mailbox: d.mailbox, Then: d.then, Match: matchList(d.match)}
	var err error
	if spec.Map, err = mapFlags(d.maps); err != nil {
		return err
	}
	if err := checkThen(spec); err != nil {
		return err
	}
	n.Load = spec
	return nil
}

// absoluteSource is a --from source with a relative SQLite path made
// absolute: serve runs it later, from its own directory.
func absoluteSource(from string) string {
	if rest, ok := strings.CutPrefix(from, "sqlite:"); ok {
		if i := strings.Index(rest, "?"); i > 0 && !filepath.IsAbs(rest[:i]) {
			if abs, err := filepath.Abs(rest[:i]); err == nil {
				return "sqlite:" + abs + rest[i:]
			}
		}
	}
	return from
}

// matchList reads --match: attributes, comma-separated.
func matchList(match string) []string {
	var out []string
	for _, a := range strings.Split(match, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// mapFlags reads the --map flags, COLUMN=ATTRIBUTE each; nil for none.
func mapFlags(maps []string) (map[string]string, error) {
	var out map[string]string
	for _, kv := range maps {
		col, attr, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(col) == "" {
			return nil, fmt.Errorf("--map %q: write COLUMN=ATTRIBUTE (or COLUMN= to skip the column)", kv)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[strings.TrimSpace(col)] = strings.TrimSpace(attr)
	}
	return out, nil
}

// checkThen checks a load's --then actions with its mailbox.
func checkThen(spec *connection.LoadSpec) error {
	for _, t := range spec.Then {
		if _, err := load.ParseThen(t, spec.Mailbox); err != nil {
			return err
		}
	}
	return nil
}

// destinationEditFlags are the flags of `connections edit` that change a
// destination connection's source and load.
type destinationEditFlags struct {
	from, typ, mode, match, mailbox string
	maps, then                      []string
	noMap, noThen                   bool
}

// loadEditNames are the flags of destinationEditFlags that change the
// load; --from is the other one.
func loadEditNames() []string {
	return []string{"type", "mode", "match", "map", "no-map", "then", "no-then", "mailbox"}
}

func (d *destinationEditFlags) register(f *pflag.FlagSet) {
	f.StringVar(&d.from, "from", "", "destination connections: new rows to load, sqlite:PATH?query=SQL or postgres://USER@HOST/DB?query=SQL")
	f.StringVar(&d.typ, "type", "", "destination connections: the records to write: prospect, account, ...")
	f.StringVar(&d.mode, "mode", "", "destination connections: create, update or upsert")
	f.StringVar(&d.match, "match", "", "destination connections: attribute(s) that identify a record, comma-separated")
	f.StringArrayVar(&d.maps, "map", nil, "destination connections: COLUMN=ATTRIBUTE, repeated; replaces the whole mapping")
	f.BoolVar(&d.noMap, "no-map", false, "destination connections: drop the mapping (columns named as the attributes)")
	f.StringArrayVar(&d.then, "then", nil, "destination connections: the actions after the rows, repeated; replaces them all")
	f.BoolVar(&d.noThen, "no-then", false, "destination connections: drop the actions after the rows")
	f.StringVar(&d.mailbox, "mailbox", "", "destination connections: the mailbox (id or email) add-to-sequence enrols with")
}

// given reports whether any of the flags was given.
func (d *destinationEditFlags) given(f *pflag.FlagSet) bool {
	return f.Changed("from") || slices.ContainsFunc(loadEditNames(), f.Changed)
}

// changes puts into ch what the flags change of connection c's source and
// load; it refuses the flags that do not fit c's direction.
func (d *destinationEditFlags) changes(f *pflag.FlagSet, c *connection.Connection, ch *service.Changes) error {
	if c.Direction != connection.DirectionDestination {
		for _, name := range append([]string{"from"}, loadEditNames()...) {
			if f.Changed(name) {
				return fmt.Errorf("--%s is for destination connections; %s is a source connection (Outreach synced into --to)", name, c.Name)
			}
		}
		return nil
	}
	for _, name := range []string{"to", "streams", "all-streams"} {
		if f.Changed(name) {
			return fmt.Errorf("--%s is for source connections; %s is a destination connection: --from changes the rows it reads, --type what it writes",
				name, c.Name)
		}
	}
	if f.Changed("map") && d.noMap {
		return errors.New("give --map or --no-map, not both")
	}
	if f.Changed("then") && d.noThen {
		return errors.New("give --then or --no-then, not both")
	}
	if f.Changed("from") {
		from := absoluteSource(d.from)
		ch.DestinationURL = &from
	}
	if !slices.ContainsFunc(loadEditNames(), f.Changed) {
		return nil
	}
	spec := connection.LoadSpec{}
	if c.Load != nil {
		spec = *c.Load
		spec.Match, spec.Then, spec.Map = slices.Clone(spec.Match), slices.Clone(spec.Then), maps.Clone(spec.Map)
	}
	if f.Changed("type") {
		spec.Type = d.typ
	}
	if f.Changed("mode") {
		spec.Mode = strings.ToLower(d.mode)
	}
	if f.Changed("match") {
		spec.Match = matchList(d.match)
	}
	if f.Changed("map") {
		m, err := mapFlags(d.maps)
		if err != nil {
			return err
		}
		spec.Map = m
	}
	if d.noMap {
		spec.Map = nil
	}
	if f.Changed("then") {
		spec.Then = d.then
	}
	if d.noThen {
		spec.Then = nil
	}
	if f.Changed("mailbox") {
		spec.Mailbox = d.mailbox
	}
	if err := checkThen(&spec); err != nil {
		return err
	}
	ch.Load = &spec
	return nil
}

// loadText describes a destination connection's load in a line.
func loadText(c *connection.Connection) string {
	if c.Load == nil {
		return ""
	}
	s := fmt.Sprintf("%s (%s by %s)", c.Load.Type, c.Load.Mode, strings.Join(c.Load.Match, ","))
	if len(c.Load.Then) > 0 {
		s += ", then " + strings.Join(c.Load.Then, ", ")
	}
	return s
}

// mapText is a load's --map as connections show prints it: column →
// attribute by column name, "(skipped)" for a column left out; "columns
// by name" without a map.
func mapText(l *connection.LoadSpec) string {
	if l == nil || len(l.Map) == 0 {
		return "columns by name"
	}
	parts := make([]string, 0, len(l.Map))
	for _, col := range slices.Sorted(maps.Keys(l.Map)) {
		to := l.Map[col]
		if to == "" {
			to = "(skipped)"
		}
		parts = append(parts, col+" → "+to)
	}
	return strings.Join(parts, ", ")
}

// mailboxText is the mailbox of a load's add-to-sequence action, a dash when
// none.
func mailboxText(l *connection.LoadSpec) string {
	if l == nil {
		return dash("")
	}
	return dash(l.Mailbox)
}

// loadCounts are a destination run's row counts, "" for a source run.
func loadCounts(r *connection.Run) string {
	t := r.Totals()
	if t.Created+t.Updated+t.Unchanged+t.Rejected == 0 {
		return ""
	}
	return fmt.Sprintf("created %d, updated %d, unchanged %d, rejected %d", t.Created, t.Updated, t.Unchanged, t.Rejected)
}

func connRejectsCommand(withApp connAppRun) *cobra.Command {
	var (
		runID  string
		limit  int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "rejects NAME",
		Short: "Show the rows a destination connection's run rejected, with the column at fault and the reason",
		Long: `Shows the rows a destination connection's newest run (or --run ID, see connections history) did not write
into Outreach: the source line, the column at fault, the reason (Outreach's own, with its error id and JSON
pointer, when Outreach refused the write), and the row's values. --json prints them as JSON.`,
		Example: `  outreach-connector connections rejects signups
  outreach-connector connections rejects signups --run 3f2a... --json`,
		Args: exactArgs("NAME"),
	}
	cmd.RunE = withApp(false, func(ctx context.Context, app *connApp, c *cobra.Command, args []string) error {
		rj, err := app.svc.Rejects(ctx, args[0], runID, limit)
		if err != nil {
			return err
		}
		return writeRejects(c.OutOrStdout(), args[0], rj, asJSON)
	})
	f := cmd.Flags()
	f.StringVar(&runID, "run", "", "the run (default: the newest)")
	f.IntVar(&limit, "limit", 1000, "the most rows to show")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

type rejectJSON struct {
	Line    int            `json:"line"`
	Column  string         `json:"column"`
	Reason  string         `json:"reason"`
	ErrorID string         `json:"error_id,omitempty"`
	Pointer string         `json:"pointer,omitempty"`
	Row     map[string]any `json:"row"`
}

type rejectsJSON struct {
	Run     *runJSON     `json:"run"`
	Rejects []rejectJSON `json:"rejects"`
}

func writeRejects(out io.Writer, name string, rj *service.RunRejects, asJSON bool) error {
	if asJSON {
		v := rejectsJSON{Rejects: []rejectJSON{}}
		if rj.Run != nil {
			r := toRunJSON(rj.Run, false)
			v.Run = &r
		}
		for _, r := range rj.Rejects {
			v.Rejects = append(v.Rejects, rejectJSON{Line: r.Line, Column: r.Column, Reason: r.Reason, ErrorID: r.ErrorID, Pointer: r.Pointer, Row: r.Row})
		}
		return writeJSON(out, v)
	}
	if rj.Run == nil {
		fmt.Fprintf(out, "Connection %s has not run yet.\n", name)
		return nil
	}
	fmt.Fprintf(out, "Run %s (%s, %s): %s.\n", rj.Run.ID, when(rj.Run.StartedAt), outcomeText(rj.Run.Outcome), dash(loadCounts(rj.Run)))
	if len(rj.Rejects) == 0 {
		fmt.Fprintln(out, "No row was rejected.")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "LINE\tCOLUMN\tREASON\tROW")
	for _, r := range rj.Rejects {
		reason := r.Reason
		if r.Pointer != "" {
			reason += " (" + r.ErrorID + " at " + r.Pointer + ")"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.Line, dash(r.Column), truncate(oneLine(reason), 100), truncate(rowText(r.Row), 80))
	}
	return tw.Flush()
}

func rowText(row map[string]any) string {
	var parts []string
	for k, v := range row {
		if v == nil {
			v = "" // a NULL or empty cell
		}
		parts = append(parts, fmt.Sprintf("%s=%v", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// destinationLabel names what DestinationURL is for the connection.
func destinationLabel(c *connection.Connection) string {
	if c.Direction == connection.DirectionDestination {
		return "Source"
	}
	return "Destination"
}

func streamsLabel(c *connection.Connection) string {
	if c.Direction == connection.DirectionDestination {
		return "Load"
	}
	return "Streams"
}

func streamsTextOf(c *connection.Connection, streams string) string {
	if c.Direction == connection.DirectionDestination {
		return loadText(c)
	}
	return streams
}
