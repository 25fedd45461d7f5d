package licensing

import (
	"hash/fnv"
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
	// MaxPlaybackIDs is how many accepted playback event ids a member's state
	// remembers at most for duplicate detection. Past it the oldest (by device
	// time) are forgotten, and events older than the newest forgotten one are
	// refused as too old, so that no duplicate is ever taken for new.
	MaxPlaybackIDs = 2048
	// MaxEndedLicences is how many ended (released or expired) licences are
	// remembered at most; past it the longest-ended are forgotten early.
	MaxEndedLicences = 128
	// pruneEvery is how often (in event time) the fold prunes.
	pruneEvery = 24 * time.Hour
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
	FirstPlayAt  time.Time
	Plays        int
	LastPosition int64
	LastPlayedAt time.Time

	// seen maps the hash of each accepted playback event id to its device
	// time (Unix seconds), for duplicate detection within PlaybackHorizon.
	seen map[uint64]int64
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
	Key         string
	Fingerprint string
	At          time.Time
	Version     int64 // the last version the request appended
	Licences    []LicenceView
	Playback    []PlaybackResult
}

// State is everything the rules need to know about one member, folded from
// the member's events. The zero value is not usable; call NewState.
type State struct {
	Member  string
	Version int64
	// LastEventAt is the time of the last applied event.
	LastEventAt time.Time

	licences  map[string]*Licence
	downloads map[string][]time.Time // title → acquisition times, ascending
	requests  []Request              // ascending by Version
	nextPrune time.Time
	// pruneAtCount prunes early once this many licences are held, so that
	// ended licences never pile up between daily prunes.
	pruneAtCount int
	// seenIDs counts the playback ids remembered across all licences, and
	// playbackFloor is the device time below which uploads are refused
	// because ids from before it may have been forgotten.
	seenIDs       int
	playbackFloor time.Time
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
	out := make([]*Licence, 0, len(s.licences))
	for _, l := range s.licences {
		if !l.forgotten(now) {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].IssuedAt.Equal(out[j].IssuedAt) {
			return out[i].IssuedAt.Before(out[j].IssuedAt)
		}
		return out[i].ID < out[j].ID
	})
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
func (s *State) Apply(e Event) { s.apply(e) }

// apply folds e and returns what a client is told about it: the licences it
// touched and the playback results it holds.
func (s *State) apply(e Event) (touched []LicenceView, playback []PlaybackResult) {
	s.Version = e.Version
	s.LastEventAt = e.At
	switch p := e.Payload.(type) {
	case *LicenceAcquired:
		l := &Licence{
			ID: p.Licence, Title: p.Title, Studio: p.Studio, Device: p.Device,
			IssuedAt: e.At, TermStart: e.At, ExpiresAt: p.ExpiresAt,
		}
		s.licences[l.ID] = l
		s.downloads[l.Title] = insertTime(s.downloads[l.Title], e.At)
		touched = append(touched, l.view(StatusActive))
	case *LicenceRenewed:
		if l := s.licences[p.Licence]; l != nil {
			l.ExpiresAt = p.ExpiresAt
			l.Renewals = p.Renewal
			l.TermStart = e.At
			l.FirstPlayAt = time.Time{}
			l.Plays = 0
			touched = append(touched, l.view(StatusActive))
		}
	case *LicenceReleased:
		if l := s.licences[p.Licence]; l != nil && !l.Released() {
			l.ReleasedAt, l.ReleaseReason = e.At, p.Reason
			touched = append(touched, l.view(StatusReleased))
		}
	case *DeviceReleased:
		for _, id := range p.Licences {
			if l := s.licences[id]; l != nil && !l.Released() {
				l.ReleasedAt, l.ReleaseReason = e.At, p.Reason
				touched = append(touched, l.view(StatusReleased))
			}
		}
	case *PlaybackRecorded:
		for _, pe := range p.Accepted {
			if l := s.licences[pe.Licence]; l != nil {
				s.seenIDs += l.applyPlayback(pe)
			}
		}
		if s.seenIDs > MaxPlaybackIDs {
			s.forgetOldestPlayback(MaxPlaybackIDs * 3 / 4)
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

// applyPlayback folds one accepted playback event and returns how many ids
// it added to the duplicate memory (0 or 1).
func (l *Licence) applyPlayback(pe PlaybackEntry) (added int) {
	if l.seen == nil {
		l.seen = map[uint64]int64{}
	}
	h := eventHash(pe.ID)
	if _, ok := l.seen[h]; !ok {
		added = 1
	}
	l.seen[h] = pe.DeviceTime.Unix()
	if pe.Kind == PlaybackStart && !pe.DeviceTime.Before(l.TermStart) {
		l.Plays++
		if l.FirstPlayAt.IsZero() || pe.DeviceTime.Before(l.FirstPlayAt) {
			l.FirstPlayAt = pe.DeviceTime
		}
	}
	if !pe.DeviceTime.Before(l.LastPlayedAt) {
		l.LastPlayedAt = pe.DeviceTime
		l.LastPosition = pe.PositionMs
	}
	return added
}

// forgetOldestPlayback trims the duplicate memory to keep ids, dropping the
// oldest by device time, and raises the playback floor past them.
func (s *State) forgetOldestPlayback(keep int) {
	type entry struct {
		l  *Licence
		h  uint64
		at int64
	}
	all := make([]entry, 0, s.seenIDs)
	for _, l := range s.licences {
		for h, at := range l.seen {
			all = append(all, entry{l, h, at})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].at != all[j].at {
			return all[i].at < all[j].at
		}
		return all[i].h < all[j].h
	})
	drop := len(all) - keep
	if drop <= 0 {
		return
	}
	// Ids of the same second go together, so the floor is exact.
	for drop < len(all) && all[drop].at == all[drop-1].at {
		drop++
	}
	for _, e := range all[:drop] {
		delete(e.l.seen, e.h)
	}
	s.seenIDs -= drop
	if floor := time.Unix(all[drop-1].at+1, 0).UTC(); floor.After(s.playbackFloor) {
		s.playbackFloor = floor
	}
}

// hasSeen reports whether a playback event id was already accepted.
func (l *Licence) hasSeen(id string) bool {
	_, ok := l.seen[eventHash(id)]
	return ok
}

// eventHash is the 64-bit FNV-1a hash of a client event id. Collisions are
// possible in principle; at 64 bits and the few thousand ids one licence
// sees, the chance is below one in a billion billion.
func eventHash(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

func (s *State) remember(e Event, touched []LicenceView, playback []PlaybackResult) {
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
// retention, acquisitions older than MaxLookback, playback ids older than
// PlaybackHorizon, and old idempotency keys.
func (s *State) prune(t time.Time) {
	cutoff := t.Add(-PlaybackHorizon).Unix()
	for id, l := range s.licences {
		if l.forgotten(t) {
			s.seenIDs -= len(l.seen)
			delete(s.licences, id)
			continue
		}
		for h, at := range l.seen {
			if at < cutoff {
				delete(l.seen, h)
				s.seenIDs--
			}
		}
	}
	s.forgetEnded(t)
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
	for _, l := range s.licences {
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
		s.seenIDs -= len(l.seen)
		delete(s.licences, l.ID)
	}
}

func insertTime(ts []time.Time, t time.Time) []time.Time {
	i := sort.Search(len(ts), func(i int) bool { return ts[i].After(t) })
	return slices.Insert(ts, i, t)
}
