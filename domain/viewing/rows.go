package viewing

import (
	"context"
	"fmt"
	"slices"
	"sort"
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
