package httpapi

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/dlicense/dlicense/infra/jobs"
)

// jobRoutes are the fleet-wide jobs (what-if over every member, recount),
// for operators: started on the job engine, and followed.
var jobRoutes = []route{
	{"POST /v1/admin/jobs", adminAccess, (*api).startJob},
	{"GET /v1/admin/jobs/{job}", adminAccess, (*api).job},
}

// The defaults of a job request.
const (
	DefaultJobSegments       = 32
	DefaultJobMaxConcurrency = 100
)

// startJob starts a job: 202 with its id and where to follow it; 400 for an
// unknown kind or a what-if without a valid policy (INVALID_POLICY, as the
// member what-if), 409 JOB_RUNNING while a job of the kind runs.
func (a *api) startJob(w http.ResponseWriter, r *http.Request, _ Identity) {
	if !a.configured(w, r, a.svc.Jobs != nil, "fleet-wide jobs") {
		return
	}
	var body struct {
		Kind           string          `json:"kind"`
		Policy         json.RawMessage `json:"policy"`
		Segments       int             `json:"segments"`
		MaxConcurrency int             `json:"max_concurrency"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	req := jobs.Request{Kind: body.Kind, Policy: body.Policy, Segments: body.Segments, MaxConcurrency: body.MaxConcurrency}
	if string(req.Policy) == "null" {
		req.Policy = nil
	}
	if req.Segments == 0 {
		req.Segments = DefaultJobSegments
	}
	if req.MaxConcurrency == 0 {
		req.MaxConcurrency = DefaultJobMaxConcurrency
	}
	if err := jobs.CheckRequest(req); err != nil {
		writeError(w, r, err)
		return
	}
	var b [10]byte
	rand.Read(b[:])
	id := req.Kind + "-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
	if err := a.svc.Jobs.Start(r.Context(), id, req); err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/admin/jobs/"+id)
	writeJSON(w, http.StatusAccepted, map[string]any{"job_id": id, "kind": req.Kind, "state": jobs.StateRunning, "segments": req.Segments})
}

// job answers where a job is: its state, the segments done of its total,
// the members processed and errors so far, and its summary once done.
func (a *api) job(w http.ResponseWriter, r *http.Request, _ Identity) {
	if !a.configured(w, r, a.svc.Jobs != nil, "fleet-wide jobs") {
		return
	}
	st, err := a.svc.Jobs.Status(r.Context(), r.PathValue("job"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}
