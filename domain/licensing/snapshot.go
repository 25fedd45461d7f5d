package licensing

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// StateSchema is the version of the state's shape held in snapshots. Bump it
// whenever State or its fold changes meaning or the encoding changes; keep
// reading the older schemas while their snapshots may be stored.
//
//   - Schema 1: JSON, every acquisition time of the last 730 days, 64-bit
//     playback id hashes. Still read.
//   - Schema 2: a compact binary encoding (see snapshotWriter) that keeps
//     only the acquisition times the policy's quotas can look at, and
//     40-bit playback id hashes.
const StateSchema = 2

// schemaJSON is the first state schema, still read.
const schemaJSON = 1

// Snapshot is a member's state at a version, encoded.
type Snapshot struct {
	Stream  string
	Version int64
	Schema  int
	Data    []byte
}

// EncodeSnapshot encodes a state for policy p. The encoding is
// deterministic: equal states give equal bytes. It keeps, of the
// acquisition times, only those p's title quotas can look at, and records
// which quotas those were: RestoreSnapshot uses it only under a policy
// with the same quotas.
func EncodeSnapshot(s *State, p *Policy) (Snapshot, error) {
	s.playback.settle() // the floor below must be the settled one
	w := &snapshotWriter{strings: map[string]int{}}
	w.uint(StateSchema)
	w.str(s.Member)
	w.uint(uint64(s.Version))
	w.absolute(s.LastEventAt)
	w.base = s.LastEventAt
	w.time(s.nextPrune, w.base)
	w.uint(uint64(s.pruneAtCount))
	w.str(p.QuotaDigest())

	w.uint(uint64(len(s.list)))
	prevIssued := w.base
	for _, l := range s.list {
		w.token(l.ID)
		w.ref(l.Title)
		w.ref(l.Studio)
		w.ref(l.Device)
		w.time(l.IssuedAt, prevIssued)
		prevIssued = l.IssuedAt
		w.time(l.TermStart, l.IssuedAt)
		w.time(l.ExpiresAt, l.TermStart)
		w.uint(uint64(l.Renewals))
		w.time(l.ReleasedAt, l.IssuedAt)
		w.ref(string(l.ReleaseReason))
		w.time(l.FirstPlayAt, l.TermStart)
		w.uint(uint64(l.Plays))
	}

	kept := quotaTimes(s, p)
	titles := sortedKeys(kept)
	w.uint(uint64(len(titles)))
	for _, title := range titles {
		w.ref(title)
		w.uint(uint64(len(kept[title])))
		prev := w.base
		for _, t := range kept[title] {
			w.time(t, prev)
			prev = t
		}
	}

	index := make(map[string]int, len(s.list))
	for i, l := range s.list {
		index[l.ID] = i
	}
	w.uint(uint64(len(s.requests)))
	for _, r := range s.requests {
		w.token(r.Key)
		w.fingerprint(r.Fingerprint)
		w.time(r.At, w.base)
		w.uint(uint64(s.Version - r.Version))
		w.uint(uint64(len(r.Licences)))
		for _, v := range r.Licences {
			w.answer(v, index, s.list)
		}
		w.uint(uint64(len(r.Playback)))
		for _, pr := range r.Playback {
			w.token(pr.ID)
			w.ref(pr.Code)
		}
	}

	m := &s.playback
	w.int(m.floor - w.base.Unix())
	w.uint(uint64(len(m.uploads)))
	prev := minutes(w.base)
	for _, u := range m.uploads {
		w.int(u.at - prev)
		prev = u.at
		w.uint(uint64(len(u.hashes)))
		for _, h := range u.hashes {
			for shift := hashBits - 8; shift >= 0; shift -= 8 {
				w.buf = append(w.buf, byte(h>>shift))
			}
		}
	}
	if w.err != nil {
		return Snapshot{}, fmt.Errorf("encode snapshot of %s v%d: %w", s.Member, s.Version, w.err)
	}
	return Snapshot{Stream: s.Member, Version: s.Version, Schema: StateSchema, Data: w.buf}, nil
}

// quotaTimes are the acquisition times of each title that p's quota rules
// can look at from the state's last event on: the newest Count within the
// quota's Window. A title without a quota (or not in p's catalogue) needs none.
func quotaTimes(s *State, p *Policy) map[string][]time.Time {
	kept := map[string][]time.Time{}
	for title, times := range s.downloads {
		t, ok := p.Title(title)
		if !ok {
			continue
		}
		q := p.Terms(t.Studio).TitleQuota
		if q == nil {
			continue
		}
		from := s.LastEventAt.Add(-q.Window.D())
		i := sort.Search(len(times), func(i int) bool { return times[i].After(from) })
		if n := len(times) - i; n > q.Count {
			i = len(times) - q.Count
		}
		if i < len(times) {
			kept[title] = times[i:]
		}
	}
	return kept
}

