package viewing

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
)

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
	// Hidden are the titles the member removed from the row, each with
	// when: a view of it started then or before is not shown again (its
	// late records included), one started after brings it back.
	Hidden map[string]time.Time
	// Version counts the row's writes (a store writes it conditionally).
	Version int64
}

// MaxHidden bounds the titles a row remembers as removed: past it, the
// oldest removal is forgotten (its views' records are long handled).
const MaxHidden = 200

// Hide removes a title from the row, as of at: the views of it started
// then or before are not shown again; one started later brings it back.
// It reports whether the row changed.
func (r *Row) Hide(title string, at time.Time) bool {
	changed := false
	if i := slices.IndexFunc(r.Entries, func(x RowEntry) bool { return x.Title == title }); i >= 0 {
		r.Entries = slices.Delete(r.Entries, i, i+1)
		changed = true
	}
	if h, ok := r.Hidden[title]; !ok || at.After(h) {
		if r.Hidden == nil {
			r.Hidden = map[string]time.Time{}
		}
		r.Hidden[title] = at
		changed = true
	}
	for len(r.Hidden) > MaxHidden {
		oldest := ""
		for t, h := range r.Hidden {
			if oldest == "" || h.Before(r.Hidden[oldest]) || h.Equal(r.Hidden[oldest]) && t < oldest {
				oldest = t
			}
		}
		delete(r.Hidden, oldest)
	}
	return changed
}

// KeepHidden applies the removals of hidden to a row rebuilt from the
// history: it keeps them, and drops the entries they hide.
func (r *Row) KeepHidden(hidden map[string]time.Time) {
	for title, at := range hidden {
		i := slices.IndexFunc(r.Entries, func(x RowEntry) bool { return x.Title == title })
		if i >= 0 && r.Entries[i].Started.After(at) {
			continue // watched again since
		}
		if i >= 0 {
			r.Entries = slices.Delete(r.Entries, i, i+1)
		}
		if r.Hidden == nil {
			r.Hidden = map[string]time.Time{}
		}
		r.Hidden[title] = at
	}
}

// Watch records a view of a title: a view started later than the title's
// entry moves it to the front with the view's figures; a report of the
// entry's own view updates its figures, if newer; anything older changes
// nothing, nor does a view of a title the member removed from the row
// started before the removal. The row keeps the RowLength most recently
// started titles.
// It reports whether the row changed.
func (r *Row) Watch(e HistoryEntry) bool {
	if h, ok := r.Hidden[e.Title]; ok {
		if !e.Started.After(h) {
			return false // removed by the member
		}
		delete(r.Hidden, e.Title) // watched again: back in the row
	}
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

// RecentlyWatched reads the recently watched row of a member's profile.
func (s *Service) RecentlyWatched(ctx context.Context, member, profile string) ([]RowTitle, error) {
	titles, _, err := s.RowOf(ctx, member, profile)
	return titles, err
}

// Removal is a title the member removed from a row, and when.
type Removal struct {
	Title     string    `json:"title_id"`
	RemovedAt time.Time `json:"removed_at"`
}

// RowOf reads the recently watched row of a member's profile, with the
// titles the member removed from it (latest removal first): what support
// sees.
func (s *Service) RowOf(ctx context.Context, member, profile string) ([]RowTitle, []Removal, error) {
	h, err := s.historyStore()
	if err != nil {
		return nil, nil, err
	}
	if err := checkIDs("member", member); err != nil {
		return nil, nil, err
	}
	if profile != "" && !kernel.ValidID(profile) {
		return nil, nil, kernel.Invalid("profile", "profile must be 1 to 64 letters, digits or . _ : -")
	}
	row, err := h.Row(ctx, member, profile)
	if err != nil {
		return nil, nil, fmt.Errorf("row of %s: %w", kernel.Pseudonym(member), err)
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
	removed := []Removal{}
	for title, at := range row.Hidden {
		removed = append(removed, Removal{Title: title, RemovedAt: at})
	}
	slices.SortFunc(removed, func(a, b Removal) int {
		if c := b.RemovedAt.Compare(a.RemovedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Title, b.Title)
	})
	return out, removed, nil
}

// RemoveFromRow removes a title from the recently watched row of a
// member's profile: the history keeps its views, and the title comes back
// to the row when the member watches it again. Whether it was in the row;
// removing it again changes nothing, nor does a removal from a profile
// that has no row. A title must be in the catalogue or in the row.
func (s *Service) RemoveFromRow(ctx context.Context, member, profile, titleID string) (bool, error) {
	h, err := s.historyStore()
	if err != nil {
		return false, err
	}
	if err := checkIDs("member", member, "title_id", titleID); err != nil {
		return false, err
	}
	if profile != "" && !kernel.ValidID(profile) {
		return false, kernel.Invalid("profile", "profile must be 1 to 64 letters, digits or . _ : -")
	}
	if _, err := catalogued(s.Policy(), titleID); err != nil {
		// A title gone from the catalogue may still be in the row; any
		// other is refused (a row remembers only real removals).
		row, rerr := h.Row(ctx, member, profile)
		if rerr != nil {
			return false, fmt.Errorf("row of %s: %w", kernel.Pseudonym(member), rerr)
		}
		if !slices.ContainsFunc(row.Entries, func(e RowEntry) bool { return e.Title == titleID }) {
			return false, err
		}
	}
	removed, err := h.HideInRow(ctx, member, profile, titleID, s.now())
	if err != nil {
		return false, fmt.Errorf("row of %s: %w", kernel.Pseudonym(member), err)
	}
	return removed, nil
}
