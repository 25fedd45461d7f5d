package viewing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
)

// CodeErasureInProgress: the member's viewing data is being erased; the
// history and the row can be read again once it is done (409).
const CodeErasureInProgress = "ERASURE_IN_PROGRESS"

// StaleErasure is how long an erasure may stay under way before a new
// request for it starts it again, as of the new request: its stream record
// was lost (a stream function given up on past the stream's 24 hours, or
// paused too long), so nothing would ever carry it out. Carrying out the
// old record too is harmless: an erasure record handled again, or after a
// later one, leaves what came after it alone.
const StaleErasure = time.Hour

// ErrErasurePending is a store's answer to a history read, or to a second
// erasure, while an erasure of the member's viewing data is under way.
var ErrErasurePending = errors.New("an erasure of this member's viewing data is under way")

func erasureInProgress() error {
	return kernel.Errorf(kernel.KindConflict, CodeErasureInProgress, "this account's viewing history is being erased; try again shortly")
}

// Erasure is a request to erase a member's viewing data: everything about
// views started before At (history entries, resume points and their
// running totals, the recently watched rows, the screens). Engagement
// counts are aggregates and stay; licensing events are the licence
// store's and stay.
type Erasure struct {
	Member string    `json:"-"`
	At     time.Time `json:"requested_at"`
	State  string    `json:"state"` // "pending", then "done"
}

// Erase starts the erasure of a member's viewing data: the screens end at
// once (a player's next heartbeat is told its view is gone) and the rows
// are emptied; the stream function erases the rest, in order after every
// write before it, so no record written before the erasure can bring any
// of it back. A second erasure while one is under way is refused.
func (s *Service) Erase(ctx context.Context, member string) (Erasure, error) {
	h, err := s.historyStore()
	if err != nil {
		return Erasure{}, err
	}
	if err := checkIDs("member", member); err != nil {
		return Erasure{}, err
	}
	// As of the end of this millisecond: the stores keep milliseconds, so a
	// view started earlier in the same millisecond is erased too, never kept.
	at := s.Clock.Now().UTC().Truncate(time.Millisecond).Add(time.Millisecond)
	if err := h.BeginErasure(ctx, member, at); err != nil {
		if errors.Is(err, ErrErasurePending) {
			return Erasure{}, erasureInProgress()
		}
		return Erasure{}, fmt.Errorf("erase the viewing data of %s: %w", kernel.Pseudonym(member), err)
	}
	return Erasure{Member: member, At: at, State: "pending"}, nil
}
