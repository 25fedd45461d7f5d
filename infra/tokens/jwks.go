package tokens

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// jwk is an RFC 8037 Ed25519 public key as a JSON Web Key.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	// D is read only to refuse a set that publishes a private key.
	D string `json:"d,omitempty"`
}

type jwkSet struct {
	Keys []jwk `json:"keys"`
}

// EncodeJWKS publishes the public halves of keys, in order.
func EncodeJWKS(keys []Key) []byte {
	set := jwkSet{Keys: make([]jwk, 0, len(keys))}
	for _, k := range keys {
		set.Keys = append(set.Keys, jwk{
			Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k.Public()),
			Kid: k.ID, Use: "sig", Alg: "EdDSA",
		})
	}
	b, err := json.Marshal(set)
	if err != nil {
		panic(fmt.Sprintf("tokens: marshal key set: %v", err)) // strings and byte slices always marshal
	}
	return b
}

// parseJWKS reads the Ed25519 signing keys of a key set by kid, as a
// relying party would: keys of other types or uses are skipped, but a
// malformed Ed25519 key, a duplicate kid or private material fails the set.
func parseJWKS(b []byte) (map[string]ed25519.PublicKey, error) {
	var set jwkSet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("tokens: %w: key set is not JSON: %v", ErrInvalidKey, err)
	}
	keys := make(map[string]ed25519.PublicKey, len(set.Keys))
	for i, k := range set.Keys {
		if k.D != "" {
			return nil, fmt.Errorf("tokens: %w: key set entry %d holds a private key", ErrInvalidKey, i)
		}
		if k.Kty != "OKP" || k.Crv != "Ed25519" || (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != "EdDSA") || k.Kid == "" {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("tokens: %w: key set entry %d (kid %q): x is not a base64url Ed25519 public key", ErrInvalidKey, i, k.Kid)
		}
		if _, dup := keys[k.Kid]; dup {
			return nil, fmt.Errorf("tokens: %w: key set entry %d: duplicate kid %q", ErrInvalidKey, i, k.Kid)
		}
		keys[k.Kid] = ed25519.PublicKey(x)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("tokens: %w: key set has no Ed25519 signing keys", ErrInvalidKey)
	}
	return keys, nil
}
