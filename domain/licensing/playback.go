package licensing

import (
	"sort"
	"time"
)

// Per-event playback result codes. They are stable and part of the API.
const (
	PlaybackAccepted       = "ACCEPTED"
	PlaybackDuplicate      = "DUPLICATE"
	PlaybackUnknownLicence = "LICENCE_NOT_FOUND"
	PlaybackInvalid        = "INVALID_EVENT"
	PlaybackTooOld         = "TOO_OLD"
	PlaybackOutsideLicence = "OUTSIDE_LICENCE"
	PlaybackPlayLimit      = "PLAY_LIMIT_EXCEEDED"
)

// ClockSkew is how far a device clock may run ahead of the service's.
const ClockSkew = 5 * time.Minute

// PlaybackResult is the outcome of one uploaded playback event.
type PlaybackResult struct {
	ID   string `json:"id"`
	Code string `json:"code"`
}

// decide classifies every event of the batch. Events are judged in device
// time order (so a late upload counts plays as they happened) and answered
// in upload order. Only accepted events are recorded; a batch with none
// appends nothing.
func (c RecordPlayback) decide(s *State, p *Policy, now time.Time, _ func() string) (Decision, error) {
	order := make([]int, len(c.Events))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return c.Events[order[a]].DeviceTime.Before(c.Events[order[b]].DeviceTime)
	})
	codes := make([]string, len(c.Events))
	inBatch := make(map[string]bool, len(c.Events))
	plays := map[string]*batchPlays{} // STARTs accepted in this batch, per licence
	var accepted []PlaybackEntry
	for _, i := range order {
		e := c.Events[i]
		code, l := judge(s, p, now, c.Device, e, inBatch, plays)
		inBatch[e.ID] = true
		codes[i] = code
		if code == PlaybackAccepted {
			accepted = append(accepted, PlaybackEntry{
				ID: e.ID, Licence: e.Licence, Title: l.Title, Kind: e.Kind, PositionMs: e.PositionMs, DeviceTime: e.DeviceTime.UTC(),
			})
		}
	}
	results := make([]PlaybackResult, len(c.Events))
	for i, e := range c.Events {
		results[i] = PlaybackResult{ID: e.ID, Code: codes[i]}
	}
	if len(accepted) == 0 {
		return Decision{Result: Result{Version: s.Version, Playback: results}}, nil
	}
	return Decision{Event: &PlaybackRecorded{Device: c.Device, Accepted: accepted, Results: results}}, nil
}

// batchPlays are the STARTs of one licence a batch accepted so far: how
// many, and the device time of the first, which opens the playback window
// when the licence had no play before.
type batchPlays struct {
	n     int
	first time.Time
}

// judge classifies one event; an accepted one comes with its licence.
// Events come in device-time order, so a batch's STARTs are judged against
// the window its own earlier STARTs opened, as separate uploads would be.
func judge(s *State, p *Policy, now time.Time, device string, e PlaybackInput, inBatch map[string]bool, plays map[string]*batchPlays) (string, *Licence) {
	if inBatch[e.ID] {
		return PlaybackDuplicate, nil
	}
	if !e.Kind.Valid() || e.PositionMs < 0 || e.PositionMs > 7*24*3600*1000 || e.DeviceTime.IsZero() {
		return PlaybackInvalid, nil
	}
	l := s.Licence(e.Licence, now)
	if l == nil || l.Device != device {
		return PlaybackUnknownLicence, nil
	}
	if s.playback.has(e.ID) {
		return PlaybackDuplicate, nil
	}
	if e.DeviceTime.Before(now.Add(-PlaybackHorizon)) || s.playback.tooOld(e.DeviceTime) {
		return PlaybackTooOld, nil
	}
	end := l.ExpiresAt
	if l.Released() && l.ReleasedAt.Before(end) {
		end = l.ReleasedAt
	}
	if t, ok := p.Title(l.Title); ok && t.AvailableUntil != nil && t.AvailableUntil.Before(end) {
		end = *t.AvailableUntil // the rights end there (or the title was withdrawn)
	}
	if e.DeviceTime.Before(l.IssuedAt.Add(-ClockSkew)) || e.DeviceTime.After(end.Add(ClockSkew)) || e.DeviceTime.After(now.Add(ClockSkew)) {
		return PlaybackOutsideLicence, nil
	}
	if e.Kind == PlaybackStart && l.inTerm(e.DeviceTime) {
		terms := p.Terms(l.Studio)
		b := plays[l.ID]
		if b == nil {
			b = &batchPlays{}
			plays[l.ID] = b
		}
		first := l.FirstPlayAt
		if first.IsZero() {
			first = b.first
		}
		if terms.PlaybackWindow > 0 && !first.IsZero() && !e.DeviceTime.Before(first.Add(terms.PlaybackWindow)) {
			return PlaybackOutsideLicence, nil
		}
		if terms.MaxPlaysPerWindow > 0 && l.Plays+b.n >= terms.MaxPlaysPerWindow {
			return PlaybackPlayLimit, nil
		}
		if b.n == 0 {
			b.first = e.DeviceTime
		}
		b.n++
	}
	return PlaybackAccepted, l
}
