package devidp_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dlicense/dlicense/infra/dev/devidp"
	"github.com/dlicense/dlicense/infra/tokens"
)

const (
	devIssuer   = "http://localhost:8080/dev-idp"
	devAudience = "dlicense-local"
)

var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func TestDevIssuerMintVerify(t *testing.T) {
	dev := devidp.NewDevIssuer(devIssuer, devAudience, fixedKey("dev", 3))
	tok, err := dev.Mint("member-42", "gold", []string{"licences/write", "licences/read"}, time.Hour, t0)
	if err != nil {
		t.Fatalf("Mint = %v", err)
	}
	if h := header(t, tok); h["alg"] != "EdDSA" || h["kid"] != "dev" {
		t.Errorf("header = %v, want alg EdDSA, kid dev", h)
	}
	got, err := dev.Verify(tok, t0.Add(time.Minute))
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	want := map[string]string{
		"iss": devIssuer, "aud": devAudience, "sub": "member-42", "plan": "gold",
		"scope": "licences/write licences/read",
		"iat":   strconv.FormatInt(t0.Unix(), 10), "exp": strconv.FormatInt(t0.Add(time.Hour).Unix(), 10),
	}
	for k, v := range want {
		if got.Values[k] != v {
			t.Errorf("Verify claim %s = %q, want %q", k, got.Values[k], v)
		}
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(got.Values["jti"]) {
		t.Errorf("Verify claim jti = %q, want a v4 UUID", got.Values["jti"])
	}
	if len(got.Values) != len(want)+1 {
		t.Errorf("Verify claims = %v, want exactly %d", got.Values, len(want)+1)
	}
	if !slices.Equal(got.Scopes, []string{"licences/write", "licences/read"}) {
		t.Errorf("Verify scopes = %q, want [licences/write licences/read]", got.Scopes)
	}

	again, _ := dev.Mint("member-42", "gold", nil, time.Hour, t0)
	if again == tok {
		t.Errorf("Mint twice = the same token, want distinct jti")
	}
}

func TestDevIssuerRejects(t *testing.T) {
	key := fixedKey("dev", 3)
	dev := devidp.NewDevIssuer(devIssuer, devAudience, key)
	mint := func(d *devidp.DevIssuer) string {
		tok, err := d.Mint("member-42", "gold", []string{"licences/read"}, time.Hour, t0)
		if err != nil {
			t.Fatalf("Mint = %v", err)
		}
		return tok
	}
	good := mint(dev)
	hs256 := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": devIssuer, "aud": devAudience, "sub": "member-42", "iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix(),
	})
	hs256.Header["kid"] = "dev"
	forged, err := hs256.SignedString([]byte(key.Public()))
	if err != nil {
		t.Fatal(err)
	}
	exp := t0.Add(time.Hour)
	tests := []struct {
		name  string
		token string
		now   time.Time
		want  error
	}{
		{"wrong audience", mint(devidp.NewDevIssuer(devIssuer, "other-app", key)), t0, tokens.ErrInvalidToken},
		{"wrong issuer", mint(devidp.NewDevIssuer("https://evil.test", devAudience, key)), t0, tokens.ErrInvalidToken},
		{"other key, same kid", mint(devidp.NewDevIssuer(devIssuer, devAudience, fixedKey("dev", 4))), t0, tokens.ErrInvalidToken},
		{"unknown kid", mint(devidp.NewDevIssuer(devIssuer, devAudience, fixedKey("other", 3))), t0, tokens.ErrUnknownKey},
		{"HS256 with public key", forged, t0, tokens.ErrInvalidToken},
		{"expired past leeway", good, exp.Add(devidp.DevLeeway + time.Second), tokens.ErrExpired},
		{"issued in the future past leeway", good, t0.Add(-devidp.DevLeeway - time.Second), tokens.ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dev.Verify(tt.token, tt.now)
			if !errors.Is(err, tt.want) || !errors.Is(err, tokens.ErrInvalidToken) {
				t.Errorf("Verify(%s) = %v, %v, want %v", tt.name, got, err, tt.want)
			}
		})
	}
	for _, now := range []time.Time{exp.Add(devidp.DevLeeway - time.Second), t0.Add(-devidp.DevLeeway + time.Second)} {
		if _, err := dev.Verify(good, now); err != nil {
			t.Errorf("Verify(at %s, within leeway) = %v, want nil", now.Sub(t0), err)
		}
	}
}

