package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
)

// ViewStore is what a store of screens and resume points provides to run
// its suite.
type ViewStore interface {
	viewing.ScreenStore
	viewing.ProgressStore
	viewing.SilentStore
}

// RunViews runs the contract of viewing stores: conditional slot claims,
// heartbeats, stops and ends applied exactly when the domain's rules say,
// the screen limit exact under racing starts, expiry by the clock passed
// in, and resume points that apply each contribution once.
func RunViews(t *testing.T, newStore func(t *testing.T) ViewStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, s ViewStore)
	}{
		{"ClaimAndRead", testClaimAndRead},
		{"ClaimConditions", testClaimConditions},
		{"BeatFollowsTheRules", testBeatFollowsTheRules},
		{"StopAndEndFollowTheRules", testStopAndEnd},
		{"RacingStartsHoldTheLimit", testRacingStarts},
		{"ExpiryByTheClock", testExpiryByTheClock},
		{"SilentViewsClose", testSilentViewsClose},
		{"RetriedStart", testRetriedStart},
		{"MembersApart", testMembersApart},
		{"ProgressOnceEach", testProgressOnceEach},
		{"ProgressClosesViews", testProgressClosesViews},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
	}
}

// vt0 is when the viewing fixtures start, to the millisecond as stores keep it.
var vt0 = time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)

// Clock is a clock a test moves by hand.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// IDs counts up ids; safe for concurrent use.
type IDs struct{ n atomic.Int64 }

// NewID returns the next id.
func (i *IDs) NewID() string { return fmt.Sprintf("id%d", i.n.Add(1)) }

func viewingService(s ViewStore, clock *Clock) *viewing.Service {
	svc := viewing.NewService(s, licensing.DefaultPolicy(), clock, &IDs{})
	svc.Backoff = time.Millisecond
	return svc
}

// fixtureView is a view as a start makes it, in slot of a member's account.
func fixtureView(slot int, device string) *viewing.View {
	return &viewing.View{
		ID: viewing.NewViewID(slot, "fx"+device), Slot: slot, Device: device, Title: "tt-first-light", Profile: "kids",
		Runtime: 106 * time.Minute, Started: vt0, LastSeen: vt0, PrevSeen: vt0, Expires: vt0.Add(90 * time.Second),
		PositionMs: 1234, State: viewing.Playing, PrevState: viewing.Playing, Key: viewing.KeyDigest("k-" + device), Fingerprint: "fp",
		Unwatched: vt0, Checkpoint: true,
		Former: &viewing.Former{ID: "v0-before", Reason: viewing.Expired, Title: "tt-low-tide", Started: vt0.Add(-time.Hour),
			Device: "tablet", LastSeen: vt0.Add(-10 * time.Minute), PositionMs: 600_000, WatchedMs: 540_000, CheckpointMs: 480_000},
	}
}

func mustClaim(t *testing.T, s ViewStore, member string, c viewing.Claim, now time.Time) {
	t.Helper()
	if err := s.Claim(t.Context(), member, c, now); err != nil {
		t.Fatalf("Claim(%s, expect %q) = %v", c.View.ID, c.Expect, err)
	}
}

func slots(t *testing.T, s ViewStore, member string, n int) []*viewing.View {
	t.Helper()
	views, _, err := s.ReadForStart(t.Context(), member, n, "", "tt-first-light")
	if err != nil {
		t.Fatalf("ReadForStart = %v", err)
	}
	return views
}

func testClaimAndRead(t *testing.T, s ViewStore) {
	member := streamID(t)
	if got := slots(t, s, member, 2); len(got) != 2 || got[0] != nil || got[1] != nil {
		t.Fatalf("ReadForStart(new member) = %v, want two empty slots", got)
	}
	v := fixtureView(1, "tv")
	mustClaim(t, s, member, viewing.Claim{View: v}, vt0)
	got := slots(t, s, member, 2)
	if got[0] != nil || !reflect.DeepEqual(got[1], v) {
		t.Errorf("ReadForStart = [%v, %+v], want slot 1 to hold exactly %+v", got[0], got[1], v)
	}
	if got := slots(t, s, member, 1); len(got) != 1 || got[0] != nil {
		t.Errorf("ReadForStart(1 slot) = %v, want only slot 0, empty", got)
	}
	if err := s.Claim(t.Context(), member, viewing.Claim{View: fixtureView(1, "phone")}, vt0); !errors.Is(err, viewing.ErrSlotTaken) {
		t.Errorf("Claim(a used slot, expecting it empty) = %v, want ErrSlotTaken", err)
	}
	views, err := s.Views(t.Context(), member)
	if err != nil || len(views) != 1 || !reflect.DeepEqual(views[0], v) {
		t.Errorf("Views = %v, %v; want the one view", views, err)
	}
}

