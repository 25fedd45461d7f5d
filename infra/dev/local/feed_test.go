package local_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/memstore"
	"github.com/dlicense/dlicense/infra/ops/eventsource"
	"github.com/dlicense/dlicense/infra/projector/projectortest"
	"github.com/dlicense/dlicense/infra/setup"
	"github.com/dlicense/dlicense/infra/tokens"
)

func TestFeedFromMemorySnapshotsInProcess(t *testing.T) {
	mem := memstore.New()
	p := setup.NewProcessor(setup.Stores{Events: mem}, 4, nil)
	local.FeedFromMemory(mem, lambda.NewHandler(p.Handle), slog.New(slog.NewTextHandler(io.Discard, nil)))
	seq := 0
	for _, c := range []struct {
		member string
		n      int
		want   int64
	}{
		{"m-six", 6, 4},
		{"m-twenty", 20, 20},
	} {
		projectortest.Log(t, mem, c.member, c.n, &seq)
		// Delivery is synchronous: the snapshot is there when the append returns.
		str, err := mem.Load(context.Background(), c.member, licensing.LoadOptions{SnapshotSchema: licensing.StateSchema})
		if err != nil {
			t.Fatal(err)
		}
		if str.Snapshot == nil || str.Snapshot.Version != c.want || int64(len(str.Events)) != int64(c.n)-c.want {
			t.Errorf("%s after %d appends: snapshot %+v and %d events, want snapshot v%d", c.member, c.n, str.Snapshot, len(str.Events), c.want)
		}
	}
}

func TestFeedFromMemoryRetriesFailures(t *testing.T) {
	for _, c := range []struct {
		name     string
		failures int   // invocations that fail
		want     int64 // snapshot version
		log      string
	}{
		{"once", 1, 4, "retrying"},
		{"always", 1000, 0, "records dropped"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := memstore.New()
			p := setup.NewProcessor(setup.Stores{Events: mem}, 4, nil)
			var (
				mu    sync.Mutex
				calls int
			)
			// Fails at v4, the record that makes the snapshot.
			h := func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
				mu.Lock()
				defer mu.Unlock()
				for i, r := range ev.Records {
					if r.Change.NewImage["v"].Number() == "4" && calls < c.failures {
						calls++
						resp, err := p.Handle(ctx, events.DynamoDBEvent{Records: ev.Records[:i]})
						resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: r.Change.SequenceNumber})
						return resp, err
					}
				}
				return p.Handle(ctx, ev)
			}
			log := &lockedBuffer{}
			local.FeedFromMemory(mem, lambda.NewHandler(h), slog.New(slog.NewTextHandler(log, nil)))
			seq := 0
			// Every append succeeds, whatever the stream function does; given
			// up, v4's snapshot waits for the next crossing (v8).
			projectortest.Log(t, mem, "m-fail", 6, &seq)
			if v := projectortest.SnapshotVersion(t, mem, "m-fail"); v != c.want {
				t.Errorf("snapshot v%d, want v%d", v, c.want)
			}
			if !strings.Contains(log.String(), c.log) {
				t.Errorf("log %q, want %q", log.String(), c.log)
			}
		})
	}
}

// TestLocalRunKeepsSnapshots wires the stream function as dlicense-local
// does, on both stores, and checks the API's writes get snapshots.
func TestLocalRunKeepsSnapshots(t *testing.T) {
	key, err := tokens.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	for _, store := range []string{"memory", "dynamo"} {
		t.Run(store, func(t *testing.T) {
			ctx := context.Background()
			cfg := setup.Config{SigningKeys: key.Encode(), Issuer: "i", PlanClaim: "plan", QuietMetrics: true}
			if store == "dynamo" {
				_, table := dynamotest.Table(t)
				endpoint, _ := dynamotest.EndpointFromEnv()
				cfg.Dynamo = dynamo.Config{Table: table, Endpoint: endpoint, AttemptTimeout: sharedStoreDeadline}
				cfg.RequestBudget, cfg.AdminBudget = sharedStoreDeadline, sharedStoreDeadline
			}
			parts, err := local.Build(ctx, store, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var poller *eventsource.Poller
			if parts.Memory != nil {
				local.FeedFromMemory(parts.Memory, lambda.NewHandler(parts.Processor().Handle), slog.New(slog.NewTextHandler(io.Discard, nil)))
			} else if poller, err = parts.StreamPoller(ctx); err != nil {
				t.Fatal(err)
			}
			s := parts.Stores.Events
			seq := 0
			projectortest.Log(t, s, "m-local", 9, &seq) // through a licensing.Service over the same store
			if poller != nil {
				if err := poller.CatchUp(ctx); err != nil {
					t.Fatalf("CatchUp() = %v", err)
				}
			}
			// v8 in-process; v9 (the head) when the poller catches up later.
			if v := projectortest.SnapshotVersion(t, s, "m-local"); v < 8 {
				t.Errorf("snapshot v%d, want at least v8", v)
			}
		})
	}
}

// lockedBuffer is a buffer log lines may be written to from any goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
