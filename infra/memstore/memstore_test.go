package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/memstore"
)

// fixedClock is a clock stopped at one instant.
type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// counterIDs makes licence ids lic-1, lic-2, … safely from many goroutines.
type counterIDs struct{ n atomic.Int64 }

func (c *counterIDs) NewID() string { return fmt.Sprintf("lic-%d", c.n.Add(1)) }

var now = fixedClock(time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC))

func acquiredAt(v int64, licence string) licensing.Event {
	return licensing.Event{
		Version: v, At: time.Time(now), PolicyVersion: "p1",
		Payload: &licensing.LicenceAcquired{Licence: licence, Plan: "basic", Title: "tt-first-light", Studio: "open-reel", Device: "d1", ExpiresAt: time.Time(now).Add(time.Hour)},
	}
}

// capPolicy allows 10 active downloads per member and has 50 titles.
func capPolicy(t *testing.T) *licensing.Policy {
	t.Helper()
	var titles []string
	for i := range 50 {
		titles = append(titles, fmt.Sprintf(`"tt-%02d": {"studio": "open-reel", "downloadable": true}`, i))
	}
	doc := `{
		"version": "cap-test",
		"defaults": {"licence_duration": "30d"},
		"plans": {"ten": {"max_download_devices": 3, "max_active_per_device": 100, "max_active_per_member": 10, "max_screens": 2}},
		"studios": {"open-reel": {}},
		"titles": {` + strings.Join(titles, ",") + `}
	}`
	p, err := licensing.ParsePolicy(strings.NewReader(doc))
	if err != nil {
		t.Fatalf("ParsePolicy(cap policy) error: %v", err)
	}
	return p
}

// race runs n acquisitions for one member at once and returns each outcome.
func race(t *testing.T, svc *licensing.Service, n int, cmd func(i int) licensing.Acquire) ([]licensing.Result, []error) {
	t.Helper()
	results, errs := make([]licensing.Result, n), make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = svc.Execute(t.Context(), cmd(i), "")
		})
	}
	close(start)
	wg.Wait()
	return results, errs
}

func contendedService(store *memstore.Store, p *licensing.Policy, conflicts *atomic.Int64, cached bool) *licensing.Service {
	svc := licensing.NewService(store, p, now, &counterIDs{})
	if !cached {
		svc.Cache = nil
	}
	svc.Backoff = 100 * time.Microsecond
	// Each conflict means another acquisition was appended, and at most the
	// cap can be, so a command never loses this many races.
	svc.MaxAttempts = 50
	svc.Observer.Conflict = func(context.Context, string, int) { conflicts.Add(1) }
	return svc
}

// checkRounds checks that every attempt cost one load and at most one
// append, and that every conflict was retried.
func checkRounds(t *testing.T, stats memstore.Stats, n, granted int, conflicts int64) {
	t.Helper()
	if stats.Conflicts != conflicts {
		t.Errorf("store conflicts = %d, Observer.Conflict calls = %d; want equal", stats.Conflicts, conflicts)
	}
	if want := int64(granted) + stats.Conflicts; stats.Appends != want {
		t.Errorf("Stats().Appends = %d, want %d grants + %d conflicts", stats.Appends, granted, stats.Conflicts)
	}
	if want := int64(n) + stats.Conflicts; stats.Loads != want {
		t.Errorf("Stats().Loads = %d, want %d commands + %d conflicts", stats.Loads, n, stats.Conflicts)
	}
}

// checkLog checks that the member's log holds exactly the granted licences
// at versions 1..n.
func checkLog(t *testing.T, svc *licensing.Service, member string, granted []string) {
	t.Helper()
	log, err := svc.Log(t.Context(), member)
	if err != nil {
		t.Fatalf("History(%s) error: %v", member, err)
	}
	var logged []string
	for i, e := range log {
		if e.Version != int64(i)+1 {
			t.Fatalf("History(%s) versions = %v, want 1..%d", member, versionsOf(log), len(log))
		}
		logged = append(logged, e.Payload.(*licensing.LicenceAcquired).Licence)
	}
	slices.Sort(logged)
	slices.Sort(granted)
	if !slices.Equal(logged, granted) {
		t.Errorf("History(%s) licences = %v, want the granted %v", member, logged, granted)
	}
}

