package memstore

import (
	"context"
	"fmt"
	"slices"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
)

// AddCounts implements licensing.CounterStore: each member's changes after
// the last version counted for it, atomically.
func (s *Store) AddCounts(ctx context.Context, counted []licensing.Counted) ([]string, error) {
	if err := ctx.Err(); err != nil {
		failed := make([]string, len(counted))
		for i, c := range counted {
			failed[i] = c.Member
		}
		return failed, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counted == nil {
		s.counted, s.counts = map[string]int64{}, map[string]licensing.Counts{}
	}
	var failed []string
	var firstErr error
members:
	for _, c := range counted {
		if _, ok := s.counted[c.Member]; ok && c.From > 0 && s.counted[c.Member] < c.From-1 {
			// Events before this delivery were never counted (a delivery
			// given up on): count them from the log first.
			var missed []licensing.Changes
			if st := s.streams[c.Member]; st != nil {
				for v := s.counted[c.Member] + 1; v < c.From && v <= int64(len(st.events)); v++ {
					e, err := licensing.DecodeEvent(st.events[v-1])
					if err != nil {
						failed = append(failed, c.Member)
						if firstErr == nil {
							firstErr = fmt.Errorf("count %s: %w", kernel.Pseudonym(c.Member), err)
						}
						continue members
					}
					if d := licensing.CounterDeltas(e); len(d) > 0 {
						missed = append(missed, licensing.Changes{Version: v, Deltas: d})
					}
				}
			}
			c.Changes = append(missed, c.Changes...)
		}
		for _, ch := range c.Changes {
			if ch.Version <= s.counted[c.Member] {
				continue
			}
			s.counted[c.Member] = ch.Version
			for _, d := range ch.Deltas {
				if s.counts[d.Scope] == nil {
					s.counts[d.Scope] = licensing.Counts{}
				}
				s.counts[d.Scope][d.Field] += d.Delta
			}
		}
	}
	return failed, firstErr
}

// SetCounted records that a member's events up to version are counted (a
// counter rebuild counted them).
func (s *Store) SetCounted(ctx context.Context, member string, version int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counted == nil {
		s.counted, s.counts = map[string]int64{}, map[string]licensing.Counts{}
	}
	s.counted[member] = version
	return nil
}

// Counts implements licensing.CounterStore.
func (s *Store) Counts(ctx context.Context, scope string) (licensing.Counts, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := licensing.Counts{}
	for f, v := range s.counts[scope] {
		out[f] = v
	}
	return out, nil
}

// ReplaceCounts sets a counter scope to counts (for rebuilds).
func (s *Store) ReplaceCounts(ctx context.Context, scope string, counts licensing.Counts) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counted, s.counts = map[string]int64{}, map[string]licensing.Counts{}
	}
	c := licensing.Counts{}
	for f, v := range counts {
		c[f] = v
	}
	s.counts[scope] = c
	return nil
}

// CounterScopes calls fn with every counter scope held.
func (s *Store) CounterScopes(ctx context.Context, fn func(scope string) error) error {
	s.mu.Lock()
	scopes := make([]string, 0, len(s.counts))
	for sc := range s.counts {
		scopes = append(scopes, sc)
	}
	s.mu.Unlock()
	slices.Sort(scopes)
	for _, sc := range scopes {
		if err := fn(sc); err != nil {
			return err
		}
	}
	return ctx.Err()
}
