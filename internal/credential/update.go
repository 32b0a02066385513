package credential

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Changes to a credential's configuration; nil fields stay as they are.
type Changes struct {
	Name, Description, ClientSecret *string
	Scopes                          []string // nil: unchanged
}

// Update changes a credential's name, description, client secret or
// scopes, under its refresh lease so no concurrent refresh is lost.
//
//   - A new client secret (after "Regenerate" on Outreach) is sealed and
//     used from the next refresh on; the tokens stay and no new
//     authorization is needed. A credential that needed re-authorization
//     only because Outreach refused the old secret (invalid_client) is
//     connected again, and the next refresh proves the new one.
//   - A new name must be free: ErrNameTaken, with the name, otherwise.
//   - Fewer scopes keep the tokens (they carry more than asked).
//   - More scopes than before (a scope not covered by the old ones, where
//     x.all covers x.read, x.write and x.delete) cannot be used with the
//     current tokens: on a credential that has tokens the status becomes
//     needs_reauthorization, LastError names the added scopes, and
//     reauthorize is true. The tokens are kept, not revoked: re-authorizing
//     replaces them and keeps the credential's id.
//
// Every change is recorded as an event (never the secret). An empty
// Changes changes nothing and records nothing.
func (m *Manager) Update(ctx context.Context, idOrName string, c Changes) (rec *Record, reauthorize bool, err error) {
	found, err := m.lookup(ctx, idOrName)
	if err != nil {
		return nil, false, err
	}
	if err := c.validate(); err != nil {
		return nil, false, err
	}
	err = m.withLease(ctx, found.ID, func(r *Record) error {
		var what []string
		if c.Name != nil && strings.TrimSpace(*c.Name) != r.Name {
			what = append(what, fmt.Sprintf("renamed from %q to %q", r.Name, strings.TrimSpace(*c.Name)))
			r.Name = strings.TrimSpace(*c.Name)
		}
		if c.Description != nil && *c.Description != r.Description {
			what = append(what, "description changed")
			r.Description = *c.Description
		}
		if c.ClientSecret != nil {
			sealed, err := m.keys.Seal([]byte(*c.ClientSecret), aad(r.ID, "client_secret"))
			if err != nil {
				return err
			}
			r.ClientSecret = sealed
			what = append(what, "client secret replaced")
			if r.Status == StatusNeedsReauth && strings.Contains(r.LastError, "invalid_client") && r.Tokens != nil {
				r.Status, r.LastError = StatusConnected, ""
				m.clearBackoff(r.ID)
			}
		}
		if c.Scopes != nil && !slices.Equal(c.Scopes, r.Scopes) {
			added, removed := scopeDiff(r.Scopes, c.Scopes)
			what = append(what, describeScopeChange(added, removed))
			r.Scopes = slices.Clone(c.Scopes)
			if len(added) > 0 && r.Tokens != nil {
				reauthorize = true
				r.Status = StatusNeedsReauth
				r.LastError = "scopes added (" + strings.Join(added, ", ") + "): the current tokens do not carry them; " +
					"authorize the credential again to grant them"
			}
		}
		if len(what) == 0 {
			return nil
		}
		r.UpdatedAt = m.now().UTC()
		if err := m.store.UpdateCredential(ctx, r); err != nil {
			if errors.Is(err, ErrNameTaken) {
				return fmt.Errorf("credential: a credential named %q exists; choose another name: %w", r.Name, ErrNameTaken)
			}
			return err
		}
		m.event(ctx, r.ID, "updated", strings.Join(what, "; "))
		if reauthorize {
			m.event(ctx, r.ID, "needs_reauthorization", r.LastError)
		}
		m.log.Info("credential updated", "credential", r.Name, "changes", strings.Join(what, "; "))
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	rec, err = m.Get(ctx, found.ID)
	return rec, reauthorize, err
}

func (c *Changes) validate() error {
	var problems []string
	if c.Name != nil && (strings.TrimSpace(*c.Name) == "" || len(*c.Name) > 100) {
		problems = append(problems, "name is required (at most 100 characters)")
	}
	if c.ClientSecret != nil && strings.TrimSpace(*c.ClientSecret) == "" {
		problems = append(problems, "the new client secret is empty")
	}
	if c.Scopes != nil && len(c.Scopes) == 0 {
		problems = append(problems, "name at least one scope (leave scopes out to keep them)")
	}
	for _, s := range c.Scopes {
		if !scopeRE.MatchString(s) {
			problems = append(problems, fmt.Sprintf("scope %q is not an Outreach scope such as prospects.read", s))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("credential: %s", strings.Join(problems, "; "))
	}
	return nil
}

// scopeDiff returns the scopes of next not covered by prev (added) and
// those of prev not in next (removed).
func scopeDiff(prev, next []string) (added, removed []string) {
	for _, s := range next {
		if !covers(prev, s) {
			added = append(added, s)
		}
	}
	for _, s := range prev {
		if !slices.Contains(next, s) {
			removed = append(removed, s)
		}
	}
	return added, removed
}

// covers reports whether a token granted scopes carries scope s: itself,
// or x.all for x.read, x.write and x.delete.
func covers(scopes []string, s string) bool {
	if slices.Contains(scopes, s) {
		return true
	}
	res, action, ok := strings.Cut(s, ".")
	return ok && (action == "read" || action == "write" || action == "delete") && slices.Contains(scopes, res+".all")
}

func describeScopeChange(added, removed []string) string {
	var parts []string
	if len(added) > 0 {
		parts = append(parts, "added "+strings.Join(added, " "))
	}
	if len(removed) > 0 {
		parts = append(parts, "removed "+strings.Join(removed, " "))
	}
	if len(parts) == 0 {
		return "scopes reordered"
	}
	return "scopes: " + strings.Join(parts, "; ")
}