func versionsOf(events []licensing.Event) []int64 {
	var vs []int64
	for _, e := range events {
		vs = append(vs, e.Version)
	}
	return vs
}

// withAndWithoutCache runs a test on a service without a state cache,
// where every attempt costs one load, and with one (as a warm instance).
func withAndWithoutCache(t *testing.T, run func(t *testing.T, cached bool)) {
	t.Run("no cache", func(t *testing.T) { run(t, false) })
	t.Run("cache", func(t *testing.T) { run(t, true) })
}

// Many goroutines acquiring for one member through licensing.Service on
// memstore: the member cap holds.
func TestConcurrentAcquireMemberCap(t *testing.T) { withAndWithoutCache(t, concurrentAcquireMemberCap) }

func concurrentAcquireMemberCap(t *testing.T, cached bool) {
	const n, limit = 50, 10
	store := memstore.New()
	var conflicts atomic.Int64
	svc := contendedService(store, capPolicy(t), &conflicts, cached)

	results, errs := race(t, svc, n, func(i int) licensing.Acquire {
		return licensing.Acquire{Member: "m-cap", Plan: "ten", Device: fmt.Sprintf("d%d", i%3), Title: fmt.Sprintf("tt-%02d", i)}
	})
	stats := store.Stats()

	var granted []string
	for i, err := range errs {
		var d *licensing.Denial
		switch {
		case err == nil:
			granted = append(granted, results[i].Licences[0].ID)
		case errors.As(err, &d):
			if !slices.Equal(d.Codes(), []string{licensing.CodeMemberDownloadLimit}) || d.Rules[0].Limit != limit || d.Rules[0].Current != limit {
				t.Errorf("Acquire(tt-%02d) = %v %+v, want a %s denial at %d of %d", i, d, d.Rules, licensing.CodeMemberDownloadLimit, limit, limit)
			}
		default:
			t.Errorf("Acquire(tt-%02d) = %v, want a grant or a *licensing.Denial", i, err)
		}
	}
	if len(granted) != limit {
		t.Errorf("%d concurrent acquisitions granted %d, want %d", n, len(granted), limit)
	}
	if !cached {
		checkRounds(t, stats, n, len(granted), conflicts.Load())
	}
	checkLog(t, svc, "m-cap", granted)
	t.Logf("%d conflicts retried", conflicts.Load())
}

// Many goroutines acquiring on three devices under the default policy's
// basic plan: only one device gets downloads, each title once.
func TestConcurrentAcquireDeviceCap(t *testing.T) { withAndWithoutCache(t, concurrentAcquireDeviceCap) }

