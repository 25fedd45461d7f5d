package licensing

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
)

// Command is a request to change a member's stream. Each command type has a
// pure decide function over (state, command, policy, now).
type Command interface {
	// MemberID is the stream the command is for.
	MemberID() string
	// Validate checks the command's own fields, before any state is read.
	Validate() error
	decide(s *State, p *Policy, now time.Time, newID func() string) (Decision, error)
}

// Acquire asks for a new licence for a title on a device.
type Acquire struct {
	Member string `json:"member"`
	Plan   string `json:"plan"`
	Device string `json:"device"`
	Title  string `json:"title"`
}

// Renew asks for a fresh term on an existing licence.
type Renew struct {
	Member  string `json:"member"`
	Plan    string `json:"plan"`
	Device  string `json:"device"`
	Licence string `json:"licence"`
}

// Release gives a licence up, typically because the download was deleted.
type Release struct {
	Member  string        `json:"member"`
	Device  string        `json:"device"`
	Licence string        `json:"licence"`
	Reason  ReleaseReason `json:"reason"`
}

// ReleaseDevice gives up every licence a device holds.
type ReleaseDevice struct {
	Member string        `json:"member"`
	Device string        `json:"device"`
	Reason ReleaseReason `json:"reason"`
}

// PlaybackInput is one offline playback session event as uploaded.
type PlaybackInput struct {
	ID         string       `json:"id"`
	Licence    string       `json:"licence_id"`
	Kind       PlaybackKind `json:"kind"`
	PositionMs int64        `json:"position_ms"`
	DeviceTime time.Time    `json:"device_time"`
}

// MaxPlaybackBatch is the most events one upload may carry.
const MaxPlaybackBatch = 500

// RecordPlayback uploads a batch of playback events queued offline.
type RecordPlayback struct {
	Member string          `json:"member"`
	Device string          `json:"device"`
	Events []PlaybackInput `json:"events"`
}

// MemberID implements Command.
func (c Acquire) MemberID() string { return c.Member }

// MemberID implements Command.
func (c Renew) MemberID() string { return c.Member }

// MemberID implements Command.
func (c Release) MemberID() string { return c.Member }

// MemberID implements Command.
func (c ReleaseDevice) MemberID() string { return c.Member }

// MemberID implements Command.
func (c RecordPlayback) MemberID() string { return c.Member }

func checkIDs(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if !kernel.ValidID(pairs[i+1]) {
			return kernel.Invalid(pairs[i], "%s must be 1 to 64 letters, digits or . _ : -", pairs[i])
		}
	}
	return nil
}

// EnforcePlan releases, under the member's plan, the licences it no longer
// allows: the newest are kept as long as every holding rule of the plan
// holds, the rest are released (ReasonPlanChanged), at most
// MaxReleasesPerCommand at a time.
type EnforcePlan struct {
	Member string `json:"member"`
	Plan   string `json:"plan"`
}

// CloseAccount releases every licence a member holds (ReasonAccountClosed),
// at most MaxReleasesPerCommand at a time.
type CloseAccount struct {
	Member string `json:"member"`
}

// MaxReleasesPerCommand bounds the licences one EnforcePlan or CloseAccount
// releases (the events of one append); the next one releases the rest.
const MaxReleasesPerCommand = 100

// MemberID implements Command.
func (c EnforcePlan) MemberID() string { return c.Member }

// MemberID implements Command.
func (c CloseAccount) MemberID() string { return c.Member }

// Validate implements Command.
func (c EnforcePlan) Validate() error { return checkIDs("member", c.Member, "plan", c.Plan) }

// Validate implements Command.
func (c CloseAccount) Validate() error { return checkIDs("member", c.Member) }

// Validate implements Command.
func (c Acquire) Validate() error {
	return checkIDs("member", c.Member, "plan", c.Plan, "device_id", c.Device, "title_id", c.Title)
}

// Validate implements Command.
func (c Renew) Validate() error {
	return checkIDs("member", c.Member, "plan", c.Plan, "device_id", c.Device, "licence_id", c.Licence)
}

// Validate implements Command.
func (c Release) Validate() error {
	if err := checkIDs("member", c.Member, "device_id", c.Device, "licence_id", c.Licence); err != nil {
		return err
	}
	if !c.Reason.Valid() {
		return kernel.Invalid("reason", "unknown release reason %q", c.Reason)
	}
	return nil
}

// Validate implements Command.
func (c ReleaseDevice) Validate() error {
	if err := checkIDs("member", c.Member, "device_id", c.Device); err != nil {
		return err
	}
	if !c.Reason.Valid() {
		return kernel.Invalid("reason", "unknown release reason %q", c.Reason)
	}
	return nil
}

// Validate implements Command. Problems with single events (unknown kind,
// unknown licence, duplicates) are per-event results, not errors; only a
// batch that cannot be read at all is refused.
func (c RecordPlayback) Validate() error {
	if err := checkIDs("member", c.Member, "device_id", c.Device); err != nil {
		return err
	}
	if len(c.Events) == 0 || len(c.Events) > MaxPlaybackBatch {
		return kernel.Invalid("events", "a batch holds 1 to %d events", MaxPlaybackBatch)
	}
	for i, e := range c.Events {
		if !kernel.ValidID(e.ID) {
			return kernel.Invalid(fmt.Sprintf("events[%d].id", i), "event id must be 1 to 64 letters, digits or . _ : -")
		}
	}
	return nil
}

// Fingerprint identifies a command's content, so that an idempotency key
// reused for a different request can be told apart from a retry.
func Fingerprint(c Command) string {
	b, err := json.Marshal(struct {
		Type string
		Cmd  Command
	}{fmt.Sprintf("%T", c), c})
	if err != nil { // commands hold only strings, numbers and times
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// Result is the answer to a command.
type Result struct {
	// Version is the stream version after the command.
	Version int64
	// Licences are the licences the command granted, renewed or released.
	Licences []LicenceStatus
	// Playback holds one result per uploaded playback event, in upload order.
	Playback []PlaybackResult
	// Replayed is true when this is the remembered answer to an earlier
	// request with the same idempotency key.
	Replayed bool
}

// Decision is what a decide function returns: the one event to append, or
// for a command that changes nothing, its answer. One decision is one
// event, so that the log's only write is one single-item conditional put:
// the kind of write that holds across regions (docs/regions.md).
type Decision struct {
	Event  Payload
	Result Result
}

// Decide decides a command against a member's state under a policy at time
// now. It is pure: the same inputs give the same decision. newID supplies
// ids for new licences. A refusal is a *Denial listing every failed rule; a
// bad or unknown reference is an *Error.
func Decide(s *State, c Command, p *Policy, now time.Time, newID func() string) (Decision, error) {
	if err := c.Validate(); err != nil {
		return Decision{}, err
	}
	if c.MemberID() != s.Member {
		return Decision{}, kernel.Errorf(kernel.KindInternal, "WRONG_STREAM", "command for another member's stream")
	}
	return c.decide(s, p, now, newID)
}
