package viewing

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
)

// MaxPositionMs bounds every reported position: no title runs longer.
const MaxPositionMs = int64(licensing.MaxRuntime / time.Millisecond)

// MaxSeq bounds heartbeat sequence numbers (integers JSON carries exactly).
const MaxSeq = 1<<53 - 1

// Start asks for a view of a title on a device.
type Start struct {
	Member  string
	Plan    string
	Device  string
	Title   string
	Profile string // optional
}

// Validate checks the command's own fields.
func (c Start) Validate() error {
	if err := checkIDs("member", c.Member, "plan", c.Plan, "device_id", c.Device, "title_id", c.Title); err != nil {
		return err
	}
	if c.Profile != "" && !kernel.ValidID(c.Profile) {
		return kernel.Invalid("profile_id", "profile_id must be 1 to 64 letters, digits or . _ : -")
	}
	return nil
}

// Fingerprint identifies the request's content, so that an idempotency key
// reused for another request is told apart from a retry.
func (c Start) Fingerprint() string {
	sum := sha256.Sum256([]byte(c.Device + "\x00" + c.Title + "\x00" + c.Profile))
	return hex.EncodeToString(sum[:12])
}

// Beat is a heartbeat: the screen's position and state, with a sequence
// number that grows with every heartbeat of the view.
type Beat struct {
	Member     string
	Plan       string
	Device     string
	View       string
	PositionMs int64
	State      State
	Seq        int64
	// At is when the service received it, and Expires when the view stops
	// counting unless another comes; Checkpoint whether it is a checkpoint
	// (IsCheckpoint); the service sets them.
	At         time.Time
	Expires    time.Time
	Checkpoint bool
}

// Validate checks the heartbeat's own fields.
func (b Beat) Validate() error {
	if err := checkIDs("member", b.Member, "plan", b.Plan, "device_id", b.Device); err != nil {
		return err
	}
	if _, ok := SlotOf(b.View); !ok {
		return notFound()
	}
	if err := checkPosition(b.PositionMs); err != nil {
		return err
	}
	if !b.State.Valid() {
		return kernel.Invalid("state", "state must be %q or %q", Playing, Paused)
	}
	if b.Seq < 1 || b.Seq > MaxSeq {
		return kernel.Invalid("seq", "seq must be a whole number from 1 to %d, growing with each heartbeat", int64(MaxSeq))
	}
	return nil
}

// Stop ends a view from its own screen, with the final position.
type Stop struct {
	Member     string
	Device     string
	View       string
	PositionMs int64
	At         time.Time
}

// Validate checks the stop's own fields.
func (s Stop) Validate() error {
	if err := checkIDs("member", s.Member, "device_id", s.Device); err != nil {
		return err
	}
	if _, ok := SlotOf(s.View); !ok {
		return notFound()
	}
	return checkPosition(s.PositionMs)
}

// End ends a view from anywhere on the account (another screen, or the
// service when the plan no longer allows the view's screen).
type End struct {
	Member string
	View   string
	// Device, when set, must be the view's: the service ends a view over
	// the plan's limit only from the view's own heartbeat.
	Device string
	Reason EndReason
	At     time.Time
}

// Validate checks the command's own fields.
func (e End) Validate() error {
	if err := checkIDs("member", e.Member); err != nil {
		return err
	}
	if _, ok := SlotOf(e.View); !ok {
		return notFound()
	}
	if e.Reason != EndedByMember && e.Reason != PlanChanged {
		return kernel.Invalid("reason", "a view is ended by the member or by a plan change")
	}
	return nil
}

func checkIDs(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if !kernel.ValidID(pairs[i+1]) {
			return kernel.Invalid(pairs[i], "%s must be 1 to 64 letters, digits or . _ : -", pairs[i])
		}
	}
	return nil
}

func checkPosition(ms int64) error {
	if ms < 0 || ms > MaxPositionMs {
		return kernel.Invalid("position_ms", "position_ms must be from 0 to %d", MaxPositionMs)
	}
	return nil
}

// ScreenLimit is the number of screens a plan allows.
func ScreenLimit(p *licensing.Policy, plan string) (int, error) {
	pl, ok := p.Plan(plan)
	if !ok {
		return 0, kernel.Errorf(kernel.KindForbidden, licensing.CodePlanNotEligible, "plan %s does not include streaming", plan)
	}
	return pl.MaxScreens, nil
}

// Claim is what a start decided: write View into its slot, on the condition
// that the slot still holds the view Expect ("" for a slot never used) and,
// unless Replace, that this view is no longer live.
type Claim struct {
	View    *View
	Expect  string
	Replace bool
}

// Claimable reports whether a claim may write over held, the slot's view,
// at now: the condition every store applies atomically.
func (c Claim) Claimable(held *View, now time.Time) bool {
	if c.Expect == "" {
		return held == nil
	}
	return held != nil && held.ID == c.Expect && (c.Replace || !held.Live(now))
}

