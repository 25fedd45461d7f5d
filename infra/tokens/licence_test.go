package tokens_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/tokens"
)

func TestSignVerifyRoundTrip(t *testing.T) {
	s := newSigner(t, fixedKey("k1", 1))
	tok := sign(t, s, licence)

	h := header(t, tok)
	if h["alg"] != "EdDSA" || h["kid"] != "k1" || h["typ"] != "licence+jwt" {
		t.Errorf("header = %v, want alg EdDSA, kid k1, typ licence+jwt", h)
	}
	got, err := tokens.Verify(tok, s.JWKS(), issuer, t0.Add(time.Hour))
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	want := tokens.LicenceClaims{
		Issuer: issuer, Member: "member-42", ID: "lic-1",
		IssuedAt: t0, NotBefore: t0, ExpiresAt: licence.PlayableUntil,
		Licence: tokens.Grant{
			LicenceID: "lic-1", MemberID: "member-42", DeviceID: "dev-7", TitleID: "title-9", StudioID: "studio-3",
			ExpiresAt: licence.ExpiresAt, PlayableUntil: licence.PlayableUntil, Renewals: 1, PolicyVersion: "policy-7",
		},
	}
	if *got != want {
		t.Errorf("Verify = %+v, want %+v", *got, want)
	}
}

func TestSignWireClaims(t *testing.T) {
	tok := sign(t, newSigner(t, fixedKey("k1", 1)), licence)
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(payload, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"iss": issuer, "sub": "member-42", "jti": "lic-1",
		"iat": float64(t0.Unix()), "nbf": float64(t0.Unix()), "exp": float64(t0.Add(48 * time.Hour).Unix()),
		"lic": map[string]any{
			"licence_id": "lic-1", "member_id": "member-42", "device_id": "dev-7", "title_id": "title-9",
			"studio_id": "studio-3", "expires_at": "2026-11-04T10:00:00Z", "playable_until": "2026-11-04T10:00:00Z",
			"renewals": float64(1), "policy_version": "policy-7",
		},
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("payload = %s, want %s", gotJSON, wantJSON)
	}
}

func TestSignDeterministic(t *testing.T) {
	a := sign(t, newSigner(t, fixedKey("k1", 1)), licence)
	b := sign(t, newSigner(t, fixedKey("k1", 1), fixedKey("k2", 2)), licence)
	if a != b {
		t.Errorf("Sign twice = %q and %q, want the same token", a, b)
	}
	renewed := licence
	renewed.Renewals, renewed.PlayableUntil = 2, licence.PlayableUntil.Add(24*time.Hour)
	if c := sign(t, newSigner(t, fixedKey("k1", 1)), renewed); c == a {
		t.Errorf("Sign(renewed) = the first token, want a new one")
	}
}

func TestSignRefusesBadLicence(t *testing.T) {
	s := newSigner(t, fixedKey("k1", 1))
	noID, backwards := licence, licence
	noID.ID = ""
	backwards.PlayableUntil = licence.IssuedAt
	tests := []struct {
		name   string
		status licensing.LicenceStatus
		member string
	}{
		{"no licence id", noID, "m"},
		{"no member", licence, ""},
		{"playable until = issued", backwards, "m"},
	}
	for _, tt := range tests {
		if tok, err := s.Sign(tt.status, tt.member, "p"); err == nil {
			t.Errorf("Sign(%s) = %q, want error", tt.name, tok)
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	k1 := fixedKey("k1", 1)
	s := newSigner(t, k1)
	good := sign(t, s, licence)
	now := t0.Add(time.Hour)
	parts := strings.Split(good, ".")

	// A valid signature under a key the set does not publish, once under
	// another kid and once under the published kid.
	stranger := sign(t, newSigner(t, fixedKey("k9", 9)), licence)
	impostor := sign(t, newSigner(t, fixedKey("k1", 9)), licence)

	// The payload with exp moved a year on, under the original signature.
	var claims map[string]any
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	claims["exp"] = float64(t0.AddDate(1, 0, 0).Unix())
	payload, _ = json.Marshal(claims)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]

	pub := []byte(k1.Public())
	forged := func(m jwt.SigningMethod, key any) string {
		tok := jwt.NewWithClaims(m, jwt.MapClaims(claims))
		tok.Header["kid"], tok.Header["typ"] = "k1", "licence+jwt"
		out, err := tok.SignedString(key)
		if err != nil {
			t.Fatalf("forge %s: %v", m.Alg(), err)
		}
		return out
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	// The same claims, correctly signed, with the wrong typ or no kid.
	resigned := func(edit func(h map[string]any)) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims(claims))
		tok.Header["kid"], tok.Header["typ"] = "k1", "licence+jwt"
		edit(tok.Header)
		out, err := tok.SignedString(k1.Private)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	tests := []struct {
		name  string
		token string
		now   time.Time
		iss   string
		want  error
	}{
		{"unknown kid", stranger, now, issuer, tokens.ErrUnknownKey},
		{"wrong key under known kid", impostor, now, issuer, tokens.ErrInvalidToken},
		{"tampered payload", tampered, now, issuer, tokens.ErrInvalidToken},
		{"tampered signature", good[:len(good)-4] + "AAAA", now, issuer, tokens.ErrInvalidToken},
		{"alg none", forged(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType), now, issuer, tokens.ErrInvalidToken},
		{"HS256 with public key", forged(jwt.SigningMethodHS256, pub), now, issuer, tokens.ErrInvalidToken},
		{"HS512 with public key", forged(jwt.SigningMethodHS512, pub), now, issuer, tokens.ErrInvalidToken},
		{"ES256", forged(jwt.SigningMethodES256, ecKey), now, issuer, tokens.ErrInvalidToken},
		{"RS256", forged(jwt.SigningMethodRS256, rsaKey), now, issuer, tokens.ErrInvalidToken},
		{"wrong typ", resigned(func(h map[string]any) { h["typ"] = "JWT" }), now, issuer, tokens.ErrInvalidToken},
		{"no kid", resigned(func(h map[string]any) { delete(h, "kid") }), now, issuer, tokens.ErrInvalidToken},
		{"expired", good, licence.PlayableUntil, issuer, tokens.ErrExpired},
		{"long expired", good, licence.PlayableUntil.Add(24 * time.Hour), issuer, tokens.ErrExpired},
		{"not yet valid", good, t0.Add(-time.Second), issuer, tokens.ErrInvalidToken},
		{"wrong issuer", good, now, "https://evil.test", tokens.ErrInvalidToken},
		{"garbage", "not.a.token", now, issuer, tokens.ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tokens.Verify(tt.token, s.JWKS(), tt.iss, tt.now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify(%s) = %+v, %v, want %v", tt.name, got, err, tt.want)
			}
			if !errors.Is(err, tokens.ErrInvalidToken) {
				t.Errorf("Verify(%s) = %v, want it to match ErrInvalidToken", tt.name, err)
			}
			assertNoSeed(t, err.Error(), k1)
		})
	}
	// The last second of the licence still verifies.
	if _, err := tokens.Verify(good, s.JWKS(), issuer, licence.PlayableUntil.Add(-time.Second)); err != nil {
		t.Errorf("Verify(last second) = %v, want nil", err)
	}
}

