package projector_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/changestream"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/projector/projectortest"
	"github.com/dlicense/dlicense/infra/setup"
)

// TestRedriveADeadLetterFromThePoller: the stream function fails on
// DynamoDB Local until the poller gives the batch up; the poller writes
// the dead letter as Lambda's on-failure destination would; once the
// function works again, the redrive (the function's own, from its queue,
// and the operator's) reads the records back from the stream and hands
// them to it: the snapshot and the counts are there, counted once.
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
	msg, err := changestream.ParseDeadLetter(raw)
	if err != nil || msg.Batch.BatchSize != 8 || msg.Batch.StreamArn != poller.StreamArn {
		t.Fatalf("ParseDeadLetter(%s) = %+v, %v; want the 8 records of the stream", raw, msg, err)
	}
	if projectortest.SnapshotVersion(t, store, "m-dead") != 0 {
		t.Fatalf("a snapshot was written while the function was down")
	}

	// The stream function takes its dead letters back from the queue: while
	// it still fails, the message is reported failed (SQS offers it again
	// later); once it works, the records are handled.
	r := &changestream.Redriver{Streams: poller.Streams, Handler: h, Filter: poller.Filter, Retries: 1}
	fromQueue := changestream.Handler(h, r)
	sqsEvent, _ := json.Marshal(events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m-1", Body: string(raw), EventSource: "aws:sqs"}}})
	queueAnswer := func() events.SQSEventResponse {
		t.Helper()
		out, err := fromQueue.Invoke(context.Background(), sqsEvent)
		var resp events.SQSEventResponse
		if err != nil || json.Unmarshal(out, &resp) != nil {
			t.Fatalf("the dead letter from the queue = %s, %v", out, err)
		}
		return resp
	}
	if resp := queueAnswer(); len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "m-1" {
		t.Errorf("redrive from the queue while the function fails = %+v, want m-1 failed", resp)
	}
	if projectortest.SnapshotVersion(t, store, "m-dead") != 0 {
		t.Fatalf("a snapshot was written while the function was down")
	}
	down.Store(false)
	if resp := queueAnswer(); len(resp.BatchItemFailures) != 0 {
		t.Errorf("redrive from the queue once the function works = %+v, want no failure", resp)
	}
	if v := projectortest.SnapshotVersion(t, store, "m-dead"); v != 8 {
		t.Errorf("snapshot after the redrive from the queue at v%d, want v8", v)
	}
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
	if _, err := changestream.ParseDeadLetter([]byte(`{"DDBStreamBatchInfo":{"shardId":"s"}}`)); err == nil {
		t.Errorf("ParseDeadLetter(no range) = nil error")
	}
}
