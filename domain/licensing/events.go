package licensing

import (
	"time"
)

// EventType names a kind of event in a member's stream. The values are
// stored and must never change.
type EventType string

// The event types of a member's stream.
const (
	TypeLicenceAcquired  EventType = "LicenceAcquired"
	TypeLicenceRenewed   EventType = "LicenceRenewed"
	TypeLicenceReleased  EventType = "LicenceReleased"
	TypeDeviceReleased   EventType = "DeviceReleased"
	TypeLicencesReleased EventType = "LicencesReleased"
	TypePlaybackRecorded EventType = "PlaybackRecorded"
)

// Event is one fact in a member's stream: an envelope and a typed payload.
type Event struct {
	// Version is the event's position in its stream, 1 for the first event.
	// The service sets it when it appends.
	Version int64
	// At is when the service decided the event.
	At time.Time
	// PolicyVersion is the version of the policy the decision was made under.
	PolicyVersion string
	// Key is the idempotency key of the request that caused the event, if any,
	// and Fingerprint identifies that request's content.
	Key         string
	Fingerprint string
	// RequestID identifies the service call that appended the event, so a
	// store can recognise its own write when a retried call finds it there.
	RequestID string
	// Payload is one of the *…Payload types below.
	Payload Payload
}

// Type returns the event's type.
func (e Event) Type() EventType { return e.Payload.eventType() }

// Payload is the body of an event. The types implementing it are the
// current shape of each event type; older shapes are upcast when read.
type Payload interface {
	eventType() EventType
}

// LicenceAcquired records a grant of a new licence.
type LicenceAcquired struct {
	Licence   string    `json:"licence_id"`
	Plan      string    `json:"plan"`
	Title     string    `json:"title_id"`
	Studio    string    `json:"studio_id"`
	Device    string    `json:"device_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// LicenceRenewed records a renewal: a new expiry and a fresh playback window.
type LicenceRenewed struct {
	Licence   string    `json:"licence_id"`
	Plan      string    `json:"plan"`
	ExpiresAt time.Time `json:"expires_at"`
	Renewal   int       `json:"renewal"`
	// Ref describes the licence as it was before the renewal, so that read
	// models need not look it up (absent in events written before it was).
	Ref *LicenceRef `json:"ref,omitempty"`
}

// LicenceRef is what read models need to know of a licence an event changes.
type LicenceRef struct {
	Licence   string    `json:"licence_id"`
	Title     string    `json:"title_id"`
	Studio    string    `json:"studio_id"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func refOf(l *Licence) *LicenceRef {
	return &LicenceRef{Licence: l.ID, Title: l.Title, Studio: l.Studio, IssuedAt: l.IssuedAt, ExpiresAt: l.ExpiresAt}
}

// ReleaseReason says why a licence was released.
type ReleaseReason string

// The release reasons.
const (
	ReasonDeleted        ReleaseReason = "DELETED_BY_MEMBER"
	ReasonDeviceRemoved  ReleaseReason = "DEVICE_REMOVED"
	ReasonTitleWithdrawn ReleaseReason = "TITLE_WITHDRAWN"
	ReasonAdministrative ReleaseReason = "ADMINISTRATIVE"
	// ReasonPlanChanged: the member's plan changed and allows less than the
	// member held; the newest licences were kept.
	ReasonPlanChanged ReleaseReason = "PLAN_CHANGED"
	// ReasonAccountClosed: the member's account was closed.
	ReasonAccountClosed ReleaseReason = "ACCOUNT_CLOSED"
)

// Valid reports whether r is one of the release reasons.
func (r ReleaseReason) Valid() bool {
	switch r {
	case ReasonDeleted, ReasonDeviceRemoved, ReasonTitleWithdrawn, ReasonAdministrative, ReasonPlanChanged, ReasonAccountClosed:
		return true
	}
	return false
}

// LicenceReleased records that one licence no longer holds a download.
type LicenceReleased struct {
	Licence string        `json:"licence_id"`
	Reason  ReleaseReason `json:"reason"`
	Ref     *LicenceRef   `json:"ref,omitempty"`
}

// DeviceReleased records that every licence of a device was released at
// once: one event, however many licences, so it is always one write.
type DeviceReleased struct {
	Device   string        `json:"device_id"`
	Licences []string      `json:"licence_ids"`
	Reason   ReleaseReason `json:"reason"`
	Refs     []LicenceRef  `json:"refs,omitempty"`
}

// LicencesReleased records that several licences were released at once
// (an account closed, a plan changed, a title withdrawn), each for its
// reason: one event, so that a decision is always one single-item write,
// the only kind of write that holds across regions (docs/regions.md).
type LicencesReleased struct {
	Releases []LicenceReleased `json:"releases"`
}

// PlaybackKind is the kind of an offline playback session event.
type PlaybackKind string

// The playback session event kinds.
const (
	PlaybackStart     PlaybackKind = "START"
	PlaybackPause     PlaybackKind = "PAUSE"
	PlaybackResume    PlaybackKind = "RESUME"
	PlaybackKeepalive PlaybackKind = "KEEPALIVE"
	PlaybackStop      PlaybackKind = "STOP"
)

// Valid reports whether k is a known kind.
func (k PlaybackKind) Valid() bool {
	switch k {
	case PlaybackStart, PlaybackPause, PlaybackResume, PlaybackKeepalive, PlaybackStop:
		return true
	}
	return false
}

// PlaybackEntry is one accepted playback session event.
type PlaybackEntry struct {
	ID      string `json:"id"`
	Licence string `json:"licence_id"`
	// Title is the licence's title, so that read models (where did I leave
	// off) need not look the licence up; absent in events written before it.
	Title      string       `json:"title_id,omitempty"`
	Kind       PlaybackKind `json:"kind"`
	PositionMs int64        `json:"position_ms"`
	DeviceTime time.Time    `json:"device_time"`
}

// PlaybackRecorded records an uploaded batch: the events accepted and the
// outcome of every event in the batch, in upload order.
type PlaybackRecorded struct {
	Device   string           `json:"device_id"`
	Accepted []PlaybackEntry  `json:"accepted"`
	Results  []PlaybackResult `json:"results"`
}

func (*LicenceAcquired) eventType() EventType  { return TypeLicenceAcquired }
func (*LicenceRenewed) eventType() EventType   { return TypeLicenceRenewed }
func (*LicenceReleased) eventType() EventType  { return TypeLicenceReleased }
func (*DeviceReleased) eventType() EventType   { return TypeDeviceReleased }
func (*LicencesReleased) eventType() EventType { return TypeLicencesReleased }
func (*PlaybackRecorded) eventType() EventType { return TypePlaybackRecorded }
