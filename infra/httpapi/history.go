package httpapi

import (
	"net/http"
	"strconv"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/viewing"
)

// queryInt reads an optional whole-number query parameter (0 if absent).
func queryInt(r *http.Request, name string) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 1_000_000 {
		return 0, &kernel.Error{Kind: kernel.KindInvalid, Code: kernel.CodeInvalidInput, Message: name + " must be a whole number", Field: name}
	}
	return n, nil
}

// watchHistory answers a page of the caller's viewing history, newest
// first, with the cursor of the next page.
func (a *api) watchHistory(w http.ResponseWriter, r *http.Request) {
	id, ok := a.viewer(w, r)
	if !ok {
		return
	}
	a.historyPage(w, r, id.Member)
}

// historyPage answers a page of member's viewing history (?limit=, ?cursor=);
// the viewing service checks the member id and the limit's range.
func (a *api) historyPage(w http.ResponseWriter, r *http.Request, member string) {
	limit, err := queryInt(r, "limit")
	if err == nil && r.URL.Query().Has("limit") && limit == 0 {
		err = &kernel.Error{Kind: kernel.KindInvalid, Code: kernel.CodeInvalidInput, Message: "limit must be from 1 to 100", Field: "limit"}
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	page, err := a.opts.Viewing.HistoryPage(r.Context(), member, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// recentlyWatched answers the recently watched row of the caller's profile.
func (a *api) recentlyWatched(w http.ResponseWriter, r *http.Request) {
	id, ok := a.viewer(w, r)
	if !ok {
		return
	}
	profile := r.URL.Query().Get("profile")
	titles, err := a.opts.Viewing.RecentlyWatched(r.Context(), id.Member, profile)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"profile_id": profile, "titles": titles})
}

// adminViewing checks the caller holds the admin scope and that viewing is
// configured.
func (a *api) adminViewing(w http.ResponseWriter, r *http.Request) bool {
	if !a.adminScope(w, r) {
		return false
	}
	if a.opts.Viewing == nil {
		writeError(w, r, kernel.Errorf(kernel.KindUnavailable, "UNAVAILABLE", "viewing is not configured"))
		return false
	}
	return true
}

// titleEngagement answers a title's engagement on a day.
func (a *api) titleEngagement(w http.ResponseWriter, r *http.Request) {
	if !a.adminViewing(w, r) {
		return
	}
	title, day := r.PathValue("title"), r.PathValue("day")
	e, err := a.opts.Viewing.TitleEngagement(r.Context(), title, day)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewing.Ranked{Title: title, Engagement: e})
}

// mostWatched answers a day's titles ranked by time watched.
func (a *api) mostWatched(w http.ResponseWriter, r *http.Request) {
	if !a.adminViewing(w, r) {
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
	ranked, err := a.opts.Viewing.MostWatched(r.Context(), day, limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"day": day, "titles": ranked})
}

// eraseHistory erases the caller's viewing data: 202 while the stream
// function carries it out.
func (a *api) eraseHistory(w http.ResponseWriter, r *http.Request) {
	id, ok := a.viewer(w, r)
	if !ok {
		return
	}
	a.erase(w, r, id.Member)
}

// eraseMember erases a member's viewing data for an operator (a closed
// account).
func (a *api) eraseMember(w http.ResponseWriter, r *http.Request) {
	if !a.adminViewing(w, r) {
		return
	}
	a.erase(w, r, r.PathValue("member"))
}

func (a *api) erase(w http.ResponseWriter, r *http.Request, member string) {
	e, err := a.opts.Viewing.Erase(r.Context(), member)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"erasure": e})
}
