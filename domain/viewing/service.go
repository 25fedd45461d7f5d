package viewing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
)

// ErrSlotTaken reports a claim whose slot no longer holds the view the
// start decided on: another start got there first. Nothing was written.
var ErrSlotTaken = errors.New("screen slot taken")

// ScreenStore is the port to a member's screens and resume points.
type ScreenStore interface {
	// ReadForStart returns what slots 0..n-1 hold (nil where never used)
	// and the resume point of profile and title (nil if none), with one
	// strongly consistent read.
	ReadForStart(ctx context.Context, member string, n int, profile, title string) ([]*View, *Resume, error)
	// Claim writes c.View into its slot if c.Claimable(the slot's view,
	// now); otherwise it writes nothing and returns ErrSlotTaken.
	Claim(ctx context.Context, member string, c Claim, now time.Time) error
	// Beat applies b to its view exactly when CheckBeat(the slot's view, b)
	// lets it through, with one conditional write and no read. When it
	// does not, held is the slot's view as it was (nil if none).
	Beat(ctx context.Context, member string, b Beat) (held *View, applied bool, err error)
	// Stop applies s like Beat, by CheckStop.
	Stop(ctx context.Context, member string, s Stop) (held *View, applied bool, err error)
	// End applies e like Beat, by CheckEnd.
	End(ctx context.Context, member string, e End) (held *View, applied bool, err error)
	// Views returns what every slot of the member holds.
	Views(ctx context.Context, member string) ([]*View, error)
	// Resume returns the member's resume point in a title (nil if none).
	Resume(ctx context.Context, member, profile, title string) (*Resume, error)
}

// ProgressStore keeps resume points up; the stream function writes them.
//
// A view's running totals are closed in two steps, so that none is lost
// if recording its history entry fails: the totals are read (AddProgress
// returns a stop's, OpenTotals any view's), the entry is recorded, and only
// then CloseView removes them.
type ProgressStore interface {
	// AddProgress applies the contributions of one member to one resume
	// point (same profile and title), in order, each exactly once
	// (Resume.Apply), however often they are delivered. It returns the
	// totals of views that ended: a stop's (still open, until CloseView),
	// and those of a slot's former view of the title never seen to end
	// (removed).
	AddProgress(ctx context.Context, member string, ps []Progress) (closed []Totals, err error)
	// OpenTotals returns the running totals of view in slot of the resume
	// point of profile and title, read strongly consistent (nil if they are
	// not open there).
	OpenTotals(ctx context.Context, member, profile, title string, slot int, view string) (*Totals, error)
	// CloseView removes the running totals of view in slot (Resume.Close):
	// the totals, or nil if they are not open there (closed already, or
	// never opened).
	CloseView(ctx context.Context, member, profile, title string, slot int, view string, reason EndReason) (*Totals, error)
}

// HistoryChange is what the stream function learnt of one view: that it
// opened (its start) or closed (its end, with its totals).
type HistoryChange struct {
	Entry  HistoryEntry
	Closed bool
	// EndOnly marks a close that knows only why the view ended (it ended
	// before any report, so it has no totals): it sets the entry's end and
	// nothing else, or writes the entry as given if there is none.
	EndOnly bool
	// Count is what the change adds to its title's engagement on the day
	// the view started: StartEngagement for an open, EndEngagement for a
	// close. A close that finds no open entry (its start was never seen)
	// counts the view's start too.
	Count Engagement
}

