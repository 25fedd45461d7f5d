package httpapi

import (
	"net/http"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
)

// MaxEventsPage is the most events one page of a member's log holds.
const MaxEventsPage = 1000

// EventView is one event of a member's log as operators read it.
type EventView struct {
	Version       int64               `json:"version"`
	Type          licensing.EventType `json:"type"`
	At            time.Time           `json:"at"`
	PolicyVersion string              `json:"policy_version,omitempty"`
	Data          licensing.Payload   `json:"data"`
}

// memberEvents answers a page of a member's log, oldest first (?after=
// version, ?limit=1…1000), with the version of the member's snapshot: what
// the support console draws the timeline from (admin scope).
func (a *api) memberEvents(w http.ResponseWriter, r *http.Request) {
	if !a.adminScope(w, r) {
		return
	}
	after, err := queryInt(r, "after")
	limit, lerr := queryInt(r, "limit")
	if err == nil {
		err = lerr
	}
	if err == nil && r.URL.Query().Has("limit") && (limit < 1 || limit > MaxEventsPage) {
		err = &kernel.Error{Kind: kernel.KindInvalid, Code: kernel.CodeInvalidInput, Message: "limit must be from 1 to 1000", Field: "limit"}
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	if limit == 0 {
		limit = MaxEventsPage
	}
	member := r.PathValue("member")
	events, err := a.svc.History(r.Context(), member)
	if err != nil {
		writeError(w, r, err)
		return
	}
	head := int64(len(events))
	page := []EventView{}
	var next *int64
	for _, e := range events {
		if e.Version <= int64(after) {
			continue
		}
		if len(page) == limit {
			v := page[len(page)-1].Version
			next = &v
			break
		}
		page = append(page, EventView{Version: e.Version, Type: e.Type(), At: e.At, PolicyVersion: e.PolicyVersion, Data: e.Payload})
	}
	snap := int64(0)
	if str, err := a.svc.Store.Load(r.Context(), member, licensing.LoadOptions{SnapshotSchema: licensing.StateSchema}); err == nil && str.Snapshot != nil {
		snap = str.Snapshot.Version
	}
	writeJSON(w, http.StatusOK, map[string]any{"member_id": member, "version": head, "snapshot_version": snap, "events": page, "next_after": next})
}

// memberHistory answers a page of a member's viewing history for an
// operator (admin scope), as GET /v1/history answers the member.
func (a *api) memberHistory(w http.ResponseWriter, r *http.Request) {
	if !a.adminScope(w, r) {
		return
	}
	if a.opts.Viewing == nil {
		writeError(w, r, kernel.Errorf(kernel.KindUnavailable, "UNAVAILABLE", "viewing is not configured"))
		return
	}
	a.historyPage(w, r, r.PathValue("member"))
}

// policy answers the policy document the service decides by, as it was
// loaded (the shipped one or POLICY_FILE; the withdrawals apply on top of
// it): the starting point of a what-if (admin scope).
func (a *api) policy(w http.ResponseWriter, r *http.Request) {
	if !a.adminScope(w, r) {
		return
	}
	doc := a.opts.PolicyDocument
	if doc == nil {
		doc = licensing.DefaultPolicyJSON()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(doc)
}
