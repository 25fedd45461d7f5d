package licensing

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"
)

// MaxPlaybackIDs is how many accepted playback event ids a member's state
// remembers at least for duplicate detection; it holds at most twice as
// many. When it trims, it forgets the oldest by device time and refuses, as
// too old, any later upload older than what it forgot, so that no duplicate
// is ever taken for a new event.
const MaxPlaybackIDs = 1024

type seenID struct {
	hash uint64
	at   int64 // device time, Unix seconds
}

// playbackMemory remembers accepted playback event ids. The fold only
// notes the uploads; their ids are hashed in, in order, when a decision or
// a snapshot first needs them, and the lookup index is built then too, so
// replaying a long history stays cheap.
type playbackMemory struct {
	ids     []seenID // in the order they were accepted
	floor   int64    // uploads older than this (Unix seconds) are refused
	index   map[uint64]struct{}
	pending []*PlaybackRecorded // uploads not yet hashed in, in order
}

// note records an upload whose ids are hashed in later (settle).
func (m *playbackMemory) note(p *PlaybackRecorded) {
	if len(p.Accepted) > 0 {
		m.pending = append(m.pending, p)
	}
}

// settle hashes in the noted uploads, exactly as if each had been added
// when it was folded.
func (m *playbackMemory) settle() {
	for _, p := range m.pending {
		for i := range p.Accepted {
			m.add(p.Accepted[i].ID, p.Accepted[i].DeviceTime)
		}
	}
	m.pending = nil
}

func (m *playbackMemory) add(id string, at time.Time) {
	m.ids = append(m.ids, seenID{eventHash(id), at.Unix()})
	if m.index != nil {
		m.index[m.ids[len(m.ids)-1].hash] = struct{}{}
	}
	if len(m.ids) > 2*MaxPlaybackIDs {
		m.trim()
	}
}

func (m *playbackMemory) has(id string) bool {
	m.settle()
	if m.index == nil {
		m.index = make(map[uint64]struct{}, len(m.ids))
		for _, s := range m.ids {
			m.index[s.hash] = struct{}{}
		}
	}
	_, ok := m.index[eventHash(id)]
	return ok
}

// tooOld reports whether an upload at device time t is below the floor.
func (m *playbackMemory) tooOld(t time.Time) bool {
	m.settle()
	return t.Unix() < m.floor
}

// trim keeps the MaxPlaybackIDs newest ids by device time (ties at the cut
// are all dropped) and raises the floor past the ones it forgot.
func (m *playbackMemory) trim() {
	times := make([]int64, len(m.ids))
	for i, s := range m.ids {
		times[i] = s.at
	}
	cut := nthSmallest(times, len(m.ids)-MaxPlaybackIDs-1)
	kept := m.ids[:0]
	for _, s := range m.ids {
		if s.at > cut {
			kept = append(kept, s)
		}
	}
	m.ids = kept
	m.index = nil
	if cut+1 > m.floor {
		m.floor = cut + 1
	}
}

// nthSmallest returns the k-th smallest value (0-based) of xs, reordering
// xs (quickselect, linear on average).
func nthSmallest(xs []int64, k int) int64 {
	lo, hi := 0, len(xs)-1
	for lo < hi {
		p := xs[lo+(hi-lo)/2]
		i, j := lo, hi
		for i <= j {
			for xs[i] < p {
				i++
			}
			for xs[j] > p {
				j--
			}
			if i <= j {
				xs[i], xs[j] = xs[j], xs[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return xs[k]
		}
	}
	return xs[k]
}

// eventHash is the 64-bit FNV-1a hash of a client event id. Collisions are
// possible in principle; at 64 bits and a few thousand remembered ids the
// chance is below one in a million million.
func eventHash(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return h
}

const seenEntry = 12 // 8 bytes of hash, 4 of Unix seconds

func (m *playbackMemory) pack() string {
	m.settle()
	if len(m.ids) == 0 {
		return ""
	}
	buf := make([]byte, 0, len(m.ids)*seenEntry)
	for _, s := range m.ids {
		buf = binary.BigEndian.AppendUint64(buf, s.hash)
		buf = binary.BigEndian.AppendUint32(buf, uint32(s.at))
	}
	return base64.RawStdEncoding.EncodeToString(buf)
}

func unpackPlayback(s string, floor int64) (playbackMemory, error) {
	m := playbackMemory{floor: floor}
	if s == "" {
		return m, nil
	}
	buf, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil || len(buf)%seenEntry != 0 {
		return m, fmt.Errorf("malformed playback ids")
	}
	m.ids = make([]seenID, 0, len(buf)/seenEntry)
	for i := 0; i < len(buf); i += seenEntry {
		m.ids = append(m.ids, seenID{binary.BigEndian.Uint64(buf[i:]), int64(binary.BigEndian.Uint32(buf[i+8:]))})
	}
	return m, nil
}
