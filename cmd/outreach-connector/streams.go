package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
)

func newStreamsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "streams",
		Short: "List the streams sync reads, with their replication and columns",
		Long:  "Lists the standard streams; an org's custom objects are discovered when a sync runs.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "STREAM\tPATH\tREPLICATION\tCURSOR\tCOLUMNS\tPAGE SIZE")
			for _, s := range syncer.Streams(catalog.Default()) {
				cursor := s.CursorField
				if cursor == "" {
					cursor = "—"
				}
				fmt.Fprintf(tw, "%s\t/%s\t%s\t%s\t%d\t%d\n", s.Name, s.Path, s.Replication, cursor, len(s.Columns), s.PageSize)
			}
			return tw.Flush()
		},
	}
}
