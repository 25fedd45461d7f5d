// Package streams is the stream function: it reads the member event log's
// change stream and keeps snapshots up, so that every load stays one Query.
// The same handler runs in Lambda, behind a poller of DynamoDB Local's
// stream, and in-process behind the embedded store.
package streams

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
)

// Store is what the processor needs of the event store.
type Store interface {
	licensing.EventStore
	licensing.SnapshotStore
}

// Processor handles batches of stream records.
type Processor struct {
	Store Store
	// SnapshotEvery: a member gets a snapshot each time its log crosses a
	// multiple of this many events.
	SnapshotEvery int
	// Counters, when set, gets every event's counter changes, once per event.
	Counters licensing.CounterStore
	Log      *slog.Logger
}

// record is one decoded stream record.
type record struct {
	seq     string
	member  string
	event   licensing.StoredEvent
	decoded licensing.Event
}

// Handle implements the Lambda handler. Records are grouped by member and
// handled in order; a member's first failure stops that member (its later
// records are not handled out of order) and is reported by the record's
// sequence number, so Lambda retries from there. Other members go on. It
// never fails the whole batch for one member.
func (p *Processor) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	var order []string
	byMember := map[string][]record{}
	failedAt := map[string]string{} // member → sequence number of its first failure
	for _, r := range ev.Records {
		seq := r.Change.SequenceNumber
		rec, ok, err := decode(r)
		member := rec.member
		if member == "" {
			member = "?" + seq // unreadable keys: a failure of its own
		}
		if _, seen := byMember[member]; !seen {
			order = append(order, member)
			byMember[member] = nil
		}
		switch {
		case failedAt[member] != "":
			// Stop at the member's first failure: nothing after it, in order.
		case err != nil:
			failedAt[member] = seq
			p.log().ErrorContext(ctx, "unreadable stream record", "sequence", seq, "member", licensing.Pseudonym(rec.member), "error", err)
		case ok:
			byMember[member] = append(byMember[member], rec)
		}
	}
	var resp events.DynamoDBEventResponse
	for _, m := range order {
		seq := failedAt[m]
		if recs := byMember[m]; len(recs) > 0 {
			if err := p.snapshot(ctx, m, recs); err != nil {
				// Retry from the member's first record; snapshots and counts
				// are idempotent, so handling them again is harmless.
				p.log().ErrorContext(ctx, "snapshot failed", "sequence", recs[0].seq, "member", licensing.Pseudonym(m), "error", err)
				seq = recs[0].seq
			} else if r, err := p.count(ctx, m, recs); err != nil {
				p.log().ErrorContext(ctx, "counting failed", "sequence", r.seq, "member", licensing.Pseudonym(m), "error", err)
				seq = r.seq
			}
		}
		if seq != "" {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: seq})
		}
	}
	return resp, nil
}

// decode reads one record. ok is false for records that are not events
// (the template's filter keeps them out; locally they may get here).
func decode(r events.DynamoDBEventRecord) (record, bool, error) {
	rec := record{seq: r.Change.SequenceNumber}
	if pk, ok := r.Change.Keys["pk"]; ok && pk.DataType() == events.DataTypeString {
		rec.member, _ = strings.CutPrefix(pk.String(), "m#")
	}
	if r.EventName != "INSERT" {
		return rec, false, nil
	}
	item, err := ToSDK(r.Change.NewImage)
	if err != nil {
		return rec, false, err
	}
	e, ok, err := dynamo.UnmarshalStoredEvent(item)
	if err != nil || !ok {
		return rec, false, err
	}
	// Upcast and decode now: a record that cannot be read is a poison
	// record, reported rather than skipped.
	decoded, err := licensing.DecodeEvent(e)
	if err != nil {
		return rec, false, err
	}
	rec.event, rec.decoded = e, decoded
	return rec, true, nil
}

// count applies the counter changes of a member's records in order, each
// once (its token is the member and version); on a failure it returns the
// record that failed.
func (p *Processor) count(ctx context.Context, member string, recs []record) (record, error) {
	if p.Counters == nil {
		return record{}, nil
	}
	for _, r := range recs {
		deltas := licensing.CounterDeltas(r.decoded)
		if len(deltas) == 0 {
			continue
		}
		if err := p.Counters.AddCounts(ctx, fmt.Sprintf("%s#%d", member, r.event.Version), deltas); err != nil {
			return r, err
		}
	}
	return record{}, nil
}

// snapshot writes a member's snapshot when its records cross a multiple of
// SnapshotEvery: one Query and one conditional write per crossing.
func (p *Processor) snapshot(ctx context.Context, member string, recs []record) error {
	every := int64(max(p.SnapshotEvery, 1))
	first, last := recs[0].event.Version, recs[len(recs)-1].event.Version
	if (first-1)/every == last/every {
		return nil
	}
	str, err := p.Store.Load(ctx, member, licensing.LoadOptions{SnapshotSchema: licensing.StateSchema, Consistent: true})
	if err != nil {
		return fmt.Errorf("load %s: %w", member, err)
	}
	st := licensing.NewState(member)
	if str.Snapshot != nil {
		restored, ok, err := licensing.RestoreSnapshot(*str.Snapshot)
		if err != nil || !ok {
			if str, err = p.Store.Load(ctx, member, licensing.LoadOptions{Consistent: true}); err != nil {
				return fmt.Errorf("load %s without snapshot: %w", member, err)
			}
		} else {
			st = restored
		}
	}
	if str.Snapshot != nil && str.Snapshot.Version >= last {
		return nil // another delivery got here first
	}
	for _, e := range str.Events {
		st.Apply(e)
	}
	snap, err := licensing.EncodeSnapshot(st)
	if err != nil {
		return err
	}
	if _, err := p.Store.SaveSnapshot(ctx, snap); err != nil {
		return fmt.Errorf("save snapshot of %s v%d: %w", member, snap.Version, err)
	}
	return nil
}

func (p *Processor) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}
