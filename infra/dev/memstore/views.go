package memstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dlicense/dlicense/domain/viewing"
)

var (
	_ viewing.Store         = (*Store)(nil)
	_ viewing.ProgressStore = (*Store)(nil)
	_ viewing.HistoryStore  = (*Store)(nil)
)

// ScreenChange is a write of one screen slot, as a subscriber hears it: the
// view the slot holds after the write, and whether the slot had never been
// used (DynamoDB Streams calls the first write of an item an INSERT, later
// ones MODIFY).
type ScreenChange struct {
	Member string
	View   viewing.View
	Insert bool
}

// SubscribeScreens registers fn to hear every later screen write, in write
// order with the appends Subscribe delivers, under the same rules.
func (s *Store) SubscribeScreens(fn func(ScreenChange)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.screenSubs = append(s.screenSubs, fn)
}

// ReadForStart implements viewing.Store.
func (s *Store) ReadForStart(ctx context.Context, member string, n int, profile, title string) ([]*viewing.View, *viewing.Resume, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	slots := make([]*viewing.View, n)
	for i := range slots {
		slots[i] = cloneView(s.slot(member, i))
	}
	return slots, cloneResume(s.resumes[resumeKey(member, profile, title)]), nil
}

// Claim implements viewing.Store.
func (s *Store) Claim(ctx context.Context, member string, c viewing.Claim, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	held := s.slot(member, c.View.Slot)
	if !c.Claimable(held, now) {
		s.mu.Unlock()
		return viewing.ErrSlotTaken
	}
	s.write(member, cloneView(c.View), held == nil)
	return nil
}

// Beat implements viewing.Store.
func (s *Store) Beat(ctx context.Context, member string, b viewing.Beat) (*viewing.View, bool, error) {
	return s.change(ctx, member, b.View, func(held *viewing.View) bool {
		repeated, err := viewing.CheckBeat(held, b)
		if repeated || err != nil {
			return false
		}
		held.Beat(b)
		return true
	})
}

// Stop implements viewing.Store.
func (s *Store) Stop(ctx context.Context, member string, st viewing.Stop) (*viewing.View, bool, error) {
	return s.change(ctx, member, st.View, func(held *viewing.View) bool {
		repeated, err := viewing.CheckStop(held, st)
		if repeated || err != nil {
			return false
		}
		held.Stop(st)
		return true
	})
}

// End implements viewing.Store.
func (s *Store) End(ctx context.Context, member string, e viewing.End) (*viewing.View, bool, error) {
	return s.change(ctx, member, e.View, func(held *viewing.View) bool {
		repeated, _, err := viewing.CheckEnd(held, e)
		if repeated || err != nil {
			return false
		}
		held.End(e)
		return true
	})
}

// change applies fn to a copy of the view in the slot of view id: if fn
// says it applies, the copy is written; if not, the view is returned as held.
func (s *Store) change(ctx context.Context, member, id string, fn func(held *viewing.View) bool) (*viewing.View, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	slot, ok := viewing.SlotOf(id)
	if !ok {
		return nil, false, fmt.Errorf("view id %q names no slot", id)
	}
	s.mu.Lock()
	held := cloneView(s.slot(member, slot))
	if held == nil {
		s.mu.Unlock()
		return nil, false, nil
	}
	work := cloneView(held)
	if !fn(work) {
		s.mu.Unlock()
		return held, false, nil
	}
	s.write(member, work, false)
	return nil, true, nil
}

// write stores v in its slot and tells the subscribers. It is called with
// s.mu held and releases it.
func (s *Store) write(member string, v *viewing.View, insert bool) {
	slots := s.screens[member]
	for len(slots) <= v.Slot {
		slots = append(slots, nil)
	}
	slots[v.Slot] = v
	s.screens[member] = slots
	if len(s.screenSubs) == 0 {
		s.mu.Unlock()
		return
	}
	s.publish(batch{stream: member, screen: &ScreenChange{Member: member, View: *cloneView(v), Insert: insert}})
}

// slot is what a member's slot holds (nil if never used); s.mu is held.
func (s *Store) slot(member string, i int) *viewing.View {
	if slots := s.screens[member]; i < len(slots) {
		return slots[i]
	}
	return nil
}

// Views implements viewing.Store.
func (s *Store) Views(ctx context.Context, member string) ([]*viewing.View, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*viewing.View
	for _, v := range s.screens[member] {
		if v != nil {
			out = append(out, cloneView(v))
		}
	}
	return out, nil
}

// Resume implements viewing.Store.
func (s *Store) Resume(ctx context.Context, member, profile, title string) (*viewing.Resume, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneResume(s.resumes[resumeKey(member, profile, title)]), nil
}

func cloneResume(r *viewing.Resume) *viewing.Resume {
	if r == nil {
		return nil
	}
	c := *r
	c.Seqs = maps.Clone(r.Seqs)
	c.Open = maps.Clone(r.Open)
	return &c
}

// AddProgress implements viewing.ProgressStore.
func (s *Store) AddProgress(ctx context.Context, member string, ps []viewing.Progress) ([]viewing.Totals, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, nil
	}
	if err := viewing.CheckProgress(ps); err != nil {
		return nil, fmt.Errorf("add progress: %w", err)
	}
	key := resumeKey(member, ps[0].Profile, ps[0].Title)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.resumes[key]
	if r == nil {
		r = &viewing.Resume{}
		s.resumes[key] = r
	}
	var closed []viewing.Totals
	for _, p := range ps {
		_, c := r.Apply(p)
		closed = append(closed, c...)
	}
	return closed, nil
}

// OpenTotals implements viewing.ProgressStore.
func (s *Store) OpenTotals(ctx context.Context, member, profile, title string, slot int, view string) (*viewing.Totals, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.resumes[resumeKey(member, profile, title)]
	if r == nil {
		return nil, nil
	}
	t, ok := r.Open[slot]
	if !ok || t.View != view {
		return nil, nil
	}
	return &t, nil
}

// CloseView implements viewing.ProgressStore.
func (s *Store) CloseView(ctx context.Context, member, profile, title string, slot int, view string, reason viewing.EndReason) (*viewing.Totals, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.resumes[resumeKey(member, profile, title)]
	if r == nil {
		return nil, nil
	}
	t, ok := r.Close(slot, view, reason)
	if !ok {
		return nil, nil
	}
	return &t, nil
}

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
	s.mu.Lock()
	var members []string
	for m, h := range s.history {
		if len(h) > 0 {
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

// ReplaceRows replaces a member's recently watched rows.
func (s *Store) ReplaceRows(ctx context.Context, member string, rows map[string]*viewing.Row) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	deleteMember(s.rows, member)
	for profile, r := range rows {
		c := *r
		c.Entries = slices.Clone(r.Entries)
		s.rows[resumeKey(member, profile, "")] = &c
	}
	return nil
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
