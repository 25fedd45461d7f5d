package dynamo_test

import (
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/dynamo"
)

// TestAnErasureReachesEveryRegion: two regions share the screens and the
// erasure requests (one table, as multi-Region eventual consistency keeps
// it) and each has its own read models. A member's erasure asked in one
// region is carried out there and, once its stream function sees the
// request, in the other; each region's history answers "under way" while
// it erases there, and nothing of the member's earlier views is left in
// either. (The erasure's done mark is each region's own: a shared one
// would let the second region skip its erasure.)
func TestAnErasureReachesEveryRegion(t *testing.T) {
	ctx := t.Context()
	db, sharedName := localTable(t)
	_, aName := localTable(t)
	_, bName := localTable(t)
	shared := dynamo.NewTable(db, sharedName)
	region := func(name string) *dynamo.History {
		regional := dynamo.NewTable(db, name)
		return dynamo.NewHistory(regional, shared, dynamo.NewViews(shared, regional))
	}
	a, b := region(aName), region(bName)
	member := "erased-in-two-regions"
	t0 := time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)
	e := viewing.HistoryEntry{View: "v0-x", Title: "tt-first-light", Device: "tv", Started: t0, LastSeen: t0}
	for _, h := range []*dynamo.History{a, b} {
		if err := h.RecordHistory(ctx, []viewing.HistoryMemberChange{{Member: member, HistoryChange: viewing.HistoryChange{Entry: e, Count: viewing.StartEngagement(e)}}}); err != nil {
			t.Fatal(err)
		}
	}
	at := t0.Add(time.Hour)
	if err := a.BeginErasure(ctx, member, at); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.History(ctx, member, "", 10); err != viewing.ErrErasurePending {
		t.Errorf("history in the region asked, under way = %v, want ErrErasurePending", err)
	}
	if err := b.BeginErasure(ctx, member, at.Add(time.Second)); err != viewing.ErrErasurePending {
		t.Errorf("a second erasure asked in the other region = %v, want ErrErasurePending", err)
	}
	held, err := b.Erasures(ctx, []string{member})
	if err != nil || !held[member].Equal(at) {
		t.Fatalf("the other region's stream function sees the request = %v, %v; want %v", held, err, at)
	}
	if err := a.EraseViewing(ctx, member, at); err != nil {
		t.Fatal(err)
	}
	if got, _, err := a.History(ctx, member, "", 10); err != nil || len(got) != 0 {
		t.Errorf("history where it was asked, once done = %+v, %v; want none", got, err)
	}
	// The other region erases its own copy when its stream function gets
	// the request, though the first has marked its erasure done.
	if err := b.EraseViewing(ctx, member, at); err != nil {
		t.Fatal(err)
	}
	if got, _, err := b.History(ctx, member, "", 10); err != nil || len(got) != 0 {
		t.Errorf("history in the other region, once done there = %+v, %v; want none", got, err)
	}
	if err := b.BeginErasure(ctx, member, at.Add(time.Hour)); err != nil {
		t.Errorf("a new erasure once both are done = %v", err)
	}
}
