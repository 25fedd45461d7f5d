package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
)

// licenceRoutes are a device's licences: acquire, sync, renew, release,
// offline playback uploads and eligibility, for the member of the token.
var licenceRoutes = []route{
	{"POST /v1/devices/{device}/licences", memberAccess, (*api).acquire},
	{"GET /v1/devices/{device}/licences", memberAccess, (*api).sync},
	{"DELETE /v1/devices/{device}/licences", memberAccess, (*api).releaseDevice},
	{"POST /v1/devices/{device}/licences/{licence}/renew", memberAccess, (*api).renew},
	{"DELETE /v1/devices/{device}/licences/{licence}", memberAccess, (*api).release},
	{"POST /v1/devices/{device}/playback", memberAccess, (*api).playback},
	{"GET /v1/devices/{device}/titles/{title}/eligibility", memberAccess, (*api).eligibility},
}

// licenceResponse is a granted or renewed licence with its signed token.
type licenceResponse struct {
	Licence  licensing.LicenceStatus `json:"licence"`
	Token    string                  `json:"token,omitempty"`
	Replayed bool                    `json:"replayed,omitempty"`
}

func (a *api) withLicence(w http.ResponseWriter, r *http.Request, status int, member string, res licensing.Result) {
	if len(res.Licences) == 0 {
		writeError(w, r, errors.New("command answered without a licence"))
		return
	}
	l := res.Licences[0]
	out := licenceResponse{Licence: l, Replayed: res.Replayed}
	if status == http.StatusCreated && !res.Replayed {
		outcomeOf(r.Context()).grant()
	}
	if l.Status == licensing.StatusActive {
		tok, err := a.svc.Signer.Sign(l, member, a.svc.Policy().Version)
		if err != nil {
			writeError(w, r, fmt.Errorf("sign licence %s: %w", l.ID, err))
			return
		}
		out.Token = tok
	}
	markReplayed(w, res.Replayed)
	writeJSON(w, status, out)
}

func idempotencyKey(r *http.Request) string { return r.Header.Get("Idempotency-Key") }

// markReplayed says, on every route that takes an Idempotency-Key, that the
// answer is the first one given to the key.
func markReplayed(w http.ResponseWriter, replayed bool) {
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
}

func (a *api) acquire(w http.ResponseWriter, r *http.Request, id Identity) {
	var body struct {
		Title string `json:"title_id"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	res, err := a.svc.Licensing.Execute(r.Context(), licensing.Acquire{Member: id.Member, Plan: id.Plan, Device: r.PathValue("device"), Title: body.Title}, idempotencyKey(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/devices/"+r.PathValue("device")+"/licences/"+res.Licences[0].ID)
	a.withLicence(w, r, http.StatusCreated, id.Member, res)
}

func (a *api) renew(w http.ResponseWriter, r *http.Request, id Identity) {
	if err := decodeEmpty(w, r); err != nil {
		writeError(w, r, err)
		return
	}
	res, err := a.svc.Licensing.Execute(r.Context(), licensing.Renew{Member: id.Member, Plan: id.Plan, Device: r.PathValue("device"), Licence: r.PathValue("licence")}, idempotencyKey(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	a.withLicence(w, r, http.StatusOK, id.Member, res)
}

func (a *api) release(w http.ResponseWriter, r *http.Request, id Identity) {
	res, err := a.svc.Licensing.Execute(r.Context(), licensing.Release{Member: id.Member, Device: r.PathValue("device"), Licence: r.PathValue("licence"), Reason: licensing.ReasonDeleted}, idempotencyKey(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	a.withLicence(w, r, http.StatusOK, id.Member, res)
}

func (a *api) releaseDevice(w http.ResponseWriter, r *http.Request, id Identity) {
	res, err := a.svc.Licensing.Execute(r.Context(), licensing.ReleaseDevice{Member: id.Member, Device: r.PathValue("device"), Reason: licensing.ReasonDeviceRemoved}, idempotencyKey(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	if res.Licences == nil {
		res.Licences = []licensing.LicenceStatus{}
	}
	markReplayed(w, res.Replayed)
	writeJSON(w, http.StatusOK, map[string]any{"released": res.Licences, "replayed": res.Replayed})
}

func (a *api) sync(w http.ResponseWriter, r *http.Request, id Identity) {
	var held []string
	if h := r.URL.Query().Get("held"); h != "" {
		held = strings.Split(h, ",")
		if len(held) > 1000 {
			writeError(w, r, kernel.Invalid("held", "at most 1000 held licence ids"))
			return
		}
		for _, l := range held {
			if !kernel.ValidID(l) {
				writeError(w, r, kernel.Invalid("held", "held must list licence ids"))
				return
			}
		}
	}
	v, err := a.svc.Licensing.Sync(r.Context(), id.Member, id.Plan, r.PathValue("device"), held)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *api) playback(w http.ResponseWriter, r *http.Request, id Identity) {
	var body struct {
		Events []licensing.PlaybackInput `json:"events"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	res, err := a.svc.Licensing.Execute(r.Context(), licensing.RecordPlayback{Member: id.Member, Device: r.PathValue("device"), Events: body.Events}, idempotencyKey(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	markReplayed(w, res.Replayed)
	writeJSON(w, http.StatusOK, map[string]any{"results": res.Playback, "replayed": res.Replayed})
}

func (a *api) eligibility(w http.ResponseWriter, r *http.Request, id Identity) {
	err := a.svc.Licensing.Check(r.Context(), licensing.Acquire{Member: id.Member, Plan: id.Plan, Device: r.PathValue("device"), Title: r.PathValue("title")})
	var d *licensing.Denial
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]any{"eligible": true, "rules": []licensing.RuleFailure{}})
	case errors.As(err, &d):
		writeJSON(w, http.StatusOK, map[string]any{"eligible": false, "rules": d.Rules})
	default:
		writeError(w, r, err)
	}
}
