package tokens

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dlicense/dlicense/domain/licensing"
)

// LicenceType is the typ header of licence tokens; verifiers require it so
// no other token signed with the same keys passes for a licence (RFC 8725 §3.11).
const LicenceType = "licence+jwt"

// Signer signs licence tokens with its first key and publishes all its keys.
// To rotate, first publish the new key (append it), and once relying parties
// have fetched the set, make it first; drop the old key when its last
// tokens have expired.
type Signer struct {
	issuer string
	key    Key
	jwks   []byte
}

// NewSigner returns a signer for issuer. The first key signs; every key is
// published. Keys must be valid and their kids distinct.
func NewSigner(issuer string, keys []Key) (*Signer, error) {
	if issuer == "" {
		return nil, errors.New("tokens: new signer: empty issuer")
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("tokens: new signer: %w: no keys", ErrInvalidKey)
	}
	seen := make(map[string]bool, len(keys))
	for i, k := range keys {
		if err := k.Check(); err != nil {
			return nil, fmt.Errorf("tokens: new signer: %w: key %d: %v", ErrInvalidKey, i, err)
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("tokens: new signer: %w: key %d: duplicate kid %q", ErrInvalidKey, i, k.ID)
		}
		seen[k.ID] = true
	}
	return &Signer{issuer: issuer, key: keys[0], jwks: EncodeJWKS(keys)}, nil
}

// KeyID is the kid new tokens are signed under.
func (s *Signer) KeyID() string { return s.key.ID }

// JWKS is the published JSON Web Key Set (RFC 7517, RFC 8037) of every key.
func (s *Signer) JWKS() []byte { return append([]byte(nil), s.jwks...) }

// Sign returns the licence token for l held by member under policyVersion.
// It is a pure function of its inputs and the signing key: the token's
// times are the licence's (iat and nbf its issue, exp its playable-until,
// in whole seconds, rounded down), so re-signing an unchanged licence gives
// the same token.
func (s *Signer) Sign(l licensing.LicenceStatus, member, policyVersion string) (string, error) {
	switch {
	case l.ID == "" || member == "" || l.Device == "" || l.Title == "":
		return "", fmt.Errorf("tokens: sign licence %q: licence, member, device and title ids are required", l.ID)
	case l.IssuedAt.IsZero() || !l.PlayableUntil.After(l.IssuedAt):
		return "", fmt.Errorf("tokens: sign licence %q: playable-until %s is not after issue %s", l.ID,
			l.PlayableUntil.Format(time.RFC3339), l.IssuedAt.Format(time.RFC3339))
	}
	claims := licenceToken{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.issuer,
			Subject:   member,
			ID:        l.ID,
			IssuedAt:  jwt.NewNumericDate(l.IssuedAt),
			NotBefore: jwt.NewNumericDate(l.IssuedAt),
			ExpiresAt: jwt.NewNumericDate(l.PlayableUntil),
		},
		Lic: &licClaim{
			LicenceID:     l.ID,
			MemberID:      member,
			DeviceID:      l.Device,
			TitleID:       l.Title,
			StudioID:      l.Studio,
			ExpiresAt:     rfc3339(l.ExpiresAt),
			PlayableUntil: rfc3339(l.PlayableUntil),
			Renewals:      l.Renewals,
			PolicyVersion: policyVersion,
		},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = s.key.ID
	tok.Header["typ"] = LicenceType
	signed, err := tok.SignedString(s.key.Private)
	if err != nil {
		return "", fmt.Errorf("tokens: sign licence %q: %w", l.ID, err)
	}
	return signed, nil
}

// LicenceClaims are the verified claims of a licence token.
type LicenceClaims struct {
	Issuer    string    // iss
	Member    string    // sub
	ID        string    // jti: the licence id
	IssuedAt  time.Time // iat
	NotBefore time.Time // nbf
	ExpiresAt time.Time // exp: the licence's playable-until
	Licence   Grant     // lic
}

// Grant is the lic claim: what the licence lets the member play, where, and
// until when.
type Grant struct {
	LicenceID     string
	MemberID      string
	DeviceID      string
	TitleID       string
	StudioID      string
	ExpiresAt     time.Time
	PlayableUntil time.Time
	Renewals      int
	PolicyVersion string
}