func testClaimConditions(t *testing.T, s ViewStore) {
	member := streamID(t)
	held := fixtureView(0, "tv")
	mustClaim(t, s, member, viewing.Claim{View: held}, vt0)
	next := func(device string) *viewing.View {
		v := fixtureView(0, device)
		v.ID = viewing.NewViewID(0, "next-"+device)
		return v
	}
	cases := []struct {
		name  string
		claim viewing.Claim
		now   time.Time
	}{
		{"a live view, as if free", viewing.Claim{View: next("phone"), Expect: held.ID}, vt0.Add(90 * time.Second)},
		{"another view than the one held", viewing.Claim{View: next("phone"), Expect: "v0-other", Replace: true}, vt0},
	}
	for _, c := range cases {
		if err := s.Claim(t.Context(), member, c.claim, c.now); !errors.Is(err, viewing.ErrSlotTaken) {
			t.Errorf("Claim(%s) = %v, want ErrSlotTaken", c.name, err)
		}
	}
	if got := slots(t, s, member, 1)[0]; !reflect.DeepEqual(got, held) {
		t.Fatalf("after refused claims the slot holds %+v, want %+v", got, held)
	}
	expired := next("phone")
	mustClaim(t, s, member, viewing.Claim{View: expired, Expect: held.ID}, vt0.Add(91*time.Second))
	replacement := next("laptop")
	replacement.ID = viewing.NewViewID(0, "replacement")
	mustClaim(t, s, member, viewing.Claim{View: replacement, Expect: expired.ID, Replace: true}, vt0)
	if got := slots(t, s, member, 1)[0]; got.ID != replacement.ID {
		t.Errorf("slot 0 holds %s, want %s", got.ID, replacement.ID)
	}
}

