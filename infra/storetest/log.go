package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
)

// StoredAppender appends events already in their stored form, conditional
// on the stream's version exactly like licensing.EventStore.Append. The
// suite seeds events written under old schemas with it.
type StoredAppender interface {
	AppendStored(ctx context.Context, stream string, expected int64, events []licensing.StoredEvent) error
}

// LogStore is what an event log provides to run its suite.
type LogStore interface {
	licensing.EventStore
	licensing.SnapshotStore
	StoredAppender
}

// RunLog runs the contract of event logs: conditional all-or-nothing
// appends, upcasting loads, forward-only snapshots of a given state schema.
// newStore is called once per subtest; it may return a store shared with
// other subtests, since every subtest works on a stream id of its own
// (unique across runs, so a persistent table is fine).
func RunLog(t *testing.T, newStore func(t *testing.T) LogStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, s LogStore)
	}{
		{"EmptyStream", testEmptyStream},
		{"AppendOne", testAppendOne},
		{"AppendMany", testAppendMany},
		{"BadAppend", testBadAppend},
		{"Conflict", testConflict},
		{"ConflictWritesNothing", testConflictWritesNothing},
		{"ConcurrentAppenders", testConcurrentAppenders},
		{"IdempotencyKeys", testIdempotencyKeys},
		{"UpcastOldSchema", testUpcastOldSchema},
		{"UndecodableEvent", testUndecodableEvent},
		{"NoAliasing", testNoAliasing},
		{"LoadAfter", testLoadAfter},
		{"CancelledContext", testCancelledContext},
		{"Snapshot", testSnapshot},
		{"SnapshotOtherSchema", testSnapshotOtherSchema},
		{"SnapshotOlderSchema", testSnapshotOlderSchema},
		{"SnapshotOnlyForward", testSnapshotOnlyForward},
		{"SnapshotBeyondStream", testSnapshotBeyondStream},
		{"SnapshotConcurrent", testSnapshotConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
	}
}

// load loads a stream and fails the test on error.
func load(t *testing.T, s LogStore, stream string, schema int) licensing.Stream {
	t.Helper()
	str, err := s.Load(t.Context(), stream, licensing.LoadOptions{SnapshotSchema: schema, Consistent: true})
	if err != nil {
		t.Fatalf("Load(%s, schema %d) error: %v", stream, schema, err)
	}
	return str
}

// mustAppend appends and fails the test on error.
func mustAppend(t *testing.T, s LogStore, stream string, expected int64, events []licensing.Event) {
	t.Helper()
	if err := s.Append(t.Context(), stream, expected, events); err != nil {
		t.Fatalf("Append(%s, %d, %d events) = %v, want nil", stream, expected, len(events), err)
	}
}

// checkConflict fails the test unless err is a conflict on stream at
// expected whose Current is a version the store really holds, past expected,
// or -1 for a store that cannot tell without another read. current is the
// stream's real version.
func checkConflict(t *testing.T, call string, err error, stream string, expected, current int64) {
	t.Helper()
	if !errors.Is(err, licensing.ErrConflict) {
		t.Fatalf("%s = %v, want a conflict", call, err)
	}
	var ce *licensing.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("%s = %T %v, want a *licensing.ConflictError in the chain", call, err, err)
	}
	if ce.Stream != stream || ce.Expected != expected || (ce.Current != -1 && (ce.Current <= expected || ce.Current > current)) {
		t.Errorf("%s = %+v, want stream %s, expected %d, current -1 or in (%d, %d]", call, *ce, stream, expected, expected, current)
	}
}

func testEmptyStream(t *testing.T, s LogStore) {
	stream := streamID(t)
	for _, schema := range []int{0, licensing.StateSchema} {
		str := load(t, s, stream, schema)
		if str.Snapshot != nil || len(str.Events) != 0 || str.Version() != 0 {
			t.Errorf("Load(%s, schema %d) = snapshot %v, %d events, v%d; want empty at v0", stream, schema, str.Snapshot, len(str.Events), str.Version())
		}
	}
}

func testAppendOne(t *testing.T, s LogStore) {
	stream := streamID(t)
	e := event(1, acquired("lic-1", "phone-1", "tt-first-light", base.Add(30*24*time.Hour)))
	e.Key, e.Fingerprint = "req-1", "0123456789abcdef01234567"
	mustAppend(t, s, stream, 0, []licensing.Event{e})
	str := load(t, s, stream, licensing.StateSchema)
	checkEvents(t, fmt.Sprintf("Load(%s)", stream), str.Events, []licensing.Event{e})
	if str.Snapshot != nil || str.Version() != 1 {
		t.Errorf("Load(%s) = snapshot %v, v%d; want no snapshot, v1", stream, str.Snapshot, str.Version())
	}
}

