// Package devidp is the identity provider of local runs and tests: it
// mints member tokens as Cognito would and verifies them as API Gateway's
// JWT authorizer does. Never linked into a Lambda.
package devidp

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dlicense/dlicense/infra/tokens"
)

// DevLeeway is the clock skew DevIssuer.Verify tolerates on exp, nbf and iat.
const DevLeeway = 30 * time.Second

// DevIssuer is the identity provider of local runs: it mints member access
// tokens as Cognito would and verifies them as API Gateway's JWT authorizer
// does, so handlers see the same request context locally as in the cloud.
// It is for development only: anyone holding its key is anyone.
type DevIssuer struct {
	issuer   string
	audience string
	key      tokens.Key
	jwks     []byte
}

// NewDevIssuer returns an identity provider named issuer minting tokens for
// audience (the app client id) with key. A key that cannot sign makes Mint
// and Verify fail.
func NewDevIssuer(issuer, audience string, key tokens.Key) *DevIssuer {
	d := &DevIssuer{issuer: issuer, audience: audience, key: key, jwks: []byte(`{"keys":[]}`)}
	if key.Check() == nil {
		d.jwks = tokens.EncodeJWKS([]tokens.Key{key})
	}
	return d
}

// JWKS is the issuer's published key set, for an authorizer to fetch.
func (d *DevIssuer) JWKS() []byte { return append([]byte(nil), d.jwks...) }

// Mint returns an access token for member on plan with scopes, valid for
// ttl from now: iss, aud, sub, plan, scope (space-separated, as Cognito
// writes it), iat, exp and a random jti.
func (d *DevIssuer) Mint(member, plan string, scopes []string, ttl time.Duration, now time.Time) (string, error) {
	if err := d.check(); err != nil {
		return "", err
	}
	switch {
	case member == "":
		return "", errors.New("tokens: mint: empty member")
	case ttl <= 0 || now.IsZero():
		return "", fmt.Errorf("tokens: mint for %q: need a positive ttl and a time", member)
	}
	for _, s := range scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return "", fmt.Errorf("tokens: mint for %q: scope %q is empty or has a space", member, s)
		}
	}
	jti, err := newUUID()
	if err != nil {
		return "", fmt.Errorf("tokens: mint for %q: %w", member, err)
	}
	// MapClaims, not RegisteredClaims, so aud is a string as Cognito writes
	// it rather than a one-element array.
	claims := jwt.MapClaims{
		"iss": d.issuer,
		"aud": d.audience,
		"sub": member,
		"iat": now.Unix(),
		"exp": now.Add(ttl).Unix(),
		"jti": jti,
	}
	if plan != "" {
		claims["plan"] = plan
	}
	if len(scopes) > 0 {
		claims["scope"] = strings.Join(scopes, " ")
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = d.key.ID
	signed, err := tok.SignedString(d.key.Private)
	if err != nil {
		return "", fmt.Errorf("tokens: mint for %q: %w", member, err)
	}
	return signed, nil
}

// Claims are a verified member token as API Gateway v2's JWT authorizer
// hands it to the integration (requestContext.authorizer.jwt).
type Claims struct {
	// Values are the token's claims rendered as strings: numbers as
	// written, arrays as "[a b]", objects as compact JSON.
	Values map[string]string
	// Scopes are the scope claim's entries (or the scp claim's), nil if none.
	Scopes []string
}

// Verify checks a member token as the JWT authorizer does: EdDSA under the
// issuer's kid, iss, aud, and exp, nbf and iat with DevLeeway. Failures
// wrap ErrInvalidToken.
func (d *DevIssuer) Verify(token string, now time.Time) (Claims, error) {
	if err := d.check(); err != nil {
		return Claims{}, err
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(d.issuer),
		jwt.WithAudience(d.audience),
		jwt.WithLeeway(DevLeeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithJSONNumber(),
	)
	keys := map[string]ed25519.PublicKey{d.key.ID: d.key.Public()}
	mc := jwt.MapClaims{}
	if _, err := p.ParseWithClaims(token, mc, tokens.KeyByKID(keys, "")); err != nil {
		return Claims{}, tokens.InvalidToken(err)
	}
	if sub, _ := mc["sub"].(string); sub == "" {
		return Claims{}, tokens.InvalidToken(errors.New("no sub claim"))
	}
	c := Claims{Values: make(map[string]string, len(mc))}
	for k, v := range mc {
		c.Values[k] = render(v)
	}
	if scope, ok := mc["scope"].(string); ok {
		c.Scopes = strings.Fields(scope)
	}
	if scp, ok := mc["scp"].([]any); ok && c.Scopes == nil {
		for _, s := range scp {
			c.Scopes = append(c.Scopes, render(s))
		}
	}
	return c, nil
}

func (d *DevIssuer) check() error {
	if d.issuer == "" || d.audience == "" {
		return errors.New("tokens: dev issuer: issuer and audience are required")
	}
	if err := d.key.Check(); err != nil {
		return fmt.Errorf("tokens: dev issuer: %w: %v", tokens.ErrInvalidKey, err)
	}
	return nil
}

// render writes a claim value the way the JWT authorizer does: strings
// bare, numbers as written, arrays space-separated in brackets.
func render(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = render(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case map[string]any:
		b, err := json.Marshal(v) // sorted keys: the rendering is stable
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	default:
		return fmt.Sprint(v)
	}
}

// newUUID returns a random (version 4) UUID, the form of Cognito's jti.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
