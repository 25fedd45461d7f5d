package memstore

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/dlicense/dlicense/domain/viewing"
)

var (
	_ viewing.ScreenStore   = (*Store)(nil)
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

// ReadForStart implements viewing.ScreenStore.
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

// Claim implements viewing.ScreenStore.
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

// Beat implements viewing.ScreenStore.
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

// Stop implements viewing.ScreenStore.
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

// End implements viewing.ScreenStore.
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

// Views implements viewing.ScreenStore.
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

// Resume implements viewing.ScreenStore.
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

var _ viewing.SilentStore = (*Store)(nil)

// Silent implements viewing.SilentStore.
func (s *Store) Silent(ctx context.Context, shard int, before time.Time, fn func(member string, v *viewing.View) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	type open struct {
		member string
		view   *viewing.View
	}
	var found []open
	s.mu.Lock()
	for member, slots := range s.screens {
		if viewing.LiveShard(member) != shard {
			continue
		}
		for _, v := range slots {
			if v != nil && v.Ended == "" && v.Closed.IsZero() && v.Started.Before(before) {
				found = append(found, open{member, cloneView(v)})
			}
		}
	}
	s.mu.Unlock()
	for _, o := range found {
		if err := fn(o.member, o.view); err != nil {
			return err
		}
	}
	return nil
}

// CloseSilent implements viewing.SilentStore.
func (s *Store) CloseSilent(ctx context.Context, member string, v *viewing.View, now time.Time) (bool, error) {
	_, applied, err := s.change(ctx, member, v.ID, func(held *viewing.View) bool {
		if held.ID != v.ID || held.Seq != v.Seq || !held.LastSeen.Equal(v.LastSeen) || held.Ended != "" || !held.Closed.IsZero() {
			return false
		}
		held.CloseSilent(now)
		return true
	})
	return applied, err
}
