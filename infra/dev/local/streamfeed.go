package local

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/changestream"
	"github.com/dlicense/dlicense/infra/memstore"
	"github.com/dlicense/dlicense/infra/ops/eventsource"
	"github.com/dlicense/dlicense/infra/projector/projectortest"
)

// Retries of the in-process feed: short, since an append waits for them.
const (
	memoryRetries = eventsource.DefaultRetries
	memoryBackoff = 10 * time.Millisecond
)

// FeedFromMemory runs the stream function in-process behind the embedded
// store, as Lambda runs it behind the table's stream: every later append
// and screen write becomes the events.DynamoDBEvent DynamoDB Streams would
// carry for it (INSERT or MODIFY records with increasing 21-digit sequence
// numbers, filtered by changestream.EventFilters; erasures too), handed to h as JSON. Batch item failures are retried from
// the first failed record a few times, then logged and dropped.
//
// Delivery is synchronous, one append at a time, in write order: when an
// append returns (without appends overlapping it), its snapshot, if due, is
// written. The handler may use the store; saving a snapshot does not feed
// the stream.
func FeedFromMemory(store *memstore.Store, h lambda.Handler, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	filter, err := changestream.ParseFilters(changestream.EventFilters...)
	if err != nil {
		panic(err) // a constant
	}
	// The store calls one subscriber at a time, so seq needs no lock; its
	// mutex orders the calls.
	var seq int64
	store.Subscribe(func(stream string, stored []licensing.StoredEvent) {
		ctx := context.Background()
		recs := make([]events.DynamoDBEventRecord, 0, len(stored))
		for _, e := range stored {
			seq++
			r, err := projectortest.InsertRecord(stream, e, fmt.Sprintf("%021d", seq))
			if err != nil {
				log.ErrorContext(ctx, "stream record not built", "member", kernel.Pseudonym(stream), "version", e.Version, "error", err)
				continue
			}
			if filter.Match(r) {
				recs = append(recs, r)
			}
		}
		deliver(ctx, h, log, stream, recs)
	})
	store.SubscribeErasures(func(e viewing.Erasure) {
		ctx := context.Background()
		seq++
		r, err := projectortest.ErasureRecord(e.Member, e.At, fmt.Sprintf("%021d", seq))
		if err != nil {
			log.ErrorContext(ctx, "stream record not built", "member", kernel.Pseudonym(e.Member), "error", err)
			return
		}
		if filter.Match(r) {
			deliver(ctx, h, log, e.Member, []events.DynamoDBEventRecord{r})
		}
	})
	store.SubscribeScreens(func(c memstore.ScreenChange) {
		ctx := context.Background()
		seq++
		r, err := projectortest.ScreenRecord(c.Member, &c.View, c.Insert, fmt.Sprintf("%021d", seq))
		if err != nil {
			log.ErrorContext(ctx, "stream record not built", "member", kernel.Pseudonym(c.Member), "view", c.View.ID, "error", err)
			return
		}
		if filter.Match(r) {
			deliver(ctx, h, log, c.Member, []events.DynamoDBEventRecord{r})
		}
	})
}

// deliver hands one write's records to the stream function, retrying from
// the first failed record a few times, then logging and dropping the rest.
func deliver(ctx context.Context, h lambda.Handler, log *slog.Logger, member string, recs []events.DynamoDBEventRecord) {
	for attempt := 0; len(recs) > 0; attempt++ {
		failed, err := changestream.Invoke(ctx, h, recs)
		if err == nil {
			return
		}
		recs = recs[failed:]
		if attempt == memoryRetries {
			log.ErrorContext(ctx, "stream function failed; records dropped", "member", kernel.Pseudonym(member),
				"first", recs[0].Change.SequenceNumber, "records", len(recs), "error", err)
			return
		}
		delay := memoryBackoff << attempt
		log.WarnContext(ctx, "stream function failed; retrying", "member", kernel.Pseudonym(member),
			"sequence", recs[0].Change.SequenceNumber, "attempt", attempt+1, "in", delay, "error", err)
		time.Sleep(delay)
	}
}
