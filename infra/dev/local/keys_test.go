package local_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/projector"
)

// TestKeysUnderConcurrentFirstUse: the server and a token command started
// at the same moment on an empty key directory end up with the same keys,
// the ones on disk, and neither fails.
func TestKeysUnderConcurrentFirstUse(t *testing.T) {
	for round := range 30 {
		dir := t.TempDir()
		const users = 8
		got := make([]local.Keys, users)
		errs := make([]error, users)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range users {
			wg.Go(func() {
				<-start
				got[i], errs[i] = local.LoadKeys(dir)
			})
		}
		close(start)
		wg.Wait()
		disk, err := local.LoadKeys(dir)
		if err != nil {
			t.Fatal(err)
		}
		for i := range users {
			if errs[i] != nil {
				t.Fatalf("round %d: LoadKeys %d = %v", round, i, errs[i])
			}
			if got[i].Issuer.Encode() != disk.Issuer.Encode() || got[i].Signing.Encode() != disk.Signing.Encode() {
				t.Fatalf("round %d: user %d holds keys that are not the ones on disk", round, i)
			}
		}
	}
}

// TestTheLocalServerHonoursTheLambdasSettings: POLICY_FILE, SNAPSHOT_EVERY,
// STATE_CACHE, PLAN_CLAIM and TOKEN_ISSUER change the local server as they
// change the Lambda; without them, the local defaults.
func TestTheLocalServerHonoursTheLambdasSettings(t *testing.T) {
	keys, err := local.LoadKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(t.TempDir(), "policy.json")
	doc := strings.Replace(string(licensing.DefaultPolicyJSON()), `"version": "`, `"version": "local-test-`, 1)
	if err := os.WriteFile(policy, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"POLICY_FILE", "SNAPSHOT_EVERY", "STATE_CACHE", "PLAN_CLAIM", "TOKEN_ISSUER", "STORE", "SIGNING_KEYS", "TABLE_NAME"} {
		t.Setenv(env, "")
	}
	cfg, err := local.ServeConfig(keys)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := local.Build(t.Context(), "memory", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if parts.Policy().Version != licensing.DefaultPolicy().Version || snapshotEvery(parts.Processor()) != 4 || cfg.PlanClaim != "plan" || cfg.Issuer != "dlicense-local" {
		t.Errorf("defaults: policy %s, snapshot every %d, plan claim %q, issuer %q", parts.Policy().Version, snapshotEvery(parts.Processor()), cfg.PlanClaim, cfg.Issuer)
	}
	t.Setenv("POLICY_FILE", policy)
	t.Setenv("SNAPSHOT_EVERY", "7")
	t.Setenv("STATE_CACHE", "0")
	t.Setenv("PLAN_CLAIM", "custom:plan")
	t.Setenv("TOKEN_ISSUER", "someone")
	cfg, err = local.ServeConfig(keys)
	if err != nil {
		t.Fatal(err)
	}
	parts, err = local.Build(t.Context(), "memory", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(parts.Policy().Version, "local-test-") || snapshotEvery(parts.Processor()) != 7 || parts.Licensing.Cache != nil || cfg.PlanClaim != "custom:plan" || cfg.Issuer != "someone" {
		t.Errorf("settings: policy %s, snapshot every %d, cache %v, plan claim %q, issuer %q", parts.Policy().Version, snapshotEvery(parts.Processor()), parts.Licensing.Cache != nil, cfg.PlanClaim, cfg.Issuer)
	}
	t.Setenv("SNAPSHOT_EVERY", "0")
	if _, err := local.ServeConfig(keys); err == nil || !strings.Contains(err.Error(), "SNAPSHOT_EVERY") {
		t.Errorf("SNAPSHOT_EVERY=0: %v, want an error naming it", err)
	}
}

// TestServeConfigReadsTheParameterWithThisMachinesCredentials: with
// SIGNING_KEYS_PARAMETER instead of dev keys, the local server reads the
// keys with the shared configuration's credentials, as the operator
// commands do (a Lambda's come from its environment).
func TestServeConfigReadsTheParameterWithThisMachinesCredentials(t *testing.T) {
	keys, err := local.LoadKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{
		"SIGNING_KEYS": "", "SIGNING_KEYS_PARAMETER": "/dlicense/dev/signing-keys", "TABLE_NAME": "t",
		"AWS_ACCESS_KEY_ID": "AKIDLOCAL", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "", "AWS_REGION": "eu-west-1",
		"AWS_PROFILE": "", "AWS_CONFIG_FILE": filepath.Join(t.TempDir(), "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(t.TempDir(), "none"),
	} {
		t.Setenv(name, v)
	}
	cfg, err := local.ServeConfig(keys)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SigningKeys != "" || cfg.Dynamo.Credentials == nil || cfg.Dynamo.Region != "eu-west-1" {
		t.Fatalf("config = keys %q, credentials %v, region %q; want the parameter read with this machine's credentials", cfg.SigningKeys, cfg.Dynamo.Credentials, cfg.Dynamo.Region)
	}
	if creds, err := cfg.Dynamo.Credentials.Retrieve(t.Context()); err != nil || creds.AccessKeyID != "AKIDLOCAL" {
		t.Errorf("credentials = %+v, %v; want the environment's", creds, err)
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