func testAppendMany(t *testing.T, s LogStore) {
	stream := streamID(t)
	first := history(1, 7, "m")
	mustAppend(t, s, stream, 0, first)
	str := load(t, s, stream, 0)
	checkEvents(t, fmt.Sprintf("Load(%s)", stream), str.Events, first)
	checkContiguous(t, fmt.Sprintf("Load(%s)", stream), str.Events)

	more := history(8, 3, "m")
	mustAppend(t, s, stream, 7, more)
	str = load(t, s, stream, 0)
	checkEvents(t, fmt.Sprintf("Load(%s) after a second append", stream), str.Events, append(first, more...))
	if str.Version() != 10 {
		t.Errorf("Load(%s).Version() = %d, want 10", stream, str.Version())
	}
}

func testBadAppend(t *testing.T, s LogStore) {
	stream := streamID(t)
	mustAppend(t, s, stream, 0, history(1, 2, "b"))
	gap := history(3, 3, "b")
	gap[1].Version = 5
	tests := []struct {
		name   string
		events []licensing.Event
	}{
		{"no events", nil},
		{"first version not expected+1", history(4, 2, "b")},
		{"first version at expected", history(2, 2, "b")},
		{"gap", gap},
		{"no payload", []licensing.Event{{Version: 3, At: base, PolicyVersion: policyVersion}}},
	}
	for _, tc := range tests {
		err := s.Append(t.Context(), stream, 2, tc.events)
		if err == nil || errors.Is(err, licensing.ErrConflict) {
			t.Errorf("Append(%s, 2, %s: versions %v) = %v, want an error that is not a conflict", stream, tc.name, versions(tc.events), err)
		}
	}
	if str := load(t, s, stream, 0); str.Version() != 2 || len(str.Events) != 2 {
		t.Errorf("Load(%s) after refused appends = %d events, v%d; want 2 events, v2", stream, len(str.Events), str.Version())
	}
}

func testConflict(t *testing.T, s LogStore) {
	stream := streamID(t)
	written := history(1, 2, "c")
	mustAppend(t, s, stream, 0, written)
	// An expected version ahead of the stream is a caller's bug (callers pass
	// the version they loaded); stores need not detect it, so it is not here.
	for _, expected := range []int64{0, 1} {
		err := s.Append(t.Context(), stream, expected, history(expected+1, 1, "x"))
		checkConflict(t, fmt.Sprintf("Append(%s, %d)", stream, expected), err, stream, expected, 2)
	}
	err := s.AppendStored(t.Context(), stream, 1, []licensing.StoredEvent{encode(t, history(2, 1, "x")[0])})
	checkConflict(t, fmt.Sprintf("AppendStored(%s, 1)", stream), err, stream, 1, 2)
	checkEvents(t, fmt.Sprintf("Load(%s) after conflicts", stream), load(t, s, stream, 0).Events, written)
}

func testConflictWritesNothing(t *testing.T, s LogStore) {
	stream := streamID(t)
	written := history(1, 2, "w")
	mustAppend(t, s, stream, 0, written)
	// v2 exists but v3 and v4 do not: the whole append must still fail.
	err := s.Append(t.Context(), stream, 1, history(2, 3, "x"))
	checkConflict(t, fmt.Sprintf("Append(%s, 1, 3 events)", stream), err, stream, 1, 2)
	err = s.Append(t.Context(), stream, 0, history(1, 4, "x"))
	checkConflict(t, fmt.Sprintf("Append(%s, 0, 4 events)", stream), err, stream, 0, 2)
	checkEvents(t, fmt.Sprintf("Load(%s) after conflicts", stream), load(t, s, stream, 0).Events, written)
}