// Claims are rendered as API Gateway's JWT authorizer renders them.
func TestDevIssuerRendersClaims(t *testing.T) {
	key := fixedKey("dev", 3)
	dev := devidp.NewDevIssuer(devIssuer, devAudience, key)
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss": devIssuer, "aud": []string{devAudience, "other"}, "sub": "member-42",
		"iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix(), "auth_time": json.Number("1793613600"),
		"cognito:groups": []string{"admins", "members"}, "email_verified": true,
		"ratio": 0.5, "address": map[string]any{"country": "NZ"},
		"scp": []string{"a", "b"},
	})
	tok.Header["kid"] = "dev"
	signed, err := tok.SignedString(key.Private)
	if err != nil {
		t.Fatal(err)
	}
	got, err := dev.Verify(signed, t0)
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	want := map[string]string{
		"aud": "[dlicense-local other]", "cognito:groups": "[admins members]", "email_verified": "true",
		"exp": strconv.FormatInt(t0.Add(time.Hour).Unix(), 10), "auth_time": "1793613600",
		"ratio": "0.5", "address": `{"country":"NZ"}`,
	}
	for k, v := range want {
		if got.Values[k] != v {
			t.Errorf("Verify claim %s = %q, want %q", k, got.Values[k], v)
		}
	}
	if !slices.Equal(got.Scopes, []string{"a", "b"}) {
		t.Errorf("Verify scopes (from scp) = %q, want [a b]", got.Scopes)
	}
}

func TestDevIssuerMintRefuses(t *testing.T) {
	dev := devidp.NewDevIssuer(devIssuer, devAudience, fixedKey("dev", 3))
	broken := devidp.NewDevIssuer(devIssuer, devAudience, tokens.Key{ID: "dev"})
	tests := []struct {
		name   string
		d      *devidp.DevIssuer
		member string
		scopes []string
		ttl    time.Duration
	}{
		{"no member", dev, "", nil, time.Hour},
		{"no ttl", dev, "m", nil, 0},
		{"scope with space", dev, "m", []string{"a b"}, time.Hour},
		{"no key", broken, "m", nil, time.Hour},
	}
	for _, tt := range tests {
		if tok, err := tt.d.Mint(tt.member, "gold", tt.scopes, tt.ttl, t0); err == nil {
			t.Errorf("Mint(%s) = %q, want error", tt.name, tok)
		}
	}
	if got := string(broken.JWKS()); got != `{"keys":[]}` {
		t.Errorf("JWKS() of a keyless issuer = %s, want an empty set", got)
	}
}

func TestDevIssuerJWKS(t *testing.T) {
	key := fixedKey("dev", 3)
	dev := devidp.NewDevIssuer(devIssuer, devAudience, key)
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(dev.JWKS(), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS() = %s (%v), want one key", dev.JWKS(), err)
	}
	if k := set.Keys[0]; k["kid"] != "dev" || k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" {
		t.Errorf("JWKS() key = %v, want dev's OKP Ed25519 EdDSA key", k)
	}
}

// TestVerifyRefusesMemberToken: a member token signed with a licence key
// is no licence token.
func TestVerifyRefusesMemberToken(t *testing.T) {
	k := fixedKey("k1", 1)
	s := signer(t, k)
	dev := devidp.NewDevIssuer("dlicense", "app", k)
	tok, err := dev.Mint("member-42", "gold", nil, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.Verify(tok, s.JWKS(), "dlicense", t0); !errors.Is(err, tokens.ErrInvalidToken) {
		t.Errorf("Verify(member token under the same key) = %v, want ErrInvalidToken", err)
	}
}

func fixedKey(kid string, b byte) tokens.Key {
	return tokens.Key{ID: kid, Private: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))}
}

func signer(t *testing.T, keys ...tokens.Key) *tokens.Signer {
	t.Helper()
	s, err := tokens.NewSigner("dlicense", keys)
	if err != nil {
		t.Fatalf("NewSigner = %v", err)
	}
	return s
}
func header(t *testing.T, tok string) map[string]any {
	t.Helper()
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatalf("ParseUnverified = %v", err)
	}
	return parsed.Header
}

// seedForms are the encodings of a key's seed an error must never contain.
