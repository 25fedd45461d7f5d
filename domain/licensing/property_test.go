package licensing

import (
	"bytes"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"pgregory.net/rapid"
)

var propTitles = []string{"p1", "p2", "p3", "p4", "p5", "q1", "w1", "c1", "c2", "c3", "f1", "gone", "soon"}

// drawHistory plays a random sequence of commands for one member on one plan
// and returns the history. After each command that changed the state it
// checks that no cap is exceeded.
func drawHistory(t *rapid.T, p *Policy) *history {
	h := newHistory(t, p)
	plan := rapid.SampledFrom([]string{"family", "solo"}).Draw(t, "plan")
	devices := []string{"d1", "d2", "d3"}
	var at time.Duration
	steps := rapid.IntRange(10, 80).Draw(t, "steps")
	for i := 0; i < steps; i++ {
		at += rapid.SampledFrom([]time.Duration{time.Minute, time.Minute, time.Hour, time.Hour, 20 * time.Hour, 3 * day, 9 * day}).Draw(t, "gap")
		device := rapid.SampledFrom(devices).Draw(t, "device")
		known := h.state.Licences(t0.Add(at))
		pick := func() string {
			if len(known) == 0 {
				return "L-none"
			}
			return known[rapid.IntRange(0, len(known)-1).Draw(t, "licence")].ID
		}
		var cmd Command
		switch rapid.IntRange(0, 10).Draw(t, "kind") {
		case 0, 1, 2, 3, 8:
			cmd = acq(plan, device, rapid.SampledFrom(propTitles).Draw(t, "title"))
		case 4:
			cmd = Renew{"m1", plan, device, pick()}
		case 5:
			cmd = Release{"m1", device, pick(), ReasonDeleted}
		case 6:
			cmd = ReleaseDevice{"m1", device, ReasonDeviceRemoved}
		default:
			n := rapid.IntRange(1, 4).Draw(t, "events")
			var batch []PlaybackInput
			for j := 0; j < n; j++ {
				batch = append(batch, PlaybackInput{
					ID:         fmt.Sprintf("e%d", rapid.IntRange(0, 30).Draw(t, "event id")),
					Licence:    pick(),
					Kind:       rapid.SampledFrom([]PlaybackKind{PlaybackStart, PlaybackStop, PlaybackKeepalive}).Draw(t, "event kind"),
					PositionMs: rapid.Int64Range(0, 7200000).Draw(t, "position"),
					DeviceTime: t0.Add(at - rapid.SampledFrom([]time.Duration{0, time.Hour, 2 * day}).Draw(t, "lag")),
				})
			}
			cmd = RecordPlayback{"m1", device, batch}
		}
		n := len(h.events)
		if _, err := h.try(at, cmd); err != nil {
			if k := kernel.KindOf(err); k != kernel.KindDenied && k != kernel.KindNotFound {
				t.Fatalf("%T %+v = %v, want granted, denied or not found", cmd, cmd, err)
			}
		}
		if len(h.events) > n {
			checkCaps(t, h, plan, t0.Add(at))
		}
	}
	return h
}