// RestoreSnapshot decodes a snapshot for policy p. A snapshot of an
// unknown schema, or of this schema encoded for other title quotas than
// p's, is ignored: ok is false and the caller replays the log instead. A
// snapshot of the first schema (JSON) is read and converted.
func RestoreSnapshot(snap Snapshot, p *Policy) (s *State, ok bool, err error) {
	switch snap.Schema {
	case StateSchema:
		s, ok, err = decodeSnapshot(snap.Data, p)
	case schemaJSON:
		s, err = restoreJSON(snap.Data)
		ok = err == nil
	default:
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("restore snapshot of %s v%d: %w", snap.Stream, snap.Version, err)
	}
	if !ok {
		return nil, false, nil
	}
	if s.Version != snap.Version || s.Member != snap.Stream {
		return nil, false, fmt.Errorf("restore snapshot of %s v%d: it holds %s v%d", snap.Stream, snap.Version, s.Member, s.Version)
	}
	return s, true, nil
}

func decodeSnapshot(data []byte, p *Policy) (*State, bool, error) {
	r := &snapshotReader{buf: data}
	if v := r.uint(); v != StateSchema && r.err == nil {
		return nil, false, fmt.Errorf("encoded as schema %d", v)
	}
	s := NewState(r.str())
	s.Version = int64(r.uint())
	s.LastEventAt = r.absolute()
	r.base = s.LastEventAt
	s.nextPrune = r.time(r.base)
	s.pruneAtCount = int(r.uint())
	if digest := r.str(); r.err == nil && digest != p.QuotaDigest() {
		return nil, false, nil // kept for other quotas: replay
	}

	n := r.count()
	prevIssued := r.base
	for range n {
		l := &Licence{ID: r.token(), Title: r.ref(), Studio: r.ref(), Device: r.ref()}
		l.IssuedAt = r.time(prevIssued)
		prevIssued = l.IssuedAt
		l.TermStart = r.time(l.IssuedAt)
		l.ExpiresAt = r.time(l.TermStart)
		l.Renewals = int(r.uint())
		l.ReleasedAt = r.time(l.IssuedAt)
		l.ReleaseReason = ReleaseReason(r.ref())
		l.FirstPlayAt = r.time(l.TermStart)
		l.Plays = int(r.uint())
		if r.err != nil {
			break
		}
		if s.licences[l.ID] != nil {
			return nil, false, fmt.Errorf("licence %s twice", l.ID)
		}
		s.licences[l.ID] = l
		s.list = append(s.list, l)
	}

	n = r.count()
	for range n {
		title := r.ref()
		k := r.count()
		times := make([]time.Time, 0, k)
		prev := r.base
		for range k {
			prev = r.time(prev)
			times = append(times, prev)
		}
		if r.err == nil {
			s.downloads[title] = times
		}
	}

	n = r.count()
	for range n {
		q := Request{Key: r.token(), Fingerprint: r.fingerprint(), At: r.time(r.base)}
		q.Version = s.Version - int64(r.uint())
		for range r.count() {
			q.Licences = append(q.Licences, r.answer(s.list))
		}
		for range r.count() {
			q.Playback = append(q.Playback, PlaybackResult{ID: r.token(), Code: r.ref()})
		}
		s.requests = append(s.requests, q)
	}

	m := &s.playback
	m.floor = r.base.Unix() + r.int()
	n = r.count()
	prev := minutes(r.base)
	for range n {
		prev += r.int()
		u := seenUpload{at: prev, hashes: make([]uint64, r.count())}
		for i := range u.hashes {
			for range hashBits / 8 {
				u.hashes[i] = u.hashes[i]<<8 | uint64(r.byte())
			}
		}
		m.uploads = append(m.uploads, u)
		m.count += len(u.hashes)
	}
	if r.err == nil && r.pos != len(r.buf) {
		r.err = fmt.Errorf("%d bytes after the state", len(r.buf)-r.pos)
	}
	if r.err != nil {
		return nil, false, r.err
	}
	return s, true, nil
}

// snapshotJSON is the first state schema's encoding.
type snapshotJSON struct {
	Member      string        `json:"m"`
	Version     int64         `json:"v"`
	LastEventAt time.Time     `json:"t"`
	NextPrune   time.Time     `json:"np"`
	PruneAt     int           `json:"pa,omitempty"`
	Licences    []licenceJSON `json:"l,omitempty"`
	// Downloads maps a title to its acquisition times: Unix nanoseconds of
	// the first, then the gap to each next one.
	Downloads map[string][]int64 `json:"d,omitempty"`
	Requests  []Request          `json:"r,omitempty"`
	// Playback holds the remembered playback ids, packed, and the floor.
	Playback      string `json:"p,omitempty"`
	PlaybackFloor int64  `json:"pf,omitempty"`
}