// HistoryStore keeps the history read models: the stream function writes
// them, the API reads them.
type HistoryStore interface {
	// RecordHistory applies the changes of a batch, each once however often
	// it is delivered: an open writes its entry if the view has none, a
	// close writes its entry's totals if it is not closed yet; each counts
	// only when it writes.
	RecordHistory(ctx context.Context, changes []HistoryMemberChange) error
	// History returns up to limit entries of member, newest first, those
	// before the entry keyed after (all from the newest if ""), and whether
	// there are more.
	History(ctx context.Context, member, after string, limit int) ([]HistoryEntry, bool, error)
	// WatchRow records entries in the recently watched row of a member's
	// profile (Row.Watch).
	WatchRow(ctx context.Context, member, profile string, es []HistoryEntry) error
	// Row returns the recently watched row of a member's profile (empty if
	// none).
	Row(ctx context.Context, member, profile string) (*Row, error)
	// HideInRow removes a title from the recently watched row of a
	// member's profile as of at (Row.Hide): whether it was in the row. A
	// profile without a row is left without one.
	HideInRow(ctx context.Context, member, profile, title string, at time.Time) (bool, error)
	// Engagement returns a title's counts on a day (YYYY-MM-DD).
	Engagement(ctx context.Context, title, day string) (Engagement, error)
	// DayEngagement returns the counts of every title watched on a day.
	DayEngagement(ctx context.Context, day string) (map[string]Engagement, error)
	// BeginErasure records an erasure of member's viewing data as of at:
	// it deletes the screens and the rows, then writes the erasure, which
	// the stream function sees after every earlier write of the member and
	// carries out (EraseViewing). ErrErasurePending if one is under way;
	// History answers ErrErasurePending until it is done.
	BeginErasure(ctx context.Context, member string, at time.Time) error
	// EraseViewing carries out the erasure of member as of at: it deletes
	// the resume points, the rows, the history entries and screens of views
	// started before at, then marks the erasure done. Doing it again
	// changes nothing.
	EraseViewing(ctx context.Context, member string, at time.Time) error
	// Erasures returns, for those of members whose viewing data was ever
	// erased, the time as of which it last was (under way or done): the
	// stream function drops what any record says of a view started before
	// it, however late the record comes (a redriven dead letter).
	Erasures(ctx context.Context, members []string) (map[string]time.Time, error)
}

// HistoryMemberChange is a HistoryChange of one member.
type HistoryMemberChange struct {
	Member string
	HistoryChange
}

// Service runs viewing commands: it reads, decides with the pure rules and
// writes with conditional writes.
type Service struct {
	Store  ScreenStore
	Policy func() *licensing.Policy
	Clock  kernel.Clock
	IDs    kernel.IDSource
	// MaxAttempts bounds the read-decide-claim rounds of one start; 0
	// means the plan's limit plus 4, enough for every racing start to meet
	// a full account.
	MaxAttempts int
	// Backoff is the base wait before a start tries again.
	Backoff time.Duration
	// History serves the history reads (nil: not configured).
	History HistoryStore
	// Cursors seals the history cursors (a key every instance shares;
	// a built-in one, no secret, if nil: for tests and local runs).
	Cursors *CursorKey
}

// NewService returns a service with default retry settings.
func NewService(store ScreenStore, policy *licensing.Policy, clock kernel.Clock, ids kernel.IDSource) *Service {
	return &Service{Store: store, Policy: func() *licensing.Policy { return policy }, Clock: clock, IDs: ids, Backoff: 5 * time.Millisecond}
}

// Started is the answer to a start.
type Started struct {
	View *View
	// Resume is where the member left off in the title, and so where the
	// view starts.
	Resume Answer
	// Interval is how often the screen must send a heartbeat.
	Interval time.Duration
	// Replayed is set when this is the view an earlier request with the
	// same idempotency key made.
	Replayed bool
	// At is when the start was answered.
	At time.Time
}

// Start starts a view: 201 with the view, or a *LimitError listing the
// screens in use. With a key, a retry returns the view the first request
// made (as long as its slot holds it).
func (s *Service) Start(ctx context.Context, c Start, key string) (Started, error) {
	if err := c.Validate(); err != nil {
		return Started{}, err
	}
	if key != "" && !kernel.ValidKey(key) {
		return Started{}, kernel.Invalid("Idempotency-Key", "idempotency key must be 1 to 128 printable characters")
	}
	policy := s.Policy()
	limit, err := ScreenLimit(policy, c.Plan)
	if err != nil {
		return Started{}, err
	}
	title, err := catalogued(policy, c.Title)
	if err != nil {
		return Started{}, err
	}
	if f := title.Availability(c.Title, s.now()); f != nil {
		return Started{}, kernel.Errorf(kernel.KindForbidden, f.Code, "%s", f.Message)
	}
	attempts := s.MaxAttempts
	if attempts == 0 {
		attempts = limit + 4
	}
	for attempt := 1; ; attempt++ {
		slots, res, err := s.Store.ReadForStart(ctx, c.Member, limit, c.Profile, c.Title)
		if err != nil {
			return Started{}, fmt.Errorf("read screens of %s: %w", kernel.Pseudonym(c.Member), err)
		}
		now := s.now()
		answer := AnswerFor(FreshestResume(res, slots, c.Title, c.Profile), c.Title, c.Profile, title, policy.Viewing)
		d, err := DecideStart(slots, c, key, title, policy.Viewing, answer.ResumeFromMs, now, s.IDs.NewID)
		if err != nil {
			return Started{}, err
		}
		out := Started{Resume: answer, Interval: policy.Viewing.HeartbeatInterval.D(), At: now}
		if d.Replay != nil {
			out.View, out.Replayed = d.Replay, true
			return out, nil
		}
		err = s.Store.Claim(ctx, c.Member, d.Claim, now)
		if err == nil {
			out.View = d.Claim.View
			return out, nil
		}
		if !errors.Is(err, ErrSlotTaken) {
			return Started{}, fmt.Errorf("claim screen %d of %s: %w", d.Claim.View.Slot, kernel.Pseudonym(c.Member), err)
		}
		if attempt >= attempts {
			return Started{}, kernel.Errorf(kernel.KindUnavailable, kernel.CodeContention, "too many screens starting on this account at once; retry shortly")
		}
		if err := kernel.Backoff(ctx, s.Backoff, attempt); err != nil {
			return Started{}, err
		}
	}
}