func testBeatFollowsTheRules(t *testing.T, s ViewStore) {
	member := streamID(t)
	v := fixtureView(0, "tv")
	mustClaim(t, s, member, viewing.Claim{View: v}, vt0)
	beat := func(seq, pos int64, state viewing.State, at time.Duration) viewing.Beat {
		return viewing.Beat{Member: member, Plan: "premium", Device: "tv", View: v.ID, PositionMs: pos, State: state, Seq: seq,
			At: vt0.Add(at), Expires: vt0.Add(at + 90*time.Second)}
	}
	steps := []struct {
		name string
		b    viewing.Beat
	}{
		{"first", beat(1, 30_000, viewing.Playing, 30*time.Second)},
		{"the same again", beat(1, 30_000, viewing.Playing, 31*time.Second)},
		{"older", beat(0, 1, viewing.Playing, 32*time.Second)},
		{"past the end", beat(2, 106*60_000+1, viewing.Playing, 33*time.Second)},
		{"another device", func() viewing.Beat { b := beat(2, 1, viewing.Playing, 34*time.Second); b.Device = "phone"; return b }()},
		{"another view in the slot", func() viewing.Beat { b := beat(2, 1, viewing.Playing, 34*time.Second); b.View = "v0-zzz"; return b }()},
		{"the slot's former view", func() viewing.Beat { b := beat(2, 1, viewing.Playing, 34*time.Second); b.View = "v0-before"; return b }()},
		{"paused", beat(2, 60_000, viewing.Paused, 60*time.Second)},
		{"at the expiry", beat(3, 60_000, viewing.Playing, 150*time.Second)},
		{"after the expiry", beat(4, 61_000, viewing.Playing, 241*time.Second)},
		// The running totals through a checkpoint, a pause and back, and a
		// gap over MaxResumedSpan: the store keeps them as the rules do.
		{"a checkpoint", func() viewing.Beat {
			b := beat(5, 91_000, viewing.Playing, 271*time.Second)
			b.Checkpoint = true
			return b
		}()},
		{"paused again", beat(6, 95_000, viewing.Paused, 301*time.Second)},
		{"still paused, a checkpoint", func() viewing.Beat {
			b := beat(7, 95_000, viewing.Paused, 331*time.Second)
			b.Checkpoint = true
			return b
		}()},
		{"playing again", beat(8, 95_000, viewing.Playing, 361*time.Second)},
		{"after an hour asleep", beat(9, 125_000, viewing.Playing, 361*time.Second+time.Hour)},
		{"a checkpoint after it", func() viewing.Beat {
			b := beat(10, 155_000, viewing.Playing, 391*time.Second+time.Hour)
			b.Checkpoint = true
			return b
		}()},
		{"a slot never used", func() viewing.Beat { b := beat(5, 1, viewing.Playing, 30*time.Second); b.View = "v3-none"; return b }()},
	}
	for _, st := range steps {
		slot, _ := viewing.SlotOf(st.b.View)
		before := slots(t, s, member, 4)[slot]
		repeated, ruleErr := viewing.CheckBeat(before, st.b)
		want := !repeated && ruleErr == nil
		held, applied, err := s.Beat(t.Context(), member, st.b)
		if err != nil {
			t.Fatalf("%s: Beat = %v", st.name, err)
		}
		after := slots(t, s, member, 4)[slot]
		if applied != want {
			t.Errorf("%s: Beat applied = %v; the rules say %v (%v, %v)", st.name, applied, want, repeated, ruleErr)
			continue
		}
		if !applied {
			if !reflect.DeepEqual(held, before) || !reflect.DeepEqual(after, before) {
				t.Errorf("%s: refused, held %+v and slot %+v; want both as before, %+v", st.name, held, after, before)
			}
			continue
		}
		expect := *before
		expect.Beat(st.b)
		if !reflect.DeepEqual(after, &expect) {
			t.Errorf("%s: after Beat the slot holds %+v, want %+v", st.name, after, &expect)
		}
	}
}

func testStopAndEnd(t *testing.T, s ViewStore) {
	member := streamID(t)
	a, b := fixtureView(0, "tv"), fixtureView(1, "phone")
	mustClaim(t, s, member, viewing.Claim{View: a}, vt0)
	mustClaim(t, s, member, viewing.Claim{View: b}, vt0)
	stop := viewing.Stop{Member: member, Device: "tv", View: a.ID, PositionMs: 99_000, At: vt0.Add(20 * time.Second)}
	if _, applied, err := s.Stop(t.Context(), member, stop); err != nil || !applied {
		t.Fatalf("Stop(live) = %v, %v; want applied", applied, err)
	}
	want := *a
	want.Stop(stop)
	if got := slots(t, s, member, 2)[0]; !reflect.DeepEqual(got, &want) {
		t.Errorf("after Stop slot 0 holds %+v, want %+v", got, &want)
	}
	if held, applied, err := s.Stop(t.Context(), member, stop); err != nil || applied || held == nil || held.Ended != viewing.Stopped {
		t.Errorf("Stop(stopped) = %+v, %v, %v; want refused, holding the stopped view", held, applied, err)
	}
	// Expired, but still in its slot: the view stops (nobody displaced it).
	late := viewing.Stop{Member: member, Device: "phone", View: b.ID, PositionMs: 5, At: vt0.Add(2 * time.Minute)}
	if _, applied, err := s.Stop(t.Context(), member, late); err != nil || !applied {
		t.Errorf("Stop(expired, still in its slot) = %v, %v; want applied", applied, err)
	}
	wantB := *b
	wantB.Stop(late)
	if got := slots(t, s, member, 2)[1]; !reflect.DeepEqual(got, &wantB) {
		t.Errorf("after the late Stop slot 1 holds %+v, want %+v", got, &wantB)
	}
	c := fixtureView(2, "laptop")
	mustClaim(t, s, member, viewing.Claim{View: c}, vt0)
	end := viewing.End{Member: member, View: c.ID, Reason: viewing.EndedByMember, At: vt0.Add(3 * time.Minute)}
	if _, applied, err := s.End(t.Context(), member, end); err != nil || !applied {
		t.Fatalf("End(expired, not ended) = %v, %v; want applied", applied, err)
	}
	wantC := *c
	wantC.End(end)
	if got := slots(t, s, member, 3)[2]; !reflect.DeepEqual(got, &wantC) {
		t.Errorf("after End slot 2 holds %+v, want %+v", got, &wantC)
	}
	if _, applied, _ := s.End(t.Context(), member, end); applied {
		t.Errorf("End(ended) applied again")
	}
}

