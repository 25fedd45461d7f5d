package memstore

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dlicense/dlicense/domain/viewing"
)

// RecordHistory implements viewing.HistoryStore.
func (s *Store) RecordHistory(ctx context.Context, changes []viewing.HistoryMemberChange) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range changes {
		h := s.history[c.Member]
		if h == nil {
			h = map[string]viewing.HistoryEntry{}
			s.history[c.Member] = h
		}
		key := c.Entry.Key()
		held, exists := h[key]
		count := c.Count
		entry := c.Entry
		switch {
		case !c.Closed && exists:
			continue
		case c.Closed && exists && held.Ended != "":
			continue
		case c.Closed && !exists:
			count.Add(viewing.StartEngagement(c.Entry))
		case c.EndOnly:
			entry = held
			entry.Ended = c.Entry.Ended
		}
		h[key] = entry
		day := viewing.Day(c.Entry.Started)
		if s.engagement[day] == nil {
			s.engagement[day] = map[string]viewing.Engagement{}
		}
		e := s.engagement[day][c.Entry.Title]
		e.Add(count)
		s.engagement[day][c.Entry.Title] = e
	}
	return nil
}

// History implements viewing.HistoryStore.
func (s *Store) History(ctx context.Context, member, after string, limit int) ([]viewing.HistoryEntry, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.erasures[member]; e != nil && e.State == "pending" && after == "" {
		// Checked on the first page, as one Query reads it with the entries.
		return nil, false, viewing.ErrErasurePending
	}
	keys := slices.Sorted(maps.Keys(s.history[member]))
	slices.Reverse(keys)
	var out []viewing.HistoryEntry
	for _, k := range keys {
		if after != "" && k >= after {
			continue
		}
		if len(out) == limit {
			return out, true, nil
		}
		out = append(out, s.history[member][k])
	}
	return out, false, nil
}

// WatchRow implements viewing.HistoryStore.
func (s *Store) WatchRow(ctx context.Context, member, profile string, es []viewing.HistoryEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := resumeKey(member, profile, "")
	r := s.rows[k]
	if r == nil {
		r = &viewing.Row{Profile: profile}
		s.rows[k] = r
	}
	changed := false
	for _, e := range es {
		changed = r.Watch(e) || changed
	}
	if changed {
		r.Version++
	}
	return nil
}

// Row implements viewing.HistoryStore.
func (s *Store) Row(ctx context.Context, member, profile string) (*viewing.Row, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rows[resumeKey(member, profile, "")]
	if r == nil {
		return &viewing.Row{Profile: profile}, nil
	}
	c := *r
	c.Entries = slices.Clone(r.Entries)
	c.Hidden = maps.Clone(r.Hidden)
	return &c, nil
}

