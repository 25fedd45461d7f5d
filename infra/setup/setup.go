// Package setup wires every Lambda from configuration: the one place that
// knows which stores, policy, keys and defaults a process uses, so that each
// functions/<name>/main.go stays a few lines. It links only production
// adapters (DynamoDB, the HTTP API, tokens, the stream function); local
// runs put their own stores under the same wiring (Assemble).
package setup

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/dlicense/dlicense/domain/audit"
	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/httpapi"
	"github.com/dlicense/dlicense/infra/jobs"
	"github.com/dlicense/dlicense/infra/projector"
	"github.com/dlicense/dlicense/infra/stepjobs"
	"github.com/dlicense/dlicense/infra/tokens"
)

// The defaults, applied here and nowhere else (Config.WithDefaults).
const (
	// DefaultSnapshotEvery is how many events the stream function lets pass
	// between snapshots.
	DefaultSnapshotEvery = 4
	// DefaultWithdrawalRefresh is how often an instance reads the
	// withdrawals again: a withdrawal takes effect within it.
	DefaultWithdrawalRefresh = 30 * time.Second
	// DefaultIssuer is the "iss" of licence tokens.
	DefaultIssuer = "dlicense"
	// DefaultPlanClaim is the member JWT claim holding the plan.
	DefaultPlanClaim = "plan"
	// DefaultStoreAttemptTimeout bounds each attempt of a DynamoDB call
	// (a healthy table answers in milliseconds).
	DefaultStoreAttemptTimeout = 500 * time.Millisecond
	// DefaultRequestBudget is how long a member's or a verifier's request
	// may wait on the store in all before it answers without it (503, or
	// a degraded answer where the route has one).
	DefaultRequestBudget = 1500 * time.Millisecond
	// DefaultAdminBudget is the same for the operators' routes, which read
	// whole logs and scan.
	DefaultAdminBudget = 8 * time.Second
)

// Config is what a process needs: the API function all of it, the stream
// function the table, the snapshot interval and the policy.
type Config struct {
	Dynamo dynamo.Config
	// SnapshotEvery: the stream function writes a member's snapshot each
	// time its log crosses a multiple of this many events (negative: it
	// writes none, another region's stream function does; docs/regions.md).
	SnapshotEvery int
	// PolicyFile is a policy document to use instead of the shipped one.
	PolicyFile string
	// SigningKeys are the licence signing keys, "kid:base64seed,…", the
	// first signing; or SigningKeysParameter names an SSM SecureString
	// parameter holding them. The API needs one of them.
	SigningKeys          string
	SigningKeysParameter string
	// Issuer is the "iss" of licence tokens.
	Issuer string
	// PlanClaim is the JWT claim holding the member's plan.
	PlanClaim string
	// AdminScope and StatusScope are the scopes granting the admin and the
	// licence-status routes, compared exactly (env ADMIN_SCOPE and
	// STATUS_SCOPE, from the template's parameters of the same names;
	// httpapi.AdminScope and httpapi.StatusScope if unset).
	AdminScope, StatusScope string
	// AuditRetention is how long the audit trail keeps a record (env
	// AUDIT_RETENTION_DAYS; audit.DefaultRetention if unset).
	AuditRetention time.Duration
	// QuietMetrics turns the EMF metric lines off (for local runs).
	QuietMetrics bool
	// StateCache is how many member states the service keeps warm
	// (negative: none); StateCacheIdle how long one may stay unused.
	StateCache     int
	StateCacheIdle time.Duration
	// WithdrawalRefresh is how often the withdrawals are read again
	// (negative: at every decision).
	WithdrawalRefresh time.Duration
	// RequestBudget and AdminBudget bound how long a request of a member
	// or verifier, and of an operator, waits on the store in all; the
	// function's timeout (10 s in the template) must be longer.
	RequestBudget time.Duration
	AdminBudget   time.Duration
	// JobsStateMachine is the ARN of the fleet-wide jobs' state machine
	// (env JOBS_STATE_MACHINE_ARN; the job routes answer 503 without it).
	JobsStateMachine string
}

