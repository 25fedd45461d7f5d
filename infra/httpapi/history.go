package httpapi

import (
	"net/http"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/viewing"
)

// historyRoutes are what members watched: the member's own history,
// recently watched row and erasure; and, for operators, a member's history
// and erasure and the titles' engagement.
var historyRoutes = []route{
	{"GET /v1/history", memberAccess, (*api).watchHistory},
	{"GET /v1/recently-watched", memberAccess, (*api).recentlyWatched},
	{"DELETE /v1/recently-watched/{title}", memberAccess, (*api).removeFromRow},
	{"DELETE /v1/history", memberAccess, (*api).eraseHistory},
	{"GET /v1/admin/members/{member}/history", adminAccess, (*api).memberHistory},
	{"GET /v1/admin/members/{member}/recently-watched", adminAccess, (*api).memberRow},
	{"DELETE /v1/admin/members/{member}/viewing", adminAccess, (*api).eraseMember},
	{"GET /v1/admin/titles/{title}/days/{day}/engagement", adminAccess, (*api).titleEngagement},
	{"GET /v1/admin/days/{day}/most-watched", adminAccess, (*api).mostWatched},
}

// watchHistory answers a page of the caller's viewing history, newest
// first, with the cursor of the next page; stale when the store cannot be
// read (readOrStale).
func (a *api) watchHistory(w http.ResponseWriter, r *http.Request, id Identity) {
	if !a.configured(w, r, a.svc.Viewing != nil, "viewing") {
		return
	}
	limit, err := historyLimit(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	a.readOrStale(w, r, id, func() (any, error) {
		return a.svc.Viewing.HistoryPage(r.Context(), id.Member, r.URL.Query().Get("cursor"), limit)
	}, func() any { return viewing.HistoryPage{Entries: []viewing.Watched{}} })
}

// historyLimit is the ?limit= of a history page (0: the default); the
// viewing service checks its range.
func historyLimit(r *http.Request) (int, error) {
	limit, err := queryInt(r, "limit")
	if err == nil && r.URL.Query().Has("limit") && limit == 0 {
		err = kernel.Invalid("limit", "limit must be from 1 to 100")
	}
	return limit, err
}

// historyPage answers a page of member's viewing history (?limit=, ?cursor=);
// the viewing service checks the member id and the limit's range.
func (a *api) historyPage(w http.ResponseWriter, r *http.Request, member string) {
	limit, err := historyLimit(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	page, err := a.svc.Viewing.HistoryPage(r.Context(), member, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// recentlyWatched answers the recently watched row of the caller's
// profile; stale when the store cannot be read.
func (a *api) recentlyWatched(w http.ResponseWriter, r *http.Request, id Identity) {
	if !a.configured(w, r, a.svc.Viewing != nil, "viewing") {
		return
	}
	profile := r.URL.Query().Get("profile")
	a.readOrStale(w, r, id, func() (any, error) {
		titles, err := a.svc.Viewing.RecentlyWatched(r.Context(), id.Member, profile)
		return map[string]any{"profile_id": profile, "titles": titles}, err
	}, func() any { return map[string]any{"profile_id": profile, "titles": []viewing.RowTitle{}} })
}

// removeFromRow removes a title from the caller's recently watched row (a
// profile's with ?profile=); the history keeps its views, and watching it
// again brings it back.
func (a *api) removeFromRow(w http.ResponseWriter, r *http.Request, id Identity) {
	if !a.configured(w, r, a.svc.Viewing != nil, "viewing") {
		return
	}
	if err := decodeEmpty(w, r); err != nil {
		writeError(w, r, err)
		return
	}
	profile, title := r.URL.Query().Get("profile"), r.PathValue("title")
	removed, err := a.svc.Viewing.RemoveFromRow(r.Context(), id.Member, profile, title)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"profile_id": profile, "title_id": title, "removed": removed})
}

// memberRow answers a member's recently watched row (a profile's with
// ?profile=) with the titles the member removed from it, for support.
func (a *api) memberRow(w http.ResponseWriter, r *http.Request, _ Identity) {
	if !a.configured(w, r, a.svc.Viewing != nil, "viewing") {
		return
	}
	profile := r.URL.Query().Get("profile")
	titles, removed, err := a.svc.Viewing.RowOf(r.Context(), r.PathValue("member"), profile)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"profile_id": profile, "titles": titles, "removed": removed})
}

// titleEngagement answers a title's engagement on a day.
func (a *api) titleEngagement(w http.ResponseWriter, r *http.Request, _ Identity) {
	if !a.configured(w, r, a.svc.Viewing != nil, "viewing") {
		return
	}
	title, day := r.PathValue("title"), r.PathValue("day")
	e, err := a.svc.Viewing.TitleEngagement(r.Context(), title, day)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewing.Ranked{Title: title, Engagement: e})
}

// mostWatched answers a day's titles ranked by time watched.
func (a *api) mostWatched(w http.ResponseWriter, r *http.Request, _ Identity) {
	if !a.configured(w, r, a.svc.Viewing != nil, "viewing") {
		return
	}
	limit, err := queryInt(r, "limit")
	if err != nil {
		writeError(w, r, err)
		return
	}
	if !r.URL.Query().Has("limit") {
		limit = 10
	}
	day := r.PathValue("day")
	ranked, err := a.svc.Viewing.MostWatched(r.Context(), day, limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"day": day, "titles": ranked})
}

// eraseHistory erases the caller's viewing data: 202 while the stream
// function carries it out.
func (a *api) eraseHistory(w http.ResponseWriter, r *http.Request, id Identity) {
	if !a.configured(w, r, a.svc.Viewing != nil, "viewing") {
		return
	}
	a.erase(w, r, id.Member)
}

// eraseMember erases a member's viewing data for an operator (a closed
// account).
func (a *api) eraseMember(w http.ResponseWriter, r *http.Request, _ Identity) {
	if !a.configured(w, r, a.svc.Viewing != nil, "viewing") {
		return
	}
	a.erase(w, r, r.PathValue("member"))
}

func (a *api) erase(w http.ResponseWriter, r *http.Request, member string) {
	e, err := a.svc.Viewing.Erase(r.Context(), member)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"erasure": e})
}

// memberHistory answers a page of a member's viewing history for an
// operator (admin scope), as GET /v1/history answers the member.
func (a *api) memberHistory(w http.ResponseWriter, r *http.Request, _ Identity) {
	if !a.configured(w, r, a.svc.Viewing != nil, "viewing") {
		return
	}
	a.historyPage(w, r, r.PathValue("member"))
}
