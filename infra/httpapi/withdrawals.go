package httpapi

import (
	"net/http"
	"slices"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
)

// withdrawalRoutes are the operators' withdrawals of titles from
// downloads: a title's, a studio's every title, and how far one is.
var withdrawalRoutes = []route{
	{"POST /v1/admin/titles/{title}/withdrawal", adminAccess, (*api).withdrawTitle},
	{"POST /v1/admin/studios/{studio}/withdrawal", adminAccess, (*api).withdrawStudio},
	{"GET /v1/admin/titles/{title}/withdrawal", adminAccess, (*api).withdrawal},
}

// withdrawalBody reads {"from": RFC 3339} (optional: now).
func withdrawalBody(w http.ResponseWriter, r *http.Request) (time.Time, error) {
	var body struct {
		From *time.Time `json:"from"`
	}
	if r.ContentLength != 0 {
		if err := decode(w, r, &body); err != nil {
			return time.Time{}, err
		}
	}
	if body.From == nil {
		return time.Time{}, nil
	}
	return *body.From, nil
}

// withdrawTitle records an operator's withdrawal of a title from downloads
// (now, or from a later time): 202 with it. From then on the title is not
// granted, its plays are refused and its licences show ended; make
// withdraw ends every licence held, and a device's next sync its own.
func (a *api) withdrawTitle(w http.ResponseWriter, r *http.Request, _ Identity) {
	if !a.configured(w, r, a.svc.Withdrawals != nil, "withdrawals") {
		return
	}
	from, err := withdrawalBody(w, r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	held, err := a.withdraw(r, r.PathValue("title"), from)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"withdrawal": held})
}

// withdrawStudio withdraws every title of a studio in the catalogue.
func (a *api) withdrawStudio(w http.ResponseWriter, r *http.Request, _ Identity) {
	if !a.configured(w, r, a.svc.Withdrawals != nil, "withdrawals") {
		return
	}
	from, err := withdrawalBody(w, r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	studio := r.PathValue("studio")
	p := a.svc.Policy()
	var titles []string
	for id, t := range p.Titles {
		if t.Studio == studio {
			titles = append(titles, id)
		}
	}
	if _, ok := p.Studios[studio]; !ok || len(titles) == 0 {
		writeError(w, r, &kernel.Error{Kind: kernel.KindNotFound, Code: "STUDIO_NOT_FOUND", Message: "no such studio in the catalogue", Field: "studio"})
		return
	}
	slices.Sort(titles)
	out := []licensing.Withdrawal{}
	for _, t := range titles {
		held, err := a.withdraw(r, t, from)
		if err != nil {
			writeError(w, r, err)
			return
		}
		out = append(out, held)
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"studio_id": studio, "withdrawals": out})
}

// withdraw records one title's withdrawal; one recorded already from the
// same time is answered again, from another time is a conflict.
func (a *api) withdraw(r *http.Request, title string, from time.Time) (licensing.Withdrawal, error) {
	wd, err := licensing.NewWithdrawal(a.svc.Policy(), title, from, a.opts.Now())
	if err != nil {
		return licensing.Withdrawal{}, err
	}
	held, ok, err := a.svc.Withdrawals.RecordWithdrawal(r.Context(), wd)
	if err != nil {
		return licensing.Withdrawal{}, err
	}
	if !ok && !from.IsZero() && !held.From.Equal(wd.From) {
		return licensing.Withdrawal{}, kernel.Errorf(kernel.KindConflict, licensing.CodeWithdrawalExists,
			"title %s was withdrawn already, from %s", title, held.From.Format(time.RFC3339))
	}
	return held, nil
}

// withdrawal answers a title's withdrawal and how far the ending of its
// licences is.
func (a *api) withdrawal(w http.ResponseWriter, r *http.Request, _ Identity) {
	if !a.configured(w, r, a.svc.Withdrawals != nil, "withdrawals") {
		return
	}
	title := r.PathValue("title")
	ws, err := a.svc.Withdrawals.Withdrawals(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	for _, wd := range ws {
		if wd.Title == title {
			writeJSON(w, http.StatusOK, map[string]any{"withdrawal": wd, "schedule": scheduleOf(wd, a.opts.Now())})
			return
		}
	}
	writeError(w, r, &kernel.Error{Kind: kernel.KindNotFound, Code: "WITHDRAWAL_NOT_FOUND", Message: "this title was not withdrawn", Field: "title"})
}

// schedule says when the ending of a withdrawal's licences runs: the
// scheduled run of due withdrawals (every minute in AWS and in make run)
// takes it up at its from, and goes on each minute until done.
type schedule struct {
	// State is "scheduled" (its time has not come), "running" (the runs
	// are going through its holders) or "done".
	State  string    `json:"state"`
	RunsAt time.Time `json:"runs_at"`
	Every  string    `json:"every"`
}

func scheduleOf(wd licensing.Withdrawal, now time.Time) schedule {
	s := schedule{State: "running", RunsAt: wd.From, Every: "1m"}
	switch {
	case wd.Done:
		s.State = "done"
	case now.Before(wd.From):
		s.State = "scheduled"
	}
	return s
}
