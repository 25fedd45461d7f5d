package viewing

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
)

var t0 = time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)

func rules() licensing.ViewingRules { return licensing.DefaultPolicy().Viewing }

func seqIDs() func() string {
	n := 0
	return func() string { n++; return fmt.Sprintf("id%d", n) }
}

// live is a view in slot on device, last seen at seen, expiring 90 s later.
func live(slot int, device string, seen time.Time) *View {
	return &View{ID: NewViewID(slot, "x"+device), Slot: slot, Device: device, Title: "tt-first-light",
		Started: seen, LastSeen: seen, PrevSeen: seen, Expires: seen.Add(90 * time.Second), State: Playing, PrevState: Playing}
}

func start(device string) Start {
	return Start{Member: "m1", Plan: "standard", Device: device, Title: "tt-first-light"}
}

func code(err error) string {
	var e *kernel.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestDecideStart(t *testing.T) {
	title, _ := licensing.DefaultPolicy().Title("tt-first-light")
	ended := live(1, "tv", t0.Add(-time.Minute))
	ended.Ended = Stopped
	for _, c := range []struct {
		name  string
		given []*View // the slots; len is the limit
		when  Start
		key   string
		// then: the slot claimed and the view it expects there, or the code.
		slot    int
		expect  string
		replace bool
		former  EndReason
		code    string
		screens int
	}{
		{name: "empty account", given: []*View{nil, nil}, when: start("phone"), slot: slotFor("phone", 2)},
		{name: "a free slot beside a live view", given: []*View{live(0, "tv", t0), nil}, when: start("phone"), slot: 1},
		{name: "an ended view frees its slot", given: []*View{live(0, "tv", t0), ended}, when: start("phone"), slot: 1, expect: ended.ID, former: Stopped},
		{name: "an expired view frees its slot", given: []*View{live(0, "tv", t0), live(1, "laptop", t0.Add(-91*time.Second))}, when: start("phone"), slot: 1, expect: NewViewID(1, "xlaptop"), former: Expired},
		{name: "the device's own view is replaced", given: []*View{live(0, "tv", t0), live(1, "phone", t0)}, when: start("phone"), slot: 1, expect: NewViewID(1, "xphone"), replace: true, former: Replaced},
		{name: "every screen in use", given: []*View{live(0, "tv", t0), live(1, "laptop", t0.Add(-89*time.Second))}, when: start("phone"), code: CodeScreensLimit, screens: 2},
		{name: "a bad command", given: []*View{nil}, when: Start{Member: "m1", Plan: "basic", Device: "phone", Title: "tt-first-light", Profile: "<kids>"}, code: kernel.CodeInvalidInput},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.when.Validate(); err != nil {
				if code(err) != c.code {
					t.Fatalf("Validate() = %v, want code %q", err, c.code)
				}
				return
			}
			d, err := DecideStart(c.given, c.when, c.key, title, rules(), 5000, t0, seqIDs())
			if c.code != "" {
				var le *LimitError
				if code(err) != c.code || !errors.As(err, &le) || le.Limit != len(c.given) || len(le.Screens) != c.screens {
					t.Fatalf("DecideStart = %+v, %v; want %s listing %d screens", d, err, c.code, c.screens)
				}
				return
			}
			if err != nil || d.Replay != nil {
				t.Fatalf("DecideStart = %+v, %v; want a claim", d, err)
			}
			v := d.Claim.View
			if v.Slot != c.slot || v.ID != NewViewID(c.slot, "id1") || d.Claim.Expect != c.expect || d.Claim.Replace != c.replace {
				t.Errorf("claim = slot %d id %s expect %q replace %v; want slot %d expect %q replace %v", v.Slot, v.ID, d.Claim.Expect, d.Claim.Replace, c.slot, c.expect, c.replace)
			}
			if (c.former == "") != (v.Former == nil) || v.Former != nil && (v.Former.Reason != c.former || v.Former.ID != c.expect) {
				t.Errorf("former = %+v, want %q of %q", v.Former, c.former, c.expect)
			}
			if v.PositionMs != 5000 || !v.Expires.Equal(t0.Add(90*time.Second)) || v.Device != c.when.Device || v.State != Playing || v.Runtime != title.Runtime.D() {
				t.Errorf("new view = %+v, want it at the resume point, expiring after 90 s", v)
			}
			if !d.Claim.Claimable(c.given[c.slot], t0) {
				t.Errorf("the claim is not claimable over the slot it was decided on")
			}
		})
	}
}