// testRacingStarts: many devices start at once on plans of several limits:
// exactly the limit get a view, the others are refused with the screens in
// use, and no start fails otherwise.
func testRacingStarts(t *testing.T, s ViewStore) {
	for _, c := range []struct {
		plan   string
		limit  int
		starts int
	}{{"basic", 1, 8}, {"standard", 2, 12}, {"premium", 4, 16}} {
		member := streamID(t) // a new id per call
		svc := viewingService(s, NewClock(vt0))
		var granted, refused atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, c.starts)
		for i := range c.starts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := svc.Start(context.Background(), viewing.Start{Member: member, Plan: c.plan, Device: fmt.Sprintf("device-%d", i), Title: "tt-first-light"}, "")
				var le *viewing.LimitError
				switch {
				case err == nil:
					granted.Add(1)
				case errors.As(err, &le) && le.Limit == c.limit && len(le.Screens) == c.limit:
					refused.Add(1)
				default:
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("%s: a racing start failed: %v", c.plan, err)
		}
		t.Logf("%s: %d racing starts, limit %d: %d granted, %d refused", c.plan, c.starts, c.limit, granted.Load(), refused.Load())
		if granted.Load() != int64(c.limit) || refused.Load() != int64(c.starts-c.limit) {
			t.Errorf("%s: %d granted, %d refused; want exactly %d granted", c.plan, granted.Load(), refused.Load(), c.limit)
		}
		limit, screens, err := svc.Screens(t.Context(), member, c.plan)
		if err != nil || limit != c.limit || len(screens) != c.limit {
			t.Errorf("%s: Screens = %d, %d screens, %v; want %d in use", c.plan, limit, len(screens), err, c.limit)
		}
	}
}

// testExpiryByTheClock: a view whose heartbeats stop for the expiry no
// longer counts, by the clock the service is given (no sleeping).
func testExpiryByTheClock(t *testing.T, s ViewStore) {
	member := streamID(t)
	clock := NewClock(vt0)
	svc := viewingService(s, clock)
	ctx := t.Context()
	start := func(device string) (viewing.Started, error) {
		return svc.Start(ctx, viewing.Start{Member: member, Plan: "standard", Device: device, Title: "tt-first-light"}, "")
	}
	tv, err := start("tv")
	if err != nil {
		t.Fatal(err)
	}
	laptop, err := start("laptop")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := start("phone"); !isLimit(err) {
		t.Fatalf("third start on standard = %v, want %s", err, viewing.CodeScreensLimit)
	}
	clock.Advance(60 * time.Second)
	if _, err := svc.Beat(ctx, viewing.Beat{Member: member, Plan: "standard", Device: "tv", View: tv.View.ID, PositionMs: 60_000, State: viewing.Playing, Seq: 1}); err != nil {
		t.Fatalf("tv heartbeat = %v", err)
	}
	clock.Advance(31 * time.Second) // the laptop was last seen 91 s ago
	phone, err := start("phone")
	if err != nil {
		t.Fatalf("start after the laptop expired = %v, want a view", err)
	}
	if phone.View.Slot != laptop.View.Slot || phone.View.Former == nil || phone.View.Former.Reason != viewing.Expired {
		t.Errorf("phone view = %+v, want the laptop's slot, which expired", phone.View)
	}
	_, err = svc.Beat(ctx, viewing.Beat{Member: member, Plan: "standard", Device: "laptop", View: laptop.View.ID, PositionMs: 1, State: viewing.Playing, Seq: 1})
	var ended *viewing.EndedError
	if !errors.As(err, &ended) || ended.Reason != viewing.Expired {
		t.Errorf("the expired laptop's heartbeat = %v, want %s (%s)", err, viewing.CodeViewEnded, viewing.Expired)
	}
	// The tv and the phone missed their heartbeats for minutes (the store
	// was out), but nobody took their slots: each plays on from its next
	// heartbeat, and the limit holds again.
	clock.Advance(5 * time.Minute)
	if _, screens, err := svc.Screens(ctx, member, "standard"); err != nil || len(screens) != 0 {
		t.Errorf("screens with both expired = %+v, %v; want none live", screens, err)
	}
	for _, v := range []viewing.Started{tv, phone} {
		if _, err := svc.Beat(ctx, viewing.Beat{Member: member, Plan: "standard", Device: v.View.Device, View: v.View.ID, PositionMs: 480_000, State: viewing.Playing, Seq: 2}); err != nil {
			t.Fatalf("the %s's heartbeat after 5 minutes without one = %v, want it accepted (nobody took its slot)", v.View.Device, err)
		}
	}
	if _, screens, err := svc.Screens(ctx, member, "standard"); err != nil || len(screens) != 2 {
		t.Errorf("screens after both came back = %+v, %v; want 2 in use", screens, err)
	}
	if _, err := start("laptop"); !isLimit(err) {
		t.Errorf("a third start with both back = %v, want %s", err, viewing.CodeScreensLimit)
	}
}

