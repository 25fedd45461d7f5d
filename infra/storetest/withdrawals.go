package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
)

// RunWithdrawals runs the contract of withdrawal stores: a title withdrawn
// once (the second record answers the first), its progress saved, every
// withdrawal listed.
func RunWithdrawals(t *testing.T, newStore func(t *testing.T) licensing.WithdrawalStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, s licensing.WithdrawalStore)
	}{
		{"RecordOnce", testWithdrawOnce},
		{"Progress", testWithdrawalProgress},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
	}
}

// withdrawalOf is the withdrawal of s's title in ws (ok false if none).
func withdrawalOf(t *testing.T, s licensing.WithdrawalStore, title string) (licensing.Withdrawal, bool) {
	t.Helper()
	ws, err := s.Withdrawals(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.Title == title {
			return w, true
		}
	}
	return licensing.Withdrawal{}, false
}

func testWithdrawOnce(t *testing.T, s licensing.WithdrawalStore) {
	ctx := context.Background()
	title := "t-" + streamID(t)[:40]
	from := time.Date(2026, 12, 24, 0, 0, 0, 0, time.UTC)
	w := licensing.Withdrawal{Title: title, From: from, RecordedAt: from.Add(-time.Hour)}
	held, ok, err := s.RecordWithdrawal(ctx, w)
	if err != nil || !ok || held.Title != title || !held.From.Equal(from) {
		t.Fatalf("RecordWithdrawal = %+v, %v, %v; want it recorded", held, ok, err)
	}
	held, ok, err = s.RecordWithdrawal(ctx, licensing.Withdrawal{Title: title, From: from.Add(48 * time.Hour), RecordedAt: from})
	if err != nil || ok || !held.From.Equal(from) || !held.RecordedAt.Equal(w.RecordedAt) {
		t.Errorf("RecordWithdrawal(again, from another time) = %+v, %v, %v; want the first one back, not recorded", held, ok, err)
	}
	got, found := withdrawalOf(t, s, title)
	if !found || !got.From.Equal(from) || got.Members != 0 || got.Done {
		t.Errorf("Withdrawals holds %+v (%v), want the first, not started", got, found)
	}
}

func testWithdrawalProgress(t *testing.T, s licensing.WithdrawalStore) {
	ctx := context.Background()
	title := "t-" + streamID(t)[:40]
	from := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if _, _, err := s.RecordWithdrawal(ctx, licensing.Withdrawal{Title: title, From: from, RecordedAt: from}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []licensing.Withdrawal{
		{Title: title, Members: 100, Ended: 40, Cursor: "c1"},
		{Title: title, Members: 230, Ended: 97, Cursor: licensing.HoldersDone, Done: true},
	} {
		if err := s.SaveProgress(ctx, p); err != nil {
			t.Fatalf("SaveProgress(%+v) = %v", p, err)
		}
		got, _ := withdrawalOf(t, s, title)
		if got.Members != p.Members || got.Ended != p.Ended || got.Cursor != p.Cursor || got.Done != p.Done || !got.From.Equal(from) {
			t.Errorf("after SaveProgress(%+v): %+v; want the progress saved and the rest kept", p, got)
		}
	}
}
