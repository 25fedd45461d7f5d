package projector_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/projector/projectortest"
	"github.com/dlicense/dlicense/infra/setup"
)

// lossyDB is a DynamoDB client whose next counter transaction lands but
// whose answer is lost, as when a connection drops after the write; it
// also keeps every transaction it was given.
type lossyDB struct {
	*dynamodb.Client
	mu       sync.Mutex
	loseNext bool
	sent     []*dynamodb.TransactWriteItemsInput
}

var errLostAnswer = errors.New("connection reset after the request was sent")

func (l *lossyDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	l.mu.Lock()
	l.sent = append(l.sent, in)
	lose := l.loseNext
	l.loseNext = false
	l.mu.Unlock()
	out, err := l.Client.TransactWriteItems(ctx, in, opts...)
	if err == nil && lose {
		return nil, errLostAnswer
	}
	return out, err
}

// TestCountersAreExactAtAnyAge delivers a member's records, loses the
// answer of a counter transaction that landed, delivers the batch again as
// Lambda does after a failure, and again as after an outage of an hour:
// every licence is counted once. Nothing of it rests on DynamoDB's
// ten-minute memory of transaction tokens: the SDK gives every call a fresh
// token (so a redelivery is a new request to DynamoDB), and the last
// delivery comes more than ten minutes after the events.
func TestCountersAreExactAtAnyAge(t *testing.T) {
	raw, table := dynamotest.Table(t)
	db := &lossyDB{Client: raw}
	stores := dynamo.OneTable(db, table)
	ctx := context.Background()
	seq := 0
	var recs []events.DynamoDBEventRecord
	for _, m := range []string{"count-a", "count-b", "count-c"} {
		recs = append(recs, projectortest.Log(t, stores.Log, m, 7, &seq)...) // 4 grants, 3 releases each
	}
	p := setup.NewProcessor(setup.Stores{Events: stores.Log, Counters: stores.Counters}, 4, nil)
	deliver := func(what string, wantFailures int) {
		t.Helper()
		resp, err := p.Handle(ctx, events.DynamoDBEvent{Records: recs})
		if err != nil || len(resp.BatchItemFailures) != wantFailures {
			t.Fatalf("%s: Handle = %+v, %v; want %d failures", what, resp, err, wantFailures)
		}
	}
	db.loseNext = true
	deliver("the first delivery, its counts landed but their answer lost", 3)
	deliver("the retry", 0)
	// An hour later (the service's clock: the events' times are an hour
	// older than now), the same records again, as after an outage.
	later := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC).Add(time.Hour)
	if later.Sub(recs[0].Change.ApproximateCreationDateTime.Time) <= 10*time.Minute {
		t.Fatalf("the records are not over ten minutes old by %v", later)
	}
	deliver("an hour later", 0)

	c, err := stores.Counters.Counts(ctx, licensing.TitleScope("tt-first-light"))
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	if c.Granted() != 12 || c.ActiveOn(day) != 3 {
		t.Errorf("counts after three deliveries = %d granted, %d active; want 12 and 3, each event counted once", c.Granted(), c.ActiveOn(day))
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	tokens := map[string]bool{}
	for _, in := range db.sent {
		if in.ClientRequestToken != nil {
			if tokens[*in.ClientRequestToken] {
				t.Errorf("two counter transactions share client token %q: a redelivery must not rely on it", *in.ClientRequestToken)
			}
			tokens[*in.ClientRequestToken] = true
		}
	}
	if len(db.sent) != 3 {
		t.Errorf("%d counter transactions over three deliveries, want 3 (one a delivery, each with every member)", len(db.sent))
	}
}

// TestCountersCountWhatADeadLetterHeld: Lambda gives up on a batch (it goes
// to the dead-letter queue) and delivers the member's next records; the
// stream function counts the events the given-up batch held from the log,
// before the next ones, so the counts are exact without a redrive, and a
// redrive of the dead letter later changes nothing. On both stores.
func TestCountersCountWhatADeadLetterHeld(t *testing.T) {
	bothStores(t, func(t *testing.T, s testStores) {
		counters := s.Counters
		seq := 0
		recs := projectortest.Log(t, s.Log, "count-dlq", 7, &seq) // v1 grant, v2 release, … v7 grant
		p := setup.NewProcessor(setup.Stores{Events: s.Log, Counters: counters}, 100, nil)
		check := func(when string) {
			t.Helper()
			c, err := counters.Counts(context.Background(), licensing.TitleScope("tt-first-light"))
			if err != nil {
				t.Fatal(err)
			}
			day := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
			if c.Granted() != 4 || c.ActiveOn(day) != 1 {
				t.Errorf("%s: %d granted, %d active; want 4 and 1, each event counted once", when, c.Granted(), c.ActiveOn(day))
			}
		}
		if failed := handle(t, p, recs[:2]); len(failed) > 0 {
			t.Fatalf("first batch: failures %v", failed)
		}
		// recs[2:5] (v3 grant, v4 release, v5 grant) are dead-lettered.
		if failed := handle(t, p, recs[5:]); len(failed) > 0 {
			t.Fatalf("the batch after the dead letter: failures %v", failed)
		}
		check("after the batch that followed the dead letter")
		if failed := handle(t, p, recs[2:5]); len(failed) > 0 {
			t.Fatalf("redrive: failures %v", failed)
		}
		check("after the redrive of the dead letter")
		if failed := handle(t, p, recs); len(failed) > 0 {
			t.Fatalf("everything again: failures %v", failed)
		}
		check("after everything again")
	})
}
