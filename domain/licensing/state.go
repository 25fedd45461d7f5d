package licensing

import (
	"slices"
	"sort"
	"time"
)

// Retention limits of the state. They bound what a snapshot holds; none of
// them is a business rule, and each is documented where it shows to a client.
const (
	// EndedRetention is how long an expired or released licence is kept for
	// sync, renewal and late playback uploads before it is forgotten.
	EndedRetention = 30 * 24 * time.Hour
	// PlaybackHorizon is how old (by device time) an uploaded playback event
	// may be; duplicate detection covers the same span.
	PlaybackHorizon = 30 * 24 * time.Hour
	// KeyRetention is how long an idempotency key is remembered.
	KeyRetention = 24 * time.Hour
	// MaxKeys is how many idempotency keys are remembered at most.
	MaxKeys = 64
	// maxKeyEntries bounds the licence copies and playback results held by
	// remembered keys, so that a snapshot stays small whatever the traffic.
	maxKeyEntries = 2000
	// MaxEndedLicences is how many ended (released or expired) licences are
	// remembered at most; past it the longest-ended are forgotten early.
	MaxEndedLicences = 128
	// pruneEvery is how often (in event time) the fold prunes.
	pruneEvery = 7 * 24 * time.Hour
)

// Licence is one licence of a member as the fold knows it.
type Licence struct {
	ID       string
	Title    string
	Studio   string
	Device   string
	IssuedAt time.Time
	// TermStart is when the current term began: the grant or the last renewal.
	TermStart time.Time
	ExpiresAt time.Time
	Renewals  int

	ReleasedAt    time.Time // zero while not released
	ReleaseReason ReleaseReason

	// FirstPlayAt is the device time of the earliest START in the current
	// term (zero if none); Plays counts the STARTs in the current term.
	// (Where a member left off is the viewing read model's business.)
	FirstPlayAt time.Time
	Plays       int
}

// Released reports whether the licence has been released.
func (l *Licence) Released() bool { return !l.ReleasedAt.IsZero() }

// EffectiveExpiry is when the licence stops being playable under terms t:
// its expiry, or the end of the playback window opened by the first play.
func (l *Licence) EffectiveExpiry(t Terms) time.Time {
	end := l.ExpiresAt
	if t.PlaybackWindow > 0 && !l.FirstPlayAt.IsZero() {
		if w := l.FirstPlayAt.Add(t.PlaybackWindow); w.Before(end) {
			end = w
		}
	}
	return end
}

// Active reports whether the licence holds a download at time now: not
// released and not expired. Only active licences count against any limit.
func (l *Licence) Active(p *Policy, now time.Time) bool {
	return !l.Released() && now.Before(l.EffectiveExpiry(p.Terms(l.Studio)))
}

// endedBy is the latest time the licence could have ended, whatever the
// policy: its release or its expiry.
func (l *Licence) endedBy() time.Time {
	if l.Released() && l.ReleasedAt.Before(l.ExpiresAt) {
		return l.ReleasedAt
	}
	return l.ExpiresAt
}

// forgotten reports whether the licence is past retention at time t.
func (l *Licence) forgotten(t time.Time) bool {
	return !t.Before(l.endedBy().Add(EndedRetention))
}

// Request is what the state remembers of a request made with an idempotency
// key: enough to give a retry the first answer without a second write.
type Request struct {
	Key         string           `json:"k"`
	Fingerprint string           `json:"f"`
	At          time.Time        `json:"t"`
	Version     int64            `json:"v"` // the last version the request appended
	Licences    []LicenceStatus  `json:"l,omitempty"`
	Playback    []PlaybackResult `json:"p,omitempty"`
}

// State is everything the rules need to know about one member, folded from
// the member's events. The zero value is not usable; call NewState.
type State struct {
	Member  string
	Version int64
	// LastEventAt is the time of the last applied event.
	LastEventAt time.Time

	licences  map[string]*Licence
	list      []*Licence             // the same licences, in the order they were granted
	downloads map[string][]time.Time // title → latest acquisition times, ascending
	requests  []Request              // ascending by Version
	nextPrune time.Time
	// pruneAtCount prunes early once this many licences are held, so that
	// ended licences never pile up between daily prunes.
	pruneAtCount int
	// playback remembers accepted playback event ids.
	playback playbackMemory
}

