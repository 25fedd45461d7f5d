package licensing

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
)

// loadedState is a busy member: a long history with many active licences.
func loadedState(b *testing.B, n int) *history {
	b.Helper()
	h := longHistory(b, n)
	runtime.GC() // leave the garbage of building it out of the figures
	return h
}

// typicalMember holds 20 active downloads on five devices after a few
// months of use.
func typicalMember(b *testing.B) *history {
	h := newHistory(b, DefaultPolicy())
	titles := []string{"tt-first-light", "tt-paper-moons", "tt-meridian-one", "tt-low-tide", "tt-breakwater", "tt-salt-and-rope"}
	for i := 0; i < 120; i++ {
		at := time.Duration(i) * 18 * time.Hour
		id := h.do(at, acq("premium", fmt.Sprintf("device-%d", i%5), titles[i%len(titles)]))
		if i < 100 {
			h.do(at+time.Hour, Release{"m1", fmt.Sprintf("device-%d", i%5), id, ReasonDeleted})
		}
	}
	runtime.GC()
	return h
}

func benchmarkDecide(b *testing.B, h *history, cmd Command) {
	now := h.state.LastEventAt.Add(time.Minute)
	b.ReportMetric(float64(count(h.state, h.policy, now, "").member), "active-licences")
	b.ReportMetric(float64(len(h.state.list)), "licences")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decide(h.state, cmd, h.policy, now, func() string { return "L-new" }); err != nil && kernel.KindOf(err) != kernel.KindDenied {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecideAcquireTypical(b *testing.B) {
	benchmarkDecide(b, typicalMember(b), acq("premium", "device-1", "tt-northern-lines"))
}

func BenchmarkDecideAcquireHeavy(b *testing.B) {
	benchmarkDecide(b, loadedState(b, 10000), acq("premium", "device-new", "tt-paper-moons"))
}

func BenchmarkDecideRenew(b *testing.B) {
	h := loadedState(b, 10000)
	now := h.state.LastEventAt.Add(time.Minute)
	l := h.state.Licences(now)[0]
	cmd := Renew{"m1", "premium", l.Device, l.ID}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decide(h.state, cmd, h.policy, now, nil); err != nil && kernel.KindOf(err) != kernel.KindDenied {
			b.Fatal(err)
		}
	}
}

func BenchmarkFold10000Events(b *testing.B) {
	h := loadedState(b, 10000)
	entries := playbackEntries(h.events)
	b.ReportAllocs()
	for b.Loop() {
		Fold("m1", h.events)
	}
	b.ReportMetric(float64(entries), "playback-entries")
}

func playbackEntries(events []Event) int {
	n := 0
	for _, e := range events {
		if p, ok := e.Payload.(*PlaybackRecorded); ok {
			n += len(p.Accepted)
		}
	}
	return n
}

// BenchmarkFold10000EventsLight is the same member uploading one licence's
// START, KEEPALIVE and STOP at a time: 3 playback entries per upload.
func BenchmarkFold10000EventsLight(b *testing.B) {
	h := longHistoryOf(b, 10000, 1)
	runtime.GC()
	entries := playbackEntries(h.events)
	b.ReportAllocs()
	for b.Loop() {
		Fold("m1", h.events)
	}
	b.ReportMetric(float64(entries), "playback-entries")
}

func BenchmarkSnapshotEncode(b *testing.B) {
	h := loadedState(b, 10000)
	var size int
	b.ReportAllocs()
	for b.Loop() {
		snap, err := EncodeSnapshot(h.state, DefaultPolicy())
		if err != nil {
			b.Fatal(err)
		}
		size = len(snap.Data)
	}
	b.ReportMetric(float64(size), "snapshot-bytes")
}

func BenchmarkSnapshotRestore(b *testing.B) {
	h := loadedState(b, 10000)
	snap, err := EncodeSnapshot(h.state, DefaultPolicy())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := RestoreSnapshot(snap, DefaultPolicy()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(snap.Data)), "snapshot-bytes")
}
