package licensing

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
)

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

// ErrorKind is KindDenied (kernel.Kinded).
func (d *Denial) ErrorKind() kernel.Kind { return kernel.KindDenied }

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

// ErrorKind is KindConflict (kernel.Kinded).
func (e *ConflictError) ErrorKind() kernel.Kind { return kernel.KindConflict }

// Is lets errors.Is(err, ErrConflict) match.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }
