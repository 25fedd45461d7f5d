package httpapi

import (
	"net/http"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
)

// adminRoutes are the service's figures and settings, for operators: a
// title's and a studio's licence counts, and the policy in force.
var adminRoutes = []route{
	{"GET /v1/admin/titles/{title}/counts", adminAccess, (*api).titleCounts},
	{"GET /v1/admin/studios/{studio}/days/{day}/counts", adminAccess, (*api).studioDayCounts},
	{"GET /v1/admin/policy", adminAccess, (*api).policy},
}

func (a *api) titleCounts(w http.ResponseWriter, r *http.Request, _ Identity) {
	if !a.configured(w, r, a.svc.Counters != nil, "counters") {
		return
	}
	title := r.PathValue("title")
	if !kernel.ValidID(title) {
		writeError(w, r, kernel.Invalid("title", "invalid title id"))
		return
	}
	c, err := a.svc.Counters.Counts(r.Context(), licensing.TitleScope(title))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"title_id": title, "granted": c.Granted(), "active": c.ActiveOn(a.opts.Now())})
}

func (a *api) studioDayCounts(w http.ResponseWriter, r *http.Request, _ Identity) {
	if !a.configured(w, r, a.svc.Counters != nil, "counters") {
		return
	}
	studio := r.PathValue("studio")
	day, err := time.Parse(time.DateOnly, r.PathValue("day"))
	if !kernel.ValidID(studio) || err != nil {
		writeError(w, r, kernel.Invalid("day", "want a studio id and a day as YYYY-MM-DD"))
		return
	}
	c, err := a.svc.Counters.Counts(r.Context(), licensing.StudioDayScope(studio, day))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"studio_id": studio, "day": day.Format(time.DateOnly), "granted": c.Granted(), "still_active": c.ActiveOn(a.opts.Now())})
}

// policy answers the policy document the service decides by, as it was
// loaded (the shipped one or POLICY_FILE; the withdrawals apply on top of
// it): the starting point of a what-if (admin scope).
func (a *api) policy(w http.ResponseWriter, r *http.Request, _ Identity) {
	doc := a.opts.PolicyDocument
	if doc == nil {
		doc = licensing.DefaultPolicyJSON()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(doc)
}
