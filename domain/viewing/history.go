package viewing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
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
			next := cur
			if !e.LastSeen.Before(cur.At) { // a report no older (a stop may share its start's millisecond)
				next.PositionMs, next.At = e.PositionMs, e.LastSeen
			}
			next.FurthestMs = max(cur.FurthestMs, e.FurthestMs)
			if next == cur {
				return false
			}
			r.Entries[i] = next
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
	Views       int64 `json:"views"`
	WatchedMs   int64 `json:"watched_ms"`
	Completions int64 `json:"completions"`
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
	Title string `json:"title_id"`
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

// CodeBadCursor: a history cursor this member was not given (400).
const CodeBadCursor = "INVALID_CURSOR"

// Watched is a history entry as the API shows it.
type Watched struct {
	View       string     `json:"view_id"`
	Title      string     `json:"title_id"`
	Profile    string     `json:"profile_id,omitempty"`
	Device     string     `json:"device_id"`
	Started    time.Time  `json:"started_at"`
	LastSeen   time.Time  `json:"last_seen_at"`
	WatchedMs  int64      `json:"watched_ms"`
	PositionMs int64      `json:"position_ms"`
	FurthestMs int64      `json:"furthest_ms"`
	Completed  bool       `json:"completed"`
	Ended      *EndReason `json:"ended"`
}

// HistoryPage is a page of a member's history, newest first; Next is the
// cursor of the page after it ("" on the last page).
type HistoryPage struct {
	Entries []Watched `json:"entries"`
	Next    string    `json:"next_cursor,omitempty"`
}