func concurrentAcquireDeviceCap(t *testing.T, cached bool) {
	const n = 50
	// Every title of the shipped catalogue downloadable at the clock's time.
	titles := []string{
		"tt-lighthouse", "tt-northern-lines", "tt-ice-road", "tt-low-tide", "tt-breakwater",
		"tt-salt-and-rope", "tt-meridian-one", "tt-first-light", "tt-paper-moons",
	}
	store := memstore.New()
	var conflicts atomic.Int64
	svc := contendedService(store, licensing.DefaultPolicy(), &conflicts, cached)
	cmd := func(i int) licensing.Acquire {
		return licensing.Acquire{Member: "m-basic", Plan: "basic", Device: fmt.Sprintf("d%d", i%3), Title: titles[(i/3)%len(titles)]}
	}
	results, errs := race(t, svc, n, cmd)
	stats := store.Stats()

	var granted []string
	device := ""
	for i, err := range errs {
		if err == nil {
			l := results[i].Licences[0]
			granted = append(granted, l.ID)
			if device != "" && l.Device != device {
				t.Errorf("Acquire(%+v) granted on %s, but %s already holds downloads and basic allows one device", cmd(i), l.Device, device)
			}
			device = l.Device
		}
	}
	if len(granted) != len(titles) {
		t.Errorf("%d concurrent acquisitions granted %d, want one per title: %d", n, len(granted), len(titles))
	}
	for i, err := range errs {
		if err == nil {
			continue
		}
		want := licensing.CodeDeviceCountLimit
		if cmd(i).Device == device {
			want = licensing.CodeAlreadyOnDevice
		}
		var d *licensing.Denial
		if !errors.As(err, &d) || !slices.Equal(d.Codes(), []string{want}) {
			t.Errorf("Acquire(%+v) = %v, want a %s denial", cmd(i), err, want)
		}
	}
	if !cached {
		checkRounds(t, stats, n, len(granted), conflicts.Load())
	}
	checkLog(t, svc, "m-basic", granted)
}

