package viewing

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestASilentViewClosesWithItsLastReport: a view that stops sending
// heartbeats is due once its expiry is CloseSilentAfter behind; its close
// reports the time watched since its last checkpoint, as of its last
// heartbeat, and ends its history (Expired); a heartbeat after that (the
// view was silent because the service was out) reopens it, and its next
// checkpoint counts only what came after the close.
func TestASilentViewClosesWithItsLastReport(t *testing.T) {
	v := live(1, "tv", t0)
	v.Unwatched = t0
	v.Beat(Beat{PositionMs: 60_000, State: Playing, Seq: 1, At: t0.Add(time.Minute), Expires: t0.Add(150 * time.Second), Checkpoint: true})
	v.Beat(Beat{PositionMs: 120_000, State: Playing, Seq: 2, At: t0.Add(2 * time.Minute), Expires: t0.Add(210 * time.Second)})
	due := v.Expires.Add(CloseSilentAfter)
	if v.Silent(due.Add(-time.Millisecond)) || !v.Silent(due) {
		t.Fatalf("Silent just before and at expiry + %v = %v, %v; want false, true", CloseSilentAfter, v.Silent(due.Add(-time.Millisecond)), v.Silent(due))
	}
	v.CloseSilent(due)
	p, ok := ProgressOf(v, "7")
	if !ok || p.End != Expired || p.WatchedMs != time.Minute.Milliseconds() || p.PositionMs != 120_000 || !p.At.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("ProgressOf(the close) = %+v, %v; want the minute since the checkpoint, at 120000 as of the last heartbeat, Expired", p, ok)
	}
	if v.Silent(due.Add(time.Hour)) {
		t.Error("a closed view is due again")
	}
	// It comes back: a heartbeat reopens it; the minute before the close
	// is not counted again.
	back := due.Add(time.Minute)
	v.Beat(Beat{PositionMs: 130_000, State: Playing, Seq: 3, At: back, Expires: back.Add(90 * time.Second), Checkpoint: true})
	if !v.Closed.IsZero() {
		t.Errorf("after a heartbeat the view is still closed at %v", v.Closed)
	}
	if p, ok := ProgressOf(v, "8"); !ok || p.End != "" || p.WatchedMs != due.Add(time.Minute).Sub(t0.Add(2*time.Minute)).Milliseconds() {
		t.Errorf("ProgressOf(the checkpoint after the close) = %+v, %v; want the resumed span only, not ended", p, ok)
	}
	// Ended views never are due.
	w := live(2, "phone", t0)
	w.Ended = Stopped
	if w.Silent(t0.Add(time.Hour)) {
		t.Error("a stopped view is due")
	}
}

type silentFake struct {
	views    map[string]*View // by member
	closeErr error
	closed   []string
}

func (f *silentFake) Silent(_ context.Context, shard int, before time.Time, fn func(string, *View) error) error {
	for m, v := range f.views {
		if LiveShard(m) == shard && v.Started.Before(before) && v.Ended == "" && v.Closed.IsZero() {
			c := *v
			if err := fn(m, &c); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *silentFake) CloseSilent(_ context.Context, member string, v *View, now time.Time) (bool, error) {
	if f.closeErr != nil {
		return false, f.closeErr
	}
	held := f.views[member]
	if held.Seq != v.Seq || !held.Closed.IsZero() {
		return false, nil
	}
	held.CloseSilent(now)
	f.closed = append(f.closed, member)
	return true, nil
}

// TestSweepSilentClosesOnlyTheDueViewsOfItsShard.
func TestSweepSilentClosesOnlyTheDueViewsOfItsShard(t *testing.T) {
	now := t0.Add(time.Hour)
	f := &silentFake{views: map[string]*View{}}
	var members []string
	for i := 0; len(members) < 3; i++ {
		m := "m-" + string(rune('a'+i))
		if LiveShard(m) == 5 {
			members = append(members, m)
		}
	}
	silent, playing, otherShard := live(0, "tv", t0), live(0, "tv", t0), live(0, "tv", t0)
	playing.Expires = now.Add(time.Minute)
	f.views[members[0]], f.views[members[1]] = silent, playing
	f.views[members[2]] = live(0, "tv", now) // started just now: not read
	for i := 0; ; i++ {
		if m := "o-" + string(rune('a'+i)); LiveShard(m) != 5 {
			f.views[m] = otherShard
			break
		}
	}
	got, err := SweepSilent(context.Background(), f, 5, now)
	if err != nil || got.Read != 2 || got.Closed != 1 || len(f.closed) != 1 || f.closed[0] != members[0] {
		t.Fatalf("SweepSilent = %+v, %v, closed %v; want 2 read, %s closed", got, err, f.closed, members[0])
	}
	if again, err := SweepSilent(context.Background(), f, 5, now.Add(time.Minute)); err != nil || again.Closed != 0 {
		t.Errorf("a second sweep = %+v, %v; want nothing closed again", again, err)
	}
	f.closeErr = errors.New("store out")
	f.views[members[1]].Expires = t0
	if _, err := SweepSilent(context.Background(), f, 5, now); err == nil {
		t.Error("a failed close is not reported")
	}
	if _, err := SweepSilent(context.Background(), f, LiveShards, now); err == nil {
		t.Error("a shard out of range is swept")
	}
}
