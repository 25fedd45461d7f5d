package storetest

import (
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/viewing"
)

// silentOf is what Silent finds of member's views in its shard started
// before before.
func silentOf(t *testing.T, s ViewStore, member string, before time.Time) []*viewing.View {
	t.Helper()
	var out []*viewing.View
	err := s.Silent(t.Context(), viewing.LiveShard(member), before, func(m string, v *viewing.View) error {
		if m == member {
			out = append(out, v)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Silent = %v", err)
	}
	return out
}

// testSilentViewsClose: the open views of a member's shard are found (not
// a stopped one, not one started after the bound); closing one is a
// conditional write that happens once, on the view as it was read, and
// makes it a close the stream function handles; a heartbeat after the
// close (the service was out) reopens it, and it is found again.
func testSilentViewsClose(t *testing.T, s ViewStore) {
	member := streamID(t)
	clock := NewClock(vt0)
	svc := viewingService(s, clock)
	ctx := t.Context()
	tv, err := svc.Start(ctx, viewing.Start{Member: member, Plan: "standard", Device: "tv", Title: "tt-first-light"}, "")
	if err != nil {
		t.Fatal(err)
	}
	phone, err := svc.Start(ctx, viewing.Start{Member: member, Plan: "standard", Device: "phone", Title: "tt-first-light"}, "")
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if _, err := svc.Beat(ctx, viewing.Beat{Member: member, Plan: "standard", Device: "tv", View: tv.View.ID, PositionMs: 60_000, State: viewing.Playing, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Stop(ctx, viewing.Stop{Member: member, Device: "phone", View: phone.View.ID, PositionMs: 60_000}); err != nil {
		t.Fatal(err)
	}
	if got := silentOf(t, s, member, vt0); len(got) != 0 {
		t.Errorf("Silent(before the starts) = %v; want none", got)
	}
	clock.Advance(90*time.Second + viewing.CloseSilentAfter)
	now := clock.Now()
	got := silentOf(t, s, member, now.Add(-viewing.CloseSilentAfter))
	if len(got) != 1 || got[0].ID != tv.View.ID || got[0].Seq != 1 || got[0].WatchedMs != 60_000 || !got[0].Silent(now) {
		t.Fatalf("Silent = %v; want the tv's view only (the phone's stopped), due, 60 s watched", got)
	}
	read := got[0]
	if ok, err := s.CloseSilent(ctx, member, read, now); !ok || err != nil {
		t.Fatalf("CloseSilent = %v, %v; want it closed", ok, err)
	}
	if ok, err := s.CloseSilent(ctx, member, read, now); ok || err != nil {
		t.Errorf("CloseSilent again = %v, %v; want nothing done", ok, err)
	}
	v := slots(t, s, member, 2)[tv.View.Slot]
	if !v.Closed.Equal(now) || !v.Checkpoint || v.CheckpointMs != 60_000 || v.PrevCheckpointMs != 0 || v.Ended != "" {
		t.Fatalf("the closed view = %+v; want closed at %v, its checkpoint at 60 s, not ended", v, now)
	}
	if p, ok := viewing.ProgressOf(v, "5"); !ok || p.End != viewing.Expired || p.WatchedMs != 60_000 || p.PositionMs != 60_000 {
		t.Errorf("what its close reports = %+v, %v; want 60 s at 60000, Expired", p, ok)
	}
	if got := silentOf(t, s, member, now); len(got) != 0 {
		t.Errorf("Silent after the close = %v; want none", got)
	}
	// The tv comes back: its heartbeat is accepted and reopens it.
	if _, err := svc.Beat(ctx, viewing.Beat{Member: member, Plan: "standard", Device: "tv", View: tv.View.ID, PositionMs: 210_000, State: viewing.Playing, Seq: 2}); err != nil {
		t.Fatalf("the tv's heartbeat after its close = %v; want it accepted", err)
	}
	v = slots(t, s, member, 2)[tv.View.Slot]
	if !v.Closed.IsZero() || v.Seq != 2 || v.WatchedMs != 60_000+210_000 {
		t.Errorf("after the heartbeat = %+v; want it open, 270 s watched (the 210 s gap counts)", v)
	}
	if got := silentOf(t, s, member, now); len(got) != 1 || got[0].Seq != 2 {
		t.Errorf("Silent after it came back = %v; want it found again", got)
	}
	if ok, err := s.CloseSilent(ctx, member, read, now); ok || err != nil {
		t.Errorf("CloseSilent of the view as it was before the heartbeat = %v, %v; want nothing done", ok, err)
	}
}
