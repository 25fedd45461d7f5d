package viewing

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
)

// Resume is where a member (one profile of the account) left off in a
// title: the read model the stream function keeps from heartbeats, stops
// and offline playback uploads.
type Resume struct {
	Profile    string
	Title      string
	PositionMs int64
	// At is when that position was reported (the service's time for a
	// screen, the device's for an offline play).
	At     time.Time
	Device string
	// View is the view that reported it ("" for an offline play).
	View string
	// WatchedMs is the time spent playing the title, every view and every
	// offline play together.
	WatchedMs int64
	// Seqs holds, per screen slot, the last online contribution applied: a
	// stream sequence number (see PadSeq). The stream delivers the writes
	// of one item in order, so each slot's contributions come in order.
	Seqs map[int]string
	// Version is the last offline contribution applied: the version of a
	// PlaybackRecorded event in the member's licensing log.
	Version int64
	// Open holds, per screen slot, the running totals of the slot's view of
	// this title until the view is seen to end: what closes its history
	// entry.
	Open map[int]Totals
}

// Progress is one contribution to a resume point: a heartbeat or stop of a
// view (Seq set: the stream record of the write of screen slot Slot), or
// the plays of one title in an offline upload (Version set).
// Contributions are applied once each, however often they are delivered.
type Progress struct {
	Profile string
	Title   string
	Device  string
	View    string
	// Started is the view's start; End is set on its last report (a stop).
	Started    time.Time
	End        EndReason
	At         time.Time
	PositionMs int64
	WatchedMs  int64
	Slot       int
	Seq        string
	Version    int64
}

// SeqWidth is the width stream sequence numbers are padded to (DynamoDB
// Streams sends 21 to 40 digits), so that they order as text.
const SeqWidth = 40

// PadSeq pads a stream sequence number with zeros to SeqWidth digits.
func PadSeq(seq string) string {
	if len(seq) >= SeqWidth {
		return seq
	}
	return strings.Repeat("0", SeqWidth-len(seq)) + seq
}

// Apply applies one contribution, once, and reports whether anything
// changed. An online one after the last one applied from its slot adds its
// time; an offline one after the last offline one applied adds its time.
// Either moves the position only if it was reported no earlier than the
// position held: a late upload, or a screen's record handled after a newer
// upload, never rewinds a newer position.
//
// An online one also adds to its view's running totals (Open). It returns
// the totals of views that ended: its own, if it is the view's stop (even
// if it was applied before, as long as the totals are open), which stay
// open until Close; and the slot's former view of this title, if that was
// not seen to end (taken as expired), which it removes to make room.
func (r *Resume) Apply(p Progress) (changed bool, closed []Totals) {
	if p.Seq != "" {
		if p.Seq <= r.Seqs[p.Slot] {
			if open, ok := r.Open[p.Slot]; ok && p.End != "" && open.View == p.View {
				open.Ended = p.End
				return false, []Totals{open}
			}
			return false, nil
		}
		if r.Seqs == nil {
			r.Seqs = map[int]string{}
		}
		r.Seqs[p.Slot], r.WatchedMs = p.Seq, r.WatchedMs+p.WatchedMs
		changed = true
		open, ok := r.Open[p.Slot]
		if ok && open.View != p.View {
			open.Ended = Expired
			closed = append(closed, open)
			open = Totals{}
		}
		if open.View == "" {
			open = Totals{View: p.View, Device: p.Device, Started: p.Started}
		}
		open.Add(p)
		if r.Open == nil {
			r.Open = map[int]Totals{}
		}
		r.Open[p.Slot] = open
		if p.End != "" {
			open.Ended = p.End
			closed = append(closed, open)
		}
	} else if p.Version > r.Version && p.WatchedMs > 0 {
		r.Version, r.WatchedMs = p.Version, r.WatchedMs+p.WatchedMs
		changed = true
	}
	if p.Seq != "" && !p.At.Before(r.At) || p.Seq == "" && p.At.After(r.At) {
		r.move(p)
		changed = true
	}
	return changed, closed
}

// Close ends the running totals of view in slot, for reason: it returns
// them (ok false if the slot's open view of this title is another, or
// none, as when the view was closed already).
func (r *Resume) Close(slot int, view string, reason EndReason) (Totals, bool) {
	open, ok := r.Open[slot]
	if !ok || open.View != view {
		return Totals{}, false
	}
	delete(r.Open, slot)
	open.Ended = reason
	return open, true
}

