package licensing

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// The compact snapshot encoding: unsigned varints, zigzag varints for
// signed numbers, length-prefixed strings. Repeated strings (titles,
// studios, devices, reasons, codes) are written once and referred to by
// number. A time is written relative to another (the last event, or a time
// of the same licence) as a duration in the largest unit that divides it
// exactly, so a 30-day licence term takes two bytes and no time loses a
// nanosecond.
type snapshotWriter struct {
	buf     []byte
	strings map[string]int
	base    time.Time
	err     error
}

func (w *snapshotWriter) uint(v uint64) { w.buf = binary.AppendUvarint(w.buf, v) }
func (w *snapshotWriter) int(v int64)   { w.buf = binary.AppendVarint(w.buf, v) }

func (w *snapshotWriter) str(s string) {
	w.uint(uint64(len(s)))
	w.buf = append(w.buf, s...)
}

// ref writes a string of the table: 0 and the string the first time, its
// number + 1 after.
func (w *snapshotWriter) ref(s string) {
	if i, ok := w.strings[s]; ok {
		w.uint(uint64(i) + 1)
		return
	}
	w.strings[s] = len(w.strings)
	w.uint(0)
	w.str(s)
}

// units are the units a duration is written in, largest first.
var units = [...]time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second, time.Millisecond, time.Microsecond, time.Nanosecond}

// time writes t relative to ref: 0 for the zero time, else 1 + the
// duration t − ref coded with its unit.
func (w *snapshotWriter) time(t, ref time.Time) {
	if t.IsZero() {
		w.uint(0)
		return
	}
	d := t.Sub(ref)
	for i, u := range units {
		if d%u == 0 {
			v := d / u
			z := uint64(v<<1 ^ v>>63)
			if z > (1<<64-1-uint64(len(units)))/uint64(len(units)) {
				w.err = fmt.Errorf("time %s is too far from %s to encode", t, ref)
				return
			}
			w.uint(1 + z*uint64(len(units)) + uint64(i))
			return
		}
	}
}

// absolute writes a time as Unix seconds and nanoseconds.
func (w *snapshotWriter) absolute(t time.Time) {
	if t.IsZero() {
		w.uint(0)
		return
	}
	w.uint(1)
	w.int(t.Unix())
	w.uint(uint64(t.Nanosecond()))
}

// idAlphabet is the alphabet of the service's own ids (20 characters, 100
// random bits): packed five bits a character.
const idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// token writes an id or key: packed when it is one of the service's ids or
// a UUID (as clients make keys and event ids), as a string otherwise.
func (w *snapshotWriter) token(s string) {
	if packed, ok := packID(s); ok {
		w.uint(1)
		w.buf = append(w.buf, packed[:]...)
		return
	}
	if packed, ok := packUUID(s); ok {
		w.uint(2)
		w.buf = append(w.buf, packed[:]...)
		return
	}
	w.uint(0)
	w.str(s)
}

func packID(s string) (out [13]byte, ok bool) {
	if len(s) != 20 {
		return out, false
	}
	var acc uint64
	bits, j := 0, 0
	for i := 0; i < len(s); i++ {
		v := indexOf(s[i])
		if v < 0 {
			return out, false
		}
		acc = acc<<5 | uint64(v)
		bits += 5
		for bits >= 8 {
			bits -= 8
			out[j] = byte(acc >> bits)
			j++
		}
	}
	out[j] = byte(acc << (8 - bits)) // the last 4 bits
	return out, true
}

func unpackID(b []byte) string {
	out := make([]byte, 20)
	var acc uint64
	bits, j := 0, 0
	for _, c := range b {
		acc = acc<<8 | uint64(c)
		bits += 8
		for bits >= 5 && j < 20 {
			bits -= 5
			out[j] = idAlphabet[acc>>bits&31]
			j++
		}
	}
	return string(out)
}

func indexOf(c byte) int {
	for i := 0; i < len(idAlphabet); i++ {
		if idAlphabet[i] == c {
			return i
		}
	}
	return -1
}

// packUUID packs a canonical lowercase UUID (8-4-4-4-12 hex digits).
func packUUID(s string) (out [16]byte, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return out, false
	}
	h := s[:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	if _, err := hex.Decode(out[:], []byte(h)); err != nil || hex.EncodeToString(out[:]) != h {
		return out, false
	}
	return out, true
}