// WithDefaults is c with every unset setting at its default.
func (c Config) WithDefaults() Config {
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = DefaultSnapshotEvery
	}
	if c.WithdrawalRefresh == 0 {
		c.WithdrawalRefresh = DefaultWithdrawalRefresh
	}
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.PlanClaim == "" {
		c.PlanClaim = DefaultPlanClaim
	}
	if c.AdminScope == "" {
		c.AdminScope = httpapi.AdminScope
	}
	if c.AuditRetention == 0 {
		c.AuditRetention = audit.DefaultRetention
	}
	if c.StatusScope == "" {
		c.StatusScope = httpapi.StatusScope
	}
	if c.StateCache == 0 {
		c.StateCache = licensing.DefaultCacheSize
	}
	if c.StateCacheIdle == 0 {
		c.StateCacheIdle = licensing.DefaultCacheIdle
	}
	if c.Dynamo.AttemptTimeout == 0 {
		c.Dynamo.AttemptTimeout = DefaultStoreAttemptTimeout
	}
	if c.RequestBudget == 0 {
		c.RequestBudget = DefaultRequestBudget
	}
	if c.AdminBudget == 0 {
		c.AdminBudget = DefaultAdminBudget
	}
	return c
}

// FromEnv reads the configuration from the environment, as the template
// sets it: TABLE_NAME (required), DYNAMODB_ENDPOINT, AWS_REGION,
// SNAPSHOT_EVERY, POLICY_FILE, SIGNING_KEYS, SIGNING_KEYS_PARAMETER,
// WRITE_SNAPSHOTS ("false": this region's stream function writes none),
// TOKEN_ISSUER, PLAN_CLAIM, ADMIN_SCOPE, STATUS_SCOPE, STATE_CACHE (0:
// none), STATE_CACHE_IDLE,
// WITHDRAWAL_REFRESH, STORE_ATTEMPT_TIMEOUT, REQUEST_BUDGET and
// ADMIN_REQUEST_BUDGET. Unset settings take their defaults.
func FromEnv() (Config, error) {
	d, err := dynamo.ConfigFromEnv()
	if err != nil {
		return Config{}, err
	}
	c := Config{
		Dynamo:               d,
		PolicyFile:           os.Getenv("POLICY_FILE"),
		SigningKeys:          os.Getenv("SIGNING_KEYS"),
		SigningKeysParameter: os.Getenv("SIGNING_KEYS_PARAMETER"),
		Issuer:               os.Getenv("TOKEN_ISSUER"),
		PlanClaim:            os.Getenv("PLAN_CLAIM"),
		AdminScope:           os.Getenv("ADMIN_SCOPE"),
		StatusScope:          os.Getenv("STATUS_SCOPE"),
		JobsStateMachine:     os.Getenv("JOBS_STATE_MACHINE_ARN"),
	}
	if v := os.Getenv("SNAPSHOT_EVERY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return c, fmt.Errorf("SNAPSHOT_EVERY=%q: want a whole number from 1 to 1000", v)
		}
		c.SnapshotEvery = n
	}
	switch v := os.Getenv("WRITE_SNAPSHOTS"); v {
	case "", "true":
	case "false":
		c.SnapshotEvery = -1
	default:
		return c, fmt.Errorf("WRITE_SNAPSHOTS=%q: want true or false", v)
	}
	if v := os.Getenv("STATE_CACHE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1_000_000 {
			return c, fmt.Errorf("STATE_CACHE=%q: want a number of members from 0 (none) to 1000000", v)
		}
		c.StateCache = n
		if n == 0 {
			c.StateCache = -1
		}
	}
	if v := os.Getenv("STATE_CACHE_IDLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > time.Hour {
			return c, fmt.Errorf("STATE_CACHE_IDLE=%q: want a duration from 1s to 1h", v)
		}
		c.StateCacheIdle = d
	}
	for _, s := range []struct{ env, value string }{{"ADMIN_SCOPE", c.AdminScope}, {"STATUS_SCOPE", c.StatusScope}} {
		if s.value != "" && (len(s.value) > 256 || strings.ContainsFunc(s.value, func(r rune) bool { return r <= ' ' || r == 0x7f })) {
			return c, fmt.Errorf("%s=%q: want one scope name, without spaces", s.env, s.value)
		}
	}
	if v := os.Getenv("AUDIT_RETENTION_DAYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 3650 {
			return c, fmt.Errorf("AUDIT_RETENTION_DAYS=%q: want a whole number of days from 1 to 3650", v)
		}
		c.AuditRetention = time.Duration(n) * 24 * time.Hour
	}
	if c.AdminScope != "" && c.AdminScope == c.StatusScope {
		return c, fmt.Errorf("ADMIN_SCOPE and STATUS_SCOPE are both %q: the admin scope must be its own", c.AdminScope)
	}
	for _, d := range []struct {
		env      string
		min, max time.Duration
		to       *time.Duration
	}{
		{"WITHDRAWAL_REFRESH", time.Second, time.Hour, &c.WithdrawalRefresh},
		{"STORE_ATTEMPT_TIMEOUT", 50 * time.Millisecond, 10 * time.Second, &c.Dynamo.AttemptTimeout},
		{"REQUEST_BUDGET", 100 * time.Millisecond, 29 * time.Second, &c.RequestBudget},
		{"ADMIN_REQUEST_BUDGET", time.Second, 29 * time.Second, &c.AdminBudget},
	} {
		v := os.Getenv(d.env)
		if v == "" {
			continue
		}
		t, err := time.ParseDuration(v)
		if err != nil || t < d.min || t > d.max {
			return c, fmt.Errorf("%s=%q: want a duration from %v to %v", d.env, v, d.min, d.max)
		}
		*d.to = t
	}
	return c.WithDefaults(), nil
}

