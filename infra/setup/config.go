package setup

// The configuration: what a process reads from its environment, with its
// defaults, and the policy document.

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dlicense/dlicense/domain/audit"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/httpapi"
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
