package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/viewing"
)

// viewRoutes are the screens of the member's account: start a view,
// heartbeats, stop, what is being watched, end another screen, and where
// the member left off in a title.
var viewRoutes = []route{
	{"POST /v1/devices/{device}/views", memberAccess, (*api).startView},
	{"POST /v1/devices/{device}/views/{view}/heartbeat", memberAccess, (*api).heartbeat},
	{"POST /v1/devices/{device}/views/{view}/stop", memberAccess, (*api).stopView},
	{"GET /v1/views", memberAccess, (*api).screens},
	{"DELETE /v1/views/{view}", memberAccess, (*api).endView},
	{"GET /v1/titles/{title}/resume", memberAccess, (*api).resume},
}

func seconds(d time.Duration) int64 { return int64(d / time.Second) }

// startView starts a view on a device: 201 with the view, the heartbeat
// interval and where to resume; 403 CONCURRENT_SCREENS_LIMIT with every
// screen in use; 202 degraded, without a view, when the store cannot be
// reached in time.
func (a *api) startView(w http.ResponseWriter, r *http.Request, id Identity) {
	if !a.configured(w, r, a.svc.Viewing != nil, "viewing") {
		return
	}
	var body struct {
		Title   string `json:"title_id"`
		Profile string `json:"profile_id"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	device := r.PathValue("device")
	res, err := a.svc.Viewing.Start(r.Context(), viewing.Start{Member: id.Member, Plan: id.Plan, Device: device, Title: body.Title, Profile: body.Profile}, idempotencyKey(r))
	if degradable(err) {
		// Play on without a view; the start, retried with the same key
		// once the store answers, claims a screen or is refused over the
		// limit, and the player then stops.
		degrade(r, err)
		interval := seconds(a.svc.Viewing.HeartbeatInterval())
		w.Header().Set("Retry-After", strconv.FormatInt(interval, 10))
		writeJSON(w, http.StatusAccepted, map[string]any{
			"degraded": true, "view": nil, "heartbeat_interval_s": interval, "retry_after_s": interval,
			"resume": unknownResume(body.Title, body.Profile),
		})
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	markReplayed(w, res.Replayed)
	w.Header().Set("Location", "/v1/devices/"+device+"/views/"+res.View.ID)
	writeJSON(w, http.StatusCreated, map[string]any{
		"view": res.View.Screen(res.At), "heartbeat_interval_s": seconds(res.Interval),
		"resume": res.Resume, "replayed": res.Replayed,
	})
}

// heartbeat applies a heartbeat: 200, or 409 VIEW_ENDED when the player
// must stop; 202 degraded (not recorded, play on) when the store cannot be
// reached in time.
func (a *api) heartbeat(w http.ResponseWriter, r *http.Request, id Identity) {
	if !a.configured(w, r, a.svc.Viewing != nil, "viewing") {
		return
	}
	var body struct {
		PositionMs *int64        `json:"position_ms"`
		State      viewing.State `json:"state"`
		Seq        int64         `json:"seq"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	if body.PositionMs == nil { // a zero would wipe the resume point on every device
		writeError(w, r, kernel.Invalid("position_ms", "position_ms is required: the position the player is at, in milliseconds"))
		return
	}
	pos := *body.PositionMs
	res, err := a.svc.Viewing.Beat(r.Context(), viewing.Beat{Member: id.Member, Plan: id.Plan, Device: r.PathValue("device"),
		View: r.PathValue("view"), PositionMs: pos, State: body.State, Seq: body.Seq})
	if degradable(err) {
		// Not recorded: play on; the next heartbeat carries the position,
		// and the view takes its screen back with it (viewing.CheckBeat).
		degrade(r, err)
		writeJSON(w, http.StatusAccepted, map[string]any{
			"view_id": r.PathValue("view"), "position_ms": pos, "state": body.State, "seq": body.Seq,
			"heartbeat_interval_s": seconds(a.svc.Viewing.HeartbeatInterval()), "degraded": true, "recorded": false,
		})
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"view_id": res.View, "position_ms": res.PositionMs, "state": res.State, "seq": res.Seq,
		"expires_at": res.Expires, "heartbeat_interval_s": seconds(res.Interval), "repeated": res.Repeated,
	})
}

// stopView ends a view from its own screen with the final position.
func (a *api) stopView(w http.ResponseWriter, r *http.Request, id Identity) {
	if !a.configured(w, r, a.svc.Viewing != nil, "viewing") {
		return
	}
	var body struct {
		PositionMs *int64 `json:"position_ms"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	if body.PositionMs == nil {
		writeError(w, r, kernel.Invalid("position_ms", "position_ms is required: the position the player stopped at, in milliseconds"))
		return
	}
	view := r.PathValue("view")
	ended, err := a.svc.Viewing.Stop(r.Context(), viewing.Stop{Member: id.Member, Device: r.PathValue("device"), View: view, PositionMs: *body.PositionMs})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"view_id": view, "ended": ended})
}

// screens answers what is being watched on the account now; stale when
// the store cannot be read.
func (a *api) screens(w http.ResponseWriter, r *http.Request, id Identity) {
	if !a.configured(w, r, a.svc.Viewing != nil, "viewing") {
		return
	}
	a.readOrStale(w, r, id, func() (any, error) {
		limit, screens, err := a.svc.Viewing.Screens(r.Context(), id.Member, id.Plan)
		return map[string]any{"limit": limit, "in_use": len(screens), "screens": screens}, err
	}, func() any {
		limit, _ := a.svc.Viewing.Limit(id.Plan)
		return map[string]any{"limit": limit, "in_use": 0, "screens": []viewing.Screen{}}
	})
}

// endView ends a screen of the account from any device; its next heartbeat
// is told to stop.
func (a *api) endView(w http.ResponseWriter, r *http.Request, id Identity) {
	if !a.configured(w, r, a.svc.Viewing != nil, "viewing") {
		return
	}
	if err := decodeEmpty(w, r); err != nil {
		writeError(w, r, err)
		return
	}
	view := r.PathValue("view")
	ended, err := a.svc.Viewing.End(r.Context(), viewing.End{Member: id.Member, View: view, Reason: viewing.EndedByMember})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"view_id": view, "ended": ended})
}

// resume answers where the member left off in a title (?profile= for a
// profile of the account), the same from every device; stale when the
// store cannot be read, and without a position ("known": false) when this
// instance never read it.
func (a *api) resume(w http.ResponseWriter, r *http.Request, id Identity) {
	if !a.configured(w, r, a.svc.Viewing != nil, "viewing") {
		return
	}
	profile, title := r.URL.Query().Get("profile"), r.PathValue("title")
	a.readOrStale(w, r, id, func() (any, error) {
		return a.svc.Viewing.Resume(r.Context(), id.Member, profile, title)
	}, func() any { return unknownResume(title, profile) })
}

// unknownResume is a resume point the store could not give: the device
// plays from where it knows it left off.
func unknownResume(title, profile string) map[string]any {
	r := map[string]any{"title_id": title, "position_ms": 0, "resume_from_ms": 0, "completed": false, "watched_ms": 0, "known": false}
	if profile != "" {
		r["profile_id"] = profile
	}
	return r
}
