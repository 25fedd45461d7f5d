package viewing

import (
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
)

func online(seq string, pos, watched int64, device string) Progress {
	return Progress{Title: "tt-first-light", Device: device, View: "v0-" + device, At: t0, PositionMs: pos, WatchedMs: watched, Seq: PadSeq(seq)}
}

func TestResumeApply(t *testing.T) {
	var r Resume
	steps := []struct {
		name    string
		p       Progress
		changed bool
		pos     int64
		watched int64
		device  string
	}{
		{"first heartbeat", online("100", 30_000, 30_000, "phone"), true, 30_000, 30_000, "phone"},
		{"redelivered", online("100", 30_000, 30_000, "phone"), false, 30_000, 30_000, "phone"},
		{"next, on the tv", online("105", 10_000, 20_000, "tv"), true, 10_000, 50_000, "tv"},
		{"an older record, delivered again", online("101", 40_000, 30_000, "phone"), false, 10_000, 50_000, "tv"},
		{"a longer sequence number is later", online("1000", 12_000, 2_000, "tv"), true, 12_000, 52_000, "tv"},
		{"offline plays before the tv: time counts, position stays", Progress{Title: "tt-first-light", Device: "tablet", At: t0.Add(-time.Hour), PositionMs: 80_000, WatchedMs: 600_000, Version: 7}, true, 12_000, 652_000, "tv"},
		{"the same upload again", Progress{Title: "tt-first-light", Device: "tablet", At: t0.Add(-time.Hour), PositionMs: 80_000, WatchedMs: 600_000, Version: 7}, false, 12_000, 652_000, "tv"},
		{"offline plays after the tv", Progress{Title: "tt-first-light", Device: "tablet", At: t0.Add(time.Hour), PositionMs: 90_000, WatchedMs: 60_000, Version: 9}, true, 90_000, 712_000, "tablet"},
		{"a screen's record played before that upload: time counts, position stays", online("1001", 1, 3_000, "tv"), true, 90_000, 715_000, "tablet"},
		{"another slot's lower sequence number is its own", func() Progress {
			p := online("50", 95_000, 5_000, "phone")
			p.Slot, p.At = 1, t0.Add(2*time.Hour)
			return p
		}(), true, 95_000, 720_000, "phone"},
		{"that slot's record again", func() Progress {
			p := online("50", 95_000, 5_000, "phone")
			p.Slot, p.At = 1, t0.Add(2*time.Hour)
			return p
		}(), false, 95_000, 720_000, "phone"},
	}
	for _, s := range steps {
		if changed, _ := r.Apply(s.p); changed != s.changed || r.PositionMs != s.pos || r.WatchedMs != s.watched || r.Device != s.device {
			t.Errorf("%s: Apply = %v, resume %+v; want changed %v at %d, %d watched, on %s", s.name, changed, r, s.changed, s.pos, s.watched, s.device)
		}
	}
}

func TestCheckProgress(t *testing.T) {
	a, b := online("10", 1, 1, "tv"), online("11", 1, 1, "tv")
	other := b
	other.Title = "tt-paper-moons"
	otherSlot := online("05", 1, 1, "phone")
	otherSlot.Slot = 1
	for _, c := range []struct {
		name string
		ps   []Progress
		ok   bool
	}{
		{"in order", []Progress{a, b}, true},
		{"two slots, each in order", []Progress{a, otherSlot, b}, true},
		{"out of order", []Progress{b, a}, false},
		{"twice", []Progress{a, a}, false},
		{"two resume points", []Progress{a, other}, false},
	} {
		if err := CheckProgress(c.ps); (err == nil) != c.ok {
			t.Errorf("CheckProgress(%s) = %v, want ok %v", c.name, err, c.ok)
		}
	}
}

func TestOfflineProgress(t *testing.T) {
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	e := licensing.Event{Version: 12, At: at(600), Payload: &licensing.PlaybackRecorded{Device: "tablet", Accepted: []licensing.PlaybackEntry{
		{ID: "a3", Licence: "L1", Title: "tt-low-tide", Kind: licensing.PlaybackStop, PositionMs: 3_000_000, DeviceTime: at(50)},
		{ID: "a1", Licence: "L1", Title: "tt-low-tide", Kind: licensing.PlaybackStart, PositionMs: 0, DeviceTime: at(0)},
		{ID: "a2", Licence: "L1", Title: "tt-low-tide", Kind: licensing.PlaybackPause, PositionMs: 1_200_000, DeviceTime: at(20)},
		{ID: "a4", Licence: "L1", Title: "tt-low-tide", Kind: licensing.PlaybackResume, PositionMs: 1_200_000, DeviceTime: at(30)},
		{ID: "b1", Licence: "L2", Title: "tt-breakwater", Kind: licensing.PlaybackStart, PositionMs: 0, DeviceTime: at(100)},
		{ID: "b2", Licence: "L2", Title: "tt-breakwater", Kind: licensing.PlaybackKeepalive, PositionMs: 0, DeviceTime: at(400)},
		{ID: "b3", Licence: "L2", Title: "tt-breakwater", Kind: licensing.PlaybackStop, PositionMs: 900_000, DeviceTime: at(900)},
		{ID: "c1", Licence: "L0", Kind: licensing.PlaybackStart, DeviceTime: at(1)},
	}}}
	got := OfflineProgress(e)
	if len(got) != 2 {
		t.Fatalf("OfflineProgress = %+v, want two titles (the entry without a title counts for nothing)", got)
	}
	low, bw := got[0], got[1]
	// 0→20 playing, 20→30 paused, 30→50 playing: 40 minutes.
	if low.Title != "tt-low-tide" || low.WatchedMs != (40*time.Minute).Milliseconds() || low.PositionMs != 3_000_000 || !low.At.Equal(at(50)) || low.Version != 12 || low.Device != "tablet" {
		t.Errorf("tt-low-tide = %+v, want 40 minutes to 3,000,000 ms at minute 50", low)
	}
	// 100→400 capped at 4 h (it is 5 h), 400→600: the stop's device time is
	// after the upload, so it counts at the upload's time.
	if want := (MaxOfflineSpan + 200*time.Minute).Milliseconds(); bw.WatchedMs != want || !bw.At.Equal(at(600)) {
		t.Errorf("tt-breakwater = %+v, want %d ms watched, at the upload's time", bw, want)
	}
	if OfflineProgress(licensing.Event{Payload: &licensing.LicenceReleased{}}) != nil {
		t.Errorf("OfflineProgress(a release) is not empty")
	}
}