// Verify checks a licence token as a DRM licence server does: it picks the
// key by kid from jwks, accepts EdDSA only and the licence token type only,
// requires issuer, and checks exp and nbf against now without leeway.
// Failures wrap ErrInvalidToken (and ErrExpired or ErrUnknownKey where
// they apply); a key set that cannot be read wraps ErrInvalidKey.
func Verify(token string, jwks []byte, issuer string, now time.Time) (*LicenceClaims, error) {
	if issuer == "" || now.IsZero() {
		return nil, errors.New("tokens: verify: issuer and time are required")
	}
	keys, err := parseJWKS(jwks)
	if err != nil {
		return nil, err
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithExpirationRequired(),
		jwt.WithNotBeforeRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
	)
	var c licenceToken
	if _, err := p.ParseWithClaims(token, &c, KeyByKID(keys, LicenceType)); err != nil {
		return nil, InvalidToken(err)
	}
	return c.verified()
}

// KeyByKID looks a token's key up by its kid header, after checking its typ.
func KeyByKID(keys map[string]ed25519.PublicKey, typ string) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if typ != "" && t.Header["typ"] != typ {
			return nil, fmt.Errorf("typ %v, want %q", t.Header["typ"], typ)
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid header")
		}
		k, ok := keys[kid]
		if !ok {
			return nil, fmt.Errorf("kid %q: %w", kid, ErrUnknownKey)
		}
		return k, nil
	}
}

// licenceToken is the wire form of a licence token's claims.
type licenceToken struct {
	jwt.RegisteredClaims
	Lic *licClaim `json:"lic"`
}

type licClaim struct {
	LicenceID     string `json:"licence_id"`
	MemberID      string `json:"member_id"`
	DeviceID      string `json:"device_id"`
	TitleID       string `json:"title_id"`
	StudioID      string `json:"studio_id"`
	ExpiresAt     string `json:"expires_at"`
	PlayableUntil string `json:"playable_until"`
	Renewals      int    `json:"renewals"`
	PolicyVersion string `json:"policy_version"`
}

// verified checks what the JWT library does not know about (the lic claim
// agrees with sub and jti) and returns the typed claims.
func (c *licenceToken) verified() (*LicenceClaims, error) {
	bad := func(format string, a ...any) error { return InvalidToken(fmt.Errorf(format, a...)) }
	l := c.Lic
	switch {
	case c.Subject == "" || c.ID == "" || c.IssuedAt == nil:
		return nil, bad("sub, jti and iat are required")
	case l == nil:
		return nil, bad("no lic claim")
	case l.LicenceID != c.ID || l.MemberID != c.Subject:
		return nil, bad("lic names licence %q of %q, token %q of %q", l.LicenceID, l.MemberID, c.ID, c.Subject)
	}
	expires, err1 := time.Parse(time.RFC3339, l.ExpiresAt)
	playable, err2 := time.Parse(time.RFC3339, l.PlayableUntil)
	if err := errors.Join(err1, err2); err != nil {
		return nil, bad("lic times: %w", err)
	}
	return &LicenceClaims{
		Issuer: c.Issuer, Member: c.Subject, ID: c.ID,
		IssuedAt: c.IssuedAt.UTC(), NotBefore: c.NotBefore.UTC(), ExpiresAt: c.ExpiresAt.UTC(),
		Licence: Grant{
			LicenceID: l.LicenceID, MemberID: l.MemberID, DeviceID: l.DeviceID,
			TitleID: l.TitleID, StudioID: l.StudioID,
			ExpiresAt: expires, PlayableUntil: playable,
			Renewals: l.Renewals, PolicyVersion: l.PolicyVersion,
		},
	}, nil
}

// Stated is the licence as the token states it: active (Verify checked it
// has not expired), as of when it was signed. Releases, plays and
// revocations since then are in the member's log, not here.
func (c *LicenceClaims) Stated() licensing.LicenceStatus {
	g := c.Licence
	return licensing.LicenceStatus{
		ID: g.LicenceID, Title: g.TitleID, Studio: g.StudioID, Device: g.DeviceID, Status: licensing.StatusActive,
		IssuedAt: c.IssuedAt, ExpiresAt: g.ExpiresAt, PlayableUntil: g.PlayableUntil, Renewals: g.Renewals,
	}
}

// rfc3339 renders t in UTC to the second, as exp and nbf are.
func rfc3339(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

// DerivedSecret is a secret for another use (label), derived from the
// signing key: every instance with the same keys derives the same one, and
// it reveals nothing of the key. It changes when the signing key rotates.
func (s *Signer) DerivedSecret(label string) []byte {
	mac := hmac.New(sha256.New, s.key.Private.Seed())
	mac.Write([]byte("dlicense derived secret: " + label))
	return mac.Sum(nil)
}