func testConcurrentAppenders(t *testing.T, s LogStore) {
	const n = 20
	stream := streamID(t)
	ctx := t.Context()

	// Everyone appends at v0: exactly one wins.
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			e := event(1, acquired(fmt.Sprintf("race-%d", i), "phone-1", "tt-first-light", base.Add(time.Hour)))
			errs[i] = s.Append(ctx, stream, 0, []licensing.Event{e})
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("Append(%s, 0) by appenders %d and %d = nil, want one conflict", stream, winner, i)
		case err == nil:
			winner = i
		default:
			checkConflict(t, fmt.Sprintf("losing Append(%s, 0) by appender %d", stream, i), err, stream, 0, 1)
		}
	}
	if winner < 0 {
		t.Fatalf("Append(%s, 0) by %d appenders: none won, want one", stream, n)
	}

	// Everyone loads, appends and retries on conflict: no gap, no duplicate.
	retries := make([]int, n)
	for i := range n {
		wg.Go(func() {
			for attempt := 1; ; attempt++ {
				str, err := s.Load(ctx, stream, licensing.LoadOptions{Consistent: true})
				if err != nil {
					errs[i] = fmt.Errorf("load: %w", err)
					return
				}
				v := str.Version() + 1
				e := event(v, acquired(fmt.Sprintf("loop-%d", i), "phone-1", "tt-paper-moons", base.Add(time.Hour)))
				err = s.Append(ctx, stream, v-1, []licensing.Event{e})
				if err == nil {
					errs[i] = nil
					return
				}
				if !errors.Is(err, licensing.ErrConflict) || attempt == 100*n {
					errs[i] = fmt.Errorf("append at v%d, attempt %d: %w", v-1, attempt, err)
					return
				}
				retries[i]++
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("appender %d: %v", i, err)
		}
	}
	str := load(t, s, stream, 0)
	checkContiguous(t, fmt.Sprintf("Load(%s)", stream), str.Events)
	if len(str.Events) != n+1 {
		t.Errorf("Load(%s) = %d events, want %d", stream, len(str.Events), n+1)
	}
	seen := map[string]int{}
	for _, e := range str.Events[1:] {
		seen[e.Payload.(*licensing.LicenceAcquired).Licence]++
	}
	for i := range n {
		if id := fmt.Sprintf("loop-%d", i); seen[id] != 1 {
			t.Errorf("Load(%s) holds %s %d times, want once", stream, id, seen[id])
		}
	}
	t.Logf("retries per appender: %v", retries)
}

func testIdempotencyKeys(t *testing.T, s LogStore) {
	stream := streamID(t)
	const fp = "9f86d081884c7d659a2feaa0"
	// One request that appends two events, and one without a key.
	a := event(1, acquired("lic-a", "phone-1", "tt-first-light", base.Add(time.Hour)))
	b := event(2, &licensing.LicenceReleased{Licence: "lic-0", Reason: licensing.ReasonDeleted})
	a.Key, a.Fingerprint = "Idem-Key_1:~!", fp
	b.Key, b.Fingerprint = a.Key, fp
	c := event(3, &licensing.LicenceReleased{Licence: "lic-a", Reason: licensing.ReasonAdministrative})
	mustAppend(t, s, stream, 0, []licensing.Event{a, b})
	mustAppend(t, s, stream, 2, []licensing.Event{c})
	got := load(t, s, stream, 0).Events
	checkEvents(t, fmt.Sprintf("Load(%s)", stream), got, []licensing.Event{a, b, c})
	for i, want := range []struct{ key, fp string }{{a.Key, fp}, {a.Key, fp}, {"", ""}} {
		if i < len(got) && (got[i].Key != want.key || got[i].Fingerprint != want.fp) {
			t.Errorf("Load(%s).Events[%d] key, fingerprint = %q, %q; want %q, %q", stream, i, got[i].Key, got[i].Fingerprint, want.key, want.fp)
		}
	}
}

// encode returns the stored form of an event at its current schema.
func encode(t *testing.T, e licensing.Event) licensing.StoredEvent {
	t.Helper()
	se, err := licensing.EncodeEvent(e)
	if err != nil {
		t.Fatalf("EncodeEvent(%s) error: %v", describe(e), err)
	}
	return se
}

func testUpcastOldSchema(t *testing.T, s LogStore) {
	stream := streamID(t)
	at1 := base.Add(time.Minute)
	at2 := base.Add(2 * time.Minute)
	old := []licensing.StoredEvent{
		{
			Version: 1, Type: licensing.TypeLicenceAcquired, Schema: 1, At: at1, PolicyVersion: "2025-01-01",
			Key: "old-key", Fingerprint: "old-fp",
			Data: []byte(`{"licence":"L1","title":"tt-a","studio":"s","device":"d1","duration_s":3600}`),
		},
		{
			Version: 2, Type: licensing.TypePlaybackRecorded, Schema: 1, At: at2, PolicyVersion: "2025-01-01",
			Data: []byte(`{"device_id":"d1","events":[{"id":"p1","licence_id":"L1","kind":"START","position_s":12.3456,"device_time":"2026-11-02T09:30:00Z"}]}`),
		},
	}
	if err := s.AppendStored(t.Context(), stream, 0, old); err != nil {
		t.Fatalf("AppendStored(%s, 0, 2 schema-1 events) = %v, want nil", stream, err)
	}
	current := event(3, &licensing.LicenceReleased{Licence: "L1", Reason: licensing.ReasonDeleted})
	mustAppend(t, s, stream, 2, []licensing.Event{current})

	want := []licensing.Event{
		{Version: 1, At: at1, PolicyVersion: "2025-01-01", Key: "old-key", Fingerprint: "old-fp", Payload: &licensing.LicenceAcquired{
			Licence: "L1", Title: "tt-a", Studio: "s", Device: "d1", ExpiresAt: at1.Add(time.Hour),
		}},
		{Version: 2, At: at2, PolicyVersion: "2025-01-01", Payload: &licensing.PlaybackRecorded{
			Device: "d1",
			Accepted: []licensing.PlaybackEntry{{
				ID: "p1", Licence: "L1", Kind: licensing.PlaybackStart, PositionMs: 12346,
				DeviceTime: time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC),
			}},
			Results: []licensing.PlaybackResult{{ID: "p1", Code: licensing.PlaybackAccepted}},
		}},
		current,
	}
	checkEvents(t, fmt.Sprintf("Load(%s)", stream), load(t, s, stream, 0).Events, want)
}