// Policy reads the policy document at path, or returns the shipped policy
// when path is empty: what POLICY_FILE says, for every process.
func Policy(path string) (*licensing.Policy, error) {
	doc, err := PolicyDocument(path)
	if err != nil {
		return nil, err
	}
	p, err := licensing.ParsePolicy(bytes.NewReader(doc))
	if err != nil {
		return nil, err
	}
	// max_renewals 0 meant no limit before it meant none: say so on load.
	zero := func(r licensing.StudioRules) bool { return r.MaxRenewals != nil && *r.MaxRenewals == 0 }
	if zero(p.Defaults) {
		slog.Warn("policy: max_renewals 0 in the defaults refuses every renewal; omit it for no limit", "version", p.Version)
	}
	for name, r := range p.Studios {
		if zero(r) {
			slog.Warn("policy: max_renewals 0 refuses every renewal of the studio's licences; omit it for no limit", "version", p.Version, "studio", name)
		}
	}
	return p, nil
}

// PolicyDocument is the policy document at path, or the shipped one when
// path is empty.
func PolicyDocument(path string) ([]byte, error) {
	if path == "" {
		return licensing.DefaultPolicyJSON(), nil
	}
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return doc, nil
}

// Stores are the stores a process decides and projects with: on AWS, the
// DynamoDB store for each; locally, the embedded store may stand in.
type Stores struct {
	Events      projector.LogStore // the members' logs and snapshots
	Views       viewing.ScreenStore
	History     viewing.HistoryStore
	Progress    viewing.ProgressStore
	Counters    licensing.CounterStore
	Holders     licensing.HolderStore
	Withdrawals licensing.WithdrawalStore
	// Refusals keeps refused acquisitions and renewals (none if nil).
	Refusals licensing.RefusalStore
	// Audit keeps the operators' audit trail (only logged if nil).
	Audit audit.Store
}

// DynamoStores are the DynamoDB stores, each for its port.
func DynamoStores(s dynamo.Stores) Stores {
	return Stores{Events: s.Log, Views: s.Views, History: s.History, Progress: s.Views, Counters: s.Counters,
		Holders: s.Holders, Withdrawals: s.Withdrawals, Refusals: s.Refusals, Audit: s.Audit}
}

// App is a process's parts, wired: the services, the API over them and the
// stream function over the same stores.
type App struct {
	Licensing *licensing.Service
	// Viewing is the viewing service (screens, heartbeats, resume points).
	Viewing *viewing.Service
	Signer  *tokens.Signer
	Stores  Stores
	// Dynamo and DB are the DynamoDB stores and client, when on DynamoDB.
	Dynamo *dynamo.Stores
	DB     *dynamodb.Client
	// Jobs runs the fleet-wide jobs: the state machine in AWS, a pool of
	// workers in local runs (none: the job routes answer 503).
	Jobs jobs.Engine

	config    Config
	policy    *licensing.Policy
	policyDoc []byte
	withdrawn *licensing.Withdrawals
}

// Build wires the API on the DynamoDB table c names: what the API function runs.
func Build(ctx context.Context, c Config) (*App, error) {
	db, err := dynamo.NewClient(ctx, c.Dynamo)
	if err != nil {
		return nil, err
	}
	stores := dynamo.Layout(db, c.Dynamo.Tables())
	// A load's first Query reads as many events as the stream function lets
	// a snapshot lag at rest: one request at any history length.
	page := c.SnapshotEvery
	if page <= 0 {
		page = DefaultSnapshotEvery
	}
	stores.Log.SetFirstPage(page)
	app, err := Assemble(ctx, c, DynamoStores(stores))
	if err != nil {
		return nil, err
	}
	app.Dynamo, app.DB = &stores, db
	if c.JobsStateMachine != "" {
		cfg, err := dynamo.AWSConfig(ctx, c.Dynamo)
		if err != nil {
			return nil, err
		}
		app.Jobs = &stepjobs.Engine{SFN: sfn.NewFromConfig(cfg), StateMachine: c.JobsStateMachine, Results: stores.JobResults}
	}
	return app, nil
}

