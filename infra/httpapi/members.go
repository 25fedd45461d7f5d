package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
)

// memberRoutes are a member's licensing log, for operators: the licences
// as of any time, what another policy would have decided, the log a page
// at a time, and the release of every licence of a closed account.
var memberRoutes = []route{
	{"GET /v1/admin/members/{member}/timeline", adminAccess, (*api).timeline},
	{"POST /v1/admin/members/{member}/what-if", adminAccess, (*api).whatIf},
	{"GET /v1/admin/members/{member}/events", adminAccess, (*api).memberEvents},
	{"DELETE /v1/admin/members/{member}/licences", adminAccess, (*api).closeAccount},
}

// memberLog reads the log of the member named in the path.
func (a *api) memberLog(w http.ResponseWriter, r *http.Request) (string, []licensing.Event, bool) {
	member := r.PathValue("member")
	events, err := a.svc.Licensing.Log(r.Context(), member)
	if err != nil {
		writeError(w, r, err)
		return "", nil, false
	}
	return member, events, true
}

// timeline answers a member's licences as the service saw them at a time
// (?at=RFC 3339, default now): the state replayed from the log, so any past
// decision can be explained.
func (a *api) timeline(w http.ResponseWriter, r *http.Request, _ Identity) {
	member, events, ok := a.memberLog(w, r)
	if !ok {
		return
	}
	at := a.opts.Now().UTC()
	if v := r.URL.Query().Get("at"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeError(w, r, kernel.Invalid("at", "at must be an RFC 3339 time"))
			return
		}
		at = t.UTC()
	}
	st := licensing.StateAt(member, events, at)
	views := []licensing.LicenceStatus{}
	for _, l := range st.Licences(at) {
		views = append(views, l.StatusAt(a.svc.Policy(), at))
	}
	refused, err := a.refusals(r, member)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"member": member, "at": at, "version": st.Version, "events": len(events), "licences": views, "refusals": refused})
}

// MaxRefusals is how many of a member's latest refusals the timeline shows
// and what-if decides again.
const MaxRefusals = 50

// refusals are a member's latest refusals (none if they are not kept).
func (a *api) refusals(r *http.Request, member string) ([]licensing.Refusal, error) {
	if a.svc.Refusals == nil {
		return []licensing.Refusal{}, nil
	}
	return a.svc.Refusals.Refusals(r.Context(), member, MaxRefusals)
}

// whatIf replays a member's log under the policy document in the body
// and lists the past grants and renewals it would have refused, and the
// member's latest refusals it would have granted.
func (a *api) whatIf(w http.ResponseWriter, r *http.Request, _ Identity) {
	member, events, ok := a.memberLog(w, r)
	if !ok {
		return
	}
	// The body is a policy document, checked by ParsePolicy (an unknown
	// field is an invalid policy), under the same media type and size
	// rules as every other body.
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeError(w, r, &kernel.Error{Kind: kernel.KindInvalid, Code: CodeUnsupportedMedia, Message: "send application/json"})
		return
	}
	doc, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		writeError(w, r, bodyError(err))
		return
	}
	p, err := licensing.ParsePolicy(bytes.NewReader(doc))
	if err != nil {
		writeError(w, r, &kernel.Error{Kind: kernel.KindInvalid, Code: "INVALID_POLICY", Message: err.Error(), Field: "policy"})
		return
	}
	d := licensing.WhatIf(member, events, p)
	if d == nil {
		d = []licensing.Divergence{}
	}
	refused, err := a.refusals(r, member)
	if err != nil {
		writeError(w, r, err)
		return
	}
	grants := licensing.WouldGrant(member, events, refused, p)
	if grants == nil {
		grants = []licensing.Grant{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"member": member, "policy_version": p.Version, "events": len(events), "divergences": d, "would_grant": grants})
}

// MaxEventsPage is the most events one page of a member's log holds.
const MaxEventsPage = 1000

// LoggedEvent is one event of a member's log as operators read it.
type LoggedEvent struct {
	Version       int64               `json:"version"`
	Type          licensing.EventType `json:"type"`
	At            time.Time           `json:"at"`
	PolicyVersion string              `json:"policy_version,omitempty"`
	Data          licensing.Payload   `json:"data"`
}

// memberEvents answers a page of a member's log, oldest first (?after=
// version, ?limit=1…1000), with the version of the member's snapshot: what
// the support console draws the timeline from (admin scope).
func (a *api) memberEvents(w http.ResponseWriter, r *http.Request, _ Identity) {
	after, err := queryInt(r, "after")
	limit, lerr := queryInt(r, "limit")
	if err == nil {
		err = lerr
	}
	if err == nil && r.URL.Query().Has("limit") && (limit < 1 || limit > MaxEventsPage) {
		err = kernel.Invalid("limit", "limit must be from 1 to 1000")
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	if limit == 0 {
		limit = MaxEventsPage
	}
	member := r.PathValue("member")
	events, err := a.svc.Licensing.Log(r.Context(), member)
	if err != nil {
		writeError(w, r, err)
		return
	}
	head := int64(len(events))
	page := []LoggedEvent{}
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
		page = append(page, LoggedEvent{Version: e.Version, Type: e.Type(), At: e.At, PolicyVersion: e.PolicyVersion, Data: e.Payload})
	}
	snap, err := a.svc.Licensing.SnapshotVersion(r.Context(), member)
	if err != nil {
		snap = 0 // the page stands without it
	}
	writeJSON(w, http.StatusOK, map[string]any{"member_id": member, "version": head, "snapshot_version": snap, "events": page, "next_after": next})
}

// closeAccount releases every licence of a member whose account closed
// (admin): 200 with the licences released, and more: true if some are left
// for another call (a call releases at most 100).
func (a *api) closeAccount(w http.ResponseWriter, r *http.Request, _ Identity) {
	res, err := a.svc.Licensing.Execute(r.Context(), licensing.CloseAccount{Member: r.PathValue("member")}, idempotencyKey(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	if res.Licences == nil {
		res.Licences = []licensing.LicenceStatus{}
	}
	markReplayed(w, res.Replayed)
	writeJSON(w, http.StatusOK, map[string]any{"released": res.Licences, "more": len(res.Licences) == licensing.MaxReleasesPerCommand, "replayed": res.Replayed})
}
