// Package httpapi is the licensing HTTP API: a net/http mux over the
// application service, speaking JSON and application/problem+json. It runs
// behind API Gateway (through algnhsa) and, unchanged, on the local server.
package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
)

// MaxBody is the largest request body accepted (a full playback batch fits).
const MaxBody = 256 << 10

// Signer signs licence tokens and publishes its keys.
type Signer interface {
	Sign(l licensing.LicenceView, member, policyVersion string) (string, error)
	JWKS() []byte
}

// Options tune the handler.
type Options struct {
	// PlanClaim is the JWT claim holding the member's plan ("plan" if empty;
	// "custom:plan" with Cognito).
	PlanClaim string
	// Logger gets one line per request (slog.Default() if nil).
	Logger *slog.Logger
	// Metrics gets CloudWatch Embedded Metric Format lines (none if nil).
	Metrics io.Writer
	// Counters serves the admin counter routes.
	Counters licensing.CounterStore
	// Viewing serves the viewing routes (screens, heartbeats, resume).
	Viewing *viewing.Service
	// Now is the clock of the admin counts ("active today"); time.Now if nil.
	Now func() time.Time
	// Withdrawals keeps the operators' withdrawals (the withdrawal routes;
	// none if nil).
	Withdrawals licensing.WithdrawalStore
	// VerifyLicence checks a licence token the service signed and returns
	// its member and licence id; it serves the licence status route (none
	// if nil).
	VerifyLicence func(token string) (member, licence string, err error)
	// PolicyDocument is the policy document the service decides by, as
	// loaded (the policy route; the shipped one if nil).
	PolicyDocument []byte
}

// AdminScope is the JWT scope the admin routes require.
const AdminScope = "admin"

// StatusScope is the JWT scope of a verifier (a DRM server) that asks
// whether licences still hold.
const StatusScope = "licence-status"

// Routes lists every route the handler serves, as "METHOD /path" with the
// mux's wildcards; the template's routes are checked against it.
var Routes = []string{
	"POST /v1/devices/{device}/licences",
	"GET /v1/devices/{device}/licences",
	"DELETE /v1/devices/{device}/licences",
	"POST /v1/devices/{device}/licences/{licence}/renew",
	"DELETE /v1/devices/{device}/licences/{licence}",
	"POST /v1/devices/{device}/playback",
	"GET /v1/devices/{device}/titles/{title}/eligibility",
	"GET /.well-known/jwks.json",
	"GET /v1/admin/titles/{title}/counts",
	"GET /v1/admin/studios/{studio}/days/{day}/counts",
	"GET /v1/admin/members/{member}/timeline",
	"POST /v1/admin/members/{member}/what-if",
	"POST /v1/devices/{device}/views",
	"POST /v1/devices/{device}/views/{view}/heartbeat",
	"POST /v1/devices/{device}/views/{view}/stop",
	"GET /v1/views",
	"DELETE /v1/views/{view}",
	"GET /v1/titles/{title}/resume",
	"GET /v1/history",
	"GET /v1/recently-watched",
	"GET /v1/admin/titles/{title}/days/{day}/engagement",
	"GET /v1/admin/days/{day}/most-watched",
	"DELETE /v1/history",
	"DELETE /v1/admin/members/{member}/viewing",
	"POST /v1/licence-status",
	"DELETE /v1/admin/members/{member}/licences",
	"POST /v1/admin/titles/{title}/withdrawal",
	"POST /v1/admin/studios/{studio}/withdrawal",
	"GET /v1/admin/titles/{title}/withdrawal",
	"GET /v1/admin/members/{member}/events",
	"GET /v1/admin/members/{member}/history",
	"GET /console",
	"GET /console/{file}",
	"GET /v1/admin/policy",
}

// PublicRoutes are the routes that need no member token: API Gateway serves
// them without the JWT authorizer.
var PublicRoutes = []string{"GET /.well-known/jwks.json", "GET /console", "GET /console/{file}"}

type api struct {
	svc    *licensing.Service
	signer Signer
	opts   Options
}

