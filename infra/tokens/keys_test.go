package tokens_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dlicense/dlicense/infra/tokens"
)

func TestParseKeys(t *testing.T) {
	a, b := fixedKey("2026-01", 1), fixedKey("2026-02", 2)
	spec := " 2026-01:" + base64.StdEncoding.EncodeToString(a.Private.Seed()) +
		" , 2026-02:" + base64.RawURLEncoding.EncodeToString(b.Private.Seed())
	keys, err := tokens.ParseKeys(spec)
	if err != nil {
		t.Fatalf("ParseKeys(...) = %v", err)
	}
	if len(keys) != 2 || keys[0].ID != "2026-01" || keys[1].ID != "2026-02" {
		t.Fatalf("ParseKeys(...) = %v, want [2026-01 2026-02]", keys)
	}
	if !keys[0].Private.Equal(a.Private) || !keys[1].Private.Equal(b.Private) {
		t.Errorf("ParseKeys(...) keys differ from the seeds given")
	}
}

func TestParseKeysErrors(t *testing.T) {
	k := fixedKey("k1", 0xA7)
	std := base64.StdEncoding.EncodeToString(k.Private.Seed())
	short := base64.StdEncoding.EncodeToString(k.Private.Seed()[:31])
	long := base64.StdEncoding.EncodeToString(append(k.Private.Seed(), 0))
	tests := []struct {
		name, spec, want string
	}{
		{"empty", "", "no keys"},
		{"blank", "  ", "no keys"},
		{"empty entry", "k1:" + std + ",", "entry 2 is empty"},
		{"no colon", std, "entry 1: want kid:base64(seed)"},
		{"empty kid", ":" + std, "entry 1: empty kid"},
		{"bad base64", "k1:" + std[:10] + "!!" + std[12:], `entry 1 (kid "k1"): seed is not base64`},
		{"short", "k1:" + short, `entry 1 (kid "k1"): seed is 31 bytes, want 32`},
		{"long", "k1:" + long, "seed is 33 bytes, want 32"},
		{"duplicate", "k1:" + std + ",k1:" + std, `entry 2 (kid "k1"): duplicate kid`},
		{"seed as kid", std + ":k1", "entry 1:"},
		{"private key", "k1:" + base64.StdEncoding.EncodeToString(k.Private), "seed is 64 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := tokens.ParseKeys(tt.spec)
			if err == nil {
				t.Fatalf("ParseKeys(%s) = %v, want error", tt.name, keys)
			}
			if !errors.Is(err, tokens.ErrInvalidKey) {
				t.Errorf("ParseKeys(%s) = %v, want ErrInvalidKey", tt.name, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseKeys(%s) = %q, want it to contain %q", tt.name, err, tt.want)
			}
			assertNoSeed(t, err.Error(), k)
		})
	}
}

func TestGenerateKeyEncodeRoundTrip(t *testing.T) {
	k, err := tokens.GenerateKey("gen-1")
	if err != nil {
		t.Fatalf("GenerateKey = %v", err)
	}
	if len(k.Private) != ed25519.PrivateKeySize || k.ID != "gen-1" {
		t.Fatalf("GenerateKey = %v, want an Ed25519 key named gen-1", k)
	}
	keys, err := tokens.ParseKeys(k.Encode())
	if err != nil {
		t.Fatalf("ParseKeys(Encode()) = %v", err)
	}
	if len(keys) != 1 || keys[0].ID != k.ID || !keys[0].Private.Equal(k.Private) {
		t.Errorf("ParseKeys(Encode()) = %v, want %v", keys, k)
	}
	if _, err := tokens.GenerateKey("a:b"); !errors.Is(err, tokens.ErrInvalidKey) {
		t.Errorf("GenerateKey(a:b) = %v, want ErrInvalidKey", err)
	}
}

func TestKeyPrintsNoMaterial(t *testing.T) {
	k := fixedKey("k1", 0x5C)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		out := fmt.Sprintf(verb, k)
		assertNoSeed(t, out, k)
		if strings.Contains(out, fmt.Sprintf("%x", k.Private.Seed())) || strings.Contains(out, "92 92 92") {
			t.Errorf("Sprintf(%s, key) = %q, leaks key material", verb, out)
		}
	}
}
