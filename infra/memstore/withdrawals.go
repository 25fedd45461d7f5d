package memstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/dlicense/dlicense/domain/audit"
	"github.com/dlicense/dlicense/domain/licensing"
)

var (
	_ licensing.WithdrawalStore = (*Store)(nil)
	_ licensing.HolderStore     = (*Store)(nil)
)

// holderPage is how many holders a page of Holders holds.
const holderPage = 100

// RecordWithdrawal implements licensing.WithdrawalStore.
func (s *Store) RecordWithdrawal(ctx context.Context, w licensing.Withdrawal) (licensing.Withdrawal, bool, error) {
	if err := ctx.Err(); err != nil {
		return w, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.withdrawals == nil {
		s.withdrawals = map[string]licensing.Withdrawal{}
	}
	if held, ok := s.withdrawals[w.Title]; ok {
		return held, false, nil
	}
	w.Members, w.Ended, w.Cursor, w.Done = 0, 0, "", false
	s.withdrawals[w.Title] = w
	return w, true, nil
}

// SaveProgress implements licensing.WithdrawalStore.
func (s *Store) SaveProgress(ctx context.Context, w licensing.Withdrawal) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	held, ok := s.withdrawals[w.Title]
	if !ok {
		return nil
	}
	held.Members, held.Ended, held.Cursor, held.Done = w.Members, w.Ended, w.Cursor, w.Done
	s.withdrawals[w.Title] = held
	return nil
}

// Withdrawals implements licensing.WithdrawalStore.
func (s *Store) Withdrawals(ctx context.Context) ([]licensing.Withdrawal, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []licensing.Withdrawal
	for _, w := range s.withdrawals {
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b licensing.Withdrawal) int {
		if a.Title < b.Title {
			return -1
		}
		if a.Title > b.Title {
			return 1
		}
		return 0
	})
	return out, nil
}

// AddHolders implements licensing.HolderStore.
func (s *Store) AddHolders(ctx context.Context, hs []licensing.Holder) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holders == nil {
		s.holders = map[string][]string{}
	}
	for _, h := range hs {
		list := s.holders[h.Title]
		i, found := slices.BinarySearch(list, h.Member)
		if !found {
			s.holders[h.Title] = slices.Insert(list, i, h.Member)
		}
	}
	return nil
}

// Holders implements licensing.HolderStore: pages of members in order; the
// cursor is the index of the next one.
func (s *Store) Holders(ctx context.Context, title, after string, fn func(members []string, next string) error) error {
	if after == licensing.HoldersDone {
		return nil
	}
	from := 0
	if after != "" {
		n, err := strconv.Atoi(after)
		if err != nil || n < 0 {
			return fmt.Errorf("bad holders cursor %q", after)
		}
		from = n
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.mu.Lock()
		list := s.holders[title]
		end := min(from+holderPage, len(list))
		page := slices.Clone(list[min(from, end):end])
		s.mu.Unlock()
		next := strconv.Itoa(end)
		if end >= len(list) {
			next = licensing.HoldersDone
		}
		if err := fn(page, next); err != nil {
			return err
		}
		if next == licensing.HoldersDone {
			return nil
		}
		from = end
	}
}

var _ licensing.RefusalStore = (*Store)(nil)

// RecordRefusal implements licensing.RefusalStore.
func (s *Store) RecordRefusal(ctx context.Context, member string, r licensing.Refusal) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refusals == nil {
		s.refusals = map[string][]licensing.Refusal{}
	}
	s.refusals[member] = append(s.refusals[member], r)
	return nil
}

// Refusals implements licensing.RefusalStore: newest first (the embedded
// store forgets nothing).
func (s *Store) Refusals(ctx context.Context, member string, limit int) ([]licensing.Refusal, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []licensing.Refusal{}
	rs := s.refusals[member]
	for i := len(rs) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, rs[i])
	}
	return out, nil
}

var _ audit.Store = (*Store)(nil)

// RecordAudit implements audit.Store (the retention is not enforced here).
func (s *Store) RecordAudit(ctx context.Context, r audit.Record, _ time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.audit == nil {
		s.audit = map[string][]audit.Record{}
	}
	s.audit[r.Actor] = append(s.audit[r.Actor], r)
	return nil
}

// Audit implements audit.Store.
func (s *Store) Audit(ctx context.Context, actor string, limit int) ([]audit.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.audit[actor]
	out := []audit.Record{}
	for i := len(rs) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, rs[i])
	}
	return out, nil
}
