package setup_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/audit"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/httpapi"
	"github.com/dlicense/dlicense/infra/memstore"
	"github.com/dlicense/dlicense/infra/projector"
	"github.com/dlicense/dlicense/infra/setup"
	"github.com/dlicense/dlicense/infra/tokens"
)

func TestFromEnv(t *testing.T) {
	key, _ := tokens.GenerateKey("k1")
	for _, c := range []struct {
		name string
		env  map[string]string
		want string // substring of the error; "" for none
	}{
		{"no table", map[string]string{"SIGNING_KEYS": key.Encode()}, "TABLE_NAME"},
		{"bad snapshot interval", map[string]string{"TABLE_NAME": "t", "SNAPSHOT_EVERY": "0", "SIGNING_KEYS": key.Encode()}, "SNAPSHOT_EVERY"},
		{"bad state cache", map[string]string{"TABLE_NAME": "t", "STATE_CACHE": "-3"}, "STATE_CACHE"},
		{"no state cache", map[string]string{"TABLE_NAME": "t", "STATE_CACHE": "0"}, ""},
		{"bad cache idle time", map[string]string{"TABLE_NAME": "t", "STATE_CACHE_IDLE": "10"}, "STATE_CACHE_IDLE"},
		{"cache idle time", map[string]string{"TABLE_NAME": "t", "STATE_CACHE_IDLE": "5m"}, ""},
		{"bad withdrawal refresh", map[string]string{"TABLE_NAME": "t", "WITHDRAWAL_REFRESH": "1ms"}, "WITHDRAWAL_REFRESH"},
		{"bad attempt timeout", map[string]string{"TABLE_NAME": "t", "STORE_ATTEMPT_TIMEOUT": "1ms"}, "STORE_ATTEMPT_TIMEOUT"},
		{"bad request budget", map[string]string{"TABLE_NAME": "t", "REQUEST_BUDGET": "1m"}, "REQUEST_BUDGET"},
		{"bad admin budget", map[string]string{"TABLE_NAME": "t", "ADMIN_REQUEST_BUDGET": "soon"}, "ADMIN_REQUEST_BUDGET"},
		{"deadlines", map[string]string{"TABLE_NAME": "t", "STORE_ATTEMPT_TIMEOUT": "300ms", "REQUEST_BUDGET": "1s", "ADMIN_REQUEST_BUDGET": "5s"}, ""},
		{"scopes", map[string]string{"TABLE_NAME": "t", "ADMIN_SCOPE": "ops-api/operator", "STATUS_SCOPE": "ops-api/drm"}, ""},
		{"two scopes in one", map[string]string{"TABLE_NAME": "t", "ADMIN_SCOPE": "dlicense/admin other/admin"}, "ADMIN_SCOPE"},
		{"one scope for both", map[string]string{"TABLE_NAME": "t", "ADMIN_SCOPE": "x/y", "STATUS_SCOPE": "x/y"}, "ADMIN_SCOPE"},
		{"stream function (no keys)", map[string]string{"TABLE_NAME": "t"}, ""},
		{"api", map[string]string{"TABLE_NAME": "t", "SIGNING_KEYS_PARAMETER": "/x/keys"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, k := range []string{"TABLE_NAME", "SNAPSHOT_EVERY", "SIGNING_KEYS", "SIGNING_KEYS_PARAMETER", "DYNAMODB_ENDPOINT", "STATE_CACHE", "STATE_CACHE_IDLE", "WITHDRAWAL_REFRESH", "TOKEN_ISSUER", "PLAN_CLAIM", "STORE_ATTEMPT_TIMEOUT", "REQUEST_BUDGET", "ADMIN_REQUEST_BUDGET", "ADMIN_SCOPE", "STATUS_SCOPE", "AUDIT_RETENTION_DAYS"} {
				t.Setenv(k, c.env[k])
			}
			_, err := setup.FromEnv()
			if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
				t.Errorf("FromEnv() = %v, want an error naming %q", err, c.want)
			}
		})
	}
}

// TestDefaults: every unset setting takes its default in one place, from
// the environment or from a Config built by hand.
func TestDefaults(t *testing.T) {
	for _, k := range []string{"SNAPSHOT_EVERY", "STATE_CACHE", "STATE_CACHE_IDLE", "WITHDRAWAL_REFRESH", "TOKEN_ISSUER", "PLAN_CLAIM", "POLICY_FILE", "STORE_ATTEMPT_TIMEOUT", "REQUEST_BUDGET", "ADMIN_REQUEST_BUDGET"} {
		t.Setenv(k, "")
	}
	t.Setenv("TABLE_NAME", "t")
	fromEnv, err := setup.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if fromEnv.Dynamo.AttemptTimeout != setup.DefaultStoreAttemptTimeout {
		t.Errorf("attempt timeout %v, want %v", fromEnv.Dynamo.AttemptTimeout, setup.DefaultStoreAttemptTimeout)
	}
	want := setup.Config{Dynamo: fromEnv.Dynamo, RequestBudget: setup.DefaultRequestBudget, AdminBudget: setup.DefaultAdminBudget, SnapshotEvery: setup.DefaultSnapshotEvery, WithdrawalRefresh: setup.DefaultWithdrawalRefresh,
		Issuer: setup.DefaultIssuer, PlanClaim: setup.DefaultPlanClaim, AdminScope: httpapi.AdminScope, StatusScope: httpapi.StatusScope, AuditRetention: audit.DefaultRetention,
		StateCache: licensing.DefaultCacheSize, StateCacheIdle: licensing.DefaultCacheIdle}
	if fromEnv != want {
		t.Errorf("FromEnv() = %+v, want %+v", fromEnv, want)
	}
	if got := (setup.Config{Dynamo: fromEnv.Dynamo}).WithDefaults(); got != want {
		t.Errorf("WithDefaults() = %+v, want %+v", got, want)
	}
	set := setup.Config{SnapshotEvery: 9, Issuer: "x", PlanClaim: "y", AdminScope: "ops/admin", StatusScope: "ops/drm", AuditRetention: time.Hour, StateCache: -1, StateCacheIdle: time.Second, WithdrawalRefresh: -1,
		RequestBudget: time.Second, AdminBudget: 3 * time.Second}
	set.Dynamo.AttemptTimeout = time.Second
	if got := set.WithDefaults(); got != set {
		t.Errorf("WithDefaults() changed set values: %+v", got)
	}
}