// New returns the API handler.
func New(svc *licensing.Service, signer Signer, opts Options) http.Handler {
	if opts.PlanClaim == "" {
		opts.PlanClaim = "plan"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	a := &api{svc: svc, signer: signer, opts: opts}
	mux := http.NewServeMux()
	handlers := []http.HandlerFunc{a.acquire, a.sync, a.releaseDevice, a.renew, a.release, a.playback, a.eligibility, a.jwks, a.titleCounts, a.studioDayCounts, a.timeline, a.whatIf,
		a.startView, a.heartbeat, a.stopView, a.screens, a.endView, a.resume,
		a.watchHistory, a.recentlyWatched, a.titleEngagement, a.mostWatched, a.eraseHistory, a.eraseMember, a.licenceStatus, a.closeAccount,
		a.withdrawTitle, a.withdrawStudio, a.withdrawal, a.memberEvents, a.memberHistory, a.console, a.console, a.policy}
	for i, route := range Routes {
		mux.HandleFunc(route, handlers[i])
	}
	return observe(recoverer(problems(mux)), opts.Logger, opts.Metrics)
}

// problems answers requests that match no route (404) or no method of their
// route (405, with Allow) with a problem document instead of plain text.
func problems(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		probe := &statusOnly{header: http.Header{}}
		h.ServeHTTP(probe, r)
		p := Problem{Status: probe.status, Code: "NOT_FOUND", Title: "No such route"}
		if probe.status == http.StatusMethodNotAllowed {
			p.Code, p.Title = "METHOD_NOT_ALLOWED", "This route does not take that method"
			w.Header().Set("Allow", probe.header.Get("Allow"))
		} else {
			p.Status = http.StatusNotFound
		}
		p.Type = "urn:dlicense:problem:" + p.Code
		writeProblem(w, p)
	})
}

// statusOnly keeps the status and headers the mux would have answered with.
type statusOnly struct {
	header http.Header
	status int
}

func (s *statusOnly) Header() http.Header         { return s.header }
func (s *statusOnly) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusOnly) WriteHeader(status int)      { s.status = status }

