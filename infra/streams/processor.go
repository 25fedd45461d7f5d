// Package streams is the stream function: it reads the table's change
// stream and keeps snapshots up, so that every load stays one Query; it
// counts licences, and keeps resume points up from screen writes and
// offline playback uploads. The same handler runs in Lambda, behind a poller
// of DynamoDB Local's stream, and in-process behind the embedded store.
package streams

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
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
	// Policy is the policy snapshots are kept for (their acquisition times
	// are those its quotas can look at): the API's. Nil means the shipped one.
	Policy *licensing.Policy
	// Counters, when set, gets every event's counter changes, once per event.
	Counters licensing.CounterStore
	// Progress, when set, gets what heartbeats, stops and offline playback
	// uploads add to resume points, once each.
	Progress viewing.ProgressStore
	Log      *slog.Logger
}

// record is one decoded stream record: an event appended to a member's
// licensing log, or a write of one of the member's screens (view).
type record struct {
	seq     string
	member  string
	event   licensing.StoredEvent
	decoded licensing.Event
	view    *viewing.View
}

// Handle implements the Lambda handler. Records are grouped by partition
// (a member's licensing log, a member's screens) and handled in order; a
// partition's first failure stops it (its later records are not handled out
// of order) and is reported by the record's sequence number, so Lambda
// retries from there. Other partitions go on. It never fails the whole
// batch for one member.
func (p *Processor) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	var order []string
	byMember := map[string][]record{}
	failedAt := map[string]string{} // partition → sequence number of its first failure
	for _, r := range ev.Records {
		seq := r.Change.SequenceNumber
		rec, ok, err := decode(r)
		key := partition(r)
		if rec.member == "" {
			key = "?" + seq // unreadable keys: a failure of its own
		}
		if _, seen := byMember[key]; !seen {
			order = append(order, key)
			byMember[key] = nil
		}
		switch {
		case failedAt[key] != "":
			// Stop at the partition's first failure: nothing after it, in order.
		case err != nil:
			failedAt[key] = seq
			p.log().ErrorContext(ctx, "unreadable stream record", "sequence", seq, "member", licensing.Pseudonym(rec.member), "error", err)
		case ok:
			byMember[key] = append(byMember[key], rec)
		}
	}
	var counted []licensing.Counted
	firstCounted := map[string]record{} // member → its first record that counts
	for _, key := range order {
		recs := byMember[key]
		if len(recs) > 0 && recs[0].view != nil {
			if r, err := p.screens(ctx, recs[0].member, recs); err != nil {
				p.log().ErrorContext(ctx, "resume points failed", "sequence", r.seq, "member", licensing.Pseudonym(r.member), "error", err)
				failedAt[key] = r.seq
			}
		} else if len(recs) > 0 {
			m := recs[0].member
			if err := p.snapshot(ctx, m, recs); err != nil {
				// Retry from the member's first record; snapshots, counts and
				// resume points are idempotent, so handling them again is harmless.
				p.log().ErrorContext(ctx, "snapshot failed", "sequence", recs[0].seq, "member", licensing.Pseudonym(m), "error", err)
				failedAt[key] = recs[0].seq
			} else if r, err := p.offline(ctx, m, recs); err != nil {
				p.log().ErrorContext(ctx, "resume points failed", "sequence", r.seq, "member", licensing.Pseudonym(m), "error", err)
				failedAt[key] = r.seq
			} else if p.Counters != nil {
				c := licensing.Counted{Member: m}
				for _, r := range recs {
					if d := licensing.CounterDeltas(r.decoded); len(d) > 0 {
						if len(c.Changes) == 0 {
							firstCounted[m] = r
						}
						c.Changes = append(c.Changes, licensing.Changes{Version: r.event.Version, Deltas: d})
					}
				}
				if len(c.Changes) > 0 {
					counted = append(counted, c)
				}
			}
		}
	}
	// The counter changes of the whole batch, summed: a few transactions.
	if len(counted) > 0 {
		failed, err := p.Counters.AddCounts(ctx, counted)
		for _, m := range failed {
			r := firstCounted[m]
			p.log().ErrorContext(ctx, "counting failed", "sequence", r.seq, "member", licensing.Pseudonym(m), "error", err)
			if key := dynamo.PartitionKey(m); failedAt[key] == "" || compareSeq(r.seq, failedAt[key]) < 0 {
				failedAt[key] = r.seq
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

// partition is a record's partition key ("" if it has none).
func partition(r events.DynamoDBEventRecord) string {
	if pk, ok := r.Change.Keys["pk"]; ok && pk.DataType() == events.DataTypeString {
		return pk.String()
	}
	return ""
}

// decode reads one record. ok is false for records that are neither events
// nor screen writes (the template's filter keeps them out; locally they
// may get here).
func decode(r events.DynamoDBEventRecord) (record, bool, error) {
	rec := record{seq: r.Change.SequenceNumber}
	pk := partition(r)
	if m, ok := strings.CutPrefix(pk, "v#"); ok {
		rec.member = m
		if r.EventName != "INSERT" && r.EventName != "MODIFY" {
			return rec, false, nil
		}
		item, err := ToSDK(r.Change.NewImage)
		if err != nil {
			return rec, false, err
		}
		member, v, ok, err := dynamo.UnmarshalScreen(item)
		if err != nil || !ok {
			return rec, false, err
		}
		if member != rec.member {
			return rec, false, fmt.Errorf("screen item of %s in the partition of %s", licensing.Pseudonym(member), licensing.Pseudonym(rec.member))
		}
		rec.view = v
		return rec, true, nil
	}
	rec.member, _ = strings.CutPrefix(pk, "m#")
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

// offline applies what a member's offline playback uploads add to resume
// points, record by record, each once. On a failure it returns the record
// that failed: the records before it are done.
func (p *Processor) offline(ctx context.Context, member string, recs []record) (record, error) {
	if p.Progress == nil {
		return record{}, nil
	}
	for _, r := range recs {
		for _, pr := range viewing.OfflineProgress(r.decoded) {
			if err := p.Progress.AddProgress(ctx, member, []viewing.Progress{pr}); err != nil {
				return r, err
			}
		}
	}
	return record{}, nil
}

// screens applies what a member's screen writes report to resume points:
// one AddProgress per resume point, with its records in order. On a
// failure it returns the first record of the resume point that failed.
func (p *Processor) screens(ctx context.Context, member string, recs []record) (record, error) {
	if p.Progress == nil {
		return record{}, nil
	}
	type point struct{ profile, title string }
	var order []point
	firsts := map[point]record{}
	byPoint := map[point][]viewing.Progress{}
	for _, r := range recs {
		pr, ok := viewing.ProgressOf(r.view, r.seq)
		if !ok {
			continue
		}
		k := point{pr.Profile, pr.Title}
		if _, seen := byPoint[k]; !seen {
			order = append(order, k)
			firsts[k] = r
		}
		byPoint[k] = append(byPoint[k], pr)
	}
	var failed record
	var firstErr error
	for _, k := range order {
		if err := p.Progress.AddProgress(ctx, member, byPoint[k]); err != nil && (firstErr == nil || compareSeq(firsts[k].seq, failed.seq) < 0) {
			failed, firstErr = firsts[k], err
		}
	}
	return failed, firstErr
}

// snapshot writes a member's snapshot when its records cross a multiple of
// SnapshotEvery: one eventually consistent load (a stale one only makes
// the snapshot older) and one conditional write per crossing.
func (p *Processor) snapshot(ctx context.Context, member string, recs []record) error {
	every := int64(max(p.SnapshotEvery, 1))
	first, last := recs[0].event.Version, recs[len(recs)-1].event.Version
	if (first-1)/every == last/every {
		return nil
	}
	st, held, err := licensing.LoadState(ctx, p.Store, member, p.policy(), false)
	if err != nil {
		return err
	}
	if held != nil && held.Schema == licensing.StateSchema && held.Version >= st.Version {
		return nil // nothing newer to write: another delivery got here first, or the read is stale
	}
	snap, err := licensing.EncodeSnapshot(st, p.policy())
	if err != nil {
		return err
	}
	if _, err := p.Store.SaveSnapshot(ctx, snap); err != nil {
		return fmt.Errorf("save snapshot of %s v%d: %w", licensing.Pseudonym(member), snap.Version, err)
	}
	return nil
}

// shippedPolicy is the shipped policy, parsed once.
var shippedPolicy = sync.OnceValue(licensing.DefaultPolicy)

func (p *Processor) policy() *licensing.Policy {
	if p.Policy != nil {
		return p.Policy
	}
	return shippedPolicy()
}

func (p *Processor) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}