// Assemble wires the API and the stream function over the stores given.
func Assemble(ctx context.Context, c Config, s Stores) (*App, error) {
	c = c.WithDefaults()
	doc, err := PolicyDocument(c.PolicyFile)
	if err != nil {
		return nil, err
	}
	policy, err := licensing.ParsePolicy(bytes.NewReader(doc))
	if err != nil {
		return nil, err
	}
	spec := c.SigningKeys
	if spec == "" {
		if c.SigningKeysParameter == "" {
			return nil, errors.New("set SIGNING_KEYS or SIGNING_KEYS_PARAMETER")
		}
		if spec, err = parameter(ctx, c.Dynamo, c.SigningKeysParameter); err != nil {
			return nil, err
		}
	}
	keys, err := tokens.ParseKeys(spec)
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	signer, err := tokens.NewSigner(c.Issuer, keys)
	if err != nil {
		return nil, err
	}
	a := &App{Signer: signer, Stores: s, config: c, policy: policy, policyDoc: doc}
	a.Licensing = licensing.NewService(s.Events, policy, SystemClock{}, RandomIDs{})
	if s.Refusals != nil {
		a.Licensing.Refusals = s.Refusals
		a.Licensing.Observer.RefusalNotKept = func(ctx context.Context, member string, err error) {
			slog.WarnContext(ctx, "refusal not kept", "member", kernel.Pseudonym(member), "error", err)
		}
	}
	// Licences are decided under the policy with the operators' withdrawals,
	// read at most once per WithdrawalRefresh.
	a.withdrawn = &licensing.Withdrawals{Base: policy, Store: s.Withdrawals, Refresh: c.WithdrawalRefresh, Clock: SystemClock{}}
	a.Licensing.Policy = a.withdrawn.Policy
	a.Licensing.UpdatePolicy = func(ctx context.Context) { a.withdrawn.Update(ctx) }
	a.Licensing.Cache = nil
	if c.StateCache > 0 {
		a.Licensing.Cache = licensing.NewStateCache(c.StateCache, c.StateCacheIdle)
	}
	a.Licensing.Observer.Conflict = httpapi.CountConflict
	a.Viewing = viewing.NewService(s.Views, policy, SystemClock{}, RandomIDs{})
	a.Viewing.History = s.History
	// History cursors are sealed with a key every instance derives from the
	// signing key: they reveal nothing, and any instance reads them.
	if a.Viewing.Cursors, err = viewing.NewCursorKey(a.Signer.DerivedSecret("history cursors"), "history cursors v2"); err != nil {
		return nil, err
	}
	return a, nil
}

// Handler is the API over the app: it logs through slog.Default() and
// writes its metrics (EMF) to standard output, where CloudWatch reads them.
func (a *App) Handler() http.Handler {
	c := a.config
	svc := httpapi.Services{
		Licensing: a.Licensing, Policy: a.Licensing.Policy, Signer: a.Signer, Viewing: a.Viewing,
		Counters: a.Stores.Counters, Withdrawals: a.Stores.Withdrawals, Refusals: a.Licensing.Refusals, Jobs: a.Jobs, Audit: a.Stores.Audit,
		VerifyLicence: func(token string) (string, licensing.LicenceStatus, error) {
			claims, err := tokens.Verify(token, a.Signer.JWKS(), c.Issuer, time.Now())
			if err != nil {
				return "", licensing.LicenceStatus{}, err
			}
			return claims.Member, claims.Stated(), nil
		},
	}
	opts := httpapi.Options{PlanClaim: c.PlanClaim, AdminScope: c.AdminScope, StatusScope: c.StatusScope, AuditRetention: c.AuditRetention,
		Metrics: os.Stdout, PolicyDocument: a.policyDoc,
		Budget: c.RequestBudget, AdminBudget: c.AdminBudget}
	if c.QuietMetrics {
		opts.Metrics = nil
	}
	return httpapi.New(svc, opts)
}

// Policy is the policy the app decides by.
func (a *App) Policy() *licensing.Policy { return a.policy }

// Config is the app's configuration, defaults applied.
func (a *App) Config() Config { return a.config }

