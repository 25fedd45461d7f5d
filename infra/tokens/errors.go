package tokens

import (
	"errors"
	"slices"

	"github.com/golang-jwt/jwt/v5"
)

// Errors callers classify with errors.Is. Their text and the text of the
// errors wrapping them never contain key material.
var (
	// ErrInvalidKey reports a key, key list or key set that cannot be used:
	// a configuration fault, not a caller's.
	ErrInvalidKey = errors.New("invalid key")
	// ErrInvalidToken reports a token that failed verification for any
	// reason; every verification error matches it.
	ErrInvalidToken = errors.New("invalid token")
	// ErrExpired reports a token past its exp (it also matches ErrInvalidToken).
	ErrExpired = errors.New("token expired")
	// ErrUnknownKey reports a token signed under a kid the key set does not
	// publish (it also matches ErrInvalidToken).
	ErrUnknownKey = errors.New("unknown signing key")
)

// tokenError is a failed verification: it matches ErrInvalidToken, the
// kinds it carries and everything in the underlying error's chain.
type tokenError struct {
	kinds []error
	err   error
}

func (e *tokenError) Error() string { return "tokens: invalid token: " + e.err.Error() }

func (e *tokenError) Unwrap() []error { return append(slices.Clone(e.kinds), e.err) }

// InvalidToken classifies a verification failure.
func InvalidToken(err error) error {
	kinds := []error{ErrInvalidToken}
	if errors.Is(err, jwt.ErrTokenExpired) {
		kinds = append(kinds, ErrExpired)
	}
	return &tokenError{kinds: kinds, err: err}
}
