package viewing

import (
	"fmt"

	"github.com/dlicense/dlicense/domain/kernel"
)

// Codes of viewing errors. They are stable and part of the API.
const (
	// CodeScreensLimit: every screen the plan allows is in use (403).
	CodeScreensLimit = "CONCURRENT_SCREENS_LIMIT"
	// CodeViewNotFound: no such view on this account and device (404).
	CodeViewNotFound = "VIEW_NOT_FOUND"
	// CodeViewEnded: the view is over; the player must stop (409).
	CodeViewEnded = "VIEW_ENDED"
	// CodeOutOfOrder: a heartbeat older than one already applied (409).
	CodeOutOfOrder = "HEARTBEAT_OUT_OF_ORDER"
	// CodePositionOutOfRange: a position past the title's runtime (400).
	CodePositionOutOfRange = "POSITION_OUT_OF_RANGE"
)

// LimitError refuses a start over the plan's screen limit. It lists every
// screen in use, so the app can say who is watching.
type LimitError struct {
	Limit   int
	Screens []Screen
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: %d of %d screens in use", CodeScreensLimit, len(e.Screens), e.Limit)
}

// Unwrap gives the error its kind and code.
func (e *LimitError) Unwrap() error {
	return kernel.Errorf(kernel.KindDenied, CodeScreensLimit,
		"your plan allows %d screen(s) at once and they are in use", e.Limit)
}

// EndedError tells a player its view is over, and why.
type EndedError struct {
	View   string
	Reason EndReason
}

func (e *EndedError) Error() string {
	return fmt.Sprintf("%s: view %s ended (%s)", CodeViewEnded, e.View, e.Reason)
}

// Unwrap gives the error its kind and code.
func (e *EndedError) Unwrap() error {
	return kernel.Errorf(kernel.KindConflict, CodeViewEnded, "this view has ended (%s): stop playback", e.Reason)
}

func notFound() error {
	return kernel.Errorf(kernel.KindNotFound, CodeViewNotFound, "no such view on this device")
}
