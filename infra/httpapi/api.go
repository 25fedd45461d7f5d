// Package httpapi is the HTTP API of licensing and viewing: a net/http mux
// over the services, speaking JSON and application/problem+json. It runs
// behind API Gateway (through algnhsa) and, unchanged, on the local server.
//
// Each resource registers its routes in its own file, as one table of
// pattern, access and handler (licences.go, views.go, history.go,
// admin.go, withdrawals.go, status.go, public.go); the access a route
// needs is checked here, before its handler runs, and the HTTP status of
// every answer is decided by its code in one place (codes.go).
package httpapi

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/dlicense/dlicense/domain/audit"
	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/jobs"
)

// Licensing is what the API asks of the licensing service.
type Licensing interface {
	Execute(ctx context.Context, cmd licensing.Command, key string) (licensing.Result, error)
	Sync(ctx context.Context, member, plan, device string, held []string) (licensing.Synced, error)
	Status(ctx context.Context, member, licence string) (licensing.LicenceStatus, error)
	Check(ctx context.Context, c licensing.Acquire) error
	Log(ctx context.Context, member string) ([]licensing.Event, error)
	SnapshotVersion(ctx context.Context, member string) (int64, error)
}

// Viewing is what the API asks of the viewing service.
type Viewing interface {
	Start(ctx context.Context, c viewing.Start, key string) (viewing.Started, error)
	Beat(ctx context.Context, b viewing.Beat) (viewing.Beaten, error)
	Stop(ctx context.Context, s viewing.Stop) (viewing.EndReason, error)
	End(ctx context.Context, e viewing.End) (viewing.EndReason, error)
	Screens(ctx context.Context, member, plan string) (limit int, screens []viewing.Screen, err error)
	Limit(plan string) (int, error)
	HeartbeatInterval() time.Duration
	Resume(ctx context.Context, member, profile, title string) (viewing.Answer, error)
	HistoryPage(ctx context.Context, member, cursor string, limit int) (viewing.HistoryPage, error)
	RecentlyWatched(ctx context.Context, member, profile string) ([]viewing.RowTitle, error)
	RemoveFromRow(ctx context.Context, member, profile, titleID string) (bool, error)
	RowOf(ctx context.Context, member, profile string) ([]viewing.RowTitle, []viewing.Removal, error)
	TitleEngagement(ctx context.Context, title, day string) (viewing.Engagement, error)
	MostWatched(ctx context.Context, day string, n int) ([]viewing.Ranked, error)
	Erase(ctx context.Context, member string) (viewing.Erasure, error)
}

// Signer signs licence tokens and publishes its keys.
type Signer interface {
	Sign(l licensing.LicenceStatus, member, policyVersion string) (string, error)
	JWKS() []byte
}

// Services are what the API serves: licensing and the policy in force are
// needed; a part left nil answers its routes 503 UNAVAILABLE.
type Services struct {
	Licensing Licensing
	// Policy is the policy in force (with the operators' withdrawals).
	Policy func() *licensing.Policy
	Signer Signer
	// Viewing serves the viewing routes (screens, heartbeats, resume
	// points, history).
	Viewing Viewing
	// Counters serves the admin counter routes.
	Counters licensing.CounterStore
	// Withdrawals keeps the operators' withdrawals (the withdrawal routes).
	Withdrawals licensing.WithdrawalStore
	// Refusals are the members' refusals the timeline shows and what-if
	// decides again (none if nil).
	Refusals licensing.RefusalStore
	// VerifyLicence checks a licence token the service signed (signature
	// and expiry) and returns its member and the licence as the token
	// states it; it serves the licence status route.
	VerifyLicence func(token string) (member string, claimed licensing.LicenceStatus, err error)
	// Jobs runs the fleet-wide jobs (the job routes; none if nil).
	Jobs jobs.Engine
	// Audit keeps the trail of the operators' calls and the erasures
	// (they are only logged if nil).
	Audit audit.Store
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
	// Now is the clock of the admin routes ("active today", the timeline,
	// withdrawals); time.Now if nil.
	Now func() time.Time
	// PolicyDocument is the policy document the service decides by, as
	// loaded (the policy route; the shipped one if nil).
	PolicyDocument []byte
	// Budget bounds how long a member's or a verifier's request may wait
	// on the stores, AdminBudget an operator's (none if 0): past it, store
	// calls fail as unavailable and the route answers without the store,
	// degraded where it can, 503 STORE_UNAVAILABLE where it cannot.
	Budget      time.Duration
	AdminBudget time.Duration
	// AuditRetention is how long audit records are kept
	// (audit.DefaultRetention if 0).
	AuditRetention time.Duration
	// AdminScope and StatusScope are the scopes that grant the admin and
	// the licence-status routes (AdminScope and StatusScope if empty),
	// compared exactly: the same names the template's routes require at
	// API Gateway.
	AdminScope, StatusScope string
}

// MaxBody is the largest request body accepted (a full playback batch fits).
const MaxBody = 256 << 10

// AdminScope is the JWT scope the admin routes require by default
// (Options.AdminScope; the template's AdminScope parameter): a resource
// server's custom scope as Cognito writes it, compared exactly.
const AdminScope = "dlicense/admin"

// StatusScope is the JWT scope of a verifier (a DRM server) that asks
// whether licences still hold, by default (Options.StatusScope).
const StatusScope = "dlicense/licence-status"

// access is who may call a route.
type access int

const (
	// openAccess: anyone; API Gateway serves the route without its
	// authorizer.
	openAccess access = iota
	// memberAccess: a member's token.
	memberAccess
	// adminAccess: a token with the admin scope.
	adminAccess
	// verifierAccess: a token with the licence-status scope, or the admin
	// scope.
	verifierAccess
)

// scopes are the scopes of which a token needs one (none for public and
// member routes), the admin and the status scope being as named.
func (ac access) scopes(admin, status string) []string {
	switch ac {
	case adminAccess:
		return []string{admin}
	case verifierAccess:
		return []string{status, admin}
	}
	return nil
}

// route is one route: its pattern ("METHOD /path", with the mux's
// wildcards), who may call it, and what serves it.
type route struct {
	pattern string
	access  access
	handle  handler
}

// handler serves a request from the caller id, whose access the route's
// table entry has checked (the zero Identity on a public route): an api
// method, as a method expression.
type handler func(a *api, w http.ResponseWriter, r *http.Request, id Identity)

// routes is every resource's table, in the order they are registered. The
// tables are data, read only from here: a program that links this package
// but serves no API (the stream function) links none of the handlers.
func routes() []route {
	var all []route
	for _, t := range [][]route{licenceRoutes, statusRoutes, viewRoutes, historyRoutes, adminRoutes, memberRoutes, withdrawalRoutes, jobRoutes, auditedRoutes, publicRoutes} {
		all = append(all, t...)
	}
	return all
}

// Routes lists every route the handler serves, as "METHOD /path" with the
// mux's wildcards; the template's routes, the OpenAPI document and the
// local gateway are checked against it.
func Routes() []string {
	var all []string
	for _, rt := range routes() {
		all = append(all, rt.pattern)
	}
	return all
}

// PublicRoutes are the routes that need no token: API Gateway serves them
// without the JWT authorizer.
func PublicRoutes() []string {
	var open []string
	for _, rt := range routes() {
		if rt.access == openAccess {
			open = append(open, rt.pattern)
		}
	}
	return open
}

// RequiredScopes are the scopes of which a token must hold one to call
// route (nil: any member token, or none for a public route), as its table
// says, under the default scope names; ok is false for a pattern the API
// does not serve.
func RequiredScopes(pattern string) (scopes []string, ok bool) {
	for _, rt := range routes() {
		if rt.pattern == pattern {
			return rt.access.scopes(AdminScope, StatusScope), true
		}
	}
	return nil, false
}

type api struct {
	svc  Services
	opts Options
	// last keeps the member reads' last answers, for stale reads.
	last lastAnswers
}

// New returns the API handler.
func New(svc Services, opts Options) http.Handler {
	if opts.PlanClaim == "" {
		opts.PlanClaim = "plan"
	}
	if opts.AdminScope == "" {
		opts.AdminScope = AdminScope
	}
	if opts.AuditRetention == 0 {
		opts.AuditRetention = audit.DefaultRetention
	}
	if opts.StatusScope == "" {
		opts.StatusScope = StatusScope
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	a := &api{svc: svc, opts: opts}
	mux := http.NewServeMux()
	for _, rt := range routes() {
		mux.HandleFunc(rt.pattern, a.guard(rt))
	}
	return observe(recoverer(problems(mux)), opts.Logger, opts.Metrics)
}

// guard checks the caller may call rt, then runs its handler within the
// request's budget: a route that needs a token answers 401 without a
// usable one, 403 FORBIDDEN without a scope it needs.
func (a *api) guard(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var id Identity
		if audited(rt) {
			// Every call of an audited route that names its caller leaves
			// a record, one refused for its scope included.
			sw := &statusWriter{ResponseWriter: w}
			defer func() {
				if id.Member != "" {
					a.keepAudit(r, rt, id, cmp.Or(sw.status, http.StatusOK))
				}
			}()
			w = sw
		}
		if rt.access != openAccess {
			var err error
			if id, err = a.caller(r); err == nil {
				err = allowed(id, rt.access.scopes(a.opts.AdminScope, a.opts.StatusScope))
			}
			if err == nil && rt.access == memberAccess && !kernel.ValidID(id.Plan) {
				// A member's token names the plan its rights come from.
				err = kernel.Errorf(kernel.KindForbidden, "FORBIDDEN", "the token carries no usable %s claim: a member's token names the member's plan", a.opts.PlanClaim)
			}
			if err != nil {
				writeError(w, r, err)
				return
			}
		}
		budget := a.opts.Budget
		if rt.access == adminAccess {
			budget = a.opts.AdminBudget
		}
		if budget > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), budget)
			defer cancel()
			r = r.WithContext(ctx)
		}
		rt.handle(a, w, r, id)
	}
}

// configured answers 503 UNAVAILABLE, naming what, unless ok.
func (a *api) configured(w http.ResponseWriter, r *http.Request, ok bool, what string) bool {
	if !ok {
		writeError(w, r, kernel.Errorf(kernel.KindUnavailable, "UNAVAILABLE", "%s is not configured", what))
	}
	return ok
}

// caller reads the identity and notes the member for the request's log line.
func (a *api) caller(r *http.Request) (Identity, error) {
	id, err := identity(r, a.opts.PlanClaim)
	if err == nil {
		outcomeOf(r.Context()).setMember(id.Member)
	}
	return id, err
}

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