func TestVerifyBadKeySet(t *testing.T) {
	tok := sign(t, newSigner(t, fixedKey("k1", 1)), licence)
	k := fixedKey("k1", 1)
	x := base64.RawURLEncoding.EncodeToString(k.Public())
	d := base64.RawURLEncoding.EncodeToString(k.Private.Seed())
	for _, set := range []string{
		``, `[]`, `{"keys":[]}`,
		`{"keys":[{"kty":"RSA","kid":"k1","n":"AQAB","e":"AQAB"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"AAAA"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"` + x + `","d":"` + d + `"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"` + x + `"},{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"` + x + `"}]}`,
	} {
		_, err := tokens.Verify(tok, []byte(set), issuer, t0)
		if !errors.Is(err, tokens.ErrInvalidKey) {
			t.Errorf("Verify(key set %s) = %v, want ErrInvalidKey", set, err)
		} else {
			assertNoSeed(t, err.Error(), k)
		}
	}
}

func TestRotation(t *testing.T) {
	old, next := fixedKey("2026-01", 1), fixedKey("2026-02", 2)
	before := newSigner(t, old)
	publishing := newSigner(t, old, next) // step 1: publish the new key
	rotated := newSigner(t, next, old)    // step 2: sign with it

	if got := header(t, sign(t, publishing, licence))["kid"]; got != "2026-01" {
		t.Errorf("publishing signer kid = %v, want 2026-01", got)
	}
	newTok := sign(t, rotated, licence)
	if got := header(t, newTok)["kid"]; got != "2026-02" || rotated.KeyID() != "2026-02" {
		t.Errorf("rotated signer kid = %v (KeyID %q), want 2026-02", got, rotated.KeyID())
	}
	oldTok := sign(t, before, licence)
	for _, jwks := range [][]byte{publishing.JWKS(), rotated.JWKS()} {
		for _, tok := range []string{oldTok, newTok} {
			if _, err := tokens.Verify(tok, jwks, issuer, t0); err != nil {
				t.Errorf("Verify(kid %v) with both keys published = %v, want nil", header(t, tok)["kid"], err)
			}
		}
	}
	if _, err := tokens.Verify(newTok, before.JWKS(), issuer, t0); !errors.Is(err, tokens.ErrUnknownKey) {
		t.Errorf("Verify(new token, old set) = %v, want ErrUnknownKey", err)
	}
}

func TestNewSignerRefuses(t *testing.T) {
	k := fixedKey("k1", 1)
	tests := []struct {
		name   string
		issuer string
		keys   []tokens.Key
	}{
		{"no issuer", "", []tokens.Key{k}},
		{"no keys", issuer, nil},
		{"duplicate kid", issuer, []tokens.Key{k, fixedKey("k1", 2)}},
		{"short key", issuer, []tokens.Key{{ID: "k1", Private: k.Private[:32]}}},
		{"empty kid", issuer, []tokens.Key{{Private: k.Private}}},
	}
	for _, tt := range tests {
		s, err := tokens.NewSigner(tt.issuer, tt.keys)
		if err == nil {
			t.Errorf("NewSigner(%s) = %v, want error", tt.name, s)
			continue
		}
		assertNoSeed(t, err.Error(), k)
	}
}

func TestJWKSShape(t *testing.T) {
	k1, k2 := fixedKey("k1", 1), fixedKey("k2", 2)
	var set map[string][]map[string]string
	if err := json.Unmarshal(newSigner(t, k1, k2).JWKS(), &set); err != nil {
		t.Fatalf("JWKS is not a key set: %v", err)
	}
	if len(set) != 1 || len(set["keys"]) != 2 {
		t.Fatalf("JWKS = %v, want {keys: [2 keys]}", set)
	}
	for i, k := range []tokens.Key{k1, k2} {
		want := map[string]string{
			"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(k.Public()),
			"kid": k.ID, "use": "sig", "alg": "EdDSA",
		}
		got := set["keys"][i]
		if len(got) != len(want) {
			t.Errorf("JWKS key %d = %v, want %v", i, got, want)
		}
		for name, v := range want {
			if got[name] != v {
				t.Errorf("JWKS key %d %s = %q, want %q", i, name, got[name], v)
			}
		}
	}
}