// Decision is the outcome of a start: a view the same request made before
// (Replay), or a slot to claim.
type Decision struct {
	Replay *View
	Claim  Claim
}

// DecideStart decides a start over the member's slots (slots[i] is what
// slot i holds, nil if never used; len(slots) is the plan's limit) at now.
//
//   - A retry (same key) gets the view it made, if its slot still holds it;
//     the same key with another request is a conflict.
//   - A device plays one view at a time: a device with a view not ended
//     (live, or expired but still holding its slot) has it replaced, in
//     the same slot.
//   - Otherwise the first free slot (never used, ended or expired) is
//     claimed, looking from a place that depends on the device, so that
//     racing starts of different devices spread over the free slots while
//     retries of one device meet on the same one.
//   - With no free slot the start is refused with every screen in use.
func DecideStart(slots []*View, c Start, key string, title licensing.Title, rules licensing.ViewingRules, resumeFrom int64, now time.Time, newID func() string) (Decision, error) {
	fp := c.Fingerprint()
	if key != "" {
		for _, v := range slots {
			if v != nil && v.Key == KeyDigest(key) {
				if v.Fingerprint != fp {
					return Decision{}, kernel.Errorf(kernel.KindConflict, kernel.CodeKeyReused, "this idempotency key was used for a different request")
				}
				return Decision{Replay: v}, nil
			}
		}
		// A retry of a start whose view has given up its slot since
		// (replaced on its device, or displaced once expired) never starts
		// another view: it would end the live one. It is told how its view
		// ended.
		for _, v := range slots {
			if f := v.FormerView(); f != nil && f.KeyDigest == KeyDigest(key) {
				if f.Fingerprint != fp {
					return Decision{}, kernel.Errorf(kernel.KindConflict, kernel.CodeKeyReused, "this idempotency key was used for a different request")
				}
				return Decision{}, &EndedError{View: f.ID, Reason: f.Reason}
			}
		}
	}
	view := &View{
		Device: c.Device, Title: c.Title, Profile: c.Profile, Runtime: title.Runtime.D(),
		Started: now, LastSeen: now, PrevSeen: now, Expires: now.Add(rules.ViewExpiry.D()),
		PositionMs: resumeFrom, State: Playing, PrevState: Playing, Key: KeyDigest(key), Fingerprint: fp,
		Unwatched: now, Checkpoint: true,
	}
	for _, v := range slots {
		if v != nil && v.Ended == "" && v.Device == c.Device {
			view.Slot, view.ID = v.Slot, NewViewID(v.Slot, newID())
			view.Former = FormerOf(v, Replaced)
			return Decision{Claim: Claim{View: view, Expect: v.ID, Replace: true}}, nil
		}
	}
	n := len(slots)
	first := 0
	if n > 0 {
		h := fnv.New32a()
		h.Write([]byte(c.Device))
		first = int(h.Sum32() % uint32(n))
	}
	for i := range n {
		slot := (first + i) % n
		held := slots[slot]
		if held.Live(now) {
			continue
		}
		view.Slot, view.ID = slot, NewViewID(slot, newID())
		claim := Claim{View: view}
		if held != nil {
			claim.Expect = held.ID
			view.Former = FormerOf(held, held.EndReasonAt(now))
		}
		return Decision{Claim: claim}, nil
	}
	refusal := &LimitError{Limit: n, Screens: []Screen{}}
	for _, v := range slots {
		refusal.Screens = append(refusal.Screens, v.Screen(now))
	}
	return Decision{}, refusal
}

// CheckBeat judges a heartbeat against held, the view its slot holds (nil
// if none): nil if it applies; repeated (and nil) if it is the heartbeat
// last applied, which changes nothing; otherwise why it is refused. Every
// store applies a heartbeat exactly when this returns (false, nil).
//
// A view past its expiry that still holds its slot takes it back: expiry
// frees a screen for another device, and only a start that claims the slot
// ends the view (its heartbeat then learns EXPIRED from Former). So a view
// whose heartbeats could not be written, because the store was out or the
// network dropped, plays on from its next accepted heartbeat, and the
// plan's limit holds: a slot holds one view.
func CheckBeat(held *View, b Beat) (repeated bool, err error) {
	if err := identify(held, b.View, b.Device); err != nil {
		return false, err
	}
	if held.Ended != "" {
		return false, &EndedError{View: b.View, Reason: held.Ended}
	}
	if b.Seq <= held.Seq {
		if b.Seq == held.Seq && b.PositionMs == held.PositionMs && b.State == held.State {
			return true, nil
		}
		if b.Seq == held.Seq {
			return false, kernel.Errorf(kernel.KindConflict, CodeOutOfOrder,
				"heartbeat %d was already applied with position %d ms and state %s: this one reuses its sequence number with another position or state; number each heartbeat of a view above the last",
				b.Seq, held.PositionMs, held.State)
		}
		return false, kernel.Errorf(kernel.KindConflict, CodeOutOfOrder, "heartbeat %d is older than heartbeat %d, already applied", b.Seq, held.Seq)
	}
	return false, checkRuntime(held, b.PositionMs)
}

