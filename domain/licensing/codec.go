package licensing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// StoredEvent is the persisted form of an event: the envelope as fields and
// the payload as JSON in the schema version it was written with. Stores keep
// exactly these fields; DecodeEvent upcasts old schemas on the way back.
type StoredEvent struct {
	Version       int64
	Type          EventType
	Schema        int
	At            time.Time
	PolicyVersion string
	Key           string
	Fingerprint   string
	RequestID     string
	Data          []byte
}

// currentSchema is the schema version written for each event type today.
var currentSchema = map[EventType]int{
	TypeLicenceAcquired:  2,
	TypeLicenceRenewed:   1,
	TypeLicenceReleased:  1,
	TypeDeviceReleased:   1,
	TypeLicencesReleased: 1,
	TypePlaybackRecorded: 2,
}

// CurrentSchema returns the schema version written for an event type, or 0
// for an unknown type.
func CurrentSchema(t EventType) int { return currentSchema[t] }

// EncodeEvent turns an event into its stored form at the current schema.
func EncodeEvent(e Event) (StoredEvent, error) {
	if e.Payload == nil {
		return StoredEvent{}, fmt.Errorf("encode event v%d: no payload", e.Version)
	}
	data, err := json.Marshal(e.Payload)
	if err != nil {
		return StoredEvent{}, fmt.Errorf("encode %s v%d: %w", e.Type(), e.Version, err)
	}
	return StoredEvent{
		Version:       e.Version,
		Type:          e.Type(),
		Schema:        currentSchema[e.Type()],
		At:            e.At.UTC(),
		PolicyVersion: e.PolicyVersion,
		Key:           e.Key,
		Fingerprint:   e.Fingerprint,
		RequestID:     e.RequestID,
		Data:          data,
	}, nil
}

// DecodeEvent reads a stored event, upcasting it to the current schema of
// its type first. Unknown types, future schemas and malformed payloads are
// errors: a reader must never guess at history.
func DecodeEvent(s StoredEvent) (Event, error) {
	up, err := Upcast(s)
	if err != nil {
		return Event{}, err
	}
	var p Payload
	switch up.Type {
	case TypeLicenceAcquired:
		p = new(LicenceAcquired)
	case TypeLicenceRenewed:
		p = new(LicenceRenewed)
	case TypeLicenceReleased:
		p = new(LicenceReleased)
	case TypeDeviceReleased:
		p = new(DeviceReleased)
	case TypeLicencesReleased:
		p = new(LicencesReleased)
	case TypePlaybackRecorded:
		p = new(PlaybackRecorded)
	}
	if err := strictUnmarshal(up.Data, p); err != nil {
		return Event{}, fmt.Errorf("decode %s v%d (schema %d): %w", up.Type, up.Version, up.Schema, err)
	}
	return Event{
		Version:       up.Version,
		At:            up.At.UTC(),
		PolicyVersion: up.PolicyVersion,
		Key:           up.Key,
		Fingerprint:   up.Fingerprint,
		RequestID:     up.RequestID,
		Payload:       p,
	}, nil
}

// Upcaster turns a stored event of one schema version into the next one.
// It may read the envelope (the time it happened, say) but must not change it.
type Upcaster func(StoredEvent) (json.RawMessage, error)

type upcastKey struct {
	t    EventType
	from int
}

// upcasters is the registry: (type, from-version) → the step to from+1.
// Every schema below a type's current one must have its step here; a test
// checks that the chain is complete.
var upcasters = map[upcastKey]Upcaster{
	{TypeLicenceAcquired, 1}:  upcastLicenceAcquiredV1,
	{TypePlaybackRecorded, 1}: upcastPlaybackRecordedV1,
}