// Beaten is the answer to a heartbeat.
type Beaten struct {
	View       string
	PositionMs int64
	State      State
	Seq        int64
	Expires    time.Time
	Interval   time.Duration
	// Repeated is set when the heartbeat was applied before: nothing changed.
	Repeated bool
}

// Beat applies a heartbeat with one conditional write. A view whose screen
// the member's plan (from the token) no longer allows is ended, and the
// player told to stop, like one ended from elsewhere or expired.
func (s *Service) Beat(ctx context.Context, b Beat) (Beaten, error) {
	if err := b.Validate(); err != nil {
		return Beaten{}, err
	}
	policy := s.Policy()
	limit, err := ScreenLimit(policy, b.Plan)
	if err != nil {
		return Beaten{}, err
	}
	b.At = s.now()
	b.Expires = b.At.Add(policy.Viewing.ViewExpiry.D())
	b.Checkpoint = IsCheckpoint(b.At, policy.Viewing.HeartbeatInterval.D())
	if slot, _ := SlotOf(b.View); slot >= limit {
		// Past the limit (the plan shrank): the newest views play on.
		// One read, only for a view in a slot past the limit.
		views, err := s.Store.Views(ctx, b.Member)
		if err != nil {
			return Beaten{}, fmt.Errorf("heartbeat of %s: %w", kernel.Pseudonym(b.Member), err)
		}
		// Only the view's own device ends anything: a heartbeat naming
		// another device's view, or a view its slot no longer holds,
		// changes nothing.
		var held *View
		for _, v := range views {
			if v.Slot == slot {
				held = v
			}
		}
		if err := identify(held, b.View, b.Device); err != nil {
			return Beaten{}, err
		}
		// The beating view counts as live (a gap in its heartbeats, an
		// outage, does not lose it its place): it is judged as it will be
		// once this heartbeat is applied.
		judged := make([]*View, len(views))
		for i, v := range views {
			judged[i] = v
			if v.ID == b.View && held.Ended == "" {
				c := *v
				c.LastSeen, c.Expires = b.At, b.Expires
				judged[i] = &c
			}
		}
		kept := Kept(judged, limit, b.At)
		for _, v := range views {
			if v.ID != b.View && v.Live(b.At) && !kept[v.ID] {
				if _, err := s.End(ctx, End{Member: b.Member, View: v.ID, Reason: PlanChanged}); err != nil && kernel.KindOf(err) != kernel.KindConflict && kernel.KindOf(err) != kernel.KindNotFound {
					return Beaten{}, err
				}
			}
		}
		if !kept[b.View] {
			return Beaten{}, s.endOverLimit(ctx, b)
		}
	}
	out := Beaten{View: b.View, PositionMs: b.PositionMs, State: b.State, Seq: b.Seq, Expires: b.Expires, Interval: policy.Viewing.HeartbeatInterval.D()}
	held, applied, err := s.Store.Beat(ctx, b.Member, b)
	if err != nil {
		return Beaten{}, fmt.Errorf("heartbeat of %s: %w", kernel.Pseudonym(b.Member), err)
	}
	if applied {
		return out, nil
	}
	repeated, err := CheckBeat(held, b)
	switch {
	case err != nil:
		return Beaten{}, err
	case !repeated:
		return Beaten{}, fmt.Errorf("heartbeat of %s: the store refused what the rules allow", kernel.Pseudonym(b.Member))
	}
	out.Expires, out.Repeated = held.Expires, true
	return out, nil
}

