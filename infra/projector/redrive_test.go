package projector_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/ops/eventsource"
	"github.com/dlicense/dlicense/infra/projector/projectortest"
	"github.com/dlicense/dlicense/infra/setup"
)

// TestRedriveADeadLetterFromThePoller: the stream function fails on
// DynamoDB Local until the poller gives the batch up; the poller writes
// the dead letter as Lambda's on-failure destination would; once the
// function works again, the redrive reads the records back from the stream
// and hands them to it: the snapshot and the counts are there.
func TestRedriveADeadLetterFromThePoller(t *testing.T) {
	db, cfg := localTable(t)
	stores := dynamo.OneTable(db, cfg.Table)
	store := stores.Log
	proc := setup.NewProcessor(setup.Stores{Events: store, Counters: stores.Counters}, 4, nil)
	var down atomic.Bool
	down.Store(true)
	h := lambda.NewHandler(func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		if down.Load() {
			return events.DynamoDBEventResponse{}, errors.New("the function is down")
		}
		return proc.Handle(ctx, ev)
	})
	poller := localPoller(t, db, cfg, h)
	poller.Retries, poller.DeadLetterDir = 1, t.TempDir()
	seq := 0
	projectortest.Log(t, store, "m-dead", 8, &seq)
	if err := poller.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(poller.DeadLetterDir, "*.json"))
	if len(files) != 1 || len(poller.DeadLetters()) != 1 {
		t.Fatalf("dead letters: %d files, %d kept; want one", len(files), len(poller.DeadLetters()))
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	msg, err := eventsource.ParseDeadLetter(raw)
	if err != nil || msg.Batch.BatchSize != 8 || msg.Batch.StreamArn != poller.StreamArn {
		t.Fatalf("ParseDeadLetter(%s) = %+v, %v; want the 8 records of the stream", raw, msg, err)
	}
	if projectortest.SnapshotVersion(t, store, "m-dead") != 0 {
		t.Fatalf("a snapshot was written while the function was down")
	}

	down.Store(false)
	r := &eventsource.Redriver{Streams: poller.Streams, Handler: h, Filter: poller.Filter}
	var last int
	rep, err := r.Redrive(context.Background(), msg, func(done, _ int) { last = done })
	if err != nil || rep.Read < 8 || rep.Delivered != 8 || last != rep.Read {
		t.Fatalf("Redrive = %+v, %v (progress %d); want the 8 records handled", rep, err, last)
	}
	if v := projectortest.SnapshotVersion(t, store, "m-dead"); v != 8 {
		t.Errorf("snapshot after the redrive at v%d, want v8", v)
	}
	c, err := stores.Counters.Counts(context.Background(), licensing.TitleScope("tt-first-light"))
	if err != nil || c.Granted() != 4 {
		t.Errorf("counts after the redrive = %v, %v; want 4 granted", c, err)
	}
	// Run again (an operator unsure it worked): nothing is counted twice.
	if _, err := r.Redrive(context.Background(), msg, nil); err != nil {
		t.Fatal(err)
	}
	if c, _ := stores.Counters.Counts(context.Background(), licensing.TitleScope("tt-first-light")); c.Granted() != 4 {
		t.Errorf("counts after a second redrive = %d granted, want 4", c.Granted())
	}
	if _, err := eventsource.ParseDeadLetter([]byte(`{"DDBStreamBatchInfo":{"shardId":"s"}}`)); err == nil {
		t.Errorf("ParseDeadLetter(no range) = nil error")
	}
}
