package licensing

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
)

// Withdrawal is an operator's withdrawal of a title from downloads, from a
// time on, and how far the ending of the licences held is.
type Withdrawal struct {
	Title      string    `json:"title_id"`
	From       time.Time `json:"from"`
	RecordedAt time.Time `json:"recorded_at"`
	// Members is how many holders the withdrawal job has gone through, Ended
	// how many licences it ended; Cursor is where it resumes; Done says it
	// went through every holder.
	Members int    `json:"members"`
	Ended   int    `json:"licences_ended"`
	Cursor  string `json:"-"`
	Done    bool   `json:"done"`
}

// WithdrawalStore keeps the withdrawals.
type WithdrawalStore interface {
	// RecordWithdrawal writes w if its title has none; ok is false (and
	// held is the one there) if it has.
	RecordWithdrawal(ctx context.Context, w Withdrawal) (held Withdrawal, ok bool, err error)
	// SaveProgress writes the progress fields of w (Members, Ended, Cursor,
	// Done).
	SaveProgress(ctx context.Context, w Withdrawal) error
	// Withdrawals returns every withdrawal.
	Withdrawals(ctx context.Context) ([]Withdrawal, error)
}

// HolderStore is the index of who holds which title: the stream function
// records each member that acquires a title, so that a withdrawal finds the
// holders without reading every member's log.
type HolderStore interface {
	// AddHolders records that members acquired titles.
	AddHolders(ctx context.Context, hs []Holder) error
	// Holders calls fn with the members recorded for title, a page at a
	// time from after (an opaque cursor, "" from the start); fn gets the
	// cursor after its page.
	Holders(ctx context.Context, title, after string, fn func(members []string, next string) error) error
}

// HoldersDone is the cursor after the last page of holders.
const HoldersDone = "done"

// Holder is a member that acquired a title.
type Holder struct {
	Title  string
	Member string
}

// HoldersOf is the titles an event makes its member a holder of.
func HoldersOf(member string, e Event) []Holder {
	if a, ok := e.Payload.(*LicenceAcquired); ok {
		return []Holder{{Title: a.Title, Member: member}}
	}
	return nil
}

// Withdrawals keeps the policy in force with the operators' withdrawals,
// read from a store at most once per Refresh (a failed read keeps the last).
// A request refreshes them, when due, with its own context (Update): its
// deadline bounds the read and its meter counts it; the others go on with
// the withdrawals last read meanwhile, no lock held during the read. It is
// safe for concurrent use.
type Withdrawals struct {
	Base    *Policy
	Store   WithdrawalStore
	Refresh time.Duration
	Clock   kernel.Clock

	mu      sync.Mutex
	read    time.Time
	held    []Withdrawal
	derived *Policy
	lastErr error
	// reading is closed when the read under way ends (nil: none).
	reading chan struct{}
}

// MaxWithdrawalsRead bounds a read of the withdrawals within a request's
// budget (1.5 s by default): an unreachable store costs at most this, and
// the withdrawals last read stay in force.
const MaxWithdrawalsRead = time.Second

// Update reads the withdrawals with ctx if they are due (never read, or
// read Refresh ago) and no other read is under way; a request that finds
// one under way waits for it only if nothing was ever read (no policy to
// decide by yet). It returns the policy in force.
func (w *Withdrawals) Update(ctx context.Context) *Policy {
	w.mu.Lock()
	now := w.Clock.Now()
	for w.reading != nil && w.derived == nil {
		wait := w.reading
		w.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return w.Base // never read, and the request has no time left
		}
		w.mu.Lock()
	}
	if w.reading != nil || w.derived != nil && now.Sub(w.read) < w.Refresh {
		p := w.derived
		w.mu.Unlock()
		return p
	}
	done := make(chan struct{})
	w.reading = done
	w.mu.Unlock()

	rctx, cancel := context.WithTimeout(ctx, MaxWithdrawalsRead)
	ws, err := w.Store.Withdrawals(rctx)
	cancel()

	w.mu.Lock()
	defer w.mu.Unlock()
	w.read, w.lastErr, w.reading = now, err, nil
	close(done)
	if err == nil && (w.derived == nil || !slices.Equal(ws, w.held)) {
		w.held = ws
		from := make(map[string]time.Time, len(ws))
		for _, x := range ws {
			from[x.Title] = x.From
		}
		w.derived = w.Base.WithWithdrawals(from)
	}
	if w.derived == nil {
		w.derived = w.Base
	}
	return w.derived
}

// Policy is Base with the withdrawals as last read: read now (without a
// request's context) if never read; Update refreshes them.
func (w *Withdrawals) Policy() *Policy {
	w.mu.Lock()
	p := w.derived
	w.mu.Unlock()
	if p == nil {
		return w.Update(context.Background())
	}
	return p
}

// Err is the last read's error, if it failed.
func (w *Withdrawals) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// CodeWithdrawalExists: the title was withdrawn already, from another time
// (409).
const CodeWithdrawalExists = "WITHDRAWAL_EXISTS"

// NewWithdrawal checks an operator's withdrawal of title from a time: the
// title must be in the catalogue, and the time (now if zero) not in the
// past (a minute of clock skew aside).
func NewWithdrawal(p *Policy, title string, from, now time.Time) (Withdrawal, error) {
	if err := checkIDs("title_id", title); err != nil {
		return Withdrawal{}, err
	}
	if _, ok := p.Title(title); !ok {
		e := kernel.Errorf(kernel.KindNotFound, CodeTitleNotFound, "title %s is not in the catalogue", title)
		e.Field = "title_id"
		return Withdrawal{}, e
	}
	if from.IsZero() {
		from = now
	}
	if from.Before(now.Add(-time.Minute)) {
		return Withdrawal{}, kernel.Invalid("from", "from must be now or later (it was %s)", from.UTC().Format(time.RFC3339))
	}
	return Withdrawal{Title: title, From: from.UTC().Truncate(time.Millisecond), RecordedAt: now.UTC().Truncate(time.Millisecond)}, nil
}

// String is the withdrawal in a log line.
func (w Withdrawal) String() string {
	return fmt.Sprintf("%s from %s (%d members, %d ended, done %v)", w.Title, w.From.Format(time.RFC3339), w.Members, w.Ended, w.Done)
}