// NewState returns the empty state of a member's stream.
func NewState(member string) *State {
	return &State{
		Member:    member,
		licences:  map[string]*Licence{},
		downloads: map[string][]time.Time{},
	}
}

// Fold builds a member's state from its events, in order.
func Fold(member string, events []Event) *State {
	s := NewState(member)
	for _, e := range events {
		s.Apply(e)
	}
	return s
}

// Licence returns a licence the state still remembers at time now, or nil.
func (s *State) Licence(id string, now time.Time) *Licence {
	l := s.licences[id]
	if l == nil || l.forgotten(now) {
		return nil
	}
	return l
}

// Licences returns the licences remembered at time now, oldest first.
func (s *State) Licences(now time.Time) []*Licence {
	out := make([]*Licence, 0, len(s.list))
	for _, l := range s.list {
		if !l.forgotten(now) {
			out = append(out, l)
		}
	}
	return out
}

// Request returns what the state remembers of an idempotency key at time
// now, if it still does.
func (s *State) Request(key string, now time.Time) (Request, bool) {
	for i := len(s.requests) - 1; i >= 0; i-- {
		r := s.requests[i]
		if r.Key == key {
			if now.Sub(r.At) >= KeyRetention {
				return Request{}, false
			}
			return r, true
		}
	}
	return Request{}, false
}

// Apply folds one event into the state. Events are facts: Apply never
// refuses one, and an event about a licence the state no longer knows
// changes nothing but the version.
func (s *State) Apply(e Event) { s.apply(e, e.Key != "") }

// apply folds e and, if answers is set, returns what a client is told
// about it: the licences it touched and the playback results it holds.
func (s *State) apply(e Event, answers bool) (touched []LicenceStatus, playback []PlaybackResult) {
	s.Version = e.Version
	s.LastEventAt = e.At
	switch p := e.Payload.(type) {
	case *LicenceAcquired:
		l := &Licence{
			ID: p.Licence, Title: p.Title, Studio: p.Studio, Device: p.Device,
			IssuedAt: e.At, TermStart: e.At, ExpiresAt: p.ExpiresAt,
		}
		if old := s.licences[l.ID]; old != nil { // ids are unique; never list one twice
			*old = *l
			l = old
		} else {
			s.licences[l.ID] = l
			s.list = append(s.list, l)
		}
		s.downloads[l.Title] = insertTime(s.downloads[l.Title], e.At, MaxQuotaCount)
		if answers {
			touched = append(touched, l.asStatus(StatusActive))
		}
	case *LicenceRenewed:
		if l := s.licences[p.Licence]; l != nil {
			l.ExpiresAt = p.ExpiresAt
			l.Renewals = p.Renewal
			l.TermStart = e.At
			l.FirstPlayAt = time.Time{}
			l.Plays = 0
			if answers {
				touched = append(touched, l.asStatus(StatusActive))
			}
		}
	case *LicenceReleased:
		if l := s.licences[p.Licence]; l != nil && !l.Released() {
			l.ReleasedAt, l.ReleaseReason = e.At, p.Reason
			if answers {
				touched = append(touched, l.asStatus(StatusReleased))
			}
		}
	case *LicencesReleased:
		for _, r := range p.Releases {
			if l := s.licences[r.Licence]; l != nil && !l.Released() {
				l.ReleasedAt, l.ReleaseReason = e.At, r.Reason
				if answers {
					touched = append(touched, l.asStatus(StatusReleased))
				}
			}
		}
	case *DeviceReleased:
		for _, id := range p.Licences {
			if l := s.licences[id]; l != nil && !l.Released() {
				l.ReleasedAt, l.ReleaseReason = e.At, p.Reason
				if answers {
					touched = append(touched, l.asStatus(StatusReleased))
				}
			}
		}
	case *PlaybackRecorded:
		s.playback.note(p, e.At)
		var l *Licence
		for i := range p.Accepted {
			pe := &p.Accepted[i]
			if l == nil || l.ID != pe.Licence { // uploads come grouped by licence
				l = s.licences[pe.Licence]
			}
			if l != nil {
				l.applyPlayback(pe)
			}
		}
		playback = p.Results
	}
	if e.Key != "" {
		s.remember(e, touched, playback)
	}
	if !e.At.Before(s.nextPrune) || len(s.licences) > s.pruneAtCount {
		s.prune(e.At)
		s.nextPrune = e.At.Add(pruneEvery)
		s.pruneAtCount = len(s.licences) + MaxEndedLicences
	}
	return touched, playback
}