type licenceJSON struct {
	ID            string        `json:"id"`
	Title         string        `json:"ti"`
	Studio        string        `json:"st"`
	Device        string        `json:"de"`
	IssuedAt      time.Time     `json:"ia"`
	TermStart     time.Time     `json:"ts"`
	ExpiresAt     time.Time     `json:"ex"`
	Renewals      int           `json:"rn,omitempty"`
	ReleasedAt    *time.Time    `json:"ra,omitempty"`
	ReleaseReason ReleaseReason `json:"rr,omitempty"`
	FirstPlayAt   *time.Time    `json:"fp,omitempty"`
	Plays         int           `json:"pl,omitempty"`
	// The last position played; the first schema kept it, unused.
	LastPosition int64      `json:"lp,omitempty"`
	LastPlayedAt *time.Time `json:"la,omitempty"`
}

func fromOpt(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// restoreJSON reads a snapshot of the first schema into today's state:
// the same facts, with playback id hashes cut to today's width.
func restoreJSON(data []byte) (*State, error) {
	var d snapshotJSON
	if err := strictUnmarshal(data, &d); err != nil {
		return nil, err
	}
	s := NewState(d.Member)
	s.Version, s.LastEventAt, s.nextPrune, s.pruneAtCount = d.Version, d.LastEventAt.UTC(), d.NextPrune.UTC(), d.PruneAt
	s.requests = d.Requests
	var err error
	if s.playback, err = unpackPlayback(d.Playback, d.PlaybackFloor); err != nil {
		return nil, err
	}
	for _, ld := range d.Licences {
		l := &Licence{
			ID: ld.ID, Title: ld.Title, Studio: ld.Studio, Device: ld.Device,
			IssuedAt: ld.IssuedAt.UTC(), TermStart: ld.TermStart.UTC(), ExpiresAt: ld.ExpiresAt.UTC(), Renewals: ld.Renewals,
			ReleasedAt: fromOpt(ld.ReleasedAt), ReleaseReason: ld.ReleaseReason,
			FirstPlayAt: fromOpt(ld.FirstPlayAt), Plays: ld.Plays,
		}
		if s.licences[l.ID] != nil {
			return nil, fmt.Errorf("licence %s twice", l.ID)
		}
		s.licences[l.ID] = l
		s.list = append(s.list, l)
	}
	for title, ns := range d.Downloads {
		times := make([]time.Time, len(ns))
		at := int64(0)
		for i, n := range ns {
			at += n
			times[i] = time.Unix(0, at).UTC()
		}
		s.downloads[title] = times
	}
	return s, nil
}

// encodeJSON writes a state in the first schema, for tests of reading it.
func encodeJSON(s *State) ([]byte, error) {
	s.playback.settle()
	optTime := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	d := snapshotJSON{
		Member: s.Member, Version: s.Version, LastEventAt: s.LastEventAt.UTC(), NextPrune: s.nextPrune.UTC(), PruneAt: s.pruneAtCount,
		Requests: s.requests, Playback: s.playback.pack(), PlaybackFloor: s.playback.floor,
	}
	for _, l := range s.list {
		d.Licences = append(d.Licences, licenceJSON{
			ID: l.ID, Title: l.Title, Studio: l.Studio, Device: l.Device,
			IssuedAt: l.IssuedAt.UTC(), TermStart: l.TermStart.UTC(), ExpiresAt: l.ExpiresAt.UTC(), Renewals: l.Renewals,
			ReleasedAt: optTime(l.ReleasedAt), ReleaseReason: l.ReleaseReason,
			FirstPlayAt: optTime(l.FirstPlayAt), Plays: l.Plays,
		})
	}
	if len(s.downloads) > 0 {
		d.Downloads = map[string][]int64{}
		for title, times := range s.downloads {
			ns := make([]int64, len(times))
			prev := int64(0)
			for i, t := range times {
				ns[i] = t.UnixNano() - prev
				prev = t.UnixNano()
			}
			d.Downloads[title] = ns
		}
	}
	return json.Marshal(d)
}

// fingerprintHex reports whether a fingerprint is lowercase hex of even
// length, which the compact encoding stores as bytes.
func fingerprintHex(f string) bool {
	if f == "" || len(f)%2 != 0 {
		return false
	}
	b, err := hex.DecodeString(f)
	return err == nil && hex.EncodeToString(b) == f
}
