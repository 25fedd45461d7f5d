package projector_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/projector"
	"github.com/dlicense/dlicense/infra/projector/projectortest"
)

// seen is a projection that remembers what it was given, and fails at the
// records failAt names.
type seen struct {
	got    map[string][]string // member → sequence numbers, in order
	kinds  map[string]string   // sequence number → event, view or erasure
	failAt map[string]bool
}

func (s *seen) Project(_ context.Context, b projector.Batch) ([]projector.Failure, error) {
	s.got, s.kinds = map[string][]string{}, map[string]string{}
	var failures []projector.Failure
	for _, part := range b {
		for _, r := range part.Records {
			s.got[part.Member] = append(s.got[part.Member], r.Seq)
			switch {
			case r.Event != nil:
				s.kinds[r.Seq] = "event"
			case r.View != nil:
				s.kinds[r.Seq] = "view"
			case !r.Erasure.IsZero():
				s.kinds[r.Seq] = "erasure"
			}
			if s.failAt[r.Seq] {
				failures = append(failures, projector.Failure{Record: r, What: "test", Err: errors.New("injected")})
				break
			}
		}
	}
	return failures, nil
}

// mixedBatch is two members' records, interleaved: m-a's log (v1-v3) and
// screens, m-b's log (v1-v2) and an erasure; sequence numbers 1 to 8.
func mixedBatch(t *testing.T) []events.DynamoDBEventRecord {
	at := time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)
	n := 0
	seq := func() string { n++; return fmt.Sprintf("%021d", n) }
	event := func(member string, v int64) events.DynamoDBEventRecord {
		se, err := licensing.EncodeEvent(licensing.Event{Version: v, At: at, Payload: &licensing.LicenceReleased{Licence: fmt.Sprintf("L%d", v), Reason: licensing.ReasonDeleted}})
		if err != nil {
			t.Fatal(err)
		}
		r, err := projectortest.InsertRecord(member, se, seq())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	screen := func(member string, slot int) events.DynamoDBEventRecord {
		r, err := projectortest.ScreenRecord(member, &viewing.View{ID: viewing.NewViewID(slot, "x"), Slot: slot, Device: "tv", Title: "tt-first-light",
			Started: at, LastSeen: at, Expires: at.Add(time.Minute), State: viewing.Playing}, true, seq())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	erasure := func(member string) events.DynamoDBEventRecord {
		r, err := projectortest.ErasureRecord(member, at, seq())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	return []events.DynamoDBEventRecord{event("m-a", 1), screen("m-a", 0), event("m-b", 1), event("m-a", 2), screen("m-a", 1), event("m-b", 2), event("m-a", 3), erasure("m-b")}
}

// TestRecordsAreDecodedAtTheEdgeAndGroupedByPartition: a projection sees
// each partition's records in stream order, decoded (events, screen writes,
// erasures), a member's log apart from its viewing data.
func TestRecordsAreDecodedAtTheEdgeAndGroupedByPartition(t *testing.T) {
	recs := mixedBatch(t)
	s := &seen{}
	resp, err := projector.New(nil, s).Handle(context.Background(), events.DynamoDBEvent{Records: recs})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle = %+v, %v; want no failures", resp, err)
	}
	seq := func(i int) string { return recs[i-1].Change.SequenceNumber }
	want := map[string][]string{"m-a": {seq(1), seq(4), seq(7), seq(2), seq(5)}, "m-b": {seq(3), seq(6), seq(8)}}
	for m, w := range want {
		if !slices.Equal(s.got[m], w) {
			t.Errorf("%s's records = %v, want %v (its log, then its viewing data, each in order)", m, s.got[m], w)
		}
	}
	for i, kind := range []string{"event", "view", "event", "event", "view", "event", "event", "erasure"} {
		if got := s.kinds[seq(i+1)]; got != kind {
			t.Errorf("record %d decoded as %q, want %s", i+1, got, kind)
		}
	}
}

// TestAFailureStopsItsPartitionForTheProjectionsAfter: a projection that
// fails at a record holds back that record and the partition's later ones
// from the projections after it; other partitions go on; Lambda is told
// the partition's first failure.
func TestAFailureStopsItsPartitionForTheProjectionsAfter(t *testing.T) {
	recs := mixedBatch(t)
	seq := func(i int) string { return recs[i-1].Change.SequenceNumber }
	first := &seen{failAt: map[string]bool{seq(4): true}}  // m-a's log at v2
	second := &seen{failAt: map[string]bool{seq(5): true}} // m-a's second screen write
	third := &seen{}
	resp, err := projector.New(nil, first, second, third).Handle(context.Background(), events.DynamoDBEvent{Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	if !slices.Equal(failed, []string{seq(4), seq(5)}) {
		t.Errorf("failures = %v, want %v (m-a's log from v2, m-a's screens from the second write)", failed, []string{seq(4), seq(5)})
	}
	if got, want := second.got["m-a"], []string{seq(1), seq(2), seq(5)}; !slices.Equal(got, want) {
		t.Errorf("the second projection saw %v of m-a, want %v: nothing of the log from the failure on", got, want)
	}
	if got, want := third.got["m-a"], []string{seq(1), seq(2)}; !slices.Equal(got, want) {
		t.Errorf("the third projection saw %v of m-a, want %v", got, want)
	}
	if got, want := third.got["m-b"], []string{seq(3), seq(6), seq(8)}; !slices.Equal(got, want) {
		t.Errorf("the third projection saw %v of m-b, want all of it: %v", got, want)
	}
}

// failing is a projection that fails the whole batch.
type failing struct{}

func (failing) Project(context.Context, projector.Batch) ([]projector.Failure, error) {
	return nil, errors.New("store unreachable")
}

func TestAProjectionErrorFailsTheBatch(t *testing.T) {
	after := &seen{}
	if _, err := projector.New(nil, failing{}, after).Handle(context.Background(), events.DynamoDBEvent{Records: mixedBatch(t)}); err == nil {
		t.Errorf("Handle = nil error, want the projection's")
	}
	if after.got != nil {
		t.Errorf("a projection after the failed one ran: %v", after.got)
	}
}
