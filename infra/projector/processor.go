// Package projector is the stream function: it projects the table's change
// stream into the read side. The Processor is the stream adapter: it
// decodes each record at the edge (dynamo.DecodeChange: the key layout
// stays there), groups the records by partition in stream order, runs each
// Projection over the batch and reports the records that failed. Each
// projection owns one read model and its writes: Snapshots keep every load
// one Query; Counts and Holders count licences and index title holders;
// Erasures carry out erasures of viewing data; Viewing keeps resume
// points, history entries, recently watched rows and engagement up from
// screen writes and offline playback uploads. setup chooses which run.
// Lambda runs Processor.Handle behind the template's event source mapping;
// local runs and tests drive the same handler through infra/ops/eventsource.
package projector

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/dynamo"
)

// Record is one stream record, decoded: an event appended to a member's
// log, a write of one of the member's screens, or the start of an erasure
// of the member's viewing data (exactly one is set).
type Record struct {
	// Seq is the record's sequence number, by which a failure is reported.
	Seq    string
	Member string
	// Event is the event appended, upcast and decoded.
	Event *licensing.Event
	// View is what the screen slot holds after the write.
	View *viewing.View
	// Erasure is the time as of which the member's viewing data is erased.
	Erasure time.Time
}

// Partition is the readable records of one partition of a batch (a
// member's log, or a member's viewing data), in stream order.
type Partition struct {
	Member  string
	Records []Record
}

// Batch is a batch's partitions, in the order each first appears.
type Batch []Partition

// Failure is a record a projection could not apply, and why.
type Failure struct {
	Record Record
	// What names what failed, for the log ("snapshot", "counting", …).
	What string
	Err  error
}

// A Projection keeps one read model up from the change stream. Project
// applies what a batch says to it, each record once however often and
// however late it is delivered. It returns the records it failed at (each
// is logged; the first of a partition counts): in each partition it applies
// nothing after its first failure, and Lambda delivers the partition again
// from there. An error fails the whole batch.
type Projection interface {
	Project(ctx context.Context, b Batch) ([]Failure, error)
}

// Processor handles batches of stream records: it decodes them and runs its
// projections, in order, over them. A projection sees each partition only
// up to the first failure of the projections before it, so that nothing
// is applied ahead of a record that failed.
type Processor struct {
	Projections []Projection
	Log         *slog.Logger
}

// New returns a processor running projections in order.
func New(log *slog.Logger, projections ...Projection) *Processor {
	return &Processor{Projections: projections, Log: log}
}

// Handle implements the Lambda handler. Records are grouped by partition and
// handled in order; a partition's first failure stops it (its later records
// are not handled out of order) and is reported by the record's sequence
// number, so that Lambda retries from there. Other partitions go on: it
// never fails the whole batch for one member.
func (p *Processor) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	var order []string // partition keys, as they first appear
	parts := map[string]*Partition{}
	failedAt := map[string]string{} // partition → sequence number of its first failure
	of := map[string]string{}       // sequence number → partition
	for _, r := range ev.Records {
		seq := r.Change.SequenceNumber
		rec, key, ok, err := decode(r)
		if _, seen := parts[key]; !seen {
			order = append(order, key)
			parts[key] = &Partition{Member: rec.Member}
		}
		of[seq] = key
		switch {
		case failedAt[key] != "":
			// Stop at the partition's first failure: nothing after it, in order.
		case err != nil:
			failedAt[key] = seq
			p.log().ErrorContext(ctx, "unreadable stream record", "sequence", seq, "member", kernel.Pseudonym(rec.Member), "error", err)
		case ok:
			parts[key].Records = append(parts[key].Records, rec)
		}
	}
	for _, proj := range p.Projections {
		batch := make(Batch, 0, len(order))
		for _, key := range order {
			if part := parts[key]; len(part.Records) > 0 {
				batch = append(batch, *part)
			}
		}
		failures, err := proj.Project(ctx, batch)
		if err != nil {
			return events.DynamoDBEventResponse{}, err
		}
		for _, f := range failures {
			key, ok := of[f.Record.Seq]
			if !ok {
				continue
			}
			p.log().ErrorContext(ctx, f.What+" failed", "sequence", f.Record.Seq, "member", kernel.Pseudonym(f.Record.Member), "error", f.Err)
			if failedAt[key] == "" || CompareSeq(f.Record.Seq, failedAt[key]) < 0 {
				failedAt[key] = f.Record.Seq
			}
			part := parts[key]
			for i, r := range part.Records {
				if CompareSeq(r.Seq, f.Record.Seq) >= 0 {
					part.Records = part.Records[:i]
					break
				}
			}
		}
	}
	var resp events.DynamoDBEventResponse
	for _, key := range order {
		if seq := failedAt[key]; seq != "" {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: seq})
		}
	}
	return resp, nil
}

// decode reads one record, and the partition it belongs to ("?" and its
// sequence number for a record whose member cannot be read: a failure of
// its own). ok is false for records that are neither events, screen writes
// nor erasures (the template's filter keeps them out; locally they may get
// here).
func decode(r events.DynamoDBEventRecord) (Record, string, bool, error) {
	rec := Record{Seq: r.Change.SequenceNumber}
	keys, err := ToSDK(r.Change.Keys)
	if err != nil {
		return rec, "?" + rec.Seq, false, err
	}
	image, err := ToSDK(r.Change.NewImage)
	var c dynamo.Change
	ok := false
	if err == nil {
		c, ok, err = dynamo.DecodeChange(r.EventName, keys, image)
	} else {
		c, _, _ = dynamo.DecodeChange("", keys, nil)
	}
	rec.Member, rec.Event, rec.View, rec.Erasure = c.Member, c.Event, c.View, c.Erasure
	if c.Member == "" {
		return rec, "?" + rec.Seq, false, err
	}
	return rec, c.Partition, ok, err
}

func (p *Processor) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}