// Engagement implements viewing.HistoryStore.
func (s *Store) Engagement(ctx context.Context, title, day string) (viewing.Engagement, error) {
	if err := ctx.Err(); err != nil {
		return viewing.Engagement{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.engagement[day][title], nil
}

// DayEngagement implements viewing.HistoryStore.
func (s *Store) DayEngagement(ctx context.Context, day string) (map[string]viewing.Engagement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.engagement[day]), nil
}

func resumeKey(member, profile, title string) string {
	return member + "\x00" + profile + "\x00" + title
}

// splitResumeKey is resumeKey's parts.
func splitResumeKey(k string) (member, profile, title string) {
	parts := strings.SplitN(k, "\x00", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	return parts[0], parts[1], parts[2]
}

func cloneView(v *viewing.View) *viewing.View {
	if v == nil {
		return nil
	}
	c := *v
	if v.Former != nil {
		f := *v.Former
		c.Former = &f
	}
	return &c
}

// SubscribeErasures registers fn to hear every later erasure of a member's
// viewing data, in write order with the screen writes and appends.
func (s *Store) SubscribeErasures(fn func(viewing.Erasure)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.erasureSubs = append(s.erasureSubs, fn)
}

// BeginErasure implements viewing.HistoryStore.
func (s *Store) BeginErasure(ctx context.Context, member string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if e := s.erasures[member]; e != nil && e.State == "pending" && !at.After(e.At.Add(viewing.StaleErasure)) {
		s.mu.Unlock()
		return viewing.ErrErasurePending
	}
	delete(s.screens, member)
	deleteMember(s.rows, member)
	e := viewing.Erasure{Member: member, At: at, State: "pending"}
	s.erasures[member] = &e
	if len(s.erasureSubs) == 0 {
		s.mu.Unlock()
		return nil
	}
	s.publish(batch{stream: member, erasure: &e})
	return nil
}

// EraseViewing implements viewing.HistoryStore.
func (s *Store) EraseViewing(ctx context.Context, member string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.erasures[member]; e != nil && e.State == "done" && e.At.Equal(at) {
		return nil // carried out already: what came after it stays
	}
	for k, r := range s.resumes {
		if !strings.HasPrefix(k, member+"\x00") {
			continue
		}
		if r.At.Before(at) {
			delete(s.resumes, k)
			continue
		}
		// A position reported since: keep it, forget the time and the
		// totals of views from before.
		r.WatchedMs = 0
		for slot, o := range r.Open {
			if o.Started.Before(at) {
				delete(r.Open, slot)
			}
		}
	}
	deleteMember(s.rows, member)
	for k, e := range s.history[member] {
		if e.Started.Before(at) {
			delete(s.history[member], k)
		}
	}
	slots := s.screens[member]
	for i, v := range slots {
		if v != nil && v.Started.Before(at) {
			slots[i] = nil
		}
	}
	if e := s.erasures[member]; e != nil && e.At.Equal(at) {
		e.State = "done"
	}
	return nil
}

// Erasures implements viewing.HistoryStore.
func (s *Store) Erasures(ctx context.Context, members []string) (map[string]time.Time, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]time.Time{}
	for _, m := range members {
		if e := s.erasures[m]; e != nil {
			out[m] = e.At
		}
	}
	return out, nil
}

// ViewingMembers calls fn with every member that has a viewing history, in
// order.
func (s *Store) ViewingMembers(ctx context.Context, fn func(member string) error) error {
	return s.ViewingMembersOf(ctx, 0, 1, fn)
}

// ViewingMembersOf calls fn with every member with a viewing history that
// falls in segment of total (SegmentOf), in order.
func (s *Store) ViewingMembersOf(ctx context.Context, segment, total int, fn func(member string) error) error {
	s.mu.Lock()
	var members []string
	for m, h := range s.history {
		if len(h) > 0 && SegmentOf(m, total) == segment {
			members = append(members, m)
		}
	}
	s.mu.Unlock()
	slices.Sort(members)
	for _, m := range members {
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

// ReplaceRows replaces a member's recently watched rows, keeping the
// titles the member removed from them.
func (s *Store) ReplaceRows(ctx context.Context, member string, rows map[string]*viewing.Row) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	hidden := map[string]map[string]time.Time{}
	for k, r := range s.rows {
		if m, profile, _ := splitResumeKey(k); m == member && len(r.Hidden) > 0 {
			hidden[profile] = r.Hidden
		}
	}
	deleteMember(s.rows, member)
	for profile, r := range rows {
		c := *r
		c.Entries = slices.Clone(r.Entries)
		c.Hidden = nil
		c.KeepHidden(hidden[profile])
		delete(hidden, profile)
		s.rows[resumeKey(member, profile, "")] = &c
	}
	for profile, h := range hidden { // rows of removed titles only
		r := &viewing.Row{Profile: profile, Version: 1}
		r.KeepHidden(h)
		s.rows[resumeKey(member, profile, "")] = r
	}
	return nil
}

// HideInRow implements viewing.HistoryStore.
func (s *Store) HideInRow(ctx context.Context, member, profile, title string, at time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rows[resumeKey(member, profile, "")]
	if r == nil {
		return false, nil // no row: nothing to remove, nothing to remember
	}
	had := slices.ContainsFunc(r.Entries, func(e viewing.RowEntry) bool { return e.Title == title })
	if r.Hide(title, at) {
		r.Version++
	}
	return had, nil
}

// ReplaceEngagement replaces every engagement count.
func (s *Store) ReplaceEngagement(ctx context.Context, counts map[string]map[string]viewing.Engagement) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cleared := 0
	for _, titles := range s.engagement {
		cleared += len(titles)
	}
	s.engagement = map[string]map[string]viewing.Engagement{}
	for day, titles := range counts {
		s.engagement[day] = maps.Clone(titles)
	}
	return cleared, nil
}

// deleteMember deletes the entries of m keyed by resumeKey for member.
func deleteMember[V any](m map[string]V, member string) {
	for k := range m {
		if strings.HasPrefix(k, member+"\x00") {
			delete(m, k)
		}
	}
}
