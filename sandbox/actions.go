package sandbox

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outreach-connector/outreach-connector/internal/catalog"
)

// memberAction is the effect of POST /<path>/{id}/actions/<name>. It
// changes rec in place or returns a failure. params are the actionParams.
type memberAction struct {
	required []string
	optional []string
	apply    func(s *Sandbox, res *catalog.Resource, rec *record, params map[string]string) *writeFailure
}

func setAttr(res *catalog.Resource, rec *record, name string, v any) {
	if i := res.AttributeIndex(name); i >= 0 {
		rec.attrs[i] = v
	}
}

func attr(res *catalog.Resource, rec *record, name string) any {
	if i := res.AttributeIndex(name); i >= 0 {
		return rec.attrs[i]
	}
	return nil
}

func stateTransition(from []string, to string) func(*Sandbox, *catalog.Resource, *record, map[string]string) *writeFailure {
	return func(s *Sandbox, res *catalog.Resource, rec *record, _ map[string]string) *writeFailure {
		cur, _ := attr(res, rec, "state").(string)
		if len(from) > 0 && !slices.Contains(from, cur) {
			return invalid("/data/attributes/state", "Cannot change a %s that is '%s' to '%s'.", res.Type, cur, to)
		}
		setAttr(res, rec, "state", to)
		setAttr(res, rec, "stateChangedAt", ts(s.clock.Now().Truncate(time.Second)))
		return nil
	}
}

func setFlag(name string, v bool) func(*Sandbox, *catalog.Resource, *record, map[string]string) *writeFailure {
	return func(_ *Sandbox, res *catalog.Resource, rec *record, _ map[string]string) *writeFailure {
		setAttr(res, rec, name, v)
		return nil
	}
}

func noChange(*Sandbox, *catalog.Resource, *record, map[string]string) *writeFailure { return nil }

func dueAtParam(optional bool) func(*Sandbox, *catalog.Resource, *record, map[string]string) *writeFailure {
	return func(s *Sandbox, res *catalog.Resource, rec *record, p map[string]string) *writeFailure {
		due := s.clock.Now().Add(24 * time.Hour)
		if v, ok := p["dueAt"]; ok {
			t, ok := parseTime(v)
			if !ok {
				return &writeFailure{400, apiError{ID: "badRequest", Title: "Bad Request", Detail: "actionParams[dueAt] must be an ISO 8601 date-time."}}
			}
			due = t
		} else if !optional {
			return &writeFailure{400, apiError{ID: "badRequest", Title: "Bad Request", Detail: "actionParams[dueAt] is required."}}
		}
		setAttr(res, rec, "dueAt", ts(due.Truncate(time.Second)))
		return nil
	}
}

var memberActions = map[string]map[string]memberAction{
	"sequenceState": {
		"finish": {apply: stateTransition(nil, "finished")},
		"pause":  {apply: stateTransition([]string{"active", "pending"}, "paused")},
		"resume": {apply: stateTransition([]string{"paused"}, "active")},
	},
	"sequence": {
		"activate":   {apply: setFlag("enabled", true)},
		"deactivate": {apply: setFlag("enabled", false)},
	},
	"sequenceTemplate": {
		"activate":   {apply: setFlag("enabled", true)},
		"deactivate": {apply: setFlag("enabled", false)},
	},
	"task": {
		"markComplete": {optional: []string{"completionAction", "completionNote"}, apply: func(s *Sandbox, res *catalog.Resource, rec *record, p map[string]string) *writeFailure {
			if attr(res, rec, "state") == "complete" {
				return invalid("/data/attributes/state", "The task is already complete.")
			}
			setAttr(res, rec, "state", "complete")
			setAttr(res, rec, "completed", true)
			setAttr(res, rec, "completedAt", ts(s.clock.Now().Truncate(time.Second)))
			if n, ok := p["completionNote"]; ok {
				setAttr(res, rec, "note", n)
			}
			return nil
		}},
		"snooze":     {optional: []string{"dueAt", "markAsUrgent"}, apply: dueAtParam(true)},
		"reschedule": {required: []string{"dueAt"}, apply: dueAtParam(false)},
		"updateNote": {required: []string{"note"}, apply: func(_ *Sandbox, res *catalog.Resource, rec *record, p map[string]string) *writeFailure {
			setAttr(res, rec, "note", p["note"])
			return nil
		}},
		"reassignOwner": {required: []string{"ownerId"}, apply: func(s *Sandbox, res *catalog.Resource, rec *record, p map[string]string) *writeFailure {
			id, err := strconv.ParseInt(p["ownerId"], 10, 64)
			if err != nil || !s.store.exists("user", id) {
				return invalid("/data/relationships/owner", "Could not find 'user' with ID '%s'.", p["ownerId"])
			}
			if i := relIndex(res, "owner"); i >= 0 {
				rec.rels[i] = relRef{typ: "user", id: id}
			}
			return nil
		}},
		"updateOpportunityAssociation": {required: []string{"opportunityAssociation"}, apply: noChange},
		"advance":                      {apply: noChange},
		"deliver":                      {apply: noChange},
		"logMeetInPerson":              {required: []string{"taskDispositionId"}, optional: []string{"taskPurposeId", "completionNote"}, apply: stateTransition(nil, "complete")},
	},
	"mailbox": {
		"testSend": {apply: noChange}, "testSync": {apply: noChange},
		"linkEwsMasterAccount": {apply: noChange}, "unlinkEwsMasterAccount": {apply: noChange},
	},
}

func (s *Sandbox) handleAction(w http.ResponseWriter, r *http.Request, res *catalog.Resource, id int64, name string) {
	act, ok := memberActions[res.Type][name]
	if !ok {
		act = memberAction{apply: noChange}
	}
	params := map[string]string{}
	for k, v := range r.URL.Query() {
		p, ok := strings.CutPrefix(k, "actionParams[")
		if !ok {
			continue
		}
		p = strings.TrimSuffix(p, "]")
		if !slices.Contains(act.required, p) && !slices.Contains(act.optional, p) {
			writeErrors(w, http.StatusBadRequest, apiError{ID: "badRequest", Title: "Bad Request",
				Detail: "actionParams[" + p + "] is not accepted by the " + name + " action."})
			return
		}
		params[p] = v[0]
	}
	for _, p := range act.required {
		if _, ok := params[p]; !ok {
			writeErrors(w, http.StatusBadRequest, apiError{ID: "badRequest", Title: "Bad Request",
				Detail: "actionParams[" + p + "] is required by the " + name + " action."})
			return
		}
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	old, ok := s.store.get(res.Type, id)
	if !ok {
		notFound(w, res.Type, id)
		return
	}
	rec := old.clone()
	if f := act.apply(s, res, rec, params); f != nil {
		writeErrors(w, f.status, f.err)
		return
	}
	s.touch(res, rec)
	s.store.put(res.Type, rec)
	changed := changes(res, old, rec)
	event := "updated"
	switch {
	case res.Type == "task" && (name == "markComplete" || name == "logMeetInPerson"):
		event = "completed"
	case res.Type == "sequenceState" && name == "finish":
		event = "finished"
	}
	s.hooks.dispatch(res, rec, old, event, changed)
	s.stats.updates.Add(1)
	if s.loseAnswer(w) {
		return
	}
	s.writeRecord(w, r, http.StatusOK, res, rec, nil)
}
