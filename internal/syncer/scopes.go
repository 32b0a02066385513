package syncer

import (
	"slices"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/connection"
)

// Unreadable is a stream that a credential's scopes do not let it read.
type Unreadable struct {
	Stream *connection.Stream
	// Scopes are the scopes that would let it read, any one of them:
	// "<path>.read" first, then "<path>.all" where the resource has one.
	Scopes []string
}

// ReadScopes returns the scopes that let a credential list s, any one of
// them: the read level and, where the resource has several levels, "all"
// (which grants every level). Custom objects are read with
// customObjectRecords scopes.
func ReadScopes(cat *catalog.Catalog, s *connection.Stream) []string {
	r := resourceOf(cat, s)
	out := []string{r.Scope(catalog.LevelRead)}
	if slices.Contains(r.Scopes(), r.Scope(catalog.LevelAll)) {
		out = append(out, r.Scope(catalog.LevelAll))
	}
	return out
}

// SplitByScopes splits streams into those the granted scopes can read and
// those they cannot, each in the order given.
func SplitByScopes(cat *catalog.Catalog, streams []*connection.Stream, granted []string) (readable []*connection.Stream, unreadable []Unreadable) {
	for _, s := range streams {
		need := ReadScopes(cat, s)
		if slices.ContainsFunc(need, func(sc string) bool { return slices.Contains(granted, sc) }) {
			readable = append(readable, s)
			continue
		}
		unreadable = append(unreadable, Unreadable{Stream: s, Scopes: need})
	}
	return readable, unreadable
}

// ScopesToRead returns the least scopes that read every one of streams:
// one read scope per resource, sorted, each once.
func ScopesToRead(cat *catalog.Catalog, streams []*connection.Stream) []string {
	var out []string
	for _, s := range streams {
		out = append(out, resourceOf(cat, s).Scope(catalog.LevelRead))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// resourceOf finds the catalog resource of s, or makes a list-only one.
func resourceOf(cat *catalog.Catalog, s *connection.Stream) *catalog.Resource {
	if cat != nil {
		if r, ok := cat.ByType(s.Type); ok {
			return r
		}
	}
	return &catalog.Resource{Type: s.Type, Path: s.Path, Custom: s.Custom, Ops: catalog.Operations{List: true}}
}