func TestAnswerFor(t *testing.T) {
	p := licensing.DefaultPolicy()
	title, _ := p.Title("tt-first-light") // 1h46m
	runtime := title.Runtime.D().Milliseconds()
	if a := AnswerFor(nil, "tt-first-light", "", title, p.Viewing); a.PositionMs != 0 || a.ResumeFromMs != 0 || a.Completed || a.UpdatedAt != nil || a.RuntimeMs != runtime {
		t.Errorf("AnswerFor(never watched) = %+v", a)
	}
	mid := &Resume{PositionMs: runtime / 2, At: t0, Device: "tv", WatchedMs: 99}
	if a := AnswerFor(mid, "tt-first-light", "kids", title, p.Viewing); a.ResumeFromMs != runtime/2 || a.Completed || a.Device != "tv" || a.WatchedMs != 99 || a.Profile != "kids" {
		t.Errorf("AnswerFor(half way) = %+v", a)
	}
	credits := &Resume{PositionMs: runtime * 96 / 100, At: t0}
	if a := AnswerFor(credits, "tt-first-light", "", title, p.Viewing); !a.Completed || a.ResumeFromMs != 0 || a.PositionMs != credits.PositionMs {
		t.Errorf("AnswerFor(in the credits) = %+v, want completed, resuming from the start", a)
	}
	if a := AnswerFor(credits, "x", "", licensing.Title{}, p.Viewing); a.Completed {
		t.Errorf("AnswerFor(unknown runtime) = %+v, want never completed", a)
	}
}

// TestFreshestResume: a start resumes from the position of a view of the
// title still playing (or stopped) on another screen when that view was
// seen after the resume point the stream function wrote; a view of
// another title or profile, one not reported yet, or an older one leaves
// the resume point as it is.
func TestFreshestResume(t *testing.T) {
	r := &Resume{Title: "tt-first-light", PositionMs: 120_000, At: t0, Device: "tv", WatchedMs: 300_000}
	view := func(id, title, profile string, seen time.Duration, pos, seq int64) *View {
		return &View{ID: id, Title: title, Profile: profile, Device: "phone", LastSeen: t0.Add(seen), PositionMs: pos, Seq: seq}
	}
	for _, c := range []struct {
		name   string
		slots  []*View
		pos    int64
		device string
	}{
		{"no screen", []*View{nil, nil}, 120_000, "tv"},
		{"the phone playing it, seen later", []*View{nil, view("v1-a", "tt-first-light", "", time.Minute, 754_000, 3)}, 754_000, "phone"},
		{"seen before the resume point", []*View{view("v0-a", "tt-first-light", "", -time.Minute, 754_000, 3)}, 120_000, "tv"},
		{"another title", []*View{view("v0-a", "tt-low-tide", "", time.Minute, 754_000, 3)}, 120_000, "tv"},
		{"another profile", []*View{view("v0-a", "tt-first-light", "kids", time.Minute, 754_000, 3)}, 120_000, "tv"},
		{"started, not reported yet", []*View{view("v0-a", "tt-first-light", "", time.Minute, 754_000, 0)}, 120_000, "tv"},
		{"the latest of two", []*View{view("v0-a", "tt-first-light", "", time.Minute, 500_000, 3), view("v1-b", "tt-first-light", "", 2*time.Minute, 600_000, 2)}, 600_000, "phone"},
	} {
		got := FreshestResume(r, c.slots, "tt-first-light", "")
		if got.PositionMs != c.pos || got.Device != c.device || got.WatchedMs != 300_000 {
			t.Errorf("%s: %+v, want position %d on %s, the time watched kept", c.name, got, c.pos, c.device)
		}
	}
	if got := FreshestResume(nil, []*View{view("v1-a", "tt-first-light", "", time.Minute, 754_000, 3)}, "tt-first-light", ""); got == nil || got.PositionMs != 754_000 {
		t.Errorf("no resume point yet, the phone playing: %+v", got)
	}
	if r.PositionMs != 120_000 {
		t.Error("FreshestResume changed the resume point it was given")
	}
}
