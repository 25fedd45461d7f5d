// Package setup builds the licensing service and its API from configuration:
// the one place that knows which store, policy and keys a process uses, so
// that each functions/<name>/main.go and the local server stay a few lines.
package setup

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/httpapi"
	"github.com/dlicense/dlicense/infra/memstore"
	"github.com/dlicense/dlicense/infra/streams"
	"github.com/dlicense/dlicense/infra/tokens"
)

// Config is what a process needs to serve the API.
type Config struct {
	// Store is "dynamo" (the default) or "memory" (the embedded store).
	Store  string
	Dynamo dynamo.Config
	// PolicyFile is a policy document to use instead of the shipped one.
	PolicyFile string
	// SigningKeys are the licence signing keys, "kid:base64seed,…", the
	// first signing; or SigningKeysParameter names an SSM SecureString
	// parameter holding them.
	SigningKeys          string
	SigningKeysParameter string
	// Issuer is the "iss" of licence tokens.
	Issuer string
	// PlanClaim is the JWT claim holding the member's plan.
	PlanClaim string
	// QuietMetrics turns the EMF metric lines off (for local runs).
	QuietMetrics bool
	// StateCache is how many member states the service keeps warm (0:
	// licensing.DefaultCacheSize; negative: none).
	StateCache int
	// StateCacheIdle is how long a cached state may stay unused (0:
	// licensing.DefaultCacheIdle).
	StateCacheIdle time.Duration
	// WithdrawalRefresh is how often the withdrawals are read again
	// (DefaultWithdrawalRefresh if 0; negative: at every decision).
	WithdrawalRefresh time.Duration
}

// DefaultWithdrawalRefresh is how often an instance reads the withdrawals
// again: a withdrawal takes effect within it.
const DefaultWithdrawalRefresh = 30 * time.Second

