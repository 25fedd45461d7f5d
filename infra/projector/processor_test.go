package projector_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/projector"
	"github.com/dlicense/dlicense/infra/projector/projectortest"
	"github.com/dlicense/dlicense/infra/setup"
)

func handle(t *testing.T, p *projector.Processor, recs []events.DynamoDBEventRecord) []string {
	t.Helper()
	resp, err := p.Handle(context.Background(), events.DynamoDBEvent{Records: recs})
	if err != nil {
		t.Fatalf("Handle = %v", err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	return failed
}

func TestSnapshotsEveryNEvents(t *testing.T) {
	bothStores(t, func(t *testing.T, s testStores) {
		p := setup.NewProcessor(setup.Stores{Events: s.Log}, 4, nil)
		seq := 0
		recs := projectortest.Log(t, s.Log, "m-snap", 11, &seq)
		if failed := handle(t, p, recs[:3]); len(failed) != 0 || projectortest.SnapshotVersion(t, s.Log, "m-snap") != 0 {
			t.Fatalf("after v1-3: failures %v, snapshot v%d; want none", failed, projectortest.SnapshotVersion(t, s.Log, "m-snap"))
		}
		handle(t, p, recs[3:5])
		if v := projectortest.SnapshotVersion(t, s.Log, "m-snap"); v < 4 {
			t.Errorf("after v4-5: snapshot v%d, want at least v4", v)
		}
		handle(t, p, recs[5:])
		if v := projectortest.SnapshotVersion(t, s.Log, "m-snap"); v != 11 {
			t.Errorf("after v6-11: snapshot v%d, want v11 (the head when it was written)", v)
		}
		// The same batch again, and a batch retried from the middle: nothing moves back.
		for _, batch := range [][]events.DynamoDBEventRecord{recs[5:], recs[2:7], recs} {
			if failed := handle(t, p, batch); len(failed) != 0 {
				t.Errorf("redelivery failed: %v", failed)
			}
			if v := projectortest.SnapshotVersion(t, s.Log, "m-snap"); v != 11 {
				t.Errorf("after redelivery: snapshot v%d, want v11", v)
			}
		}
	})
}

func TestPoisonRecordIsReportedAndOrderKept(t *testing.T) {
	bothStores(t, func(t *testing.T, s testStores) {
		p := setup.NewProcessor(setup.Stores{Events: s.Log}, 4, nil)
		seq := 0
		a := projectortest.Log(t, s.Log, "m-poison", 6, &seq)
		b := projectortest.Log(t, s.Log, "m-other", 5, &seq)
		poison := a[2]
		poison.Change.NewImage = map[string]events.DynamoDBAttributeValue{}
		for k, v := range a[2].Change.NewImage {
			poison.Change.NewImage[k] = v
		}
		poison.Change.NewImage["d"] = events.NewStringAttribute(`{"licence_id":`) // truncated payload
		batch := append(append(append([]events.DynamoDBEventRecord{}, a[:2]...), poison), a[3:]...)
		batch = append(batch, b...)
		failed := handle(t, p, batch)
		if len(failed) != 1 || failed[0] != poison.Change.SequenceNumber {
			t.Fatalf("failures = %v, want only the poison record %s", failed, poison.Change.SequenceNumber)
		}
		// Nothing after the poison record was applied for its member (v4 would
		// have made a snapshot); the other member went on.
		if v := projectortest.SnapshotVersion(t, s.Log, "m-poison"); v != 0 {
			t.Errorf("poisoned member snapshot v%d, want none", v)
		}
		if v := projectortest.SnapshotVersion(t, s.Log, "m-other"); v != 5 {
			t.Errorf("other member snapshot v%d, want v5", v)
		}
	})
}

func TestConcurrentSnapshotWritersOnlyMoveForward(t *testing.T) {
	bothStores(t, func(t *testing.T, s testStores) {
		p := setup.NewProcessor(setup.Stores{Events: s.Log}, 1, nil)
		seq := 0
		recs := projectortest.Log(t, s.Log, "m-race", 12, &seq)
		var wg sync.WaitGroup
		for i := range recs {
			wg.Go(func() { handle(t, p, recs[i:i+1]) })
		}
		wg.Wait()
		if v := projectortest.SnapshotVersion(t, s.Log, "m-race"); v != 12 {
			t.Errorf("snapshot after concurrent writers = v%d, want v12", v)
		}
	})
}

func TestCountersAreExactUnderRedelivery(t *testing.T) {
	bothStores(t, func(t *testing.T, s testStores) {
		counters := s.Counters
		p := setup.NewProcessor(setup.Stores{Events: s.Log, Counters: counters}, 4, nil)
		seq := 0
		recs := projectortest.Log(t, s.Log, "m-count", 9, &seq) // 5 acquisitions, 4 releases
		read := func() (int64, int64) {
			c, err := counters.Counts(context.Background(), licensing.TitleScope("tt-first-light"))
			if err != nil {
				t.Fatal(err)
			}
			return c.Granted(), c.ActiveOn(time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC))
		}
		handle(t, p, recs[:4])
		handle(t, p, recs[4:])
		if g, a := read(); g != 5 || a != 1 {
			t.Fatalf("after one delivery: granted %d, active %d; want 5 and 1", g, a)
		}
		// The same batch twice, a batch retried from the middle, everything again.
		for _, batch := range [][]events.DynamoDBEventRecord{recs[4:], recs[4:], recs[2:7], recs} {
			if failed := handle(t, p, batch); len(failed) != 0 {
				t.Fatalf("redelivery failed: %v", failed)
			}
		}
		if g, a := read(); g != 5 || a != 1 {
			t.Errorf("after redeliveries: granted %d, active %d; want 5 and 1", g, a)
		}
		day, err := counters.Counts(context.Background(), licensing.StudioDayScope("open-reel", time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)))
		if err != nil || day.Granted() != 5 {
			t.Errorf("studio open-reel on 2026-11-02: %v, %v; want 5 granted", day, err)
		}
	})
}
