package dynamo_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
)

// localTable creates a table of its own on DynamoDB Local, from the
// definition in template.yaml, and returns a client for it and its name.
func localTable(t testing.TB) (*dynamodb.Client, string) {
	t.Helper()
	return dynamotest.Table(t)
}

var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func TestTableComesFromTheTemplate(t *testing.T) {
	in, err := dynamotest.TableFromTemplate("../../template.yaml", dynamotest.TableLogicalID, "x")
	if err != nil {
		t.Fatal(err)
	}
	keys := fmt.Sprint(*in.KeySchema[0].AttributeName, in.KeySchema[0].KeyType, *in.KeySchema[1].AttributeName, in.KeySchema[1].KeyType)
	if keys != "pkHASHskRANGE" || in.BillingMode != "PAY_PER_REQUEST" || in.StreamSpecification == nil || in.StreamSpecification.StreamViewType != "NEW_IMAGE" {
		t.Errorf("TableFromTemplate = keys %s, billing %s, stream %+v; want pk/sk, on demand, NEW_IMAGE", keys, in.BillingMode, in.StreamSpecification)
	}
	if _, err := dynamotest.TableFromTemplate("../../template.yaml", "NoSuchTable", "x"); err == nil {
		t.Errorf("TableFromTemplate(NoSuchTable) = nil error")
	}
}

// playback builds a playback event of about size bytes.
func playback(version int64, at time.Time, entries int) licensing.Event {
	p := &licensing.PlaybackRecorded{Device: "d1"}
	for i := 0; i < entries; i++ {
		id := fmt.Sprintf("v%d-e%d", version, i)
		p.Accepted = append(p.Accepted, licensing.PlaybackEntry{ID: id, Licence: "L1", Kind: licensing.PlaybackKeepalive, PositionMs: int64(i), DeviceTime: at})
		p.Results = append(p.Results, licensing.PlaybackResult{ID: id, Code: licensing.PlaybackAccepted})
	}
	return licensing.Event{Version: version, At: at, PolicyVersion: "p1", Payload: p}
}

// seed appends events 1..n in transactions of 100.
func seed(t testing.TB, s *dynamo.Log, stream string, events []licensing.Event) {
	t.Helper()
	for i := 0; i < len(events); i += 100 {
		end := min(i+100, len(events))
		if err := s.Append(context.Background(), stream, int64(i), events[i:end]); err != nil {
			t.Fatalf("Append(%s, %d) = %v", stream, i, err)
		}
	}
}

func acquired(version int64, at time.Time) licensing.Event {
	return licensing.Event{Version: version, At: at, PolicyVersion: "p1", Payload: &licensing.LicenceAcquired{
		Licence: fmt.Sprintf("L%d", version), Plan: "premium", Title: "tt-first-light", Studio: "open-reel", Device: "d1", ExpiresAt: at.Add(time.Hour),
	}}
}

// TestTenThousandEventsWithASnapshotLoadInOneQuery: a snapshot at most 3
// events behind (the first page: the snapshot and the newest three, as the
// stream function lets it lag at rest) is a one-request load for half a read
// unit; one further behind adds one Query of exactly the events it lacks.
func TestTenThousandEventsWithASnapshotLoadInOneQuery(t *testing.T) {
	db, table := localTable(t)
	s := dynamo.OneTable(db, table).Log
	const n = 10000
	events := make([]licensing.Event, n)
	for i := range events {
		events[i] = acquired(int64(i+1), t0.Add(time.Duration(i)*time.Minute))
	}
	seed(t, s, "heavy", events)
	for _, tc := range []struct{ lag, requests int }{{5, 2}, {3, 1}, {1, 1}, {0, 1}} { // snapshots only move forward
		snap, err := licensing.EncodeSnapshot(licensing.Fold("heavy", events[:n-tc.lag]), licensing.DefaultPolicy())
		if err != nil {
			t.Fatal(err)
		}
		if saved, err := s.SaveSnapshot(context.Background(), snap); !saved || err != nil {
			t.Fatalf("SaveSnapshot = %v, %v", saved, err)
		}
		var m dynamo.Meter
		str, err := s.Load(dynamo.WithMeter(context.Background(), &m), "heavy", licensing.LoadOptions{SnapshotSchema: licensing.StateSchema})
		if err != nil {
			t.Fatal(err)
		}
		u := m.Usage()
		t.Logf("load of %d events with a snapshot at v%d: %+v", n, snap.Version, u)
		if u.RoundTrips != tc.requests || u.ReadUnits > 0.5*float64(tc.requests) {
			t.Errorf("snapshot %d behind: Load made %d round trips for %.1f read units, want %d for at most %.1f", tc.lag, u.RoundTrips, u.ReadUnits, tc.requests, 0.5*float64(tc.requests))
		}
		if str.Snapshot == nil || str.Snapshot.Version != int64(n-tc.lag) || len(str.Events) != tc.lag || str.Version() != n {
			t.Fatalf("Load = snapshot %v, %d events, v%d; want snapshot v%d and %d events to v%d", str.Snapshot != nil, len(str.Events), str.Version(), n-tc.lag, tc.lag, n)
		}
	}
}