// recoverer turns a panic into a 500 problem: no input may crash the handler.
func recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				writeError(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// licenceResponse is a granted or renewed licence with its signed token.
type licenceResponse struct {
	Licence  licensing.LicenceView `json:"licence"`
	Token    string                `json:"token,omitempty"`
	Replayed bool                  `json:"replayed,omitempty"`
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
		tok, err := a.signer.Sign(l, member, a.svc.Policy().Version)
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

// caller reads the identity and notes the member for the request's log line.
func (a *api) caller(r *http.Request) (Identity, error) {
	id, err := identity(r, a.opts.PlanClaim)
	if err == nil {
		outcomeOf(r.Context()).setMember(id.Member)
	}
	return id, err
}

func (a *api) acquire(w http.ResponseWriter, r *http.Request) {
	id, err := a.caller(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	var body struct {
		Title string `json:"title_id"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	res, err := a.svc.Execute(r.Context(), licensing.Acquire{Member: id.Member, Plan: id.Plan, Device: r.PathValue("device"), Title: body.Title}, idempotencyKey(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/devices/"+r.PathValue("device")+"/licences/"+res.Licences[0].ID)
	a.withLicence(w, r, http.StatusCreated, id.Member, res)
}

func (a *api) renew(w http.ResponseWriter, r *http.Request) {
	id, err := a.caller(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if err := decodeEmpty(w, r); err != nil {
		writeError(w, r, err)
		return
	}
	res, err := a.svc.Execute(r.Context(), licensing.Renew{Member: id.Member, Plan: id.Plan, Device: r.PathValue("device"), Licence: r.PathValue("licence")}, idempotencyKey(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	a.withLicence(w, r, http.StatusOK, id.Member, res)
}

func (a *api) release(w http.ResponseWriter, r *http.Request) {
	id, err := a.caller(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	res, err := a.svc.Execute(r.Context(), licensing.Release{Member: id.Member, Device: r.PathValue("device"), Licence: r.PathValue("licence"), Reason: licensing.ReasonDeleted}, idempotencyKey(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	a.withLicence(w, r, http.StatusOK, id.Member, res)
}

func (a *api) releaseDevice(w http.ResponseWriter, r *http.Request) {
	id, err := a.caller(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	res, err := a.svc.Execute(r.Context(), licensing.ReleaseDevice{Member: id.Member, Device: r.PathValue("device"), Reason: licensing.ReasonDeviceRemoved}, idempotencyKey(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	if res.Licences == nil {
		res.Licences = []licensing.LicenceView{}
	}
	markReplayed(w, res.Replayed)
	writeJSON(w, http.StatusOK, map[string]any{"released": res.Licences, "replayed": res.Replayed})
}

func (a *api) sync(w http.ResponseWriter, r *http.Request) {
	id, err := a.caller(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	var held []string
	if h := r.URL.Query().Get("held"); h != "" {
		held = strings.Split(h, ",")
		if len(held) > 1000 {
			writeError(w, r, &kernel.Error{Kind: kernel.KindInvalid, Code: kernel.CodeInvalidInput, Message: "at most 1000 held licence ids", Field: "held"})
			return
		}
		for _, l := range held {
			if !kernel.ValidID(l) {
				writeError(w, r, &kernel.Error{Kind: kernel.KindInvalid, Code: kernel.CodeInvalidInput, Message: "held must list licence ids", Field: "held"})
				return
			}
		}
	}
	v, err := a.svc.Sync(r.Context(), id.Member, id.Plan, r.PathValue("device"), held)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *api) playback(w http.ResponseWriter, r *http.Request) {
	id, err := a.caller(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	var body struct {
		Events []licensing.PlaybackInput `json:"events"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	res, err := a.svc.Execute(r.Context(), licensing.RecordPlayback{Member: id.Member, Device: r.PathValue("device"), Events: body.Events}, idempotencyKey(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	markReplayed(w, res.Replayed)
	writeJSON(w, http.StatusOK, map[string]any{"results": res.Playback, "replayed": res.Replayed})
}

func (a *api) eligibility(w http.ResponseWriter, r *http.Request) {
	id, err := a.caller(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	err = a.svc.Check(r.Context(), licensing.Acquire{Member: id.Member, Plan: id.Plan, Device: r.PathValue("device"), Title: r.PathValue("title")})
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

// adminScope checks the caller holds the admin scope.
func (a *api) adminScope(w http.ResponseWriter, r *http.Request) bool {
	id, err := a.caller(r)
	if err == nil && !id.HasScope(AdminScope) {
		err = kernel.Errorf(kernel.KindForbidden, "FORBIDDEN", "this route needs the %s scope", AdminScope)
	}
	if err != nil {
		writeError(w, r, err)
		return false
	}
	return true
}

// admin checks the caller holds the admin scope and that counters exist.
func (a *api) admin(w http.ResponseWriter, r *http.Request) bool {
	if !a.adminScope(w, r) {
		return false
	}
	if a.opts.Counters == nil {
		writeError(w, r, kernel.Errorf(kernel.KindUnavailable, "UNAVAILABLE", "counters are not configured"))
		return false
	}
	return true
}

func (a *api) titleCounts(w http.ResponseWriter, r *http.Request) {
	if !a.admin(w, r) {
		return
	}
	title := r.PathValue("title")
	if !kernel.ValidID(title) {
		writeError(w, r, &kernel.Error{Kind: kernel.KindInvalid, Code: kernel.CodeInvalidInput, Message: "invalid title id", Field: "title"})
		return
	}
	c, err := a.opts.Counters.Counts(r.Context(), licensing.TitleScope(title))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"title_id": title, "granted": c.Granted(), "active": c.ActiveOn(a.opts.Now())})
}

func (a *api) studioDayCounts(w http.ResponseWriter, r *http.Request) {
	if !a.admin(w, r) {
		return
	}
	studio := r.PathValue("studio")
	day, err := time.Parse(time.DateOnly, r.PathValue("day"))
	if !kernel.ValidID(studio) || err != nil {
		writeError(w, r, &kernel.Error{Kind: kernel.KindInvalid, Code: kernel.CodeInvalidInput, Message: "want a studio id and a day as YYYY-MM-DD", Field: "day"})
		return
	}
	c, err := a.opts.Counters.Counts(r.Context(), licensing.StudioDayScope(studio, day))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"studio_id": studio, "day": day.Format(time.DateOnly), "granted": c.Granted(), "still_active": c.ActiveOn(a.opts.Now())})
}

// history reads the member named in the path, for the admin routes.
func (a *api) history(w http.ResponseWriter, r *http.Request) (string, []licensing.Event, bool) {
	if !a.adminScope(w, r) {
		return "", nil, false
	}
	member := r.PathValue("member")
	events, err := a.svc.History(r.Context(), member)
	if err != nil {
		writeError(w, r, err)
		return "", nil, false
	}
	return member, events, true
}

// timeline answers a member's licences as the service saw them at a time
// (?at=RFC 3339, default now): the state replayed from the log, so any past
// decision can be explained.
func (a *api) timeline(w http.ResponseWriter, r *http.Request) {
	member, events, ok := a.history(w, r)
	if !ok {
		return
	}
	at := a.opts.Now().UTC()
	if v := r.URL.Query().Get("at"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeError(w, r, &kernel.Error{Kind: kernel.KindInvalid, Code: kernel.CodeInvalidInput, Message: "at must be an RFC 3339 time", Field: "at"})
			return
		}
		at = t.UTC()
	}
	st := licensing.StateAt(member, events, at)
	views := []licensing.LicenceView{}
	for _, l := range st.Licences(at) {
		views = append(views, l.View(a.svc.Policy(), at))
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

// whatIf replays a member's history under the policy document in the body
// and lists the past grants and renewals it would have refused, and the
// member's latest refusals it would have granted.
func (a *api) whatIf(w http.ResponseWriter, r *http.Request) {
	member, events, ok := a.history(w, r)
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

func (a *api) jwks(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(a.signer.JWKS())
}

// decode reads a JSON body into v: at most MaxBody bytes, one object, no
// unknown fields. Errors name the field at fault.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return &kernel.Error{Kind: kernel.KindInvalid, Code: CodeUnsupportedMedia, Message: "send application/json"}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if err := dec.Decode(new(json.RawMessage)); err != io.EOF {
		if err == nil {
			return &kernel.Error{Kind: kernel.KindInvalid, Code: CodeMalformedJSON, Message: "the body must hold one JSON object"}
		}
		return bodyError(err)
	}
	return nil
}

// decodeEmpty accepts an empty body or an empty JSON object.
func decodeEmpty(w http.ResponseWriter, r *http.Request) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		return bodyError(err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	r.Body = io.NopCloser(strings.NewReader(string(b)))
	var v struct{}
	return decode(w, r, &v)
}

// Codes of request bodies that cannot be read; the first two have statuses
// of their own (413 and 415), the others are 400.
const (
	CodeBodyTooLarge     = "BODY_TOO_LARGE"
	CodeUnsupportedMedia = "UNSUPPORTED_MEDIA_TYPE"
	CodeMalformedJSON    = "MALFORMED_JSON"
	CodeUnknownField     = "UNKNOWN_FIELD"
)

func bodyError(err error) error {
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return &kernel.Error{Kind: kernel.KindInvalid, Code: CodeBodyTooLarge, Message: fmt.Sprintf("the body is larger than %d bytes", MaxBody)}
	case errors.Is(err, io.EOF):
		return &kernel.Error{Kind: kernel.KindInvalid, Code: CodeMalformedJSON, Message: "the body is empty"}
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return &kernel.Error{Kind: kernel.KindInvalid, Code: CodeMalformedJSON, Message: "the body is not valid JSON"}
	case errors.As(err, &te):
		return &kernel.Error{Kind: kernel.KindInvalid, Code: CodeMalformedJSON, Message: fmt.Sprintf("%s must be %s", te.Field, te.Type), Field: te.Field}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &kernel.Error{Kind: kernel.KindInvalid, Code: CodeUnknownField, Message: "unknown field " + f, Field: f}
	}
	return &kernel.Error{Kind: kernel.KindInvalid, Code: CodeMalformedJSON, Message: "the body could not be read"}
}

// closeAccount releases every licence of a member whose account closed
// (admin): 200 with the licences released, and more: true if some are left
// for another call (a call releases at most 100).
func (a *api) closeAccount(w http.ResponseWriter, r *http.Request) {
	if !a.adminScope(w, r) {
		return
	}
	res, err := a.svc.Execute(r.Context(), licensing.CloseAccount{Member: r.PathValue("member")}, idempotencyKey(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	if res.Licences == nil {
		res.Licences = []licensing.LicenceView{}
	}
	markReplayed(w, res.Replayed)
	writeJSON(w, http.StatusOK, map[string]any{"released": res.Licences, "more": len(res.Licences) == licensing.MaxReleasesPerCommand, "replayed": res.Replayed})
}
