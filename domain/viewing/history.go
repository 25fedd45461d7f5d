package viewing

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
)

// HistoryEntry is one view in a member's viewing history: what the member
// watched, on which device, when, for how long and how far. The stream
// function writes it when it first sees the view, and its totals when it
// sees the view end; it is kept for the life of the subscription.
type HistoryEntry struct {
	View    string
	Profile string
	Title   string
	Device  string
	Started time.Time
	// LastSeen is the time of the view's last report (its start until the
	// first heartbeat).
	LastSeen time.Time
	// PositionMs is the last position reported, FurthestMs the furthest.
	PositionMs int64
	FurthestMs int64
	// WatchedMs is the time spent playing in this view.
	WatchedMs int64
	// Ended is why the view ended; "" while it is open (playing, or left
	// without a stop and not seen to be over yet: its totals are those of
	// its start until then).
	Ended EndReason
}

// Key is where the entry sorts in its member's history: by start time, then
// view id. Newest first is descending order of keys.
func (e HistoryEntry) Key() string { return HistoryKey(e.Started, e.View) }

// HistoryKey is the sort key of the view started at started: "h#", the start
// in Unix milliseconds (13 digits), "#", the view id.
func HistoryKey(started time.Time, view string) string {
	return fmt.Sprintf("h#%013d#%s", max(started.UnixMilli(), 0), view)
}

// ValidHistoryKey reports whether k is a history key HistoryKey could make.
func ValidHistoryKey(k string) bool {
	rest, ok := strings.CutPrefix(k, "h#")
	if !ok || len(rest) < 15 || rest[13] != '#' {
		return false
	}
	if _, err := strconv.ParseUint(rest[:13], 10, 64); err != nil {
		return false
	}
	_, ok = SlotOf(rest[14:])
	return ok
}

// Totals is what a view has reported so far: the running sums the stream
// function keeps for an open view, and what closes its history entry.
type Totals struct {
	View    string
	Device  string
	Started time.Time
	// Ended is why the view ended, once it has.
	Ended      EndReason
	LastSeen   time.Time
	PositionMs int64
	FurthestMs int64
	WatchedMs  int64
}

// Add adds one report of the view (a heartbeat or stop contribution).
func (t *Totals) Add(p Progress) {
	t.View = p.View
	t.WatchedMs += p.WatchedMs
	if !p.At.Before(t.LastSeen) {
		t.LastSeen, t.PositionMs = p.At, p.PositionMs
	}
	t.FurthestMs = max(t.FurthestMs, p.PositionMs)
}

// Closed is the history entry of a view of title (and profile) that
// ended with totals t.
func Closed(title, profile string, t Totals) HistoryEntry {
	return HistoryEntry{
		View: t.View, Profile: profile, Title: title, Device: t.Device, Started: t.Started,
		LastSeen: t.LastSeen, PositionMs: t.PositionMs, FurthestMs: max(t.FurthestMs, t.PositionMs), WatchedMs: t.WatchedMs, Ended: t.Ended,
	}
}

// EntryOf is the history entry a view opens: its title, device, start and
// the position it starts from.
func EntryOf(v *View) HistoryEntry {
	return HistoryEntry{View: v.ID, Profile: v.Profile, Title: v.Title, Device: v.Device, Started: v.Started, LastSeen: v.Started,
		PositionMs: v.PositionMs, FurthestMs: v.PositionMs}
}

// Completed reports whether a view (or a title's resume point) got into
// the credits: past the policy's completion share of the title's runtime.
// A title of unknown runtime is never completed.
func Completed(furthestMs int64, runtime time.Duration, rules licensing.ViewingRules) bool {
	r := runtime.Milliseconds()
	return r > 0 && float64(furthestMs) >= float64(r)*rules.Completion
}

// Page sizes of history reads.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// ErrBadCursor is a history cursor that was not made for this member (or
// not made by the service at all).
var ErrBadCursor = errors.New("bad cursor")

// cursorVersion is the first byte of a cursor: its format.
const cursorVersion = 1

// memberTag binds a cursor to its member: the first 8 bytes of SHA-256 of
// the member id, so a cursor of one member is refused for another without
// revealing whose it was.
func memberTag(member string) []byte {
	sum := sha256.Sum256([]byte(member))
	return sum[:8]
}

// EncodeCursor makes the opaque cursor of the history page that follows
// key (the last entry of a page) for member.
func EncodeCursor(member, key string) string {
	b := append([]byte{cursorVersion}, memberTag(member)...)
	return base64.RawURLEncoding.EncodeToString(append(b, key...))
}