func slotFor(device string, n int) int {
	d, _ := DecideStart(make([]*View, n), start(device), "", licensing.Title{}, rules(), 0, t0, seqIDs())
	return d.Claim.View.Slot
}

func TestDecideStartSpreadsDevicesOverFreeSlots(t *testing.T) {
	seen := map[int]bool{}
	for i := range 20 {
		seen[slotFor(fmt.Sprintf("device-%d", i), 4)] = true
	}
	if len(seen) < 3 {
		t.Errorf("20 devices chose slots %v of 4: want them spread", seen)
	}
}

func TestDecideStartIdempotency(t *testing.T) {
	c := start("phone")
	first := live(1, "phone", t0)
	first.Key, first.Fingerprint = KeyDigest("k1"), c.Fingerprint()
	d, err := DecideStart([]*View{nil, first}, c, "k1", licensing.Title{}, rules(), 0, t0.Add(time.Minute), seqIDs())
	if err != nil || d.Replay != first {
		t.Errorf("retry = %+v, %v; want the first view replayed", d, err)
	}
	other := c
	other.Title = "tt-paper-moons"
	if _, err := DecideStart([]*View{nil, first}, other, "k1", licensing.Title{}, rules(), 0, t0, seqIDs()); code(err) != kernel.CodeKeyReused {
		t.Errorf("same key, other title = %v, want %s", err, kernel.CodeKeyReused)
	}
}

