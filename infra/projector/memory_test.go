package projector_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/dev/memstore"
)

func TestFeedFromMemorySnapshotsInProcess(t *testing.T) {
	mem := memstore.New()
	p := processor(wiring{Store: mem, SnapshotEvery: 4})
	local.FeedFromMemory(mem, lambda.NewHandler(p.Handle), slog.New(&bufferHandler{}))
	seq := 0
	for _, c := range []struct {
		member string
		n      int
		want   int64
	}{
		{"m-six", 6, 4},
		{"m-twenty", 20, 20},
	} {
		history(t, mem, c.member, c.n, &seq)
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
			p := processor(wiring{Store: mem, SnapshotEvery: 4})
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
			log := &bufferHandler{}
			local.FeedFromMemory(mem, lambda.NewHandler(h), slog.New(log))
			seq := 0
			// Every append succeeds, whatever the stream function does; given
			// up, v4's snapshot waits for the next crossing (v8).
			history(t, mem, "m-fail", 6, &seq)
			if v := snapshotVersion(t, mem, "m-fail"); v != c.want {
				t.Errorf("snapshot v%d, want v%d", v, c.want)
			}
			if !strings.Contains(log.String(), c.log) {
				t.Errorf("log %q, want %q", log.String(), c.log)
			}
		})
	}
}