// CheckProgress checks that contributions can be applied together: one
// resume point (profile and title), each online one from a slot of the
// plan limits and, per slot, in stream order.
func CheckProgress(ps []Progress) error {
	last := map[int]string{}
	for _, p := range ps {
		if p.Profile != ps[0].Profile || p.Title != ps[0].Title {
			return fmt.Errorf("progress for more than one resume point: %s/%s and %s/%s", ps[0].Profile, ps[0].Title, p.Profile, p.Title)
		}
		if p.Seq == "" {
			continue
		}
		if p.Slot < 0 || p.Slot >= licensing.MaxScreens || p.Seq <= last[p.Slot] {
			return fmt.Errorf("online progress out of order or of no slot: slot %d, %s after %s", p.Slot, p.Seq, last[p.Slot])
		}
		last[p.Slot] = p.Seq
	}
	return nil
}

func (r *Resume) move(p Progress) {
	r.Profile, r.Title = p.Profile, p.Title
	r.PositionMs, r.At, r.Device, r.View = p.PositionMs, p.At, p.Device, p.View
}

// ProgressOf is what a stored view reports to its resume point, given the
// stream record's sequence number: at a checkpoint heartbeat, the position
// and the time watched since the checkpoint before (the view keeps its own
// totals); at a stop, the position stopped at and the time watched since
// the last checkpoint, the last span counting if the view was playing; at
// an end from elsewhere, the same as of its last heartbeat; at the close
// of a silent view, as of its last heartbeat too, ending it (Expired). A start, a
// heartbeat that is no checkpoint and a view that never reported report
// nothing (ok false).
func ProgressOf(v *View, seq string) (Progress, bool) {
	if v == nil || v.Seq == 0 && v.Ended != Stopped || v.Ended == "" && !v.Checkpoint {
		return Progress{}, false
	}
	p := Progress{Profile: v.Profile, Title: v.Title, Device: v.Device, View: v.ID, Started: v.Started, At: v.LastSeen, PositionMs: v.PositionMs, Slot: v.Slot, Seq: PadSeq(seq)}
	switch v.Ended {
	case "":
		// A checkpoint, or the close of a silent view: the checkpoint
		// catches up with its last report, and it ends in history.
		p.WatchedMs = v.CheckpointMs - v.PrevCheckpointMs
		if !v.Closed.IsZero() {
			p.End = Expired
		}
	case Stopped:
		p.End = Stopped
		watched := v.WatchedMs
		if v.PrevState == Playing && v.LastSeen.After(v.PrevSeen) {
			watched += min(v.LastSeen.Sub(v.PrevSeen), MaxResumedSpan).Milliseconds()
		}
		p.WatchedMs = watched - v.CheckpointMs
	default: // ended from elsewhere: as of its last heartbeat
		p.WatchedMs = v.WatchedMs - v.CheckpointMs
	}
	p.WatchedMs = max(p.WatchedMs, 0)
	return p, true
}

// FormerProgress is what a view displaced by the next start in its slot
// (replaced, or expired) reports to its resume point as it closes: its
// last position and the time watched since its last checkpoint.
func FormerProgress(f *Former, slot int, seq string) Progress {
	return Progress{Profile: f.Profile, Title: f.Title, Device: f.Device, View: f.ID, Started: f.Started, At: f.LastSeen, PositionMs: f.PositionMs,
		WatchedMs: max(f.WatchedMs-f.CheckpointMs, 0), Slot: slot, Seq: PadSeq(seq)}
}

// MaxResumedSpan bounds the time one report of a view counts for: a view
// that comes back after its heartbeats could not be written (the service's
// outage) counts the gap as watched, up to this; a device asleep for a day
// does not count the day.
const MaxResumedSpan = 30 * time.Minute

// MaxOfflineSpan bounds the time one offline play span counts for: a
// device that recorded a start and nothing else for hours was not
// necessarily playing all that time.
const MaxOfflineSpan = 4 * time.Hour