// endOverLimit ends a view, from its own device, whose slot is past the
// plan's limit, and tells the player why it is over (PLAN_CHANGED, or the
// reason it had ended with already).
func (s *Service) endOverLimit(ctx context.Context, b Beat) error {
	reason, err := s.End(ctx, End{Member: b.Member, View: b.View, Device: b.Device, Reason: PlanChanged})
	if err != nil {
		return err
	}
	return &EndedError{View: b.View, Reason: reason}
}

// Stop ends a view from its own screen, with its final position. Stopping
// a stopped view again changes nothing.
func (s *Service) Stop(ctx context.Context, st Stop) (EndReason, error) {
	if err := st.Validate(); err != nil {
		return "", err
	}
	st.At = s.now()
	held, applied, err := s.Store.Stop(ctx, st.Member, st)
	if err != nil {
		return "", fmt.Errorf("stop of %s: %w", kernel.Pseudonym(st.Member), err)
	}
	if applied {
		return Stopped, nil
	}
	if _, err := CheckStop(held, st); err != nil {
		return "", err
	}
	return Stopped, nil
}

// End ends a view of the account from anywhere; it answers why the view
// ended (the reason given, or the one it had already ended with).
func (s *Service) End(ctx context.Context, e End) (EndReason, error) {
	if err := e.Validate(); err != nil {
		return "", err
	}
	e.At = s.now()
	held, applied, err := s.Store.End(ctx, e.Member, e)
	if err != nil {
		return "", fmt.Errorf("end view of %s: %w", kernel.Pseudonym(e.Member), err)
	}
	if applied {
		return e.Reason, nil
	}
	_, reason, err := CheckEnd(held, e)
	return reason, err
}

// Screens is what is being watched on the account now: the live views the
// member's plan keeps playing (Kept: all of them but after a move to a plan
// with fewer screens, when the newest), and that limit.
func (s *Service) Screens(ctx context.Context, member, plan string) (limit int, screens []Screen, err error) {
	if err := checkIDs("member", member, "plan", plan); err != nil {
		return 0, nil, err
	}
	if limit, err = ScreenLimit(s.Policy(), plan); err != nil {
		return 0, nil, err
	}
	views, err := s.Store.Views(ctx, member)
	if err != nil {
		return 0, nil, fmt.Errorf("screens of %s: %w", kernel.Pseudonym(member), err)
	}
	now := s.now()
	kept := Kept(views, limit, now) // what the next heartbeats keep playing
	screens = []Screen{}
	for _, v := range views {
		if kept[v.ID] {
			screens = append(screens, v.Screen(now))
		}
	}
	return limit, screens, nil
}

// Limit is the number of screens plan allows, by the policy.
func (s *Service) Limit(plan string) (int, error) { return ScreenLimit(s.Policy(), plan) }

// HeartbeatInterval is how often a screen sends a heartbeat, by the policy.
func (s *Service) HeartbeatInterval() time.Duration { return s.Policy().Viewing.HeartbeatInterval.D() }

// Resume is where the member left off in a title, the same from any device.
func (s *Service) Resume(ctx context.Context, member, profile, titleID string) (Answer, error) {
	if err := checkIDs("member", member, "title_id", titleID); err != nil {
		return Answer{}, err
	}
	if profile != "" && !kernel.ValidID(profile) {
		return Answer{}, kernel.Invalid("profile", "profile must be 1 to 64 letters, digits or . _ : -")
	}
	policy := s.Policy()
	title, err := catalogued(policy, titleID)
	if err != nil {
		return Answer{}, err
	}
	r, err := s.Store.Resume(ctx, member, profile, titleID)
	if err != nil {
		return Answer{}, fmt.Errorf("resume point of %s: %w", kernel.Pseudonym(member), err)
	}
	return AnswerFor(r, titleID, profile, title, policy.Viewing), nil
}

func catalogued(p *licensing.Policy, id string) (licensing.Title, error) {
	t, ok := p.Title(id)
	if !ok {
		e := kernel.Errorf(kernel.KindNotFound, licensing.CodeTitleNotFound, "title %s is not in the catalogue", id)
		e.Field = "title_id"
		return t, e
	}
	return t, nil
}

// now is the clock's time in UTC, to the millisecond, as stores keep it.
func (s *Service) now() time.Time { return s.Clock.Now().UTC().Truncate(time.Millisecond) }
