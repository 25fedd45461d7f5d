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
