package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/dlicense/dlicense/domain/licensing"
)

// checkSnapshot fails the test unless got is want, byte for byte.
func checkSnapshot(t *testing.T, call string, got *licensing.Snapshot, want licensing.Snapshot) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s.Snapshot = nil, want v%d schema %d", call, want.Version, want.Schema)
	}
	if got.Stream != want.Stream || got.Version != want.Version || got.Schema != want.Schema || !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("%s.Snapshot = {%s v%d schema %d, %d bytes}, want {%s v%d schema %d, %d bytes}",
			call, got.Stream, got.Version, got.Schema, len(got.Data), want.Stream, want.Version, want.Schema, len(want.Data))
	}
}

func save(t *testing.T, s LogStore, snap licensing.Snapshot, wantSaved bool) {
	t.Helper()
	saved, err := s.SaveSnapshot(t.Context(), snap)
	if err != nil || saved != wantSaved {
		t.Fatalf("SaveSnapshot(%s v%d schema %d) = %v, %v; want %v, nil", snap.Stream, snap.Version, snap.Schema, saved, err, wantSaved)
	}
}

func testSnapshot(t *testing.T, s LogStore) {
	stream := streamID(t)
	events := history(1, 8, "s")
	mustAppend(t, s, stream, 0, events)
	snap := snapshotOf(t, stream, events[:3])
	save(t, s, snap, true)

	call := fmt.Sprintf("Load(%s, StateSchema)", stream)
	str := load(t, s, stream, licensing.StateSchema)
	checkSnapshot(t, call, str.Snapshot, snap)
	checkEvents(t, call, str.Events, events[3:])
	if str.Version() != 8 {
		t.Errorf("%s.Version() = %d, want 8", call, str.Version())
	}
	// What was loaded folds to the state the whole log folds to.
	st, ok, err := licensing.RestoreSnapshot(*str.Snapshot, licensing.DefaultPolicy())
	if err != nil || !ok {
		t.Fatalf("RestoreSnapshot(%s, licensing.DefaultPolicy()) = %v, %v; want ok", call, ok, err)
	}
	for _, e := range str.Events {
		st.Apply(e)
	}
	got, err := licensing.EncodeSnapshot(st, licensing.DefaultPolicy())
	if err != nil {
		t.Fatalf("EncodeSnapshot(restored state, licensing.DefaultPolicy()) error: %v", err)
	}
	if want := snapshotOf(t, stream, events); !bytes.Equal(got.Data, want.Data) {
		t.Errorf("snapshot v3 + events 4..8 folds to %s, want %s", got.Data, want.Data)
	}

	call = fmt.Sprintf("Load(%s, schema 0)", stream)
	str = load(t, s, stream, 0)
	if str.Snapshot != nil {
		t.Errorf("%s.Snapshot = v%d, want nil", call, str.Snapshot.Version)
	}
	checkEvents(t, call, str.Events, events)

	// At the head of the stream the snapshot alone is the state.
	head := snapshotOf(t, stream, events)
	save(t, s, head, true)
	call = fmt.Sprintf("Load(%s, StateSchema) at the head", stream)
	str = load(t, s, stream, licensing.StateSchema)
	checkSnapshot(t, call, str.Snapshot, head)
	if len(str.Events) != 0 || str.Version() != 8 {
		t.Errorf("%s = %d events, v%d; want none, v8", call, len(str.Events), str.Version())
	}
}

func testSnapshotOtherSchema(t *testing.T, s LogStore) {
	stream := streamID(t)
	events := history(1, 5, "o")
	mustAppend(t, s, stream, 0, events)
	other := snapshotOf(t, stream, events[:4])
	other.Schema = licensing.StateSchema + 1
	save(t, s, other, true)

	call := fmt.Sprintf("Load(%s, StateSchema) with a schema %d snapshot", stream, other.Schema)
	str := load(t, s, stream, licensing.StateSchema)
	if str.Snapshot != nil {
		t.Errorf("%s.Snapshot = schema %d v%d, want nil", call, str.Snapshot.Schema, str.Snapshot.Version)
	}
	checkEvents(t, call, str.Events, events)

	// A reader of that schema gets it.
	call = fmt.Sprintf("Load(%s, schema %d)", stream, other.Schema)
	str = load(t, s, stream, other.Schema)
	checkSnapshot(t, call, str.Snapshot, other)
	checkEvents(t, call, str.Events, events[4:])
}