func TestStats(t *testing.T) {
	s := memstore.New()
	ctx := t.Context()
	if _, err := s.Load(ctx, "m", licensing.LoadOptions{}); err != nil {
		t.Fatalf("Load(m) error: %v", err)
	}
	if err := s.Append(ctx, "m", 0, []licensing.Event{acquiredAt(1, "a")}); err != nil {
		t.Fatalf("Append(m, 0) = %v, want nil", err)
	}
	if err := s.Append(ctx, "m", 0, []licensing.Event{acquiredAt(1, "b")}); !errors.Is(err, licensing.ErrConflict) {
		t.Fatalf("Append(m, 0) again = %v, want a conflict", err)
	}
	if err := s.Append(ctx, "m", 1, nil); err == nil {
		t.Fatalf("Append(m, 1, no events) = nil, want an error")
	}
	snap, err := licensing.EncodeSnapshot(licensing.Fold("m", []licensing.Event{acquiredAt(1, "a")}), licensing.DefaultPolicy())
	if err != nil {
		t.Fatalf("EncodeSnapshot error: %v", err)
	}
	if saved, err := s.SaveSnapshot(ctx, snap); !saved || err != nil {
		t.Fatalf("SaveSnapshot(m v1) = %v, %v; want true, nil", saved, err)
	}
	want := memstore.Stats{Loads: 1, Appends: 3, Conflicts: 1, Snapshots: 1}
	if got := s.Stats(); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestSaveSnapshotRefusesBadInput(t *testing.T) {
	s := memstore.New()
	for _, snap := range []licensing.Snapshot{
		{Stream: "", Version: 1, Schema: licensing.StateSchema},
		{Stream: "m", Version: 0, Schema: licensing.StateSchema},
		{Stream: "m", Version: -1, Schema: licensing.StateSchema},
	} {
		if saved, err := s.SaveSnapshot(t.Context(), snap); saved || err == nil {
			t.Errorf("SaveSnapshot(%q v%d) = %v, %v; want false, an error", snap.Stream, snap.Version, saved, err)
		}
	}
	if err := s.Append(t.Context(), "", 0, []licensing.Event{acquiredAt(1, "a")}); err == nil {
		t.Errorf("Append(\"\", 0) = nil, want an error")
	}
	if err := s.Append(t.Context(), "m", -1, []licensing.Event{acquiredAt(0, "a")}); err == nil {
		t.Errorf("Append(m, -1) = nil, want an error")
	}
}

type heard struct {
	stream   string
	versions []int64
}

func TestSubscribe(t *testing.T) {
	s := memstore.New()
	ctx := t.Context()
	var got []heard
	s.Subscribe(func(stream string, events []licensing.StoredEvent) {
		h := heard{stream: stream}
		for i := range events {
			h.versions = append(h.versions, events[i].Version)
			clear(events[i].Data) // the subscriber's copy
		}
		got = append(got, h)
		// The lock is not held: the subscriber may read the store.
		if _, err := s.Load(ctx, stream, licensing.LoadOptions{}); err != nil {
			t.Errorf("Load(%s) in a subscriber: %v", stream, err)
		}
	})
	if err := s.Append(ctx, "a", 0, []licensing.Event{acquiredAt(1, "x"), acquiredAt(2, "y")}); err != nil {
		t.Fatalf("Append(a, 0) = %v, want nil", err)
	}
	_ = s.Append(ctx, "a", 0, []licensing.Event{acquiredAt(1, "z")}) // a conflict is not heard
	if err := s.AppendStored(ctx, "b", 0, []licensing.StoredEvent{mustEncode(t, acquiredAt(1, "w"))}); err != nil {
		t.Fatalf("AppendStored(b, 0) = %v, want nil", err)
	}
	want := []heard{{"a", []int64{1, 2}}, {"b", []int64{1}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("subscriber heard %v, want %v", got, want)
	}
	str, err := s.Load(ctx, "a", licensing.LoadOptions{})
	if err != nil || len(str.Events) != 2 {
		t.Errorf("Load(a) after the subscriber changed its copies = %d events, %v; want 2, nil", len(str.Events), err)
	}
}

// A subscriber may append to the store (a projection writing to another
// stream) without deadlocking, and hears every append in write order.
func TestSubscribeConcurrent(t *testing.T) {
	const n = 200
	s := memstore.New()
	ctx := t.Context()
	var mu sync.Mutex
	last := map[string]int64{}
	var total atomic.Int64
	s.Subscribe(func(stream string, events []licensing.StoredEvent) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			if e.Version != last[stream]+1 {
				t.Errorf("subscriber heard %s v%d after v%d", stream, e.Version, last[stream])
			}
			last[stream] = e.Version
			total.Add(1)
		}
		if stream != "audit" {
			// Retried until it wins; the subscriber runs outside the lock.
			for {
				str, err := s.Load(ctx, "audit", licensing.LoadOptions{})
				if err != nil {
					t.Errorf("Load(audit) = %v", err)
					return
				}
				v := str.Version() + 1
				if err := s.Append(ctx, "audit", v-1, []licensing.Event{acquiredAt(v, fmt.Sprintf("audit-%d", v))}); err == nil {
					return
				}
			}
		}
	})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			stream := fmt.Sprintf("m%d", i%4)
			for {
				str, err := s.Load(ctx, stream, licensing.LoadOptions{})
				if err != nil {
					t.Errorf("Load(%s) = %v", stream, err)
					return
				}
				v := str.Version() + 1
				if err := s.Append(ctx, stream, v-1, []licensing.Event{acquiredAt(v, fmt.Sprintf("l%d", i))}); err == nil {
					return
				}
			}
		})
	}
	wg.Wait()
	// Every append has been delivered once all appenders have returned.
	if got := total.Load(); got != 2*n {
		t.Errorf("subscriber heard %d events, want %d", got, 2*n)
	}
}

func mustEncode(t *testing.T, e licensing.Event) licensing.StoredEvent {
	t.Helper()
	se, err := licensing.EncodeEvent(e)
	if err != nil {
		t.Fatalf("EncodeEvent error: %v", err)
	}
	return se
}

func TestLoadIgnoresConsistent(t *testing.T) {
	s := memstore.New()
	ctx := context.Background()
	if err := s.Append(ctx, "m", 0, []licensing.Event{acquiredAt(1, "a")}); err != nil {
		t.Fatalf("Append(m, 0) = %v, want nil", err)
	}
	for _, c := range []bool{false, true} {
		str, err := s.Load(ctx, "m", licensing.LoadOptions{Consistent: c})
		if err != nil || str.Version() != 1 {
			t.Errorf("Load(m, Consistent: %v) = v%d, %v; want v1, nil", c, str.Version(), err)
		}
	}
}
