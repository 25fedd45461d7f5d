package licensing

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind is the closed set of error kinds the service reports. Adapters map a
// kind to a transport status in one place; the kind never carries internal text.
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

// Errorf builds an *Error of the given kind and code.
func Errorf(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// invalid builds a KindInvalid error naming the field at fault.
func invalid(field, code, format string, args ...any) *Error {
	e := Errorf(KindInvalid, code, format, args...)
	e.Field = field
	return e
}

// KindOf returns the kind of err: the kind of the first *Error or *Denial in
// its chain, KindConflict for a *ConflictError, and KindInternal otherwise.
func KindOf(err error) Kind {
	var e *Error
	var d *Denial
	var c *ConflictError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &d):
		return KindDenied
	case errors.As(err, &e):
		return e.Kind
	case errors.As(err, &c):
		return KindConflict
	}
	return KindInternal
}

// Rule failure codes. They are stable and part of the API.
const (
	CodeTitleNotFound        = "TITLE_NOT_FOUND"
	CodeTitleNotDownloadable = "TITLE_NOT_DOWNLOADABLE"
	CodeTitleNotAvailable    = "TITLE_NOT_AVAILABLE"
	CodeTitleWithdrawn       = "TITLE_WITHDRAWN"
	CodePlanNotEligible      = "PLAN_NOT_ELIGIBLE"
	CodeAlreadyOnDevice      = "TITLE_ALREADY_ON_DEVICE"
	CodeDeviceDownloadLimit  = "DEVICE_DOWNLOAD_LIMIT"
	CodeMemberDownloadLimit  = "MEMBER_DOWNLOAD_LIMIT"
	CodeDeviceCountLimit     = "DEVICE_COUNT_LIMIT"
	CodeTitleDownloadQuota   = "TITLE_DOWNLOAD_QUOTA"
	CodeStudioDownloadLimit  = "STUDIO_DOWNLOAD_LIMIT"
	CodeNotRenewable         = "LICENCE_NOT_RENEWABLE"
	CodeRenewalLimit         = "RENEWAL_LIMIT"
	CodeLicenceReleased      = "LICENCE_RELEASED"
)

// RuleFailure is one rule that refused a command.
type RuleFailure struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Limit and Current are the configured limit and the count that met it,
	// for rules that count; both are zero otherwise.
	Limit   int `json:"limit,omitempty"`
	Current int `json:"current,omitempty"`
	// FreesAt is when the rule stops refusing, where that can be computed
	// from the state alone (an expiry, a rolling window); nil otherwise.
	FreesAt *time.Time `json:"frees_at,omitempty"`
}

// Denial is a refusal listing every rule that failed, in a stable order.
type Denial struct {
	Rules []RuleFailure
}

func (d *Denial) Error() string {
	return "denied: " + strings.Join(d.Codes(), ", ")
}

// Codes lists the codes of the failed rules, in order.
func (d *Denial) Codes() []string {
	codes := make([]string, len(d.Rules))
	for i, r := range d.Rules {
		codes[i] = r.Code
	}
	return codes
}

// ConflictError reports that a stream moved past the version a writer
// expected. Current is the version the store holds, when it knows it (-1 if not).
type ConflictError struct {
	Stream   string
	Expected int64
	Current  int64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("stream %s: expected version %d, store is at %d", e.Stream, e.Expected, e.Current)
}

// ErrConflict matches any *ConflictError with errors.Is.
var ErrConflict = errors.New("version conflict")

// Is lets errors.Is(err, ErrConflict) match.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Pseudonym is how logs and metrics name a member: the first 16 hex digits
// of the SHA-256 of the id, never the id itself ("" for "").
func Pseudonym(member string) string {
	if member == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(member))
	return hex.EncodeToString(sum[:8])
}