// TestALaggingSnapshotCostsOnlyTheEventsAfterIt: with the snapshot 60 events
// behind (a season downloaded within the stream function's batching window),
// a load reads the events after it with a second Query bounded by versions,
// not the rest of a 10,000-event partition; without a usable snapshot it
// reads the whole log.
func TestALaggingSnapshotCostsOnlyTheEventsAfterIt(t *testing.T) {
	db, table := localTable(t)
	s := dynamo.OneTable(db, table).Log
	const n, lag = 3000, 60
	events := make([]licensing.Event, n)
	for i := range events {
		events[i] = acquired(int64(i+1), t0.Add(time.Duration(i)*time.Minute))
	}
	seed(t, s, "lagging", events)
	snap, err := licensing.EncodeSnapshot(licensing.Fold("lagging", events[:n-lag]), licensing.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	if saved, err := s.SaveSnapshot(context.Background(), snap); !saved || err != nil {
		t.Fatalf("SaveSnapshot = %v, %v", saved, err)
	}
	var m dynamo.Meter
	str, err := s.Load(dynamo.WithMeter(context.Background(), &m), "lagging", licensing.LoadOptions{SnapshotSchema: licensing.StateSchema})
	if err != nil {
		t.Fatal(err)
	}
	u := m.Usage()
	t.Logf("load with the snapshot %d events behind: %+v", lag, u)
	if str.Snapshot == nil || str.Snapshot.Version != n-lag || len(str.Events) != lag || str.Events[0].Version != n-lag+1 || str.Version() != n {
		t.Fatalf("Load = snapshot %v, %d events, v%d; want the snapshot and the %d events after it", str.Snapshot != nil, len(str.Events), str.Version(), lag)
	}
	// 61 event items of about 300 bytes and the snapshot: a few read units,
	// where the rest of the partition (3,000 items) would cost about 100.
	if u.RoundTrips != 2 || u.ReadUnits > 4 {
		t.Errorf("Load = %d round trips, %.1f read units; want 2 and at most 4", u.RoundTrips, u.ReadUnits)
	}

	m = dynamo.Meter{}
	// A reader of an older state schema cannot use the snapshot.
	str, err = s.Load(dynamo.WithMeter(context.Background(), &m), "lagging", licensing.LoadOptions{SnapshotSchema: licensing.StateSchema - 1})
	if err != nil || str.Snapshot != nil || len(str.Events) != n {
		t.Fatalf("Load(an older state schema) = %v, %d events, %v; want the whole log", str.Snapshot != nil, len(str.Events), err)
	}
	t.Logf("load without a usable snapshot: %+v", m.Usage())
}

func TestHistoryOverOneMegabyteWithoutSnapshotLoadsCompletely(t *testing.T) {
	db, table := localTable(t)
	s := dynamo.OneTable(db, table).Log
	var events []licensing.Event
	for i := int64(1); i <= 24; i++ {
		events = append(events, playback(i, t0.Add(time.Duration(i)*time.Minute), 400)) // about 60 KB each
	}
	seed(t, s, "big", events)
	var m dynamo.Meter
	str, err := s.Load(dynamo.WithMeter(context.Background(), &m), "big", licensing.LoadOptions{SnapshotSchema: licensing.StateSchema})
	if err != nil {
		t.Fatal(err)
	}
	if len(str.Events) != len(events) {
		t.Fatalf("Load = %d events, want %d", len(str.Events), len(events))
	}
	for i, e := range str.Events {
		if e.Version != int64(i+1) {
			t.Fatalf("Load event %d has version %d, want %d", i, e.Version, i+1)
		}
	}
	if u := m.Usage(); u.RoundTrips < 2 {
		t.Errorf("Load of over 1 MB made %d round trips, want pages", u.RoundTrips)
	}
}

func TestTooLargeIsRefusedAndNothingIsWritten(t *testing.T) {
	db, table := localTable(t)
	s := dynamo.OneTable(db, table).Log
	ctx := context.Background()
	huge := playback(1, t0, 5000) // about 700 KB
	if err := s.Append(ctx, "big1", 0, []licensing.Event{huge}); !errors.Is(err, dynamo.ErrItemTooLarge) {
		t.Errorf("Append(huge) = %v, want ErrItemTooLarge", err)
	}
	huge.Version = 2
	if err := s.Append(ctx, "big1", 0, []licensing.Event{acquired(1, t0), huge}); !errors.Is(err, dynamo.ErrItemTooLarge) {
		t.Errorf("Append(small, huge) = %v, want ErrItemTooLarge", err)
	}
	if str, err := s.Load(ctx, "big1", licensing.LoadOptions{}); err != nil || len(str.Events) != 0 {
		t.Errorf("Load after refusals = %d events, %v; want none", len(str.Events), err)
	}
	seed(t, s, "big1", []licensing.Event{acquired(1, t0)})
	junk := make([]byte, 2<<20)
	rand.Read(junk) // incompressible
	_, err := s.SaveSnapshot(ctx, licensing.Snapshot{Stream: "big1", Version: 1, Schema: licensing.StateSchema, Data: junk})
	if !errors.Is(err, dynamo.ErrItemTooLarge) {
		t.Errorf("SaveSnapshot(2 MB) = %v, want ErrItemTooLarge", err)
	}
}

func TestTooManyEventsInOneAppend(t *testing.T) {
	db, table := localTable(t)
	s := dynamo.OneTable(db, table).Log
	events := make([]licensing.Event, dynamo.MaxEventsPerAppend+1)
	for i := range events {
		events[i] = acquired(int64(i+1), t0)
	}
	if err := s.Append(context.Background(), "many", 0, events); !errors.Is(err, dynamo.ErrTooManyEvents) {
		t.Errorf("Append(%d events) = %v, want ErrTooManyEvents", len(events), err)
	}
}

func TestARetriedWriteThatLandedIsNotAConflict(t *testing.T) {
	db, table := localTable(t)
	s := dynamo.OneTable(db, table).Log
	ctx := context.Background()
	e := acquired(1, t0)
	e.RequestID = "req-a"
	if err := s.Append(ctx, "retry", 0, []licensing.Event{e}); err != nil {
		t.Fatal(err)
	}
	// The same request again, as the SDK retries a write whose answer it lost.
	if err := s.Append(ctx, "retry", 0, []licensing.Event{e}); err != nil {
		t.Errorf("Append(same request again) = %v, want nil", err)
	}
	e.RequestID = "req-b"
	if err := s.Append(ctx, "retry", 0, []licensing.Event{e}); !errors.Is(err, licensing.ErrConflict) {
		t.Errorf("Append(another request at v0) = %v, want a conflict", err)
	}
	// The same for a transaction.
	two := []licensing.Event{acquired(2, t0), acquired(3, t0)}
	two[0].RequestID, two[1].RequestID = "req-c", "req-c"
	for i := 0; i < 2; i++ {
		if err := s.Append(ctx, "retry", 1, two); err != nil {
			t.Errorf("Append(two events, try %d) = %v, want nil", i+1, err)
		}
	}
	if str, _ := s.Load(ctx, "retry", licensing.LoadOptions{}); str.Version() != 3 {
		t.Errorf("Load after retries = v%d, want v3", str.Version())
	}
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

type counterIDs struct{ n atomic.Int64 }

func (c *counterIDs) NewID() string { return fmt.Sprintf("id-%d", c.n.Add(1)) }

func capPolicy(t testing.TB, cap int, titles int) *licensing.Policy {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `{"version":"cap","defaults":{"licence_duration":"30d"},"plans":{"p":{"max_download_devices":6,"max_active_per_device":100,"max_active_per_member":%d, "max_screens": 2}},"studios":{"s":{}},"titles":{`, cap)
	for i := 0; i < titles; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"t%d":{"studio":"s","downloadable":true}`, i)
	}
	b.WriteString("}}")
	p, err := licensing.ParsePolicy(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConcurrentAcquiresHoldTheCap(t *testing.T) {
	db, table := localTable(t)
	store := dynamo.OneTable(db, table).Log
	svc := licensing.NewService(store, capPolicy(t, 10, 50), fixedClock(t0), &counterIDs{})
	svc.MaxAttempts = 100
	svc.Backoff = time.Millisecond
	var conflicts atomic.Int64
	svc.Observer.Conflict = func(context.Context, string, int) { conflicts.Add(1) }

	var granted, denied atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Go(func() {
			_, err := svc.Execute(context.Background(), licensing.Acquire{Member: "racer", Plan: "p", Device: fmt.Sprintf("d%d", i%3), Title: fmt.Sprintf("t%d", i)}, "")
			var d *licensing.Denial
			switch {
			case err == nil:
				granted.Add(1)
			case errors.As(err, &d) && d.Codes()[0] == licensing.CodeMemberDownloadLimit:
				denied.Add(1)
			default:
				t.Errorf("Acquire = %v", err)
			}
		})
	}
	wg.Wait()
	t.Logf("granted %d, denied %d, conflicts retried %d", granted.Load(), denied.Load(), conflicts.Load())
	if granted.Load() != 10 || denied.Load() != 40 {
		t.Errorf("granted %d and denied %d, want 10 and 40", granted.Load(), denied.Load())
	}
	str, err := store.Load(context.Background(), "racer", licensing.LoadOptions{Consistent: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(str.Events) != 10 {
		t.Errorf("log holds %d events, want 10", len(str.Events))
	}
	for i, e := range str.Events {
		if e.Version != int64(i+1) {
			t.Errorf("event %d has version %d, want %d", i, e.Version, i+1)
		}
	}
}

func TestRetriedKeyUnderConflictGivesOneEventAndTheSameAnswer(t *testing.T) {
	db, table := localTable(t)
	store := dynamo.OneTable(db, table).Log
	svc := licensing.NewService(store, capPolicy(t, 100, 20), fixedClock(t0), &counterIDs{})
	svc.MaxAttempts = 100
	svc.Backoff = time.Millisecond
	ctx := context.Background()
	cmd := licensing.Acquire{Member: "keyed", Plan: "p", Device: "d1", Title: "t0"}

	// The same keyed request twice at once, while other requests race them.
	results := make([]licensing.Result, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Go(func() { results[i], errs[i] = svc.Execute(ctx, cmd, "key-1") })
	}
	for i := 1; i < 6; i++ {
		wg.Go(func() {
			if _, err := svc.Execute(ctx, licensing.Acquire{Member: "keyed", Plan: "p", Device: "d1", Title: fmt.Sprintf("t%d", i)}, ""); err != nil {
				t.Errorf("other Acquire = %v", err)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("keyed Acquire %d = %v", i, err)
		}
	}
	if results[0].Licences[0].ID != results[1].Licences[0].ID || results[0].Version != results[1].Version {
		t.Errorf("keyed answers differ: %+v and %+v", results[0], results[1])
	}
	if results[0].Replayed == results[1].Replayed {
		t.Errorf("Replayed = %v and %v, want one first answer and one replay", results[0].Replayed, results[1].Replayed)
	}
	// A later retry still gets the first answer, and the log has one event for the key.
	again, err := svc.Execute(ctx, cmd, "key-1")
	if err != nil || !again.Replayed || again.Licences[0].ID != results[0].Licences[0].ID {
		t.Errorf("retry = %+v, %v; want the first answer replayed", again, err)
	}
	str, _ := store.Load(ctx, "keyed", licensing.LoadOptions{Consistent: true})
	n := 0
	for _, e := range str.Events {
		if e.Key == "key-1" {
			n++
		}
	}
	if n != 1 || len(str.Events) != 6 {
		t.Errorf("log holds %d events for the key and %d in all, want 1 and 6", n, len(str.Events))
	}
	if _, err := svc.Execute(ctx, licensing.Acquire{Member: "keyed", Plan: "p", Device: "d2", Title: "t9"}, "key-1"); kernel.KindOf(err) != kernel.KindConflict {
		t.Errorf("same key, other request = %v, want a conflict", err)
	}
}
