package licensing

import (
	"testing"
	"time"
)

// TestCounterDeltasFollowALicence folds the counter changes of a licence's
// life and checks the counts at each step against what happened.
func TestCounterDeltasFollowALicence(t *testing.T) {
	h := newHistory(t, testPolicy(t))
	a := h.do(0, acq("family", "d1", "p1"))
	h.do(time.Hour, acq("family", "d1", "p2"))
	h.do(5*day, Renew{"m1", "family", "d1", a})
	h.do(6*day, ReleaseDevice{"m1", "d1", ReasonDeviceRemoved})
	b := h.do(7*day, acq("family", "d2", "p1"))
	h.do(8*day, Release{"m1", "d2", b, ReasonDeleted})

	counts := map[string]Counts{}
	apply := func(e Event) {
		for _, d := range CounterDeltas(e) {
			if counts[d.Scope] == nil {
				counts[d.Scope] = Counts{}
			}
			counts[d.Scope][d.Field] += d.Delta
		}
	}
	for i, e := range h.events {
		apply(e)
		now := e.At
		// After each event, the title counter agrees with the fold.
		var held int64
		for _, l := range Fold("m1", h.events[:i+1]).list {
			if l.Title == "p1" && !l.Released() && dateOf(l.ExpiresAt) >= dateOf(now) {
				held++
			}
		}
		if got := counts[TitleScope("p1")].ActiveOn(now); got != held {
			t.Errorf("after event %d (%s): title p1 active %d, want %d", i+1, e.Type(), got, held)
		}
	}
	if got := counts[TitleScope("p1")].Granted(); got != 2 {
		t.Errorf("p1 granted = %d, want 2", got)
	}
	if got := counts[StudioDayScope("plain", t0)].Granted(); got != 2 {
		t.Errorf("studio plain granted on day 0 = %d, want 2", got)
	}
	for scope, c := range counts {
		if n := c.ActiveOn(t0); n != 0 {
			t.Errorf("%s: %d still active after every licence was released, want 0", scope, n)
		}
	}
	// The renewal moved a's expiry bucket: before the releases, a licence
	// renewed on day 5 is held on day 20 (its first term ended on day 30,
	// the renewed one on day 35).
	counts = map[string]Counts{}
	for _, e := range h.events[:3] {
		apply(e)
	}
	if got := counts[TitleScope("p1")].ActiveOn(t0.Add(32 * day)); got != 1 {
		t.Errorf("p1 active on day 32 after the renewal = %d, want 1", got)
	}
}

func TestEventsWithoutReferencesCountNothing(t *testing.T) {
	if d := CounterDeltas(Event{At: t0, Payload: &LicenceReleased{Licence: "L1", Reason: ReasonDeleted}}); len(d) != 0 {
		t.Errorf("CounterDeltas(release without ref) = %v, want none", d)
	}
	if d := CounterDeltas(Event{At: t0, Payload: &PlaybackRecorded{Device: "d1"}}); len(d) != 0 {
		t.Errorf("CounterDeltas(playback) = %v, want none", d)
	}
}
