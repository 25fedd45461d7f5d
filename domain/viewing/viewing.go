// Package viewing is the domain of streaming: views (a screen playing a
// title), the plan's concurrent-screens limit, heartbeats and expiry, and
// where a member left off in each title. Like licensing, it is pure: time
// is passed in and the stores are ports.
//
// A member's screens are numbered slots, as many as the plan allows. A view
// holds one slot from its start until it stops, is ended from another
// screen, is replaced by the next view of its device, or misses heartbeats
// for the view expiry. Claiming a slot is one conditional write on that
// slot, so racing starts can never hold more slots than the limit, and a
// heartbeat writes only its own slot, so screens never conflict.
package viewing

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
)

// State is what a screen reports it is doing.
type State string

// The states of a playing view.
const (
	Playing State = "playing"
	Paused  State = "paused"
)

// Valid reports whether s is a state a heartbeat may report.
func (s State) Valid() bool { return s == Playing || s == Paused }

// EndReason says why a view ended. The values are stored and part of the API.
type EndReason string

// The reasons a view ends.
const (
	// Stopped: the screen said it stopped.
	Stopped EndReason = "STOPPED"
	// EndedByMember: another screen of the account ended it.
	EndedByMember EndReason = "ENDED_BY_MEMBER"
	// Replaced: its device started another view.
	Replaced EndReason = "REPLACED"
	// Expired: it sent no heartbeat for the view expiry.
	Expired EndReason = "EXPIRED"
	// PlanChanged: the member's plan no longer allows its screen.
	PlanChanged EndReason = "PLAN_CHANGED"
)

// View is one screen playing a title: what a slot holds.
type View struct {
	ID      string
	Slot    int
	Device  string
	Title   string
	Profile string
	// Runtime is the title's length when the view started (0: unknown).
	Runtime time.Duration

	Started  time.Time
	LastSeen time.Time
	// Expires is when the view stops counting unless a heartbeat comes.
	Expires    time.Time
	PositionMs int64
	State      State
	// Seq is the sequence number of the last heartbeat applied.
	Seq int64

	// Ended and EndedAt are set once the view has ended.
	Ended   EndReason
	EndedAt time.Time

	// PrevSeen and PrevState are LastSeen and State before the last report
	// (heartbeat or stop): the time watched since then is what the report
	// adds.
	PrevSeen  time.Time
	PrevState State

	// Key and Fingerprint stand for the idempotency key (its KeyDigest) and
	// the content of the start request that made the view.
	Key         string
	Fingerprint string

	// Former is the view the slot held before this one, so that its next
	// heartbeat learns why it ended.
	Former *Former

	// The view's running totals, kept by its own writes so that the stream
	// function need not write for every heartbeat: WatchedMs is the time
	// watched up to LastSeen, Unwatched the start plus the time not
	// watched (so WatchedMs = LastSeen - Unwatched while it plays). A
	// heartbeat reporting playing counts the time since the one before
	// (up to MaxResumedSpan); one reporting paused counts nothing. Both
	// are kept with two-operand arithmetic on the stored item, without a
	// read (see the stores).
	WatchedMs int64
	Unwatched time.Time
	// CheckpointMs is WatchedMs as of the view's last checkpoint, and
	// PrevCheckpointMs as of the one before: what the stream function adds
	// to the resume point at a checkpoint is their difference.
	CheckpointMs, PrevCheckpointMs int64
	// Checkpoint marks a write the stream function handles: a start, a
	// stop, an end, a heartbeat at a checkpoint (Checkpoint), and the
	// close of a silent view; the others change only the slot.
	Checkpoint bool
	// Closed is when the sweep closed the view as silent (CloseSilent);
	// zero otherwise, and again after a heartbeat.
	Closed time.Time
}

// CheckpointEvery is how often a long view's running totals reach its
// resume point, history and engagement while it plays: the heartbeat that
// falls in the first heartbeat interval of each such window of the
// service's clock (one in CheckpointEvery ÷ interval heartbeats).
const CheckpointEvery = 8 * time.Minute

// IsCheckpoint reports whether a heartbeat at at is a checkpoint, with
// heartbeats every interval.
func IsCheckpoint(at time.Time, interval time.Duration) bool {
	return at.UnixMilli()%CheckpointEvery.Milliseconds() < max(interval, time.Millisecond).Milliseconds()
}

