package service

import (
	"fmt"
	"slices"
	"strings"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/connection"
	"github.com/outreach-connector/outreach-connector/internal/syncer"
)

// pickStreams finds the streams named in cat: those it has, in the order
// named, and the names it lacks.
func pickStreams(cat *catalog.Catalog, names []string) (picked []*connection.Stream, unknown []string) {
	all := syncer.Streams(cat)
	for _, name := range names {
		if i := slices.IndexFunc(all, func(st *connection.Stream) bool { return st.Name == name }); i >= 0 {
			picked = append(picked, all[i])
		} else {
			unknown = append(unknown, name)
		}
	}
	return picked, unknown
}

// unreadableText says which of streams scopes cannot read and the scope
// each needs ("accounts needs scope accounts.read or accounts.all, ...");
// "" when they can read them all.
func unreadableText(cat *catalog.Catalog, streams []*connection.Stream, scopes []string) string {
	_, unreadable := syncer.SplitByScopes(cat, streams, scopes)
	lines := make([]string, len(unreadable))
	for i, u := range unreadable {
		lines[i] = fmt.Sprintf("%s needs scope %s", u.Stream.Name, strings.Join(u.Scopes, " or "))
	}
	return strings.Join(lines, ", ")
}