// OfflineProgress is what an offline playback upload reports to resume
// points: per title (of the default profile), the last position played,
// by device time, and the time played, summed over spans between
// consecutive events of one licence that start with START, RESUME or
// KEEPALIVE. Device times are taken no later than the upload's own time.
// Events written before playback entries carried their title count for
// nothing.
func OfflineProgress(e licensing.Event) []Progress {
	rec, ok := e.Payload.(*licensing.PlaybackRecorded)
	if !ok {
		return nil
	}
	entries := make([]licensing.PlaybackEntry, 0, len(rec.Accepted))
	for _, a := range rec.Accepted {
		if a.Title != "" {
			// No later than the upload; to the millisecond, as stores keep it.
			if a.DeviceTime.After(e.At) {
				a.DeviceTime = e.At
			}
			a.DeviceTime = a.DeviceTime.Truncate(time.Millisecond)
			entries = append(entries, a)
		}
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].DeviceTime.Before(entries[j].DeviceTime) })
	byTitle := map[string]*Progress{}
	var titles []string
	last := map[string]licensing.PlaybackEntry{} // per licence
	for _, a := range entries {
		p := byTitle[a.Title]
		if p == nil {
			p = &Progress{Title: a.Title, Device: rec.Device, Version: e.Version}
			byTitle[a.Title] = p
			titles = append(titles, a.Title)
		}
		if prev, ok := last[a.Licence]; ok && prev.Kind != licensing.PlaybackPause && prev.Kind != licensing.PlaybackStop {
			p.WatchedMs += min(a.DeviceTime.Sub(prev.DeviceTime), MaxOfflineSpan).Milliseconds()
		}
		last[a.Licence] = a
		p.PositionMs, p.At = a.PositionMs, a.DeviceTime
	}
	out := make([]Progress, len(titles))
	for i, t := range titles {
		out[i] = *byTitle[t]
	}
	return out
}

// Answer is a resume point as the API shows it.
type Answer struct {
	Title   string `json:"title_id"`
	Profile string `json:"profile_id,omitempty"`
	// PositionMs is where the member left off; ResumeFromMs is where to
	// start playing: the same, or 0 for a title watched to the end.
	PositionMs   int64      `json:"position_ms"`
	ResumeFromMs int64      `json:"resume_from_ms"`
	Completed    bool       `json:"completed"`
	WatchedMs    int64      `json:"watched_ms"`
	RuntimeMs    int64      `json:"runtime_ms,omitempty"`
	Device       string     `json:"device_id,omitempty"`
	UpdatedAt    *time.Time `json:"updated_at,omitempty"`
}

// FreshestResume is r, the resume point of a title as the stream function
// last wrote it, with the position of the view in slots (a member's
// screens) of the same title and profile seen after it, if any: a start on
// another device resumes from where a view still playing is now, not from
// the last report the stream function has handled.
func FreshestResume(r *Resume, slots []*View, title, profile string) *Resume {
	var latest *View
	for _, v := range slots {
		if v == nil || v.Title != title || v.Profile != profile || v.Seq == 0 && v.Ended != Stopped {
			continue // another title, or a view that never reported (its position is where it started)
		}
		if latest == nil || v.LastSeen.After(latest.LastSeen) {
			latest = v
		}
	}
	if latest == nil || r != nil && !latest.LastSeen.After(r.At) {
		return r
	}
	fresh := Resume{}
	if r != nil {
		fresh = *r
	}
	fresh.PositionMs, fresh.Device, fresh.At, fresh.View = latest.PositionMs, latest.Device, latest.LastSeen, latest.ID
	return &fresh
}

// AnswerFor is the resume point of a title (r nil: never watched). A title
// is completed once the position passes the policy's completion share of
// its runtime (into the credits); it then resumes from the start.
func AnswerFor(r *Resume, titleID, profile string, title licensing.Title, rules licensing.ViewingRules) Answer {
	a := Answer{Title: titleID, Profile: profile, RuntimeMs: title.Runtime.D().Milliseconds()}
	if r == nil {
		return a
	}
	a.PositionMs, a.WatchedMs, a.Device = r.PositionMs, r.WatchedMs, r.Device
	if !r.At.IsZero() {
		at := r.At
		a.UpdatedAt = &at
	}
	a.Completed = a.RuntimeMs > 0 && float64(r.PositionMs) >= float64(a.RuntimeMs)*rules.Completion
	if !a.Completed {
		a.ResumeFromMs = r.PositionMs
	}
	return a
}