func unpackUUID(b []byte) string {
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// fingerprint writes a request fingerprint, as bytes when it is hex.
func (w *snapshotWriter) fingerprint(f string) {
	if fingerprintHex(f) {
		b, _ := hex.DecodeString(f)
		w.uint(1)
		w.uint(uint64(len(b)))
		w.buf = append(w.buf, b...)
		return
	}
	w.uint(0)
	w.str(f)
}

// answer writes a licence as a request's answer showed it: for a licence the
// state still holds (index i of its list), the status and only the fields
// that differ from it (it was renewed, played or released since); else
// every field.
func (w *snapshotWriter) answer(v LicenceStatus, index map[string]int, list []*Licence) {
	i, ok := index[v.ID]
	if !ok {
		w.uint(0)
		w.fullAnswer(v)
		return
	}
	w.uint(uint64(i) + 1)
	w.ref(string(v.Status))
	base := list[i].asStatus(v.Status)
	var mask uint64
	for bit, differs := range answerDiffs(v, base) {
		if differs {
			mask |= 1 << bit
		}
	}
	w.uint(mask)
	if mask&diffWhole != 0 {
		w.fullAnswer(v)
		return
	}
	if mask&diffExpires != 0 {
		w.time(v.ExpiresAt, v.IssuedAt)
	}
	if mask&diffPlayable != 0 {
		w.time(v.PlayableUntil, v.ExpiresAt)
	}
	if mask&diffRenewals != 0 {
		w.uint(uint64(v.Renewals))
	}
	if mask&diffPlays != 0 {
		w.uint(uint64(v.Plays))
	}
	if mask&diffFirstPlay != 0 {
		w.time(fromOpt(v.FirstPlayAt), v.IssuedAt)
	}
	if mask&diffReleased != 0 {
		w.time(fromOpt(v.ReleasedAt), v.IssuedAt)
		w.ref(string(v.ReleaseReason))
	}
}

// The fields in which a remembered answer may differ from its licence now.
const (
	diffExpires = 1 << iota
	diffPlayable
	diffRenewals
	diffPlays
	diffFirstPlay
	diffReleased
	diffWhole // the identity fields differ: the whole answer follows
)

func answerDiffs(v, base LicenceStatus) []bool {
	sameOpt := func(a, b *time.Time) bool { return (a == nil) == (b == nil) && (a == nil || a.Equal(*b)) }
	return []bool{
		!v.ExpiresAt.Equal(base.ExpiresAt),
		!v.PlayableUntil.Equal(v.ExpiresAt),
		v.Renewals != base.Renewals,
		v.Plays != base.Plays,
		!sameOpt(v.FirstPlayAt, base.FirstPlayAt),
		!sameOpt(v.ReleasedAt, base.ReleasedAt) || v.ReleaseReason != base.ReleaseReason,
		v.Title != base.Title || v.Studio != base.Studio || v.Device != base.Device || !v.IssuedAt.Equal(base.IssuedAt),
	}
}

func (w *snapshotWriter) fullAnswer(v LicenceStatus) {
	w.token(v.ID)
	w.ref(v.Title)
	w.ref(v.Studio)
	w.ref(v.Device)
	w.ref(string(v.Status))
	w.time(v.IssuedAt, w.base)
	w.time(v.ExpiresAt, v.IssuedAt)
	w.time(v.PlayableUntil, v.ExpiresAt)
	w.uint(uint64(v.Renewals))
	w.uint(uint64(v.Plays))
	w.time(fromOpt(v.FirstPlayAt), v.IssuedAt)
	w.time(fromOpt(v.ReleasedAt), v.IssuedAt)
	w.ref(string(v.ReleaseReason))
}

// snapshotReader reads what snapshotWriter wrote. The first error sticks:
// every later read returns zero values, and the caller checks err once.
type snapshotReader struct {
	buf     []byte
	pos     int
	err     error
	strings []string
	base    time.Time
}

var errShort = errors.New("the snapshot ends early")

func (r *snapshotReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *snapshotReader) uint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.buf[r.pos:])
	if n <= 0 {
		r.fail(errShort)
		return 0
	}
	r.pos += n
	return v
}

func (r *snapshotReader) int() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.buf[r.pos:])
	if n <= 0 {
		r.fail(errShort)
		return 0
	}
	r.pos += n
	return v
}

