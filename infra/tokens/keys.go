// Package tokens signs and verifies the service's JSON Web Tokens: the
// licence tokens DRM licence servers check against the published key set,
// and, for local runs, the member tokens of a development identity provider
// that stands in for Cognito and API Gateway's JWT authorizer.
//
// All tokens are EdDSA (Ed25519) JWS; verification accepts no other alg.
package tokens

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// Key is a named Ed25519 signing key.
type Key struct {
	ID      string
	Private ed25519.PrivateKey
}

// ParseKeys reads keys from configuration: a comma-separated list of
// kid:base64(seed), where seed is the 32-byte Ed25519 seed in standard or
// unpadded URL-safe base64. Errors name the bad entry by position (and kid)
// and wrap ErrInvalidKey; they never quote key material.
func ParseKeys(spec string) ([]Key, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, fmt.Errorf("tokens: %w: no keys configured", ErrInvalidKey)
	}
	entries := strings.Split(spec, ",")
	keys := make([]Key, 0, len(entries))
	seen := make(map[string]bool, len(entries))
	for i, entry := range entries {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return nil, fmt.Errorf("tokens: %w: entry %d is empty", ErrInvalidKey, i+1)
		}
		kid, enc, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf("tokens: %w: entry %d: want kid:base64(seed)", ErrInvalidKey, i+1)
		}
		kid, enc = strings.TrimSpace(kid), strings.TrimSpace(enc)
		name := entryName(i, kid)
		if err := checkKID(kid); err != nil {
			return nil, fmt.Errorf("tokens: %w: %s: %v", ErrInvalidKey, name, err)
		}
		seed, ok := decodeSeed(enc)
		if !ok {
			return nil, fmt.Errorf("tokens: %w: %s: seed is not base64 (standard or raw URL-safe)", ErrInvalidKey, name)
		}
		if len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("tokens: %w: %s: seed is %d bytes, want %d", ErrInvalidKey, name, len(seed), ed25519.SeedSize)
		}
		if seen[kid] {
			return nil, fmt.Errorf("tokens: %w: %s: duplicate kid", ErrInvalidKey, name)
		}
		seen[kid] = true
		keys = append(keys, Key{ID: kid, Private: ed25519.NewKeyFromSeed(seed)})
	}
	return keys, nil
}

// GenerateKey returns a fresh random key named kid.
func GenerateKey(kid string) (Key, error) {
	if err := checkKID(kid); err != nil {
		return Key{}, fmt.Errorf("tokens: %w: %v", ErrInvalidKey, err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("tokens: generate key %q: %w", kid, err)
	}
	return Key{ID: kid, Private: priv}, nil
}

// Encode returns the key in the kid:base64(seed) form ParseKeys reads. It
// is secret: put it in a secret store, never in a log. A key that is not a
// valid Ed25519 private key encodes with an empty seed, which ParseKeys
// refuses.
func (k Key) Encode() string {
	if len(k.Private) != ed25519.PrivateKeySize {
		return k.ID + ":"
	}
	return k.ID + ":" + base64.StdEncoding.EncodeToString(k.Private.Seed())
}

// Public returns the key's public half.
func (k Key) Public() ed25519.PublicKey {
	if len(k.Private) != ed25519.PrivateKeySize {
		return nil
	}
	return k.Private.Public().(ed25519.PublicKey)
}

// String names the key without its material, so a key printed by mistake
// (%v, %s, %+v) leaks nothing.
func (k Key) String() string { return fmt.Sprintf("tokens.Key{ID: %q}", k.ID) }

// GoString is String for %#v.
func (k Key) GoString() string { return k.String() }

// Check reports whether k can sign.
func (k Key) Check() error {
	if err := checkKID(k.ID); err != nil {
		return err
	}
	if len(k.Private) != ed25519.PrivateKeySize {
		return fmt.Errorf("key %q is not an Ed25519 private key", k.ID)
	}
	return nil
}

// checkKID keeps kids printable and free of the list syntax.
func checkKID(kid string) error {
	if kid == "" {
		return fmt.Errorf("empty kid")
	}
	if strings.ContainsAny(kid, ",: \t\r\n\"") {
		return fmt.Errorf("kid has a space, quote, comma or colon")
	}
	return nil
}

var seedEncodings = []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding}

func decodeSeed(s string) ([]byte, bool) {
	for _, enc := range seedEncodings {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

// entryName names a configuration entry in an error. The kid is named only
// when it could not itself be a seed, for an entry written seed:kid must not
// leak the seed through its "kid".
func entryName(i int, kid string) string {
	if b, ok := decodeSeed(kid); (ok && len(b) >= 16) || len(kid) > 40 || checkKID(kid) != nil {
		return fmt.Sprintf("entry %d", i+1)
	}
	return fmt.Sprintf("entry %d (kid %q)", i+1, kid)
}