// applyPlayback folds one accepted playback event into the licence.
func (l *Licence) applyPlayback(pe *PlaybackEntry) {
	if pe.Kind == PlaybackStart && l.inTerm(pe.DeviceTime) {
		l.Plays++
		if l.FirstPlayAt.IsZero() || pe.DeviceTime.Before(l.FirstPlayAt) {
			l.FirstPlayAt = pe.DeviceTime
		}
	}
}

// inTerm reports whether a play at device time t belongs to the current
// term. A device clock may run up to ClockSkew behind ours.
func (l *Licence) inTerm(t time.Time) bool {
	return !t.Before(l.TermStart.Add(-ClockSkew))
}

func (s *State) remember(e Event, touched []LicenceStatus, playback []PlaybackResult) {
	n := len(s.requests)
	if n > 0 && s.requests[n-1].Key == e.Key && s.requests[n-1].Version == e.Version-1 {
		r := &s.requests[n-1]
		r.Version = e.Version
		r.Licences = append(r.Licences, touched...)
		r.Playback = append(r.Playback, playback...)
		return
	}
	s.requests = append(s.requests, Request{
		Key: e.Key, Fingerprint: e.Fingerprint, At: e.At, Version: e.Version,
		Licences: touched, Playback: playback,
	})
	s.trimRequests(e.At)
}

// trimRequests keeps the newest MaxKeys keys younger than KeyRetention,
// holding at most maxKeyEntries licence copies and playback results.
func (s *State) trimRequests(now time.Time) {
	keep, entries := 0, 0
	for i := len(s.requests) - 1; i >= 0; i-- {
		r := s.requests[i]
		entries += len(r.Licences) + len(r.Playback)
		if keep == MaxKeys || now.Sub(r.At) >= KeyRetention || entries > maxKeyEntries {
			break
		}
		keep++
	}
	if drop := len(s.requests) - keep; drop > 0 {
		s.requests = slices.Clone(s.requests[drop:])
	}
}

// prune forgets what no rule can look at after time t: licences past
// retention, acquisitions older than MaxLookback and old idempotency keys
// (playback ids are forgotten as uploads come, see playbackMemory).
func (s *State) prune(t time.Time) {
	for id, l := range s.licences {
		if l.forgotten(t) {
			delete(s.licences, id)
		}
	}
	s.forgetEnded(t)
	if len(s.list) != len(s.licences) {
		kept := s.list[:0]
		for _, l := range s.list {
			if s.licences[l.ID] == l {
				kept = append(kept, l)
			}
		}
		clear(s.list[len(kept):])
		s.list = kept
	}
	horizon := t.Add(-MaxLookback)
	for title, times := range s.downloads {
		i := sort.Search(len(times), func(i int) bool { return times[i].After(horizon) })
		switch {
		case i == len(times):
			delete(s.downloads, title)
		case i > 0:
			s.downloads[title] = slices.Clone(times[i:])
		}
	}
	s.trimRequests(t)
}

// forgetEnded keeps at most MaxEndedLicences licences that had ended by t,
// the most recently ended.
func (s *State) forgetEnded(t time.Time) {
	var ended []*Licence
	for _, l := range s.list {
		if !l.endedBy().After(t) {
			ended = append(ended, l)
		}
	}
	if len(ended) <= MaxEndedLicences {
		return
	}
	sort.Slice(ended, func(i, j int) bool {
		a, b := ended[i].endedBy(), ended[j].endedBy()
		if !a.Equal(b) {
			return a.After(b)
		}
		return ended[i].ID > ended[j].ID
	})
	for _, l := range ended[MaxEndedLicences:] {
		delete(s.licences, l.ID)
	}
}

// insertTime adds t to the ascending ts, keeping the newest keep times.
func insertTime(ts []time.Time, t time.Time, keep int) []time.Time {
	i := sort.Search(len(ts), func(i int) bool { return ts[i].After(t) })
	ts = slices.Insert(ts, i, t)
	if len(ts) > keep {
		ts = slices.Delete(ts, 0, len(ts)-keep)
	}
	return ts
}