// count reads a number of things to follow, each at least a byte long.
func (r *snapshotReader) count() int {
	n := r.uint()
	if n > uint64(len(r.buf)-r.pos) {
		r.fail(fmt.Errorf("a count of %d with %d bytes left", n, len(r.buf)-r.pos))
		return 0
	}
	return int(n)
}

func (r *snapshotReader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.buf)-r.pos) {
		r.fail(errShort)
		return nil
	}
	b := r.buf[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return b
}

func (r *snapshotReader) byte() byte {
	if b := r.bytes(1); len(b) == 1 {
		return b[0]
	}
	return 0
}

func (r *snapshotReader) str() string { return string(r.bytes(r.uint())) }

func (r *snapshotReader) ref() string {
	i := r.uint()
	if i == 0 {
		s := r.str()
		r.strings = append(r.strings, s)
		return s
	}
	if i > uint64(len(r.strings)) {
		r.fail(fmt.Errorf("string %d of %d", i, len(r.strings)))
		return ""
	}
	return r.strings[i-1]
}

func (r *snapshotReader) time(ref time.Time) time.Time {
	v := r.uint()
	if v == 0 || r.err != nil {
		return time.Time{}
	}
	v--
	u := v % uint64(len(units))
	z := v / uint64(len(units))
	n := int64(z>>1) ^ -int64(z&1)
	return ref.Add(time.Duration(n) * units[u]).UTC()
}

func (r *snapshotReader) absolute() time.Time {
	if r.uint() == 0 {
		return time.Time{}
	}
	sec := r.int()
	ns := r.uint()
	if ns >= 1e9 {
		r.fail(fmt.Errorf("%d nanoseconds", ns))
		return time.Time{}
	}
	return time.Unix(sec, int64(ns)).UTC()
}

func (r *snapshotReader) token() string {
	switch r.uint() {
	case 0:
		return r.str()
	case 1:
		if b := r.bytes(13); len(b) == 13 {
			return unpackID(b)
		}
	case 2:
		if b := r.bytes(16); len(b) == 16 {
			return unpackUUID(b)
		}
	default:
		r.fail(errors.New("unknown token form"))
	}
	return ""
}

func (r *snapshotReader) fingerprint() string {
	if r.uint() == 1 {
		return hex.EncodeToString(r.bytes(r.uint()))
	}
	return r.str()
}

func (r *snapshotReader) answer(list []*Licence) LicenceStatus {
	i := r.uint()
	if i == 0 {
		return r.fullAnswer()
	}
	if i > uint64(len(list)) {
		r.fail(fmt.Errorf("a view of licence %d of %d", i, len(list)))
		return LicenceStatus{}
	}
	status := Status(r.ref())
	v := list[i-1].asStatus(status)
	mask := r.uint()
	if mask&diffWhole != 0 {
		return r.fullAnswer()
	}
	if mask&diffExpires != 0 {
		v.ExpiresAt = r.time(v.IssuedAt)
	}
	v.PlayableUntil = v.ExpiresAt
	if mask&diffPlayable != 0 {
		v.PlayableUntil = r.time(v.ExpiresAt)
	}
	if mask&diffRenewals != 0 {
		v.Renewals = int(r.uint())
	}
	if mask&diffPlays != 0 {
		v.Plays = int(r.uint())
	}
	if mask&diffFirstPlay != 0 {
		v.FirstPlayAt = nil
		if t := r.time(v.IssuedAt); !t.IsZero() {
			v.FirstPlayAt = &t
		}
	}
	if mask&diffReleased != 0 {
		v.ReleasedAt = nil
		if t := r.time(v.IssuedAt); !t.IsZero() {
			v.ReleasedAt = &t
		}
		v.ReleaseReason = ReleaseReason(r.ref())
	}
	return v
}

func (r *snapshotReader) fullAnswer() LicenceStatus {
	v := LicenceStatus{ID: r.token(), Title: r.ref(), Studio: r.ref(), Device: r.ref(), Status: Status(r.ref())}
	v.IssuedAt = r.time(r.base)
	v.ExpiresAt = r.time(v.IssuedAt)
	v.PlayableUntil = r.time(v.ExpiresAt)
	v.Renewals = int(r.uint())
	v.Plays = int(r.uint())
	if t := r.time(v.IssuedAt); !t.IsZero() {
		v.FirstPlayAt = &t
	}
	if t := r.time(v.IssuedAt); !t.IsZero() {
		v.ReleasedAt = &t
	}
	v.ReleaseReason = ReleaseReason(r.ref())
	return v
}
