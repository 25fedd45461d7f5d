package projector_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/changestream"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/ops/eventsource"
	"github.com/dlicense/dlicense/infra/projector/projectortest"
	"github.com/dlicense/dlicense/infra/setup"
)

// localTable creates a table from the template on DynamoDB Local.
func localTable(t testing.TB) (*dynamodb.Client, dynamo.Config) {
	t.Helper()
	db, table := dynamotest.Table(t)
	endpoint, _ := dynamotest.EndpointFromEnv()
	return db, dynamo.Config{Endpoint: endpoint, Table: table}
}

// localPoller polls the table's stream as dlicense-local does.
func localPoller(t testing.TB, db *dynamodb.Client, cfg dynamo.Config, h lambda.Handler) *eventsource.Poller {
	t.Helper()
	ctx := context.Background()
	arn, err := changestream.LatestStreamArn(ctx, db, cfg.Table)
	if err != nil {
		t.Fatal(err)
	}
	client, err := changestream.NewClient(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	filter, err := changestream.ParseFilters(changestream.EventFilters...)
	if err != nil {
		t.Fatal(err)
	}
	return &eventsource.Poller{Streams: client, StreamArn: arn, Handler: h, Filter: filter,
		Interval: 10 * time.Millisecond, Backoff: 10 * time.Millisecond}
}

// appendLog appends n events for member in appends of 100: one download,
// then renewals.
func appendLog(t *testing.T, store *dynamo.Log, member string, n int64) {
	t.Helper()
	at := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	for from := int64(1); from <= n; from += 100 {
		var evs []licensing.Event
		for v := from; v < from+100 && v <= n; v++ {
			var pl licensing.Payload = &licensing.LicenceRenewed{Licence: "L1", Plan: "premium", ExpiresAt: at.Add(time.Duration(v) * time.Hour), Renewal: int(v - 1)}
			if v == 1 {
				pl = &licensing.LicenceAcquired{Licence: "L1", Plan: "premium", Title: "tt-first-light", Studio: "open-reel", Device: "d1", ExpiresAt: at.Add(720 * time.Hour)}
			}
			evs = append(evs, licensing.Event{Version: v, At: at.Add(time.Duration(v) * time.Minute), PolicyVersion: "p", Payload: pl})
		}
		if err := store.Append(context.Background(), member, from-1, evs); err != nil {
			t.Fatal(err)
		}
	}
}

func catchUpSlowly(t *testing.T, p *eventsource.Poller) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	if err := p.CatchUp(ctx); err != nil {
		t.Fatalf("CatchUp() = %v", err)
	}
	t.Logf("caught up in %v", time.Since(start).Round(time.Millisecond))
	if d := p.DeadLetters(); len(d) != 0 {
		t.Errorf("DeadLetters() = %d batches, want none: %v", len(d), d[0].Err)
	}
}

func TestPollerKeepsLoadsToOneQuery(t *testing.T) {
	db, cfg := localTable(t)
	store := dynamo.OneTable(db, cfg.Table).Log
	const member, n = "m-long", 2000
	appendLog(t, store, member, n)

	p := setup.NewProcessor(setup.Stores{Events: store}, 4, nil)
	catchUpSlowly(t, localPoller(t, db, cfg, lambda.NewHandler(p.Handle)))

	var meter dynamo.Meter
	str, err := store.Load(dynamo.WithMeter(context.Background(), &meter), member, licensing.LoadOptions{SnapshotSchema: licensing.StateSchema})
	if err != nil {
		t.Fatal(err)
	}
	if u := meter.Usage(); u.RoundTrips != 1 {
		t.Errorf("Load took %d round trips, want 1", u.RoundTrips)
	}
	if str.Snapshot == nil || len(str.Events) >= 4 || str.Snapshot.Version+int64(len(str.Events)) != n {
		t.Fatalf("Load = snapshot %+v and %d events, want a snapshot near v%d", str.Snapshot, len(str.Events), n)
	}
	st, ok, err := licensing.RestoreSnapshot(*str.Snapshot, licensing.DefaultPolicy())
	if err != nil || !ok {
		t.Fatalf("RestoreSnapshot = %v, %v", ok, err)
	}
	for _, e := range str.Events {
		st.Apply(e)
	}
	if st.Version != n {
		t.Errorf("state at v%d, want v%d", st.Version, n)
	}
}

func TestPollerRedeliversFromFailedRecord(t *testing.T) {
	db, cfg := localTable(t)
	store := dynamo.OneTable(db, cfg.Table).Log
	const member = "m-retry"
	appendLog(t, store, member, 30)

	p := setup.NewProcessor(setup.Stores{Events: store}, 4, nil)
	var (
		mu     sync.Mutex
		calls  [][]string
		failed = -1 // the invocation that failed
		target string
		others []string // records the filter should have kept out
	)
	// Fails once at the record of v15, as the processor reports a failure:
	// the records before it handled, none after.
	h := func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		var seqs []string
		for _, r := range ev.Records {
			seqs = append(seqs, r.Change.SequenceNumber)
			if kind := r.Change.NewImage["it"]; r.EventName != "INSERT" || kind.DataType() != events.DataTypeString || kind.String() != "event" {
				others = append(others, r.EventName+" "+r.Change.SequenceNumber)
			}
		}
		calls = append(calls, seqs)
		for i, r := range ev.Records {
			if r.Change.NewImage["v"].Number() == "15" && failed < 0 {
				failed, target = len(calls)-1, r.Change.SequenceNumber
				resp, err := p.Handle(ctx, events.DynamoDBEvent{Records: ev.Records[:i]})
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: target})
				return resp, err
			}
		}
		return p.Handle(ctx, ev)
	}
	poller := localPoller(t, db, cfg, lambda.NewHandler(h))
	poller.BatchSize = 10
	catchUpSlowly(t, poller)

	if failed < 0 || failed+1 >= len(calls) {
		t.Fatalf("invocations %v: no failure at v15 and retry", calls)
	}
	if retry := calls[failed+1]; retry[0] != target {
		t.Errorf("retry delivered %v, want it to start at %s", retry, target)
	}
	count := map[string]int{}
	for _, c := range calls {
		for _, s := range c {
			count[s]++
		}
	}
	if len(count) != 30 {
		t.Errorf("%d records delivered, want 30", len(count))
	}
	i := slices.Index(calls[failed], target)
	for _, s := range calls[failed][:i] {
		if count[s] != 1 {
			t.Errorf("record %s before the failure delivered %d times, want once", s, count[s])
		}
	}
	for _, s := range calls[failed][i:] {
		if count[s] != 2 {
			t.Errorf("record %s from the failure on delivered %d times, want twice", s, count[s])
		}
	}
	if len(others) > 0 {
		t.Errorf("the filter let through %v", others)
	}
	if v := projectortest.SnapshotVersion(t, store, member); v != 30 {
		t.Errorf("snapshot v%d, want v30", v)
	}
}