// Processor is the stream function over the app's stores, with the
// configured snapshot interval and policy.
func (a *App) Processor() *projector.Processor {
	return NewProcessor(a.Stores, a.config.SnapshotEvery, a.policy)
}

// StreamFunction wires the stream function on the DynamoDB table c names:
// what the stream function Lambda runs (it needs no signing keys).
func StreamFunction(ctx context.Context, c Config) (*projector.Processor, error) {
	c = c.WithDefaults()
	policy, err := Policy(c.PolicyFile)
	if err != nil {
		return nil, err
	}
	db, err := dynamo.NewClient(ctx, c.Dynamo)
	if err != nil {
		return nil, err
	}
	return NewProcessor(DynamoStores(dynamo.Layout(db, c.Dynamo.Tables())), c.SnapshotEvery, policy), nil
}

// JobStores are what the job function reads and writes on the tables c
// names: the logs (segments of a parallel scan) and their snapshots, the
// refusals (what-if's refusals it would grant), the title holders and the
// job results; with the policy snapshots are kept for.
func JobStores(ctx context.Context, c Config) (jobs.Stores, jobs.Results, error) {
	c = c.WithDefaults()
	policy, err := Policy(c.PolicyFile)
	if err != nil {
		return jobs.Stores{}, nil, err
	}
	db, err := dynamo.NewClient(ctx, c.Dynamo)
	if err != nil {
		return jobs.Stores{}, nil, err
	}
	s := dynamo.Layout(db, c.Dynamo.Tables())
	return DynamoJobStores(s, policy), s.JobResults, nil
}

// JobMemberWorkers is how many members a slice of a job handles at once
// on DynamoDB: a member costs a request or two of a few milliseconds, and
// a slice of a large fleet must end within Lambda's 15 minutes.
const JobMemberWorkers = 8

// DynamoJobStores are what a job reads and writes over s, with policy the
// service's: the logs (segments of a parallel scan) and their snapshots,
// the refusals, the title holders, the counters, the viewing read
// models, and the screens the sweep of silent views closes.
func DynamoJobStores(s dynamo.Stores, policy *licensing.Policy) jobs.Stores {
	return jobs.Stores{Members: s.Log, Events: s.Log, Refusals: s.Refusals, Snapshots: s.Log, Holders: s.Holders,
		Counters: s.Counters, Viewing: s.History, Silent: s.Views, Policy: policy, Workers: JobMemberWorkers,
		Licensing: WithdrawingService(s.Log, s.Withdrawals, policy), Withdrawals: s.Withdrawals}
}

// WithdrawingService is a licensing service over events that decides under
// policy with the operators' withdrawals (read at most once a minute), with
// no state cache: what ends a withdrawn title's licences.
func WithdrawingService(events licensing.EventStore, ws licensing.WithdrawalStore, policy *licensing.Policy) *licensing.Service {
	svc := licensing.NewService(events, policy, SystemClock{}, RandomIDs{})
	svc.Cache = nil
	w := &licensing.Withdrawals{Base: policy, Store: ws, Refresh: time.Minute, Clock: SystemClock{}}
	svc.Policy = w.Policy
	svc.UpdatePolicy = func(ctx context.Context) { w.Update(ctx) }
	return svc
}

// NewProcessor is the stream function over s: its projections, in the
// order they run, are snapshots every snapshotEvery events (kept for what
// policy's quotas look at: the API's; none if snapshotEvery is negative),
// erasures, the viewing read models
// (which drop what an erasure erased), then title holders and counters. A
// store left nil leaves its projection out; a nil policy is the shipped one.
func NewProcessor(s Stores, snapshotEvery int, policy *licensing.Policy) *projector.Processor {
	if policy == nil {
		policy = licensing.DefaultPolicy()
	}
	var ps []projector.Projection
	if snapshotEvery >= 0 {
		ps = append(ps, &projector.Snapshots{Store: s.Events, Every: snapshotEvery, Policy: policy})
	}
	if s.History != nil {
		ps = append(ps, &projector.Erasures{Store: s.History})
	}
	if s.Progress != nil {
		ps = append(ps, &projector.Viewing{Progress: s.Progress, History: s.History, Policy: policy})
	}
	if s.Holders != nil {
		ps = append(ps, &projector.Holders{Store: s.Holders})
	}
	if s.Counters != nil {
		ps = append(ps, &projector.Counts{Store: s.Counters})
	}
	return projector.New(nil, ps...)
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

// RandomIDs makes 20-character random ids (100 bits).
type RandomIDs struct{}

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns a new random id.
func (RandomIDs) NewID() string {
	var b [13]byte
	rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])[:20]
}