// testSnapshotOlderSchema: a snapshot of an older state schema is returned
// to a reader of a newer one, which converts it (data versioning).
func testSnapshotOlderSchema(t *testing.T, s LogStore) {
	stream := streamID(t)
	events := history(1, 5, "n")
	mustAppend(t, s, stream, 0, events)
	older := snapshotOf(t, stream, events[:4])
	older.Schema = licensing.StateSchema - 1
	save(t, s, older, true)
	call := fmt.Sprintf("Load(%s, StateSchema) with a schema %d snapshot", stream, older.Schema)
	str := load(t, s, stream, licensing.StateSchema)
	checkSnapshot(t, call, str.Snapshot, older)
	checkEvents(t, call, str.Events, events[4:])
}

func testSnapshotOnlyForward(t *testing.T, s LogStore) {
	stream := streamID(t)
	events := history(1, 6, "f")
	mustAppend(t, s, stream, 0, events)
	newer := snapshotOf(t, stream, events[:5])
	save(t, s, newer, true)
	save(t, s, snapshotOf(t, stream, events[:2]), false)
	save(t, s, newer, false)
	// Another schema does not get past the version condition either.
	older := snapshotOf(t, stream, events[:4])
	older.Schema = licensing.StateSchema + 1
	save(t, s, older, false)

	call := fmt.Sprintf("Load(%s, StateSchema)", stream)
	str := load(t, s, stream, licensing.StateSchema)
	checkSnapshot(t, call, str.Snapshot, newer)
	checkEvents(t, call, str.Events, events[5:])

	// At the same version, a snapshot of another schema replaces the one held:
	// that is how a rebuild migrates snapshots after a state schema change.
	migrated := newer
	migrated.Schema = licensing.StateSchema + 1
	save(t, s, migrated, true)
	save(t, s, migrated, false)
	str = load(t, s, stream, migrated.Schema)
	checkSnapshot(t, fmt.Sprintf("Load(%s, schema %d)", stream, migrated.Schema), str.Snapshot, migrated)
}

// testSnapshotBeyondStream: a snapshot of a version the log does not hold
// may be refused when saved; if it is stored, loads must ignore it, or the
// next append would leave a gap.
func testSnapshotBeyondStream(t *testing.T, s LogStore) {
	stream := streamID(t)
	events := history(1, 4, "y")
	ahead := snapshotOf(t, stream, events)
	mustAppend(t, s, stream, 0, events[:3])
	if saved, err := s.SaveSnapshot(t.Context(), ahead); err != nil && saved {
		t.Errorf("SaveSnapshot(%s v4) on a stream at v3 = %v, %v; want an error or a save", stream, saved, err)
	}
	call := fmt.Sprintf("Load(%s, StateSchema)", stream)
	str := load(t, s, stream, licensing.StateSchema)
	if str.Snapshot != nil {
		t.Errorf("%s.Snapshot = v%d, want nil: the log ends at v3", call, str.Snapshot.Version)
	}
	checkEvents(t, call, str.Events, events[:3])
	if str.Version() != 3 {
		t.Errorf("%s.Version() = %d, want 3", call, str.Version())
	}
}

func testSnapshotConcurrent(t *testing.T, s LogStore) {
	const n = 12
	stream := streamID(t)
	events := history(1, n, "k")
	mustAppend(t, s, stream, 0, events)
	snaps := make([]licensing.Snapshot, n)
	for i := range snaps {
		snaps[i] = snapshotOf(t, stream, events[:i+1])
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = s.SaveSnapshot(t.Context(), snaps[i]) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("SaveSnapshot(%s v%d) error: %v", stream, i+1, err)
		}
	}
	call := fmt.Sprintf("Load(%s, StateSchema) after concurrent saves", stream)
	str := load(t, s, stream, licensing.StateSchema)
	checkSnapshot(t, call, str.Snapshot, snaps[n-1])
	if len(str.Events) != 0 {
		t.Errorf("%s = %d events after the snapshot, want none", call, len(str.Events))
	}
}