// Upcast brings a stored event to the current schema of its type, one
// registered step at a time. The input is not modified.
func Upcast(s StoredEvent) (StoredEvent, error) {
	cur, ok := currentSchema[s.Type]
	if !ok {
		return s, fmt.Errorf("event v%d: unknown type %q", s.Version, s.Type)
	}
	if s.Schema < 1 || s.Schema > cur {
		return s, fmt.Errorf("%s v%d: schema %d is not between 1 and %d", s.Type, s.Version, s.Schema, cur)
	}
	for s.Schema < cur {
		step, ok := upcasters[upcastKey{s.Type, s.Schema}]
		if !ok {
			return s, fmt.Errorf("%s v%d: no upcaster from schema %d", s.Type, s.Version, s.Schema)
		}
		data, err := step(s)
		if err != nil {
			return s, fmt.Errorf("upcast %s v%d from schema %d: %w", s.Type, s.Version, s.Schema, err)
		}
		s.Data = data
		s.Schema++
	}
	return s, nil
}

// upcastLicenceAcquiredV1: schema 1 stored the licence length in seconds
// ("duration_s") and named fields "licence", "title", "studio", "device";
// schema 2 stores the expiry as a time and uses *_id names.
func upcastLicenceAcquiredV1(s StoredEvent) (json.RawMessage, error) {
	var v1 struct {
		Licence   string `json:"licence"`
		Title     string `json:"title"`
		Studio    string `json:"studio"`
		Device    string `json:"device"`
		DurationS int64  `json:"duration_s"`
	}
	if err := strictUnmarshal(s.Data, &v1); err != nil {
		return nil, err
	}
	if v1.DurationS <= 0 {
		return nil, fmt.Errorf("duration_s %d is not positive", v1.DurationS)
	}
	// Schema 1 did not record the plan; "" tells a what-if replay so.
	return json.Marshal(LicenceAcquired{
		Licence:   v1.Licence,
		Title:     v1.Title,
		Studio:    v1.Studio,
		Device:    v1.Device,
		ExpiresAt: s.At.UTC().Add(time.Duration(v1.DurationS) * time.Second),
	})
}

// upcastPlaybackRecordedV1: schema 1 stored positions as fractional seconds
// ("position_s") and had no per-event results; schema 2 stores whole
// milliseconds and the outcome of every uploaded event (all accepted in v1,
// which only recorded accepted events).
func upcastPlaybackRecordedV1(s StoredEvent) (json.RawMessage, error) {
	var v1 struct {
		Device string `json:"device_id"`
		Events []struct {
			ID         string       `json:"id"`
			Licence    string       `json:"licence_id"`
			Kind       PlaybackKind `json:"kind"`
			PositionS  float64      `json:"position_s"`
			DeviceTime time.Time    `json:"device_time"`
		} `json:"events"`
	}
	if err := strictUnmarshal(s.Data, &v1); err != nil {
		return nil, err
	}
	v2 := PlaybackRecorded{Device: v1.Device, Accepted: []PlaybackEntry{}, Results: []PlaybackResult{}}
	for _, e := range v1.Events {
		if e.PositionS < 0 {
			return nil, fmt.Errorf("event %s: negative position", e.ID)
		}
		v2.Accepted = append(v2.Accepted, PlaybackEntry{
			ID:         e.ID,
			Licence:    e.Licence,
			Kind:       e.Kind,
			PositionMs: int64(e.PositionS*1000 + 0.5),
			DeviceTime: e.DeviceTime.UTC(),
		})
		v2.Results = append(v2.Results, PlaybackResult{ID: e.ID, Code: PlaybackAccepted})
	}
	return json.Marshal(v2)
}

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// CheckAppend checks what every store checks before an append: a stream
// name, at least one event, and versions expected+1, expected+2, … in order.
// A store still decides conflicts itself.
func CheckAppend(stream string, expected int64, events []StoredEvent) error {
	switch {
	case stream == "":
		return fmt.Errorf("append: empty stream name")
	case len(events) == 0:
		return fmt.Errorf("append to %s: no events", stream)
	case expected < 0:
		return fmt.Errorf("append to %s: negative expected version %d", stream, expected)
	}
	for i, e := range events {
		if want := expected + int64(i) + 1; e.Version != want {
			return fmt.Errorf("append to %s at v%d: event %d has version %d, want %d", stream, expected, i, e.Version, want)
		}
	}
	return nil
}