func checkCaps(t *rapid.T, h *history, planName string, now time.Time) {
	plan, _ := h.policy.Plan(planName)
	// Counted here from the licences, independently of the rules' own tally.
	member, devices, studios := 0, map[string]int{}, map[string]int{}
	for _, l := range h.state.licences {
		if l.Active(h.policy, now) {
			member++
			devices[l.Device]++
			studios[l.Studio]++
		}
	}
	if member > plan.MaxActivePerMember {
		t.Fatalf("%d active downloads, plan allows %d", member, plan.MaxActivePerMember)
	}
	if len(devices) > plan.MaxDownloadDevices {
		t.Fatalf("downloads on %d devices, plan allows %d", len(devices), plan.MaxDownloadDevices)
	}
	for d, n := range devices {
		if n > plan.MaxActivePerDevice {
			t.Fatalf("%d active downloads on %s, plan allows %d", n, d, plan.MaxActivePerDevice)
		}
	}
	for studio, n := range studios {
		if limit := h.policy.Terms(studio).MaxActivePerMember; limit > 0 && n > limit {
			t.Fatalf("%d active downloads from %s, studio allows %d", n, studio, limit)
		}
	}
	// Quotas are checked against the log itself, not the fold.
	for _, title := range propTitles {
		tt, ok := h.policy.Title(title)
		if !ok {
			continue
		}
		q := h.policy.Terms(tt.Studio).TitleQuota
		if q == nil {
			continue
		}
		n := 0
		for _, e := range h.events {
			if a, ok := e.Payload.(*LicenceAcquired); ok && a.Title == title && e.At.After(now.Add(-q.Window.D())) {
				n++
			}
		}
		if n > q.Count {
			t.Fatalf("%s downloaded %d times in %s, quota %d", title, n, q.Window, q.Count)
		}
	}
	for _, l := range h.state.licences {
		if t := h.policy.Terms(l.Studio); t.MaxPlaysPerWindow > 0 && l.Plays > t.MaxPlaysPerWindow {
			panic(fmt.Sprintf("licence %s has %d plays, studio allows %d", l.ID, l.Plays, t.MaxPlaysPerWindow))
		}
	}
}

func encoded(t interface{ Fatalf(string, ...any) }, s *State, p *Policy) []byte {
	snap, err := EncodeSnapshot(s, p)
	if err != nil {
		t.Fatalf("EncodeSnapshot = %v", err)
	}
	return snap.Data
}

func TestPropertyCapsNeverExceeded(t *testing.T) {
	p := testPolicy(t)
	rapid.Check(t, func(t *rapid.T) { drawHistory(t, p) })
}

func TestPropertySnapshotThenRestEqualsFold(t *testing.T) {
	p := testPolicy(t)
	rapid.Check(t, func(t *rapid.T) {
		h := drawHistory(t, p)
		k := rapid.IntRange(0, len(h.events)).Draw(t, "cut")
		snap, err := EncodeSnapshot(Fold("m1", h.events[:k]), p)
		if err != nil {
			t.Fatalf("EncodeSnapshot = %v", err)
		}
		s, ok, err := RestoreSnapshot(snap, p)
		if err != nil || !ok {
			t.Fatalf("RestoreSnapshot = %v, %v", ok, err)
		}
		for _, e := range h.events[k:] {
			s.Apply(e)
		}
		if got, want := encoded(t, s, p), encoded(t, Fold("m1", h.events), p); !bytes.Equal(got, want) {
			t.Fatalf("restore(snapshot(fold(events[:%d]))) + rest =\n%s\nfold(all) =\n%s", k, got, want)
		}
	})
}

func TestPropertyReplayIsDeterministic(t *testing.T) {
	p := testPolicy(t)
	rapid.Check(t, func(t *rapid.T) {
		h := drawHistory(t, p)
		if a, b := encoded(t, Fold("m1", h.events), p), encoded(t, Fold("m1", h.events), p); !bytes.Equal(a, b) {
			t.Fatalf("two folds of one log differ")
		}
		if !bytes.Equal(encoded(t, Fold("m1", h.events), p), encoded(t, h.state, p)) {
			t.Fatalf("fold of the log differs from the state the decisions saw")
		}
		// Under the policy that made them, no past decision goes differently.
		if d := WhatIf("m1", h.events, p); len(d) != 0 {
			t.Fatalf("WhatIf(same policy) = %+v, want no divergence", d)
		}
		// StateAt the time of any event equals the fold of the events up to it.
		if len(h.events) > 0 {
			i := rapid.IntRange(0, len(h.events)-1).Draw(t, "event")
			j := sort.Search(len(h.events), func(j int) bool { return h.events[j].At.After(h.events[i].At) })
			if !bytes.Equal(encoded(t, StateAt("m1", h.events, h.events[i].At), p), encoded(t, Fold("m1", h.events[:j]), p)) {
				t.Fatalf("StateAt(%v) differs from the fold of the first %d events", h.events[i].At, j)
			}
		}
	})
}