// memoryStores are one embedded store for every store, as local runs wire it.
func memoryStores() setup.Stores {
	m := memstore.New()
	return setup.Stores{Events: m, Views: m, History: m, Progress: m, Counters: m, Holders: m, Withdrawals: m, Refusals: m}
}

func TestAssembleRefusesBadKeysAndPolicies(t *testing.T) {
	ctx := context.Background()
	if _, err := setup.Assemble(ctx, setup.Config{}, memoryStores()); err == nil || !strings.Contains(err.Error(), "SIGNING_KEYS") {
		t.Errorf("Assemble(no keys) = %v, want an error naming SIGNING_KEYS", err)
	}
	if _, err := setup.Assemble(ctx, setup.Config{SigningKeys: "k1:not-a-seed"}, memoryStores()); err == nil || strings.Contains(err.Error(), "not-a-seed") {
		t.Errorf("Assemble(bad key) = %v, want an error without the key text", err)
	}
	key, _ := tokens.GenerateKey("k1")
	if _, err := setup.Assemble(ctx, setup.Config{SigningKeys: key.Encode(), PolicyFile: "/nonexistent/policy.json"}, memoryStores()); err == nil {
		t.Errorf("Assemble(missing policy file) = nil error")
	}
	a, err := setup.Assemble(ctx, setup.Config{SigningKeys: key.Encode(), Issuer: "i"}, memoryStores())
	if err != nil || a.Licensing == nil || a.Signer.KeyID() != "k1" || a.Licensing.Cache == nil || snapshotEvery(a.Processor()) != setup.DefaultSnapshotEvery {
		t.Errorf("Assemble = %+v, %v; want a service with a state cache", a, err)
	}
	a, err = setup.Assemble(ctx, setup.Config{SigningKeys: key.Encode(), StateCache: -1}, memoryStores())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Licensing.Execute(ctx, licensing.Acquire{Member: "m1", Plan: "premium", Device: "d1", Title: "tt-first-light"}, ""); err != nil || a.Licensing.Cache.Len() != 0 {
		t.Errorf("with no state cache, a command left %d states cached (%v)", a.Licensing.Cache.Len(), err)
	}
}

// snapshotEvery is the interval of p's snapshots projection (0: none).
func snapshotEvery(p *projector.Processor) int {
	for _, proj := range p.Projections {
		if s, ok := proj.(*projector.Snapshots); ok {
			return s.Every
		}
	}
	return 0
}

// TestTheStreamFunctionRunsAProjectionPerStore: the projections run in
// their order, and a store left out leaves its projection out.
func TestTheStreamFunctionRunsAProjectionPerStore(t *testing.T) {
	kinds := func(p *projector.Processor) string {
		var out []string
		for _, proj := range p.Projections {
			out = append(out, strings.TrimPrefix(fmt.Sprintf("%T", proj), "*projector."))
		}
		return strings.Join(out, " ")
	}
	all := memoryStores()
	if got, want := kinds(setup.NewProcessor(all, 4, nil)), "Snapshots Erasures Viewing Holders Counts"; got != want {
		t.Errorf("NewProcessor(every store) runs %s, want %s", got, want)
	}
	logOnly := setup.Stores{Events: all.Events}
	if got, want := kinds(setup.NewProcessor(logOnly, 4, nil)), "Snapshots"; got != want {
		t.Errorf("NewProcessor(the log alone) runs %s, want %s", got, want)
	}
	if got := snapshotEvery(setup.NewProcessor(logOnly, 7, nil)); got != 7 {
		t.Errorf("NewProcessor(every 7) snapshots every %d", got)
	}
	// A region whose stream function writes no snapshot (another's does).
	if got, want := kinds(setup.NewProcessor(all, -1, nil)), "Erasures Viewing Holders Counts"; got != want {
		t.Errorf("NewProcessor(no snapshots) runs %s, want %s", got, want)
	}
	t.Setenv("TABLE_NAME", "t")
	t.Setenv("WRITE_SNAPSHOTS", "false")
	if c, err := setup.FromEnv(); err != nil || c.SnapshotEvery >= 0 {
		t.Errorf("FromEnv(WRITE_SNAPSHOTS=false) = snapshots every %d, %v; want none", c.SnapshotEvery, err)
	}
	t.Setenv("WRITE_SNAPSHOTS", "no")
	if _, err := setup.FromEnv(); err == nil || !strings.Contains(err.Error(), "WRITE_SNAPSHOTS") {
		t.Errorf("FromEnv(WRITE_SNAPSHOTS=no) = %v, want an error naming it", err)
	}
}

func TestRandomIDs(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := setup.RandomIDs{}.NewID()
		if len(id) != 20 || seen[id] {
			t.Fatalf("NewID() = %q (length %d, seen %v)", id, len(id), seen[id])
		}
		seen[id] = true
	}
}