// Beat applies a heartbeat that CheckBeat let through.
func (v *View) Beat(b Beat) {
	// The time since the last report counts if this report says the view
	// is playing (up to MaxResumedSpan): the store applies it with one
	// write that needs no read of the state before. Unwatched follows, so
	// that WatchedMs = LastSeen - Unwatched.
	if b.State == Playing && b.At.After(v.LastSeen) {
		v.WatchedMs += min(b.At.Sub(v.LastSeen), MaxResumedSpan).Milliseconds()
	}
	v.Unwatched = b.At.Add(-time.Duration(v.WatchedMs) * time.Millisecond)
	if v.Checkpoint = b.Checkpoint; b.Checkpoint {
		v.PrevCheckpointMs, v.CheckpointMs = v.CheckpointMs, v.WatchedMs
	}
	v.PrevSeen, v.PrevState = v.LastSeen, v.State
	v.LastSeen, v.Expires = b.At, b.Expires
	v.PositionMs, v.State, v.Seq = b.PositionMs, b.State, b.Seq
	v.Closed = time.Time{}
}

// CheckStop judges a stop like CheckBeat: a view stops while it holds its
// slot, expired or not (the time it adds is bounded by MaxResumedSpan);
// stopping a stopped view again changes nothing.
func CheckStop(held *View, s Stop) (repeated bool, err error) {
	if err := identify(held, s.View, s.Device); err != nil {
		var ended *EndedError
		if asEnded(err, &ended) && ended.Reason == Stopped {
			return true, nil
		}
		return false, err
	}
	switch held.Ended {
	case "":
	case Stopped:
		return true, nil
	default:
		return false, &EndedError{View: s.View, Reason: held.Ended}
	}
	return false, checkRuntime(held, s.PositionMs)
}

// Stop applies a stop that CheckStop let through.
func (v *View) Stop(s Stop) {
	v.PrevSeen, v.PrevState = v.LastSeen, v.State
	v.LastSeen, v.PositionMs = s.At, s.PositionMs
	v.Ended, v.EndedAt, v.Checkpoint = Stopped, s.At, true
}

// CheckEnd judges an end from elsewhere: any view not yet ended may be
// ended, an expired one included; ending an ended view changes nothing
// (repeated, and the reason it ended with is in ended).
func CheckEnd(held *View, e End) (repeated bool, ended EndReason, err error) {
	if err := identify(held, e.View, e.Device); err != nil {
		var ee *EndedError
		if asEnded(err, &ee) {
			return true, ee.Reason, nil
		}
		return false, "", err
	}
	if held.Ended != "" {
		return true, held.Ended, nil
	}
	return false, e.Reason, nil
}

// End applies an end that CheckEnd let through. It reports nothing new: the
// time watched was counted by the last heartbeat.
func (v *View) End(e End) {
	v.PrevSeen, v.PrevState = v.LastSeen, v.State
	v.Ended, v.EndedAt, v.Checkpoint = e.Reason, e.At, true
}

// identify checks held is the view id (on device, unless device is ""): a
// view that gave the slot up is ended, anything else is not found.
func identify(held *View, id, device string) error {
	if held == nil || held.ID != id {
		if held != nil && held.Former != nil && held.Former.ID == id {
			return &EndedError{View: id, Reason: held.Former.Reason}
		}
		return notFound()
	}
	if device != "" && held.Device != device {
		return notFound()
	}
	return nil
}

func checkRuntime(held *View, ms int64) error {
	if held.Runtime > 0 && ms > held.Runtime.Milliseconds() {
		e := kernel.Errorf(kernel.KindInvalid, CodePositionOutOfRange, "position_ms %d is past the end of the title (%d ms)", ms, held.Runtime.Milliseconds())
		e.Field = "position_ms"
		return e
	}
	return nil
}

func asEnded(err error, target **EndedError) bool {
	e, ok := err.(*EndedError)
	if ok {
		*target = e
	}
	return ok
}

// Kept are the views a plan of limit screens keeps playing among a
// member's views (from every slot) at now: the limit most recently started
// live ones (the later id first between two started together). After a
// move to a plan with fewer screens the newest views play on; the others
// end at the next heartbeat of one over the limit (PLAN_CHANGED).
func Kept(views []*View, limit int, now time.Time) map[string]bool {
	var live []*View
	for _, v := range views {
		if v != nil && v.Live(now) {
			live = append(live, v)
		}
	}
	slices.SortFunc(live, func(a, b *View) int {
		if c := b.Started.Compare(a.Started); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	kept := map[string]bool{}
	for _, v := range live[:min(limit, len(live))] {
		kept[v.ID] = true
	}
	return kept
}