// FromEnv reads the configuration from the environment: STORE, TABLE_NAME,
// DYNAMODB_ENDPOINT, AWS_REGION, SNAPSHOT_EVERY, POLICY_FILE, SIGNING_KEYS,
// SIGNING_KEYS_PARAMETER, TOKEN_ISSUER, PLAN_CLAIM, STATE_CACHE,
// STATE_CACHE_IDLE and WITHDRAWAL_REFRESH.
func FromEnv() (Config, error) {
	c := Config{
		Store:                envOr("STORE", "dynamo"),
		PolicyFile:           os.Getenv("POLICY_FILE"),
		SigningKeys:          os.Getenv("SIGNING_KEYS"),
		SigningKeysParameter: os.Getenv("SIGNING_KEYS_PARAMETER"),
		Issuer:               envOr("TOKEN_ISSUER", "dlicense"),
		PlanClaim:            envOr("PLAN_CLAIM", "plan"),
	}
	switch c.Store {
	case "dynamo":
		d, err := dynamo.ConfigFromEnv()
		if err != nil {
			return c, err
		}
		c.Dynamo = d
	case "memory":
		// The embedded store's stream function snapshots like the Lambda's.
		if v := os.Getenv("SNAPSHOT_EVERY"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				return c, fmt.Errorf("SNAPSHOT_EVERY=%q: want a whole number from 1 to 1000", v)
			}
			c.Dynamo.SnapshotEvery = n
		}
	default:
		return c, fmt.Errorf("STORE=%q: want dynamo or memory", c.Store)
	}
	if c.SigningKeys == "" && c.SigningKeysParameter == "" {
		return c, fmt.Errorf("set SIGNING_KEYS or SIGNING_KEYS_PARAMETER")
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
	if v := os.Getenv("WITHDRAWAL_REFRESH"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > time.Hour {
			return c, fmt.Errorf("WITHDRAWAL_REFRESH=%q: want a duration from 1s to 1h", v)
		}
		c.WithdrawalRefresh = d
	}
	return c, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Parts are the pieces a process is built from.
type Parts struct {
	Service *licensing.Service
	// Viewing is the viewing service (screens, heartbeats, resume points).
	Viewing *viewing.Service
	Signer  *tokens.Signer
	// Memory is the embedded store, when Store is "memory".
	Memory *memstore.Store
	// Dynamo is the DynamoDB store, when Store is "dynamo".
	Dynamo *dynamo.Store
	// Withdrawals keeps the operators' withdrawals of titles.
	Withdrawals licensing.WithdrawalStore

	db            *dynamodb.Client // Dynamo's client
	snapshotEvery int
	policy        *licensing.Policy
	withdrawn     *licensing.Withdrawals
}

// Policy reads the policy document at path, or returns the shipped policy
// when path is empty: what POLICY_FILE says, for every process.
func Policy(path string) (*licensing.Policy, error) {
	if path == "" {
		return licensing.DefaultPolicy(), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	return licensing.ParsePolicy(f)
}

// Build builds the service from c.
func Build(ctx context.Context, c Config) (*Parts, error) {
	policy, err := Policy(c.PolicyFile)
	if err != nil {
		return nil, err
	}
	spec := c.SigningKeys
	if spec == "" {
		var err error
		if spec, err = parameter(ctx, c.SigningKeysParameter); err != nil {
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
	p := &Parts{Signer: signer, snapshotEvery: c.Dynamo.SnapshotEvery, policy: policy}
	if p.snapshotEvery == 0 {
		p.snapshotEvery = dynamo.DefaultSnapshotEvery
	}
	var store licensing.EventStore
	var views viewing.Store
	var history viewing.HistoryStore
	var withdrawals licensing.WithdrawalStore
	switch c.Store {
	case "memory":
		p.Memory = memstore.New()
		store, views, history, withdrawals = p.Memory, p.Memory, p.Memory, p.Memory
	default:
		db, err := dynamo.NewClient(ctx, c.Dynamo)
		if err != nil {
			return nil, err
		}
		p.db = db
		p.Dynamo = dynamo.New(db, c.Dynamo.Table)
		store, views, history, withdrawals = p.Dynamo, p.Dynamo, p.Dynamo, p.Dynamo
	}
	p.Service = licensing.NewService(store, policy, SystemClock{}, RandomIDs{})
	// Licences are decided under the policy with the operators' withdrawals,
	// read at most once per WithdrawalRefresh.
	refresh := c.WithdrawalRefresh
	if refresh == 0 {
		refresh = DefaultWithdrawalRefresh
	}
	p.Withdrawals = withdrawals
	if rs, ok := store.(licensing.RefusalStore); ok {
		p.Service.Refusals = rs
		p.Service.Observer.RefusalNotKept = func(ctx context.Context, member string, err error) {
			slog.WarnContext(ctx, "refusal not kept", "member", licensing.Pseudonym(member), "error", err)
		}
	}
	p.withdrawn = &licensing.Withdrawals{Base: policy, Store: withdrawals, Refresh: refresh, Clock: SystemClock{}}
	p.Service.Policy = p.withdrawn.Policy
	if c.StateCache != 0 || c.StateCacheIdle != 0 {
		size, idle := c.StateCache, c.StateCacheIdle
		if size == 0 {
			size = licensing.DefaultCacheSize
		}
		if idle == 0 {
			idle = licensing.DefaultCacheIdle
		}
		p.Service.Cache = licensing.NewStateCache(size, idle)
		if size < 0 {
			p.Service.Cache = nil
		}
	}
	p.Viewing = viewing.NewService(views, policy, SystemClock{}, RandomIDs{})
	p.Viewing.History = history
	p.Service.Observer.Conflict = httpapi.CountConflict
	return p, nil
}

// Handler is the API over the parts: it logs through slog.Default() and
// writes its metrics (EMF) to standard output, where CloudWatch reads them.
func (p *Parts) Handler(c Config) http.Handler {
	opts := httpapi.Options{PlanClaim: c.PlanClaim, Metrics: os.Stdout, Counters: p.counters(), Viewing: p.Viewing, Withdrawals: p.Withdrawals,
		VerifyLicence: func(token string) (string, string, error) {
			claims, err := tokens.Verify(token, p.Signer.JWKS(), c.Issuer, time.Now())
			if err != nil {
				return "", "", err
			}
			return claims.Member, claims.ID, nil
		}}
	if c.QuietMetrics {
		opts.Metrics = nil
	}
	return httpapi.New(p.Service, p.Signer, opts)
}

// Policy is the policy the parts decide by.
func (p *Parts) Policy() *licensing.Policy { return p.policy }

// Processor is the stream function over the parts' store, with the
// configured snapshot interval and policy: what Lambda runs on the table's
// stream, for a local run to feed itself.
func (p *Parts) Processor() *streams.Processor {
	if p.Memory != nil {
		return &streams.Processor{Store: p.Memory, Counters: p.Memory, Holders: p.Memory, Progress: p.Memory, History: p.Memory, SnapshotEvery: p.snapshotEvery, Policy: p.policy}
	}
	return &streams.Processor{Store: p.Dynamo, Counters: p.Dynamo, Holders: p.Dynamo, Progress: p.Dynamo, History: p.Dynamo, SnapshotEvery: p.snapshotEvery, Policy: p.policy}
}

// StreamPoller returns a poller of the DynamoDB table's stream that runs
// Processor through the Lambda JSON path behind the template's filter, as
// Lambda runs it: for local runs on DynamoDB Local, where no Lambda polls.
func (p *Parts) StreamPoller(ctx context.Context, c Config) (*streams.Poller, error) {
	if p.Dynamo == nil {
		return nil, fmt.Errorf("stream poller: the store is %q, not dynamo", c.Store)
	}
	arn, err := streams.LatestStreamArn(ctx, p.db, c.Dynamo.Table)
	if err != nil {
		return nil, err
	}
	client, err := streams.NewClient(ctx, c.Dynamo)
	if err != nil {
		return nil, err
	}
	filter, err := streams.ParseFilters(streams.EventFilters...)
	if err != nil {
		return nil, err
	}
	return &streams.Poller{Streams: client, StreamArn: arn, Handler: lambda.NewHandler(p.Processor().Handle), Filter: filter}, nil
}

func (p *Parts) counters() licensing.CounterStore {
	if p.Memory != nil {
		return p.Memory
	}
	return p.Dynamo
}

// parameter reads an SSM SecureString parameter, decrypted.
func parameter(ctx context.Context, name string) (string, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return "", fmt.Errorf("aws config: %w", err)
	}
	out, err := ssm.NewFromConfig(cfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("read parameter %s: %w", name, err)
	}
	return strings.TrimSpace(aws.ToString(out.Parameter.Value)), nil
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
