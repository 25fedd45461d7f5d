package licensing

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"time"
)

// MaxPlaybackIDs is how many accepted playback event ids a member's state
// remembers at least for duplicate detection; it holds at most twice as
// many. When it trims, it forgets the oldest uploads and refuses, as too
// old, any later upload older than what it forgot, so that no duplicate is
// ever taken for a new event.
const MaxPlaybackIDs = 1024

// seenUpload is one upload's accepted event ids: their hashes, and when the
// upload was recorded (Unix minutes, rounded down). Its events were played
// at most ClockSkew after that: the service refuses later device times.
type seenUpload struct {
	at     int64
	hashes []uint64
}

// playbackMemory remembers accepted playback event ids, upload by upload.
// The fold only notes the uploads; their ids are hashed in, in order, when
// a decision or a snapshot first needs them, and the lookup index is built
// then too, so replaying a long history stays cheap.
type playbackMemory struct {
	uploads []seenUpload // in the order they were recorded
	count   int          // ids in uploads
	floor   int64        // events played before this (Unix seconds) are refused
	index   map[uint64]struct{}
	pending []noted // uploads not yet hashed in, in order
}

// noted is an upload and when it was recorded.
type noted struct {
	upload *PlaybackRecorded
	at     time.Time
}

// note records an upload whose ids are hashed in later (settle).
func (m *playbackMemory) note(p *PlaybackRecorded, at time.Time) {
	if len(p.Accepted) > 0 {
		m.pending = append(m.pending, noted{p, at})
	}
}

// settle hashes in the noted uploads, exactly as if each had been added
// when it was folded.
func (m *playbackMemory) settle() {
	for _, n := range m.pending {
		u := seenUpload{at: minutes(n.at), hashes: make([]uint64, len(n.upload.Accepted))}
		for i := range n.upload.Accepted {
			u.hashes[i] = eventHash(n.upload.Accepted[i].ID)
		}
		m.add(u, n.at)
	}
	m.pending = nil
}

func minutes(t time.Time) int64 {
	s := t.Unix()
	if s < 0 {
		return (s - 59) / 60
	}
	return s / 60
}

// add remembers an upload recorded at t. It first forgets the uploads no
// event can meet again: recorded more than PlaybackHorizon and ClockSkew
// before t, their events were all played more than PlaybackHorizon ago,
// which every decision from t on refuses as too old whatever the memory
// holds. Then, past twice MaxPlaybackIDs, it forgets the oldest uploads
// down to MaxPlaybackIDs and raises the floor past what they held.
func (m *playbackMemory) add(u seenUpload, t time.Time) {
	horizon := minutes(t.Add(-PlaybackHorizon - ClockSkew))
	drop := 0
	for drop < len(m.uploads) && m.uploads[drop].at < horizon {
		m.count -= len(m.uploads[drop].hashes)
		drop++
	}
	m.uploads = append(m.uploads[drop:], u)
	m.count += len(u.hashes)
	if drop > 0 {
		m.index = nil
	} else if m.index != nil {
		for _, h := range u.hashes {
			m.index[h] = struct{}{}
		}
	}
	if m.count > 2*MaxPlaybackIDs {
		m.trim()
	}
}

// trim forgets the oldest uploads down to MaxPlaybackIDs ids. Events
// played up to ClockSkew after the last one forgotten was recorded are
// refused from then on.
func (m *playbackMemory) trim() {
	drop := 0
	for m.count > MaxPlaybackIDs {
		m.count -= len(m.uploads[drop].hashes)
		drop++
	}
	if f := (m.uploads[drop-1].at+1)*60 + int64(ClockSkew/time.Second); f > m.floor {
		m.floor = f
	}
	m.uploads = slices.Clone(m.uploads[drop:])
	m.index = nil
}

func (m *playbackMemory) has(id string) bool {
	m.settle()
	if m.index == nil {
		m.index = make(map[uint64]struct{}, m.count)
		for _, u := range m.uploads {
			for _, h := range u.hashes {
				m.index[h] = struct{}{}
			}
		}
	}
	_, ok := m.index[eventHash(id)]
	return ok
}

// tooOld reports whether an event played at device time t is below the floor.
func (m *playbackMemory) tooOld(t time.Time) bool {
	m.settle()
	return t.Unix() < m.floor
}

// hashBits is the width of a remembered playback id's hash.
const hashBits = 40

// eventHash is the FNV-1a hash of a client event id, cut to hashBits. A new
// id that collides with a remembered one would be taken for a duplicate:
// with the few hundred ids a member plays in a month, the chance is about
// one in three billion per upload event (at most 2,048 ids: one in 500
// million).
func eventHash(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return h & (1<<hashBits - 1)
}

// The first state schema packed ids one by one: 8 bytes of hash, 4 of the
// device time (Unix seconds).
const seenEntry = 12

// pack writes the memory in the first schema's form (tests of reading it).
func (m *playbackMemory) pack() string {
	m.settle()
	if m.count == 0 {
		return ""
	}
	buf := make([]byte, 0, m.count*seenEntry)
	for _, u := range m.uploads {
		for _, h := range u.hashes {
			buf = binary.BigEndian.AppendUint64(buf, h)
			buf = binary.BigEndian.AppendUint32(buf, uint32(u.at*60))
		}
	}
	return base64.RawStdEncoding.EncodeToString(buf)
}

// unpackPlayback reads the first schema's ids: each becomes an upload of
// its own at its device time (which is no later than its upload's time
// plus ClockSkew, so it is forgotten no earlier than it should be), in time
// order, its hash cut to today's width.
func unpackPlayback(s string, floor int64) (playbackMemory, error) {
	m := playbackMemory{floor: floor}
	if s == "" {
		return m, nil
	}
	buf, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil || len(buf)%seenEntry != 0 {
		return m, fmt.Errorf("malformed playback ids")
	}
	for i := 0; i < len(buf); i += seenEntry {
		at := int64(binary.BigEndian.Uint32(buf[i+8:]))
		m.uploads = append(m.uploads, seenUpload{at: at / 60, hashes: []uint64{binary.BigEndian.Uint64(buf[i:]) & (1<<hashBits - 1)}})
	}
	slices.SortStableFunc(m.uploads, func(a, b seenUpload) int { return int(a.at - b.at) })
	m.count = len(m.uploads)
	return m, nil
}
