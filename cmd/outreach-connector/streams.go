package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
)

// streamJSON is one stream as `streams --json` prints it.
type streamJSON struct {
	Name        string       `json:"name"`
	Path        string       `json:"path"`
	Type        string       `json:"type"`
	Replication string       `json:"replication"`
	Cursor      string       `json:"cursor,omitempty"`
	PageSize    int          `json:"page_size"`
	ReadScopes  []string     `json:"read_scopes"`
	Columns     []columnJSON `json:"columns"`
}

type columnJSON struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

func newStreamsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "streams",
		Short: "List the streams sync reads, with their replication, columns and the scopes that read them",
		Long: `Lists the standard streams; an org's custom objects are discovered when a sync runs.
A credential reads a stream with either of the scopes shown (read, or all where it exists).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cat := catalog.Default()
			streams := syncer.Streams(cat)
			if asJSON {
				out := make([]streamJSON, 0, len(streams))
				for _, s := range streams {
					j := streamJSON{Name: s.Name, Path: s.Path, Type: s.Type, Replication: string(s.Replication), Cursor: s.CursorField,
						PageSize: s.PageSize, ReadScopes: syncer.ReadScopes(cat, s)}
					for _, c := range s.Columns {
						j.Columns = append(j.Columns, columnJSON{Name: c.Name, Type: string(c.Type)})
					}
					out = append(out, j)
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "STREAM\tPATH\tREPLICATION\tCURSOR\tCOLUMNS\tPAGE SIZE\tSCOPE")
			for _, s := range streams {
				cursor := s.CursorField
				if cursor == "" {
					cursor = "—"
				}
				fmt.Fprintf(tw, "%s\t/%s\t%s\t%s\t%d\t%d\t%s\n", s.Name, s.Path, s.Replication, cursor, len(s.Columns), s.PageSize,
					strings.Join(syncer.ReadScopes(cat, s), " or "))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the streams as a JSON array (name, path, type, replication, cursor, page_size, read_scopes, columns)")
	return cmd
}