func testUndecodableEvent(t *testing.T, s LogStore) {
	stream := streamID(t)
	future := encode(t, event(1, &licensing.LicenceReleased{Licence: "L1", Reason: licensing.ReasonDeleted}))
	future.Schema = licensing.CurrentSchema(future.Type) + 1
	if err := s.AppendStored(t.Context(), stream, 0, []licensing.StoredEvent{future}); err != nil {
		t.Fatalf("AppendStored(%s, 0, a future-schema event) = %v, want nil", stream, err)
	}
	// A reader must never skip history it cannot read.
	if str, err := s.Load(t.Context(), stream, licensing.LoadOptions{}); err == nil {
		t.Errorf("Load(%s) with a future-schema event = %d events, nil error; want an error", stream, len(str.Events))
	}
}

func testNoAliasing(t *testing.T, s LogStore) {
	stream := streamID(t)
	events := history(1, 10, "a")
	mustAppend(t, s, stream, 0, events)
	seeded := encode(t, history(11, 1, "a")[0])
	if err := s.AppendStored(t.Context(), stream, 10, []licensing.StoredEvent{seeded}); err != nil {
		t.Fatalf("AppendStored(%s, 10) = %v, want nil", stream, err)
	}
	clear(seeded.Data) // the caller's buffer is the caller's
	snap := snapshotOf(t, stream, events[:5])
	want := string(snap.Data)
	if _, err := s.SaveSnapshot(t.Context(), snap); err != nil {
		t.Fatalf("SaveSnapshot(%s v5) error: %v", stream, err)
	}
	clear(snap.Data)

	str := load(t, s, stream, licensing.StateSchema)
	if str.Snapshot == nil {
		t.Fatalf("Load(%s).Snapshot = nil, want v5", stream)
	}
	if string(str.Snapshot.Data) != want {
		t.Fatalf("Load(%s).Snapshot.Data changed with the caller's buffer", stream)
	}
	clear(str.Snapshot.Data)
	for _, e := range str.Events {
		if d, ok := e.Payload.(*licensing.DeviceReleased); ok {
			clear(d.Licences)
		}
		if p, ok := e.Payload.(*licensing.PlaybackRecorded); ok {
			clear(p.Accepted)
		}
	}
	again := load(t, s, stream, licensing.StateSchema)
	if again.Snapshot == nil || string(again.Snapshot.Data) != want {
		t.Errorf("Load(%s).Snapshot.Data changed with an earlier load's", stream)
	}
	checkEvents(t, fmt.Sprintf("Load(%s) after the caller changed what it got", stream), again.Events, history(6, 6, "a"))
}

func testCancelledContext(t *testing.T, s LogStore) {
	stream := streamID(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Load(ctx, stream, licensing.LoadOptions{}); err == nil {
		t.Errorf("Load(cancelled, %s) = nil error, want one", stream)
	}
	if err := s.Append(ctx, stream, 0, history(1, 1, "x")); err == nil {
		t.Errorf("Append(cancelled, %s, 0) = nil, want an error", stream)
	}
	if err := s.AppendStored(ctx, stream, 0, []licensing.StoredEvent{encode(t, history(1, 1, "x")[0])}); err == nil {
		t.Errorf("AppendStored(cancelled, %s, 0) = nil, want an error", stream)
	}
	if str := load(t, s, stream, 0); str.Version() != 0 {
		t.Errorf("Load(%s) after cancelled appends = v%d, want v0", stream, str.Version())
	}
}

// testLoadAfter: a holder of the state at a version reads only the events
// after it, with or without a snapshot in the way.
func testLoadAfter(t *testing.T, s LogStore) {
	stream := streamID(t)
	events := history(1, 9, "a")
	mustAppend(t, s, stream, 0, events)
	save(t, s, snapshotOf(t, stream, events[:7]), true)
	for _, after := range []int64{1, 4, 8, 9} {
		str, err := s.Load(t.Context(), stream, licensing.LoadOptions{After: after, SnapshotSchema: licensing.StateSchema, Consistent: true})
		if err != nil {
			t.Fatalf("Load(after v%d) = %v", after, err)
		}
		if str.Snapshot != nil {
			t.Errorf("Load(after v%d) returned a snapshot", after)
		}
		checkEvents(t, fmt.Sprintf("Load(%s, after v%d)", stream, after), str.Events, events[after:])
	}
}