func isLimit(err error) bool {
	var le *viewing.LimitError
	return errors.As(err, &le)
}

func testRetriedStart(t *testing.T, s ViewStore) {
	member := streamID(t)
	svc := viewingService(s, NewClock(vt0))
	c := viewing.Start{Member: member, Plan: "basic", Device: "tv", Title: "tt-first-light"}
	first, err := svc.Start(t.Context(), c, "start-1")
	if err != nil || first.Replayed {
		t.Fatalf("Start = %+v, %v", first, err)
	}
	again, err := svc.Start(t.Context(), c, "start-1")
	if err != nil || !again.Replayed || again.View.ID != first.View.ID {
		t.Errorf("retried Start = %+v, %v; want the first view replayed", again, err)
	}
	c.Title = "tt-paper-moons"
	var e *kernel.Error
	if _, err := svc.Start(t.Context(), c, "start-1"); !errors.As(err, &e) || e.Code != kernel.CodeKeyReused {
		t.Errorf("the key with another title = %v, want %s", err, kernel.CodeKeyReused)
	}
}

func testMembersApart(t *testing.T, s ViewStore) {
	alice, bob := streamID(t), streamID(t)
	svc := viewingService(s, NewClock(vt0))
	started, err := svc.Start(t.Context(), viewing.Start{Member: alice, Plan: "basic", Device: "tv", Title: "tt-first-light"}, "")
	if err != nil {
		t.Fatal(err)
	}
	id := started.View.ID
	var e *kernel.Error
	if _, err := svc.Beat(t.Context(), viewing.Beat{Member: bob, Plan: "basic", Device: "tv", View: id, PositionMs: 1, State: viewing.Playing, Seq: 1}); !errors.As(err, &e) || e.Code != viewing.CodeViewNotFound {
		t.Errorf("bob's heartbeat on alice's view = %v, want %s", err, viewing.CodeViewNotFound)
	}
	if _, err := svc.End(t.Context(), viewing.End{Member: bob, View: id, Reason: viewing.EndedByMember}); !errors.As(err, &e) || e.Code != viewing.CodeViewNotFound {
		t.Errorf("bob ending alice's view = %v, want %s", err, viewing.CodeViewNotFound)
	}
	if _, screens, _ := svc.Screens(t.Context(), bob, "basic"); len(screens) != 0 {
		t.Errorf("bob's screens = %v, want none", screens)
	}
	if _, screens, _ := svc.Screens(t.Context(), alice, "basic"); len(screens) != 1 {
		t.Errorf("alice's screens = %v, want her view", screens)
	}
}
