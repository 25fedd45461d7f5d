package licensing

import (
	"encoding/json"
	"fmt"
	"time"
)

// StateSchema is the version of the state's shape held in snapshots. Bump it
// whenever State or its fold changes meaning: older snapshots are then
// ignored and the state is replayed from the log.
const StateSchema = 1

// Snapshot is a member's state at a version, encoded.
type Snapshot struct {
	Stream  string
	Version int64
	Schema  int
	Data    []byte
}

type snapshotData struct {
	Member      string        `json:"m"`
	Version     int64         `json:"v"`
	LastEventAt time.Time     `json:"t"`
	NextPrune   time.Time     `json:"np"`
	PruneAt     int           `json:"pa,omitempty"`
	Licences    []licenceData `json:"l,omitempty"`
	// Downloads maps a title to its acquisition times: Unix nanoseconds of
	// the first, then the gap to each next one (small, and compresses well).
	Downloads map[string][]int64 `json:"d,omitempty"`
	Requests  []Request          `json:"r,omitempty"`
	// Playback holds the remembered playback ids, packed, and the floor.
	Playback      string `json:"p,omitempty"`
	PlaybackFloor int64  `json:"pf,omitempty"`
}

type licenceData struct {
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
	LastPosition  int64         `json:"lp,omitempty"`
	LastPlayedAt  *time.Time    `json:"la,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func fromOpt(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// EncodeSnapshot encodes a state. The encoding is deterministic: equal
// states give equal bytes.
func EncodeSnapshot(s *State) (Snapshot, error) {
	s.playback.settle() // the floor below must be the settled one
	d := snapshotData{
		Member: s.Member, Version: s.Version, LastEventAt: s.LastEventAt.UTC(), NextPrune: s.nextPrune.UTC(), PruneAt: s.pruneAtCount,
		Requests: s.requests, Playback: s.playback.pack(), PlaybackFloor: s.playback.floor,
	}
	for _, l := range s.list {
		d.Licences = append(d.Licences, licenceData{
			ID: l.ID, Title: l.Title, Studio: l.Studio, Device: l.Device,
			IssuedAt: l.IssuedAt.UTC(), TermStart: l.TermStart.UTC(), ExpiresAt: l.ExpiresAt.UTC(), Renewals: l.Renewals,
			ReleasedAt: optTime(l.ReleasedAt), ReleaseReason: l.ReleaseReason,
			FirstPlayAt: optTime(l.FirstPlayAt), Plays: l.Plays,
			LastPosition: l.LastPosition, LastPlayedAt: optTime(l.LastPlayedAt),
		})
	}
	if len(s.downloads) > 0 {
		d.Downloads = make(map[string][]int64, len(s.downloads))
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
	data, err := json.Marshal(d)
	if err != nil {
		return Snapshot{}, fmt.Errorf("encode snapshot of %s v%d: %w", s.Member, s.Version, err)
	}
	return Snapshot{Stream: s.Member, Version: s.Version, Schema: StateSchema, Data: data}, nil
}

// RestoreSnapshot decodes a snapshot. A snapshot of another state schema is
// ignored: ok is false and the caller replays the log instead.
func RestoreSnapshot(snap Snapshot) (s *State, ok bool, err error) {
	if snap.Schema != StateSchema {
		return nil, false, nil
	}
	var d snapshotData
	if err := strictUnmarshal(snap.Data, &d); err != nil {
		return nil, false, fmt.Errorf("restore snapshot of %s v%d: %w", snap.Stream, snap.Version, err)
	}
	if d.Version != snap.Version || d.Member != snap.Stream {
		return nil, false, fmt.Errorf("restore snapshot of %s v%d: it holds %s v%d", snap.Stream, snap.Version, d.Member, d.Version)
	}
	s = NewState(d.Member)
	s.Version, s.LastEventAt, s.nextPrune, s.pruneAtCount = d.Version, d.LastEventAt.UTC(), d.NextPrune.UTC(), d.PruneAt
	s.requests = d.Requests
	if s.playback, err = unpackPlayback(d.Playback, d.PlaybackFloor); err != nil {
		return nil, false, fmt.Errorf("restore snapshot of %s v%d: %w", snap.Stream, snap.Version, err)
	}
	for _, ld := range d.Licences {
		l := &Licence{
			ID: ld.ID, Title: ld.Title, Studio: ld.Studio, Device: ld.Device,
			IssuedAt: ld.IssuedAt.UTC(), TermStart: ld.TermStart.UTC(), ExpiresAt: ld.ExpiresAt.UTC(), Renewals: ld.Renewals,
			ReleasedAt: fromOpt(ld.ReleasedAt), ReleaseReason: ld.ReleaseReason,
			FirstPlayAt: fromOpt(ld.FirstPlayAt), Plays: ld.Plays,
			LastPosition: ld.LastPosition, LastPlayedAt: fromOpt(ld.LastPlayedAt),
		}
		if s.licences[l.ID] != nil {
			return nil, false, fmt.Errorf("restore snapshot of %s v%d: licence %s twice", snap.Stream, snap.Version, l.ID)
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
	return s, true, nil
}