// DecodeCursor reads a cursor of member back into the key after which the
// next page starts. Anything else is ErrBadCursor.
func DecodeCursor(member, cursor string) (string, error) {
	if len(cursor) > 256 {
		return "", ErrBadCursor
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) < 9 || b[0] != cursorVersion || !bytes.Equal(b[1:9], memberTag(member)) {
		return "", ErrBadCursor
	}
	key := string(b[9:])
	if !ValidHistoryKey(key) {
		return "", ErrBadCursor
	}
	return key, nil
}

// RowLength is how many titles the recently watched row holds.
const RowLength = 40

// RowEntry is one title of the recently watched row.
type RowEntry struct {
	Title string
	// View is the latest view of the title the row knows of, Started its
	// start: the row orders titles by it.
	View    string
	Started time.Time
	// PositionMs and FurthestMs are that view's, as of its last report the
	// row was told of (its start, then its end).
	PositionMs int64
	FurthestMs int64
	At         time.Time
}

// Row is the recently watched row of one profile of an account: one entry
// per title, the most recently started first, at most RowLength.
type Row struct {
	Profile string
	Entries []RowEntry
	// Version counts the row's writes (a store writes it conditionally).
	Version int64
}

// Watch records a view of a title: a view started later than the title's
// entry moves it to the front with the view's figures; a report of the
// entry's own view updates its figures, if newer; anything older changes
// nothing. The row keeps the RowLength most recently started titles.
// It reports whether the row changed.
func (r *Row) Watch(e HistoryEntry) bool {
	i := slices.IndexFunc(r.Entries, func(x RowEntry) bool { return x.Title == e.Title })
	if i >= 0 {
		cur := r.Entries[i]
		switch {
		case cur.View == e.View:
			if !e.LastSeen.After(cur.At) && e.FurthestMs <= cur.FurthestMs {
				return false
			}
			if e.LastSeen.After(cur.At) {
				r.Entries[i].PositionMs, r.Entries[i].At = e.PositionMs, e.LastSeen
			}
			r.Entries[i].FurthestMs = max(cur.FurthestMs, e.FurthestMs)
			return true
		case e.Started.Before(cur.Started) || e.Started.Equal(cur.Started) && e.View < cur.View:
			return false
		}
	}
	// Ordered by start, newest first: where the view goes.
	j := sort.Search(len(r.Entries), func(k int) bool { return !r.Entries[k].Started.After(e.Started) })
	if i < 0 && j >= RowLength {
		return false // older than every title the full row holds
	}
	entry := RowEntry{Title: e.Title, View: e.View, Started: e.Started, PositionMs: e.PositionMs, FurthestMs: e.FurthestMs, At: e.LastSeen}
	if i >= 0 {
		r.Entries = slices.Delete(r.Entries, i, i+1)
		if i < j {
			j--
		}
	}
	r.Entries = slices.Insert(r.Entries, j, entry)
	if len(r.Entries) > RowLength {
		r.Entries = r.Entries[:RowLength]
	}
	return true
}

// Engagement is what a title drew on one day: views started, time watched
// and views completed, counted by the stream function once per view.
type Engagement struct {
	Views       int64
	WatchedMs   int64
	Completions int64
}

// Add adds o to e.
func (e *Engagement) Add(o Engagement) {
	e.Views += o.Views
	e.WatchedMs += o.WatchedMs
	e.Completions += o.Completions
}

// Day is the UTC day a time falls on, as engagement counts key it.
func Day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// StartEngagement is what a view's start adds to its title's day: one view.
func StartEngagement(e HistoryEntry) Engagement { return Engagement{Views: 1} }

// EndEngagement is what a view's end adds to the day it started on: the
// time watched and, if it got into the credits, a completion.
func EndEngagement(e HistoryEntry, runtime time.Duration, rules licensing.ViewingRules) Engagement {
	out := Engagement{WatchedMs: e.WatchedMs}
	if Completed(e.FurthestMs, runtime, rules) {
		out.Completions = 1
	}
	return out
}

// Ranked is a title's engagement on a day, for the most watched ranking.
type Ranked struct {
	Title string
	Engagement
}

// Rank orders titles by time watched, then views started, then title, and
// keeps the first n (all for n ≤ 0).
func Rank(counts map[string]Engagement, n int) []Ranked {
	out := make([]Ranked, 0, len(counts))
	for t, e := range counts {
		out = append(out, Ranked{Title: t, Engagement: e})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.WatchedMs != b.WatchedMs {
			return a.WatchedMs > b.WatchedMs
		}
		if a.Views != b.Views {
			return a.Views > b.Views
		}
		return a.Title < b.Title
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}
