package dynamo

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/viewing"
)

// rowPrefix starts the sort key of a row, in the member's viewing partition.
const rowPrefix = "w#"

// rowSK is the item of a profile's recently watched row.
func rowSK(profile string) string {
	if profile == "" {
		profile = "-"
	}
	return rowPrefix + profile
}

// rowEntry is a row entry as stored, in the row item's JSON attribute.
type rowEntry struct {
	Title    string `json:"t"`
	View     string `json:"v"`
	Started  int64  `json:"s"`
	Position int64  `json:"p"`
	Furthest int64  `json:"f"`
	At       int64  `json:"a"`
}

func (s *History) readRow(ctx context.Context, member, profile string, consistent bool) (*viewing.Row, error) {
	item, err := s.t.get(ctx, key(ViewingPartition(member), rowSK(profile)), consistent)
	if err != nil {
		return nil, fmt.Errorf("read row: %w", err)
	}
	r := &viewing.Row{Profile: profile}
	if len(item) == 0 {
		return r, nil
	}
	r.Version, _ = numOf(item, "ver")
	d, ok := strOf(item, "d")
	if !ok {
		return r, nil
	}
	var es []rowEntry
	if err := json.Unmarshal([]byte(d), &es); err != nil {
		return nil, fmt.Errorf("row of %s: %w", kernel.Pseudonym(member), err)
	}
	for _, e := range es {
		r.Entries = append(r.Entries, viewing.RowEntry{Title: e.Title, View: e.View, Started: fromMs(e.Started), PositionMs: e.Position, FurthestMs: e.Furthest, At: fromMs(e.At)})
	}
	hidden, err := hiddenOf(item)
	if err != nil {
		return nil, fmt.Errorf("row of %s: %w", kernel.Pseudonym(member), err)
	}
	r.Hidden = hidden
	return r, nil
}

// hiddenOf reads the titles removed from a row item ("h": title → Unix ms).
func hiddenOf(item map[string]types.AttributeValue) (map[string]time.Time, error) {
	h, ok := strOf(item, "h")
	if !ok {
		return nil, nil
	}
	var stored map[string]int64
	if err := json.Unmarshal([]byte(h), &stored); err != nil {
		return nil, err
	}
	hidden := make(map[string]time.Time, len(stored))
	for t, at := range stored {
		hidden[t] = fromMs(at)
	}
	return hidden, nil
}

// Row implements viewing.HistoryStore with one eventually consistent
// GetItem.
func (s *History) Row(ctx context.Context, member, profile string) (*viewing.Row, error) {
	return s.readRow(ctx, member, profile, false)
}

// rowItem is a row as stored.
func rowItem(member, profile string, r *viewing.Row) (map[string]types.AttributeValue, error) {
	stored := make([]rowEntry, len(r.Entries))
	for i, e := range r.Entries {
		stored[i] = rowEntry{Title: e.Title, View: e.View, Started: ms(e.Started), Position: e.PositionMs, Furthest: e.FurthestMs, At: ms(e.At)}
	}
	d, err := json.Marshal(stored)
	if err != nil {
		return nil, err
	}
	item := key(ViewingPartition(member), rowSK(profile))
	item["it"], item["pf"], item["ver"], item["d"] = str(kindRow), str(profile), num(r.Version), str(string(d))
	if len(r.Hidden) > 0 {
		stored := make(map[string]int64, len(r.Hidden))
		for t, at := range r.Hidden {
			stored[t] = ms(at)
		}
		h, err := json.Marshal(stored)
		if err != nil {
			return nil, err
		}
		item["h"] = str(string(h))
	}
	return item, nil
}

// rowAttempts bounds the read-and-write rounds of one row update.
const rowAttempts = 8

// WatchRow implements viewing.HistoryStore: a strongly consistent read of
// the row, then a write conditioned on its version; a lost race reads again.
func (s *History) WatchRow(ctx context.Context, member, profile string, es []viewing.HistoryEntry) error {
	return s.updateRow(ctx, member, profile, func(r *viewing.Row) bool {
		changed := false
		for _, e := range es {
			changed = r.Watch(e) || changed
		}
		return changed
	})
}

// HideInRow implements viewing.HistoryStore as WatchRow does: a strongly
// consistent read, a write conditioned on the row's version.
func (s *History) HideInRow(ctx context.Context, member, profile, title string, at time.Time) (bool, error) {
	had := false
	err := s.updateRow(ctx, member, profile, func(r *viewing.Row) bool {
		if r.Version == 0 {
			return false // no row: nothing to remove, nothing to remember
		}
		had = slices.ContainsFunc(r.Entries, func(e viewing.RowEntry) bool { return e.Title == title })
		return r.Hide(title, at)
	})
	return had, err
}

// updateRow applies change to a row read strongly consistent and writes it
// if it changed, conditioned on the version read; a lost race reads again.
func (s *History) updateRow(ctx context.Context, member, profile string, change func(*viewing.Row) bool) error {
	for attempt := 1; ; attempt++ {
		r, err := s.readRow(ctx, member, profile, true)
		if err != nil {
			return err
		}
		if !change(r) {
			return nil
		}
		next := *r
		next.Version++
		item, err := rowItem(member, profile, &next)
		if err != nil {
			return err
		}
		cond, values := "attribute_not_exists(sk)", map[string]types.AttributeValue{}
		if r.Version > 0 {
			cond, values[":v"] = "ver = :v", num(r.Version)
		}
		err = s.t.put(ctx, item, cond, nil, values, false)
		if err == nil {
			return nil
		}
		if _, failed := failedCondition(err); !failed || attempt >= rowAttempts {
			return fmt.Errorf("write row: %w", unavailable(err))
		}
		if err := kernel.Backoff(ctx, 5*time.Millisecond, attempt); err != nil {
			return err
		}
	}
}

// ReplaceRows replaces a member's recently watched rows: a Query of the
// rows held, deletes of those of other profiles (but those holding the
// member's removals), then each row read and written on its version.
func (s *History) ReplaceRows(ctx context.Context, member string, rows map[string]*viewing.Row) error {
	var stale []map[string]types.AttributeValue
	keep := map[string]bool{} // profiles whose row holds removals
	if err := s.t.queryPrefix(ctx, ViewingPartition(member), []string{rowPrefix}, func(item map[string]types.AttributeValue) {
		profile, _ := strOf(item, "pf")
		if _, rebuilt := rows[profile]; rebuilt {
			return
		}
		if _, removals := item["h"]; removals {
			keep[profile] = true
			return
		}
		stale = append(stale, keyOf(item))
	}); err != nil {
		return err
	}
	if err := s.t.batchWrite(ctx, deletes(stale)); err != nil {
		return fmt.Errorf("delete rows: %w", err)
	}
	// Each row is written as WatchRow writes it: read, then written on the
	// version read, so a removal the member makes meanwhile is kept (the
	// titles the member removed stay out of the rebuilt row).
	write := func(profile string, entries []viewing.RowEntry) error {
		return s.updateRow(ctx, member, profile, func(r *viewing.Row) bool {
			hidden := r.Hidden
			r.Entries, r.Hidden = slices.Clone(entries), nil
			r.KeepHidden(hidden)
			return true
		})
	}
	for profile, r := range rows {
		if err := write(profile, r.Entries); err != nil {
			return fmt.Errorf("rows of %s: %w", kernel.Pseudonym(member), err)
		}
	}
	for profile := range keep { // removals only: the entries go, the removals stay
		if err := write(profile, nil); err != nil {
			return fmt.Errorf("rows of %s: %w", kernel.Pseudonym(member), err)
		}
	}
	return nil
}