func TestClaimable(t *testing.T) {
	v := live(0, "tv", t0)
	for _, c := range []struct {
		name  string
		claim Claim
		held  *View
		now   time.Time
		want  bool
	}{
		{"empty slot, expecting none", Claim{}, nil, t0, true},
		{"taken slot, expecting none", Claim{}, v, t0, false},
		{"expected view, expired", Claim{Expect: v.ID}, v, t0.Add(91 * time.Second), true},
		{"expected view, live again", Claim{Expect: v.ID}, v, t0, false},
		{"expected view, replaced by its device", Claim{Expect: v.ID, Replace: true}, v, t0, true},
		{"another view", Claim{Expect: "v0-other", Replace: true}, v, t0, false},
	} {
		if got := c.claim.Claimable(c.held, c.now); got != c.want {
			t.Errorf("%s: Claimable = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestCheckBeat(t *testing.T) {
	held := live(1, "phone", t0)
	held.Seq, held.PositionMs, held.Runtime = 3, 60_000, time.Hour
	held.Former = &Former{ID: "v1-before", Reason: EndedByMember}
	stopped := *held
	stopped.Ended = Stopped
	beat := func(mod func(*Beat)) Beat {
		b := Beat{Member: "m1", Plan: "standard", Device: "phone", View: held.ID, PositionMs: 90_000, State: Playing, Seq: 4, At: t0.Add(30 * time.Second)}
		if mod != nil {
			mod(&b)
		}
		return b
	}
	for _, c := range []struct {
		name     string
		held     *View
		b        Beat
		repeated bool
		code     string
		reason   EndReason
	}{
		{"applies", held, beat(nil), false, "", ""},
		{"no view in the slot", nil, beat(nil), false, CodeViewNotFound, ""},
		{"another view", held, beat(func(b *Beat) { b.View = "v1-unknown" }), false, CodeViewNotFound, ""},
		{"another device", held, beat(func(b *Beat) { b.Device = "tv" }), false, CodeViewNotFound, ""},
		{"the view before, ended from elsewhere", held, beat(func(b *Beat) { b.View = "v1-before" }), false, CodeViewEnded, EndedByMember},
		{"stopped", &stopped, beat(nil), false, CodeViewEnded, Stopped},
		{"expired, nobody took the slot: takes it back", held, beat(func(b *Beat) { b.At = t0.Add(10 * time.Minute) }), false, "", ""},
		{"just in time", held, beat(func(b *Beat) { b.At = t0.Add(90 * time.Second) }), false, "", ""},
		{"the last one again", held, beat(func(b *Beat) { b.Seq, b.PositionMs = 3, 60_000 }), true, "", ""},
		{"an older one", held, beat(func(b *Beat) { b.Seq = 2 }), false, CodeOutOfOrder, ""},
		{"the last seq with another position", held, beat(func(b *Beat) { b.Seq = 3 }), false, CodeOutOfOrder, ""},
		{"past the end of the title", held, beat(func(b *Beat) { b.PositionMs = 3_600_001 }), false, CodePositionOutOfRange, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			repeated, err := CheckBeat(c.held, c.b)
			var ended *EndedError
			errors.As(err, &ended)
			if repeated != c.repeated || code(err) != c.code || (c.reason != "" && (ended == nil || ended.Reason != c.reason)) {
				t.Errorf("CheckBeat = %v, %v; want repeated %v, code %q, reason %q", repeated, err, c.repeated, c.code, c.reason)
			}
			// The message says what happened: an older heartbeat, or
			// another one under a sequence number already used.
			if c.code == CodeOutOfOrder {
				reused := c.b.Seq == c.held.Seq
				if msg := err.Error(); strings.Contains(msg, "reuses its sequence number") != reused || strings.Contains(msg, "is older than") == reused {
					t.Errorf("CheckBeat's message = %q; want it to say the sequence number was reused: %v", msg, reused)
				}
			}
		})
	}
}

// TestResumedViewCountsTheGapUpToABound: a view that comes back after its
// heartbeats were not written counts the gap as watched (an outage of the
// service), up to MaxResumedSpan (not a device asleep for a day).
func TestResumedViewCountsTheGapUpToABound(t *testing.T) {
	for _, c := range []struct {
		gap, want time.Duration
	}{{2 * time.Minute, 2 * time.Minute}, {26 * time.Hour, MaxResumedSpan}} {
		v := live(0, "tv", t0)
		v.Seq = 1
		v.Beat(Beat{PositionMs: 480_000, State: Playing, Seq: 2, At: t0.Add(c.gap), Expires: t0.Add(c.gap + 90*time.Second), Checkpoint: true})
		if p, ok := ProgressOf(v, "3"); !ok || p.WatchedMs != c.want.Milliseconds() || p.PositionMs != 480_000 {
			t.Errorf("after a gap of %v: %+v, %v; want %v watched at 480000", c.gap, p, ok, c.want)
		}
	}
}

func TestBeatMovesTheView(t *testing.T) {
	v := live(0, "tv", t0)
	b := Beat{PositionMs: 30_000, State: Paused, Seq: 1, At: t0.Add(30 * time.Second), Expires: t0.Add(120 * time.Second), Checkpoint: true}
	v.Beat(b)
	if !v.PrevSeen.Equal(t0) || v.PrevState != Playing || !v.LastSeen.Equal(b.At) || !v.Expires.Equal(b.Expires) || v.State != Paused || v.Seq != 1 || v.PositionMs != 30_000 {
		t.Errorf("after Beat: %+v", v)
	}
	// A report that says paused counts nothing of the time since the last;
	// one that says playing counts it.
	p, ok := ProgressOf(v, "17")
	if !ok || p.WatchedMs != 0 || p.PositionMs != 30_000 || p.Seq != PadSeq("17") || len(p.Seq) != SeqWidth {
		t.Errorf("ProgressOf(a paused report) = %+v, %v; want nothing watched", p, ok)
	}
	v.Beat(Beat{PositionMs: 30_000, State: Playing, Seq: 2, At: t0.Add(60 * time.Second), Expires: t0.Add(150 * time.Second), Checkpoint: true})
	if p, ok := ProgressOf(v, "18"); !ok || p.WatchedMs != 30_000 {
		t.Errorf("ProgressOf(a playing report) = %+v, %v; want 30 s watched", p, ok)
	}
	// A heartbeat that is no checkpoint reports nothing; the next
	// checkpoint reports the time watched since the last one.
	v.Beat(Beat{PositionMs: 60_000, State: Playing, Seq: 3, At: t0.Add(90 * time.Second), Expires: t0.Add(180 * time.Second)})
	if _, ok := ProgressOf(v, "19"); ok || v.WatchedMs != 60_000 || !v.Unwatched.Equal(t0.Add(30*time.Second)) {
		t.Errorf("after a heartbeat that is no checkpoint: reports %v, %d ms watched, unwatched until %v", ok, v.WatchedMs, v.Unwatched)
	}
	v.Beat(Beat{PositionMs: 90_000, State: Playing, Seq: 4, At: t0.Add(120 * time.Second), Expires: t0.Add(210 * time.Second), Checkpoint: true})
	if p, ok := ProgressOf(v, "20"); !ok || p.WatchedMs != 60_000 || p.PositionMs != 90_000 {
		t.Errorf("ProgressOf(the next checkpoint) = %+v, %v; want the 60 s since the last checkpoint", p, ok)
	}
}

func TestStopAndEnd(t *testing.T) {
	held := live(0, "tv", t0)
	held.Runtime = time.Hour
	s := Stop{Member: "m1", Device: "tv", View: held.ID, PositionMs: 50_000, At: t0.Add(20 * time.Second)}
	if repeated, err := CheckStop(held, s); repeated || err != nil {
		t.Fatalf("CheckStop(live) = %v, %v", repeated, err)
	}
	if _, err := CheckStop(held, Stop{Device: "tv", View: held.ID, PositionMs: 3_600_001, At: s.At}); code(err) != CodePositionOutOfRange {
		t.Errorf("CheckStop(past the end) = %v", err)
	}
	late := s
	late.At = t0.Add(2 * time.Minute)
	if repeated, err := CheckStop(held, late); repeated || err != nil {
		t.Errorf("CheckStop(expired, still in its slot) = %v, %v; want it applied", repeated, err)
	}
	v := *held
	v.Stop(s)
	if p, ok := ProgressOf(&v, "9"); !ok || p.WatchedMs != 20_000 || p.PositionMs != 50_000 || v.Ended != Stopped {
		t.Errorf("after Stop: %+v, progress %+v %v", v, p, ok)
	}
	if repeated, err := CheckStop(&v, s); !repeated || err != nil {
		t.Errorf("CheckStop(stopped) = %v, %v; want a repeat", repeated, err)
	}
	e := End{Member: "m1", View: held.ID, Reason: EndedByMember, At: t0.Add(40 * time.Second)}
	if repeated, reason, err := CheckEnd(&v, e); !repeated || reason != Stopped || err != nil {
		t.Errorf("CheckEnd(stopped) = %v, %q, %v; want a repeat reporting STOPPED", repeated, reason, err)
	}
	w := *held
	if repeated, reason, err := CheckEnd(&w, e); repeated || reason != EndedByMember || err != nil {
		t.Fatalf("CheckEnd(live) = %v, %q, %v", repeated, reason, err)
	}
	w.End(e)
	if _, ok := ProgressOf(&w, "10"); ok || w.Ended != EndedByMember {
		t.Errorf("after End: %+v; want it ended, reporting nothing", w)
	}
	if _, _, err := CheckEnd(&w, End{View: "v0-nope"}); code(err) != CodeViewNotFound {
		t.Errorf("CheckEnd(unknown) = %v", err)
	}
}

func TestSlotOf(t *testing.T) {
	for id, want := range map[string]int{"v0-abc": 0, "v3-x": 3, "v15-k": 15} {
		if got, ok := SlotOf(id); !ok || got != want {
			t.Errorf("SlotOf(%q) = %d, %v; want %d", id, got, ok, want)
		}
	}
	for _, id := range []string{"", "v-abc", "v16-abc", "v03-abc", "vx-abc", "v1-", "x1-abc", "v1abc", "v1-<b>", "v999999999999999999999-a"} {
		if _, ok := SlotOf(id); ok {
			t.Errorf("SlotOf(%q) ok, want refused", id)
		}
	}
	if got := NewViewID(7, "k"); !slices.Contains([]string{"v7-k"}, got) {
		t.Errorf("NewViewID(7, k) = %q", got)
	}
}

// TestKept: a plan keeps its limit's worth of the most recently started
// live views, whatever their slots; ended and expired views are not kept;
// two started together, the later id.
func TestKept(t *testing.T) {
	now := time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)
	view := func(id string, started time.Duration, live bool) *View {
		v := &View{ID: id, Started: now.Add(-started), Expires: now.Add(time.Minute)}
		if !live {
			v.Ended = Stopped
		}
		return v
	}
	views := []*View{view("v0-a", 40*time.Minute, true), view("v1-b", 10*time.Minute, true), view("v2-c", 5*time.Minute, false),
		view("v3-d", 20*time.Minute, true), view("v5-f", 10*time.Minute, true), nil}
	expired := view("v4-e", time.Minute, true)
	expired.Expires = now.Add(-time.Second)
	views = append(views, expired)
	for _, c := range []struct {
		limit int
		want  []string
	}{
		{1, []string{"v5-f"}},
		{2, []string{"v1-b", "v5-f"}},
		{3, []string{"v1-b", "v3-d", "v5-f"}},
		{9, []string{"v0-a", "v1-b", "v3-d", "v5-f"}},
	} {
		var got []string
		for id := range Kept(views, c.limit, now) {
			got = append(got, id)
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("Kept(limit %d) = %v, want %v", c.limit, got, c.want)
		}
	}
}

// TestDecideStartRetriedAfterItsViewGaveUpItsSlot: a retry of a start
// whose view was replaced is told how it ended and claims nothing; the key
// with another request is a conflict.
func TestDecideStartRetriedAfterItsViewGaveUpItsSlot(t *testing.T) {
	now := time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)
	c := Start{Member: "m", Plan: "premium", Device: "tv", Title: "tt-first-light"}
	first := &View{ID: "v0-a", Slot: 0, Device: "tv", Title: "tt-first-light", Started: now, Expires: now.Add(time.Minute), Key: KeyDigest("k1"), Fingerprint: c.Fingerprint()}
	current := &View{ID: "v0-b", Slot: 0, Device: "tv", Title: "tt-low-tide", Started: now, Expires: now.Add(time.Minute), Former: FormerOf(first, Replaced)}
	title := licensing.Title{Runtime: licensing.Duration(time.Hour)}
	rules := licensing.DefaultPolicy().Viewing
	ids := func() string { return "x" }
	_, err := DecideStart([]*View{current, nil}, c, "k1", title, rules, 0, now, ids)
	var ended *EndedError
	if !errors.As(err, &ended) || ended.View != "v0-a" || ended.Reason != Replaced {
		t.Errorf("the retried start = %v; want its view v0-a ended, REPLACED", err)
	}
	other := c
	other.Title = "tt-paper-moons"
	if _, err := DecideStart([]*View{current, nil}, other, "k1", title, rules, 0, now, ids); code(err) != kernel.CodeKeyReused {
		t.Errorf("the key with another title = %v; want %s", err, kernel.CodeKeyReused)
	}
	if d, err := DecideStart([]*View{current, nil}, c, "k2", title, rules, 0, now, ids); err != nil || d.Claim.View == nil {
		t.Errorf("a new start with another key = %+v, %v; want a claim", d, err)
	}
}