// Former is a view that gave up its slot, and why; with its title,
// profile and start, so the stream function can close its history entry.
type Former struct {
	ID      string
	Reason  EndReason
	Title   string
	Profile string
	Started time.Time
	// KeyDigest and Fingerprint stand for the idempotency key (KeyDigest)
	// and request of the start that made it: a retry of that start is told
	// the view ended, rather than starting another that would end the
	// slot's live view.
	KeyDigest, Fingerprint string
	Device                 string
	// Its last report and totals (a view displaced by the next start is
	// closed with them): position and time watched as of LastSeen, and
	// the time watched its last checkpoint had counted.
	LastSeen                            time.Time
	PositionMs, WatchedMs, CheckpointMs int64
}

// FormerOf is v as the view that gives up its slot for reason.
func FormerOf(v *View, reason EndReason) *Former {
	return &Former{ID: v.ID, Reason: reason, Title: v.Title, Profile: v.Profile, Started: v.Started, KeyDigest: v.Key, Fingerprint: v.Fingerprint,
		Device: v.Device, LastSeen: v.LastSeen, PositionMs: v.PositionMs, WatchedMs: v.WatchedMs, CheckpointMs: v.CheckpointMs}
}

// KeyDigest is what a slot remembers of its former view's idempotency key
// ("" for none): short, and enough to tell a retry of that start.
func KeyDigest(key string) string {
	if key == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(key))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// FormerView is the view the slot held before v, if it remembers one.
func (v *View) FormerView() *Former {
	if v == nil {
		return nil
	}
	return v.Former
}

// Live reports whether the view counts against the limit at now.
func (v *View) Live(now time.Time) bool {
	return v != nil && v.Ended == "" && !v.Expires.Before(now)
}

// EndReasonAt is why the view is over at now: its end reason, Expired for a
// view whose heartbeats stopped, "" for a live view.
func (v *View) EndReasonAt(now time.Time) EndReason {
	switch {
	case v.Ended != "":
		return v.Ended
	case v.Expires.Before(now):
		return Expired
	}
	return ""
}

// NewViewID makes the id of a view in a slot: the slot travels in the id,
// so a heartbeat finds its slot without a read.
func NewViewID(slot int, random string) string {
	return "v" + strconv.Itoa(slot) + "-" + random
}

// SlotOf reads the slot out of a view id; ok is false for an id that no
// view can have.
func SlotOf(id string) (slot int, ok bool) {
	if !kernel.ValidID(id) || !strings.HasPrefix(id, "v") {
		return 0, false
	}
	digits, rest, found := strings.Cut(id[1:], "-")
	if !found || rest == "" || len(digits) == 0 || len(digits) > 2 {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 || n >= licensing.MaxScreens || strconv.Itoa(n) != digits {
		return 0, false
	}
	return n, true
}

// Screen is a view as the API shows it.
type Screen struct {
	ViewID     string     `json:"view_id"`
	Device     string     `json:"device_id"`
	Title      string     `json:"title_id"`
	Profile    string     `json:"profile_id,omitempty"`
	Started    time.Time  `json:"started_at"`
	LastSeen   time.Time  `json:"last_seen_at"`
	Expires    time.Time  `json:"expires_at"`
	PositionMs int64      `json:"position_ms"`
	State      State      `json:"state"`
	Ended      EndReason  `json:"ended,omitempty"`
	EndedAt    *time.Time `json:"ended_at,omitempty"`
}

// Screen is the view as the API shows it at now.
func (v *View) Screen(now time.Time) Screen {
	s := Screen{ViewID: v.ID, Device: v.Device, Title: v.Title, Profile: v.Profile, Started: v.Started,
		LastSeen: v.LastSeen, Expires: v.Expires, PositionMs: v.PositionMs, State: v.State, Ended: v.EndReasonAt(now)}
	if !v.EndedAt.IsZero() {
		t := v.EndedAt
		s.EndedAt = &t
	}
	return s
}

func (v *View) String() string {
	return fmt.Sprintf("view %s (slot %d, device %s, title %s)", v.ID, v.Slot, v.Device, v.Title)
}