// RowTitle is a title of the recently watched row as the API shows it:
// where the latest view of it left off, as of its last report the row was
// told of.
type RowTitle struct {
	Title        string    `json:"title_id"`
	View         string    `json:"view_id"`
	Started      time.Time `json:"started_at"`
	PositionMs   int64     `json:"position_ms"`
	ResumeFromMs int64     `json:"resume_from_ms"`
	Completed    bool      `json:"completed"`
	RuntimeMs    int64     `json:"runtime_ms,omitempty"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func (s *Service) historyStore() (HistoryStore, error) {
	if s.History == nil {
		return nil, kernel.Errorf(kernel.KindUnavailable, "UNAVAILABLE", "viewing history is not configured")
	}
	return s.History, nil
}

// HistoryPage reads a page of a member's history: limit entries (0:
// DefaultPageSize; 1 to MaxPageSize), from the newest, or after the
// cursor a previous page gave.
func (s *Service) HistoryPage(ctx context.Context, member, cursor string, limit int) (HistoryPage, error) {
	h, err := s.historyStore()
	if err != nil {
		return HistoryPage{}, err
	}
	if err := checkIDs("member", member); err != nil {
		return HistoryPage{}, err
	}
	if limit == 0 {
		limit = DefaultPageSize
	}
	if limit < 1 || limit > MaxPageSize {
		return HistoryPage{}, kernel.Invalid("limit", "limit must be from 1 to %d", MaxPageSize)
	}
	after := ""
	if cursor != "" {
		if after, err = DecodeCursor(member, cursor); err != nil {
			e := kernel.Errorf(kernel.KindInvalid, CodeBadCursor, "this cursor was not given for this history")
			e.Field = "cursor"
			return HistoryPage{}, e
		}
	}
	entries, more, err := h.History(ctx, member, after, limit)
	if errors.Is(err, ErrErasurePending) {
		return HistoryPage{}, erasureInProgress()
	}
	if err != nil {
		return HistoryPage{}, fmt.Errorf("history of %s: %w", kernel.Pseudonym(member), err)
	}
	policy := s.Policy()
	page := HistoryPage{Entries: make([]Watched, len(entries))}
	for i, e := range entries {
		t, _ := policy.Title(e.Title)
		w := Watched{View: e.View, Title: e.Title, Profile: e.Profile, Device: e.Device, Started: e.Started, LastSeen: e.LastSeen,
			WatchedMs: e.WatchedMs, PositionMs: e.PositionMs, FurthestMs: e.FurthestMs, Completed: Completed(e.FurthestMs, t.Runtime.D(), policy.Viewing)}
		if e.Ended != "" {
			r := e.Ended
			w.Ended = &r
		}
		page.Entries[i] = w
	}
	if more && len(entries) > 0 {
		page.Next = EncodeCursor(member, entries[len(entries)-1].Key())
	}
	return page, nil
}

// RecentlyWatched reads the recently watched row of a member's profile.
func (s *Service) RecentlyWatched(ctx context.Context, member, profile string) ([]RowTitle, error) {
	h, err := s.historyStore()
	if err != nil {
		return nil, err
	}
	if err := checkIDs("member", member); err != nil {
		return nil, err
	}
	if profile != "" && !kernel.ValidID(profile) {
		return nil, kernel.Invalid("profile", "profile must be 1 to 64 letters, digits or . _ : -")
	}
	row, err := h.Row(ctx, member, profile)
	if err != nil {
		return nil, fmt.Errorf("row of %s: %w", kernel.Pseudonym(member), err)
	}
	policy := s.Policy()
	out := make([]RowTitle, len(row.Entries))
	for i, e := range row.Entries {
		t, _ := policy.Title(e.Title)
		rt := RowTitle{Title: e.Title, View: e.View, Started: e.Started, PositionMs: e.PositionMs, RuntimeMs: t.Runtime.D().Milliseconds(),
			Completed: Completed(e.FurthestMs, t.Runtime.D(), policy.Viewing), UpdatedAt: e.At}
		if !rt.Completed {
			rt.ResumeFromMs = e.PositionMs
		}
		out[i] = rt
	}
	return out, nil
}

// TitleEngagement reads a title's engagement on a day.
func (s *Service) TitleEngagement(ctx context.Context, title, day string) (Engagement, error) {
	h, err := s.historyStore()
	if err != nil {
		return Engagement{}, err
	}
	if err := checkIDs("title_id", title); err != nil {
		return Engagement{}, err
	}
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return Engagement{}, kernel.Invalid("day", "day must be YYYY-MM-DD")
	}
	return h.Engagement(ctx, title, day)
}

// MostWatched ranks a day's titles by time watched (Rank), the first n.
func (s *Service) MostWatched(ctx context.Context, day string, n int) ([]Ranked, error) {
	h, err := s.historyStore()
	if err != nil {
		return nil, err
	}
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return nil, kernel.Invalid("day", "day must be YYYY-MM-DD")
	}
	if n < 1 || n > MaxPageSize {
		return nil, kernel.Invalid("limit", "limit must be from 1 to %d", MaxPageSize)
	}
	counts, err := h.DayEngagement(ctx, day)
	if err != nil {
		return nil, err
	}
	return Rank(counts, n), nil
}

// CodeErasureInProgress: the member's viewing data is being erased; the
// history and the row can be read again once it is done (409).
const CodeErasureInProgress = "ERASURE_IN_PROGRESS"

// StaleErasure is how long an erasure may stay under way before a new
// request for it starts it again, as of the new request: its stream record
// was lost (a stream function given up on past the stream's 24 hours, or
// paused too long), so nothing would ever carry it out. Carrying out the
// old record too is harmless: an erasure record handled again, or after a
// later one, leaves what came after it alone.
const StaleErasure = time.Hour

// ErrErasurePending is a store's answer to a history read, or to a second
// erasure, while an erasure of the member's viewing data is under way.
var ErrErasurePending = errors.New("an erasure of this member's viewing data is under way")

func erasureInProgress() error {
	return kernel.Errorf(kernel.KindConflict, CodeErasureInProgress, "this account's viewing history is being erased; try again shortly")
}

// Erasure is a request to erase a member's viewing data: everything about
// views started before At (history entries, resume points and their
// running totals, the recently watched rows, the screens). Engagement
// counts are aggregates and stay; licensing events are the licence
// store's and stay.
type Erasure struct {
	Member string    `json:"-"`
	At     time.Time `json:"requested_at"`
	State  string    `json:"state"` // "pending", then "done"
}

// Erase starts the erasure of a member's viewing data: the screens end at
// once (a player's next heartbeat is told its view is gone) and the rows
// are emptied; the stream function erases the rest, in order after every
// write before it, so no record written before the erasure can bring any
// of it back. A second erasure while one is under way is refused.
func (s *Service) Erase(ctx context.Context, member string) (Erasure, error) {
	h, err := s.historyStore()
	if err != nil {
		return Erasure{}, err
	}
	if err := checkIDs("member", member); err != nil {
		return Erasure{}, err
	}
	// As of the end of this millisecond: the stores keep milliseconds, so a
	// view started earlier in the same millisecond is erased too, never kept.
	at := s.Clock.Now().UTC().Truncate(time.Millisecond).Add(time.Millisecond)
	if err := h.BeginErasure(ctx, member, at); err != nil {
		if errors.Is(err, ErrErasurePending) {
			return Erasure{}, erasureInProgress()
		}
		return Erasure{}, fmt.Errorf("erase the viewing data of %s: %w", kernel.Pseudonym(member), err)
	}
	return Erasure{Member: member, At: at, State: "pending"}, nil
}
