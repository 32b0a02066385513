package web

import (
	"slices"
	"strings"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
	"github.com/outreach-connector/outreach-connector/internal/credential"
)

// stream is a collection sync can read, with the scopes that allow it.
type stream struct {
	Path  string // "sequenceStates"
	Read  string // "sequenceStates.read"
	All   string // "sequenceStates.all", or "" when the resource has none
	Label string
}

// scopeModel knows, from the catalog, which scopes read which streams.
type scopeModel struct {
	streams []stream
	// syncPreset is the read scope of every stream: least privilege for
	// sync.
	syncPreset []string
	// choices are the scopes offered as checkboxes.
	choices []string
}

func newScopeModel(cat *catalog.Catalog) *scopeModel {
	m := &scopeModel{}
	for _, r := range cat.Resources() {
		if !r.Ops.List || r.Custom {
			continue
		}
		s := stream{Path: r.Path, Read: r.Scope(catalog.LevelRead), Label: r.Path}
		if slices.Contains(r.Scopes(), r.Scope(catalog.LevelAll)) {
			s.All = r.Scope(catalog.LevelAll)
		}
		m.streams = append(m.streams, s)
		m.syncPreset = append(m.syncPreset, s.Read)
	}
	slices.SortFunc(m.streams, func(a, b stream) int { return strings.Compare(a.Path, b.Path) })
	slices.Sort(m.syncPreset)
	m.syncPreset = slices.Compact(m.syncPreset)
	// Offered: every read scope, the defaults, and webhooks.all for
	// webhooks.
	m.choices = append(append(append(m.choices, m.syncPreset...), credential.DefaultScopes()...), "webhooks.all")
	slices.Sort(m.choices)
	m.choices = slices.Compact(m.choices)
	return m
}

// coverage is what a scope set can read.
type coverage struct {
	Readable, Unreadable []string // stream paths
	Total                int
}

// cover reports which streams scopes can read: a stream needs its read
// scope or its all scope (Outreach's levels are not additive: write does
// not grant read).
func (m *scopeModel) cover(scopes []string) coverage {
	c := coverage{Total: len(m.streams)}
	for _, s := range m.streams {
		if slices.Contains(scopes, s.Read) || (s.All != "" && slices.Contains(scopes, s.All)) {
			c.Readable = append(c.Readable, s.Path)
		} else {
			c.Unreadable = append(c.Unreadable, s.Path)
		}
	}
	return c
}

// choicesWith returns the offered scopes plus any in scopes that are not
// offered, so a form shows every scope a credential has.
func (m *scopeModel) choicesWith(scopes []string) []string {
	out := slices.Clone(m.choices)
	for _, s := range scopes {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}
