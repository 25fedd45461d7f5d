package tokens_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/tokens"
)

const issuer = "https://licences.dlicense.test"

var (
	t0      = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	licence = licensing.LicenceStatus{
		ID: "lic-1", Title: "title-9", Studio: "studio-3", Device: "dev-7",
		Status:   licensing.StatusActive,
		IssuedAt: t0, ExpiresAt: t0.Add(48 * time.Hour), PlayableUntil: t0.Add(48 * time.Hour),
		Renewals: 1,
	}
)

// fixedKey is a key whose seed is 32 copies of b.
func fixedKey(kid string, b byte) tokens.Key {
	return tokens.Key{ID: kid, Private: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))}
}

func newSigner(t *testing.T, keys ...tokens.Key) *tokens.Signer {
	t.Helper()
	s, err := tokens.NewSigner(issuer, keys)
	if err != nil {
		t.Fatalf("NewSigner = %v", err)
	}
	return s
}

func sign(t *testing.T, s *tokens.Signer, l licensing.LicenceStatus) string {
	t.Helper()
	tok, err := s.Sign(l, "member-42", "policy-7")
	if err != nil {
		t.Fatalf("Sign = %v", err)
	}
	return tok
}

// header returns a token's decoded header, unverified.
func header(t *testing.T, tok string) map[string]any {
	t.Helper()
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatalf("ParseUnverified = %v", err)
	}
	return parsed.Header
}

// seedForms are the encodings of a key's seed an error must never contain.
func seedForms(k tokens.Key) []string {
	seed := k.Private.Seed()
	return []string{
		base64.StdEncoding.EncodeToString(seed),
		base64.RawURLEncoding.EncodeToString(seed),
		base64.RawStdEncoding.EncodeToString(seed)[:20],
	}
}

func assertNoSeed(t *testing.T, text string, k tokens.Key) {
	t.Helper()
	for _, f := range seedForms(k) {
		if strings.Contains(text, f) {
			t.Errorf("%q contains key material", text)
		}
	}
}
