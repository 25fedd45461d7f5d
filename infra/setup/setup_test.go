package setup_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dlicense/dlicense/domain/licensing"
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
		{"dynamo without a table", map[string]string{"SIGNING_KEYS": key.Encode()}, "TABLE_NAME"},
		{"unknown store", map[string]string{"STORE": "sqlite", "SIGNING_KEYS": key.Encode()}, "STORE"},
		{"no keys", map[string]string{"STORE": "memory"}, "SIGNING_KEYS"},
		{"bad snapshot interval", map[string]string{"TABLE_NAME": "t", "SNAPSHOT_EVERY": "0", "SIGNING_KEYS": key.Encode()}, "SNAPSHOT_EVERY"},
		{"memory", map[string]string{"STORE": "memory", "SIGNING_KEYS": key.Encode()}, ""},
		{"bad state cache", map[string]string{"STORE": "memory", "SIGNING_KEYS": key.Encode(), "STATE_CACHE": "-3"}, "STATE_CACHE"},
		{"no state cache", map[string]string{"STORE": "memory", "SIGNING_KEYS": key.Encode(), "STATE_CACHE": "0"}, ""},
		{"bad cache idle time", map[string]string{"STORE": "memory", "SIGNING_KEYS": key.Encode(), "STATE_CACHE_IDLE": "10"}, "STATE_CACHE_IDLE"},
		{"cache idle time", map[string]string{"STORE": "memory", "SIGNING_KEYS": key.Encode(), "STATE_CACHE_IDLE": "5m"}, ""},
		{"dynamo", map[string]string{"TABLE_NAME": "t", "SIGNING_KEYS_PARAMETER": "/x/keys"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, k := range []string{"STORE", "TABLE_NAME", "SNAPSHOT_EVERY", "SIGNING_KEYS", "SIGNING_KEYS_PARAMETER", "DYNAMODB_ENDPOINT", "STATE_CACHE", "STATE_CACHE_IDLE"} {
				t.Setenv(k, c.env[k])
			}
			_, err := setup.FromEnv()
			if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
				t.Errorf("FromEnv() = %v, want an error naming %q", err, c.want)
			}
		})
	}
}

func TestBuildRefusesBadKeysAndPolicies(t *testing.T) {
	ctx := context.Background()
	if _, err := setup.Build(ctx, setup.Config{Store: "memory", SigningKeys: "k1:not-a-seed"}); err == nil || strings.Contains(err.Error(), "not-a-seed") {
		t.Errorf("Build(bad key) = %v, want an error without the key text", err)
	}
	key, _ := tokens.GenerateKey("k1")
	if _, err := setup.Build(ctx, setup.Config{Store: "memory", SigningKeys: key.Encode(), PolicyFile: "/nonexistent/policy.json"}); err == nil {
		t.Errorf("Build(missing policy file) = nil error")
	}
	p, err := setup.Build(ctx, setup.Config{Store: "memory", SigningKeys: key.Encode(), Issuer: "i"})
	if err != nil || p.Memory == nil || p.Service == nil || p.Signer.KeyID() != "k1" || p.Service.Cache == nil {
		t.Errorf("Build(memory) = %+v, %v; want a service with a state cache", p, err)
	}
	t.Setenv("STATE_CACHE", "0")
	t.Setenv("STORE", "memory")
	t.Setenv("SIGNING_KEYS", key.Encode())
	c, err := setup.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if p, err := setup.Build(ctx, c); err != nil || p.Service.Cache.Len() != 0 {
		t.Errorf("Build(STATE_CACHE=0) = %v; want no cache", err)
	} else if _, err := p.Service.Execute(ctx, licensing.Acquire{Member: "m1", Plan: "premium", Device: "d1", Title: "tt-first-light"}, ""); err != nil || p.Service.Cache.Len() != 0 {
		t.Errorf("with STATE_CACHE=0, a command left %d states cached (%v)", p.Service.Cache.Len(), err)
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
