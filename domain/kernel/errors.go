package kernel

import (
	"errors"
	"fmt"
)

// Kind is the closed set of error kinds the services report. Adapters map a
// kind to a transport status in one place; the kind never carries internal
// text.
type Kind string

// The error kinds. Their string values are stable and part of the API.
const (
	KindInvalid      Kind = "INVALID"
	KindNotFound     Kind = "NOT_FOUND"
	KindConflict     Kind = "CONFLICT"
	KindDenied       Kind = "DENIED"
	KindUnauthorized Kind = "UNAUTHORIZED"
	KindForbidden    Kind = "FORBIDDEN"
	KindUnavailable  Kind = "UNAVAILABLE"
	KindInternal     Kind = "INTERNAL"
)

// Codes every service answers with. They are stable and part of the API.
const (
	// CodeInvalidInput: a field or parameter is missing or out of range.
	CodeInvalidInput = "INVALID_INPUT"
	// CodeKeyReused: an idempotency key reused with a different request.
	CodeKeyReused = "IDEMPOTENCY_KEY_REUSED"
	// CodeContention: a command kept losing races for its member's data.
	CodeContention = "CONTENTION"
	// CodeStoreUnavailable: the store failed in a way that may pass
	// (throttling, a 5xx, a lost connection, a timeout); clients retry
	// with the same key.
	CodeStoreUnavailable = "STORE_UNAVAILABLE"
)

// Error is a domain error with a kind, a stable code and a message that is
// safe to show to a client.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	// Field names the offending input, when there is one.
	Field string
	// Cause is the underlying failure, for logs; it is never shown to clients.
	Cause error
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Code, e.Message, e.Field)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// ErrorKind is the error's kind (Kinded).
func (e *Error) ErrorKind() Kind { return e.Kind }

// Errorf builds an *Error of the given kind and code.
func Errorf(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid builds a KindInvalid error with CodeInvalidInput naming the field
// at fault.
func Invalid(field, format string, args ...any) *Error {
	e := Errorf(KindInvalid, CodeInvalidInput, format, args...)
	e.Field = field
	return e
}

// Unavailable is the error of a store call that failed in a way that may
// pass: KindUnavailable, CodeStoreUnavailable, with message for clients
// and cause for logs.
func Unavailable(message string, cause error) *Error {
	return &Error{Kind: KindUnavailable, Code: CodeStoreUnavailable, Message: message, Cause: cause}
}

// Kinded is an error that knows its kind: *Error, and the domains' own
// error types (a refusal listing rules, a version conflict).
type Kinded interface {
	error
	ErrorKind() Kind
}

// KindOf returns the kind of err: that of the first error in its chain that
// knows its kind (Kinded), and KindInternal if none does.
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	var k Kinded
	if errors.As(err, &k) {
		return k.ErrorKind()
	}
	return KindInternal
}
