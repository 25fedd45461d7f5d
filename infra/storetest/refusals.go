package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
)

// RunRefusals runs the contract of refusal stores: a member's refusals
// newest first, as many as asked for, members apart.
func RunRefusals(t *testing.T, newStore func(t *testing.T) licensing.RefusalStore) {
	t.Run("NewestFirst", func(t *testing.T) { testRefusalsNewestFirst(t, newStore(t)) })
}

func testRefusalsNewestFirst(t *testing.T, s licensing.RefusalStore) {
	ctx := context.Background()
	member, other := streamID(t), "x"+streamID(t)[1:]
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for i := range 5 {
		r := licensing.Refusal{At: at.Add(time.Duration(i) * time.Minute), Version: int64(i), Command: "acquire", Plan: "basic", Device: "d1",
			Title: fmt.Sprintf("tt-%d", i), Rules: []licensing.RuleFailure{{Code: licensing.CodeDeviceDownloadLimit, Message: "full", Limit: 1, Current: 1}}}
		if err := s.RecordRefusal(ctx, member, r); err != nil {
			t.Fatalf("RecordRefusal(%d) = %v", i, err)
		}
	}
	if err := s.RecordRefusal(ctx, other, licensing.Refusal{At: at, Command: "renew", Licence: "L1"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Refusals(ctx, member, 3)
	if err != nil || len(got) != 3 {
		t.Fatalf("Refusals(%s, 3) = %d, %v; want 3", member, len(got), err)
	}
	for i, r := range got {
		want := 4 - i
		if r.Title != fmt.Sprintf("tt-%d", want) || !r.At.Equal(at.Add(time.Duration(want)*time.Minute)) || len(r.Rules) != 1 || r.Rules[0].Limit != 1 {
			t.Errorf("Refusals[%d] = %+v, want the refusal of tt-%d with its rule", i, r, want)
		}
	}
	if all, _ := s.Refusals(ctx, member, 50); len(all) != 5 {
		t.Errorf("Refusals(%s, 50) = %d, want the 5 kept", member, len(all))
	}
	if none, err := s.Refusals(ctx, "nobody-"+member[:30], 10); err != nil || len(none) != 0 {
		t.Errorf("Refusals(a member never refused) = %v, %v; want none", none, err)
	}
}
