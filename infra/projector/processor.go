// Package projector is the stream function: it projects the table's change
// stream into the read side. It keeps snapshots up, so that every load stays
// one Query; it counts licences and indexes title holders; and it keeps
// resume points, history entries, recently watched rows and engagement
// counts up from screen writes and offline playback uploads. Lambda runs
// Processor.Handle behind the template's event source mapping; local runs
// and tests drive the same handler through infra/ops/eventsource.
package projector

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dlicense/dlicense/domain/kernel"
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
	// Holders, when set, gets the members that acquire each title, for a
	// withdrawal to find them.
	Holders licensing.HolderStore
	// Progress, when set, gets what heartbeats, stops and offline playback
	// uploads add to resume points, once each.
	Progress viewing.ProgressStore
	// History, when set with Progress, gets the views that start and end:
	// history entries, the recently watched rows and engagement counts.
	History viewing.HistoryStore
	Log     *slog.Logger
}

// record is one decoded stream record: an event appended to a member's
// licensing log, or a write of one of the member's screens (view).
type record struct {
	seq     string
	member  string
	event   licensing.StoredEvent
	decoded licensing.Event
	view    *viewing.View
	// erasure, when set, is the time as of which the member's viewing data
	// is to be erased.
	erasure time.Time
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
			p.log().ErrorContext(ctx, "unreadable stream record", "sequence", seq, "member", kernel.Pseudonym(rec.member), "error", err)
		case ok:
			byMember[key] = append(byMember[key], rec)
		}
	}
	var counted []licensing.Counted
	firstCounted := map[string]record{} // member → its first record that counts
	var holders []licensing.Holder
	firstHolder := map[string]record{} // member → its first record that makes it a holder
	var vc viewChanges
	if p.History != nil && p.Progress != nil {
		// Erasures of the members of the batch: what any record says of a
		// view started before one is dropped.
		seen := map[string]bool{}
		var members []string
		for _, key := range order {
			recs := byMember[key]
			if len(recs) == 0 || seen[recs[0].member] || !slices.ContainsFunc(recs, viewingRecord) {
				continue
			}
			seen[recs[0].member] = true
			members = append(members, recs[0].member)
		}
		erased, err := p.History.Erasures(ctx, members)
		if err != nil {
			return events.DynamoDBEventResponse{}, fmt.Errorf("read the erasures of %d members: %w", len(members), err)
		}
		vc.erased = erased
	}
	for _, key := range order {
		recs := byMember[key]
		if len(recs) > 0 && (recs[0].view != nil || !recs[0].erasure.IsZero()) {
			if r, err := p.screens(ctx, recs[0].member, recs, &vc); err != nil {
				p.log().ErrorContext(ctx, "resume points failed", "sequence", r.seq, "member", kernel.Pseudonym(r.member), "error", err)
				failedAt[key] = r.seq
			}
		} else if len(recs) > 0 {
			m := recs[0].member
			if err := p.snapshot(ctx, m, recs); err != nil {
				// Retry from the member's first record; snapshots, counts and
				// resume points are idempotent, so handling them again is harmless.
				p.log().ErrorContext(ctx, "snapshot failed", "sequence", recs[0].seq, "member", kernel.Pseudonym(m), "error", err)
				failedAt[key] = recs[0].seq
			} else if r, err := p.offline(ctx, m, recs, vc.erased[m]); err != nil {
				p.log().ErrorContext(ctx, "resume points failed", "sequence", r.seq, "member", kernel.Pseudonym(m), "error", err)
				failedAt[key] = r.seq
			} else if p.Counters != nil || p.Holders != nil {
				for _, r := range recs {
					for _, h := range licensing.HoldersOf(m, r.decoded) {
						holders = append(holders, h)
						if _, ok := firstHolder[m]; !ok {
							firstHolder[m] = r
						}
					}
				}
				if p.Counters == nil {
					continue
				}
				c := licensing.Counted{Member: m, From: recs[0].event.Version}
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
	// The history changes of the whole batch: a few transactions.
	for m, r := range p.recordViews(ctx, &vc) {
		if key := dynamo.ViewingPartition(m); failedAt[key] == "" || CompareSeq(r.seq, failedAt[key]) < 0 {
			failedAt[key] = r.seq
		}
	}
	// The holders the batch's grants make, in a few batch writes.
	if p.Holders != nil && len(holders) > 0 {
		if err := p.Holders.AddHolders(ctx, holders); err != nil {
			for m, r := range firstHolder {
				p.log().ErrorContext(ctx, "holders failed", "sequence", r.seq, "member", kernel.Pseudonym(m), "error", err)
				if key := dynamo.LogPartition(m); failedAt[key] == "" || CompareSeq(r.seq, failedAt[key]) < 0 {
					failedAt[key] = r.seq
				}
			}
		}
	}
	// The counter changes of the whole batch, summed: a few transactions.
	if len(counted) > 0 {
		failed, err := p.Counters.AddCounts(ctx, counted)
		for _, m := range failed {
			r := firstCounted[m]
			p.log().ErrorContext(ctx, "counting failed", "sequence", r.seq, "member", kernel.Pseudonym(m), "error", err)
			if key := dynamo.LogPartition(m); failedAt[key] == "" || CompareSeq(r.seq, failedAt[key]) < 0 {
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

// viewingRecord reports whether a record says anything of viewing: a screen
// write, an erasure, or an offline playback upload.
func viewingRecord(r record) bool {
	_, upload := r.decoded.Payload.(*licensing.PlaybackRecorded)
	return r.view != nil || !r.erasure.IsZero() || upload
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
		if member, at, ok, err := dynamo.UnmarshalErasure(item); ok || err != nil {
			if err == nil && member != rec.member {
				err = fmt.Errorf("erasure of %s in the partition of %s", kernel.Pseudonym(member), kernel.Pseudonym(rec.member))
			}
			rec.erasure = at
			return rec, err == nil, err
		}
		member, v, ok, err := dynamo.UnmarshalScreen(item)
		if err != nil || !ok {
			return rec, false, err
		}
		if member != rec.member {
			return rec, false, fmt.Errorf("screen item of %s in the partition of %s", kernel.Pseudonym(member), kernel.Pseudonym(rec.member))
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
func (p *Processor) offline(ctx context.Context, member string, recs []record, erased time.Time) (record, error) {
	if p.Progress == nil {
		return record{}, nil
	}
	for _, r := range recs {
		if r.decoded.At.Before(erased) {
			continue // played before the member's viewing data was erased
		}
		for _, pr := range viewing.OfflineProgress(r.decoded) {
			if _, err := p.Progress.AddProgress(ctx, member, []viewing.Progress{pr}); err != nil {
				return r, err
			}
		}
	}
	return record{}, nil
}

// viewChanges is what a batch's screen writes change in the history read
// models: history entries opened and closed, with the record each came
// from, and the running totals to remove once their entries are recorded.
type viewChanges struct {
	changes []viewing.HistoryMemberChange
	from    []record
	closes  []closing
	// rows are closes recorded already, for the rows.
	rows    []viewing.HistoryMemberChange
	rowFrom []record
	// erased holds, per member, the time as of which its viewing data was
	// last erased: records of views started before it change nothing.
	erased map[string]time.Time
}

// closing is a view's running totals to remove from its resume point.
type closing struct {
	rec     record
	member  string
	profile string
	title   string
	slot    int
	view    string
	reason  viewing.EndReason
}

// screens applies what a member's screen writes report to resume points,
// slot by slot in record order, and adds to vc the history changes they
// make: a start opens the view's entry (and closes the slot's former
// view), a stop or an end closes it with the running totals. On a failure
// it returns the first record that failed.
func (p *Processor) screens(ctx context.Context, member string, recs []record, vc *viewChanges) (record, error) {
	if p.Progress == nil {
		return record{}, nil
	}
	// An erasure divides the records: those before it are handled, what
	// they would add to the history dropped, and the member's viewing data
	// erased, before those after it.
	for len(recs) > 0 {
		n := slices.IndexFunc(recs, func(r record) bool { return !r.erasure.IsZero() })
		if n < 0 {
			n = len(recs)
		}
		if r, err := p.screenSegment(ctx, member, recs[:n], vc); err != nil {
			return r, err
		}
		if n == len(recs) {
			break
		}
		if r := recs[n]; p.History != nil {
			vc.drop(member)
			if err := p.History.EraseViewing(ctx, member, r.erasure); err != nil {
				return r, err
			}
			if r.erasure.After(vc.erased[member]) {
				if vc.erased == nil {
					vc.erased = map[string]time.Time{}
				}
				vc.erased[member] = r.erasure
			}
		}
		recs = recs[n+1:]
	}
	return record{}, nil
}

// drop forgets the history changes and closes of member gathered so far.
func (vc *viewChanges) drop(member string) {
	keep := 0
	for i, c := range vc.changes {
		if c.Member != member {
			vc.changes[keep], vc.from[keep] = c, vc.from[i]
			keep++
		}
	}
	vc.changes, vc.from = vc.changes[:keep], vc.from[:keep]
	keep = 0
	for i, c := range vc.rows {
		if c.Member != member {
			vc.rows[keep], vc.rowFrom[keep] = c, vc.rowFrom[i]
			keep++
		}
	}
	vc.rows, vc.rowFrom = vc.rows[:keep], vc.rowFrom[:keep]
	vc.closes = slices.DeleteFunc(vc.closes, func(c closing) bool { return c.member == member })
}

// screenSegment handles screen writes slot by slot, in record order.
func (p *Processor) screenSegment(ctx context.Context, member string, recs []record, vc *viewChanges) (record, error) {
	var slots []int
	bySlot := map[int][]record{}
	for _, r := range recs {
		if _, seen := bySlot[r.view.Slot]; !seen {
			slots = append(slots, r.view.Slot)
		}
		bySlot[r.view.Slot] = append(bySlot[r.view.Slot], r)
	}
	var failed record
	var firstErr error
	for _, slot := range slots {
		if r, err := p.slot(ctx, member, bySlot[slot], vc); err != nil && (firstErr == nil || CompareSeq(r.seq, failed.seq) < 0) {
			failed, firstErr = r, err
		}
	}
	return failed, firstErr
}

// slot handles one slot's records in order: runs of progress of one view
// go to its resume point in one AddProgress.
func (p *Processor) slot(ctx context.Context, member string, recs []record, vc *viewChanges) (record, error) {
	var run []viewing.Progress
	var runFirst record
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		closed, err := p.Progress.AddProgress(ctx, member, run)
		for _, t := range closed {
			if t.View != run[0].View {
				// The slot's former view of the title, never seen to end: its
				// totals are gone from the resume point already, so its close
				// is recorded now.
				if cerr := p.closeNow(ctx, member, run[0].Profile, run[0].Title, run[0].Slot, t, runFirst, vc); cerr != nil && err == nil {
					err = cerr
				}
				continue
			}
			p.closeView(member, run[0].Profile, run[0].Title, run[0].Slot, t, runFirst, vc)
		}
		if err != nil {
			return err
		}
		run = nil
		return nil
	}
	// closeEnded closes a view that ended without a report of its own (from
	// another screen, a plan change, or its slot taken): with its totals,
	// at once, when it has some, so that the slot's next view never finds
	// them; with its end alone when it has none (it ended before any report).
	closeEnded := func(r record, profile, title string, slot int, view string, reason viewing.EndReason, start viewing.HistoryEntry) error {
		t, err := p.Progress.OpenTotals(ctx, member, profile, title, slot, view)
		if err != nil {
			return err
		}
		if t != nil {
			t.Ended = reason
			return p.closeNow(ctx, member, profile, title, slot, *t, r, vc)
		}
		if p.History != nil {
			start.Ended = reason
			vc.changes = append(vc.changes, viewing.HistoryMemberChange{Member: member, HistoryChange: viewing.HistoryChange{Entry: start, Closed: true, EndOnly: true}})
			vc.from = append(vc.from, r)
		}
		return nil
	}
	for _, r := range recs {
		v := r.view
		if v.Started.Before(vc.erased[member]) {
			continue // a view started before the member's viewing data was erased
		}
		if v.Seq == 0 && v.Ended == "" { // the write of a start
			// The former view's end. A stop or an end from elsewhere has a
			// record of its own, before this one: if this batch holds it,
			// its close is recorded now, before the next view's reports
			// meet its totals. A replacement or an expiry is known only
			// from here.
			if f := v.Former; f != nil && f.Title != "" && !f.Started.Before(vc.erased[member]) {
				if err := flush(); err != nil {
					return runFirst, err
				}
				switch {
				case vc.pending(member, f.ID):
					if from, err := p.closePendingNow(ctx, member, f.ID, vc); err != nil {
						return from, err // retried from the record that ended it
					}
				case f.Reason == viewing.Replaced || f.Reason == viewing.Expired:
					start := viewing.HistoryEntry{View: f.ID, Title: f.Title, Profile: f.Profile, Started: f.Started, LastSeen: f.Started}
					if err := closeEnded(r, f.Profile, f.Title, v.Slot, f.ID, f.Reason, start); err != nil {
						return r, err
					}
				}
			}
			if p.History != nil {
				e := viewing.EntryOf(v)
				vc.changes = append(vc.changes, viewing.HistoryMemberChange{Member: member, HistoryChange: viewing.HistoryChange{Entry: e, Count: viewing.StartEngagement(e)}})
				vc.from = append(vc.from, r)
			}
		}
		if pr, ok := viewing.ProgressOf(v, r.seq); ok {
			if len(run) > 0 && run[0].View != pr.View {
				if err := flush(); err != nil {
					return runFirst, err
				}
			}
			if len(run) == 0 {
				runFirst = r
			}
			run = append(run, pr)
		}
		if v.Ended != "" && v.Ended != viewing.Stopped {
			// Ended from another screen, or by a plan change.
			if err := flush(); err != nil {
				return runFirst, err
			}
			if err := closeEnded(r, v.Profile, v.Title, v.Slot, v.ID, v.Ended, viewing.EntryOf(v)); err != nil {
				return r, err
			}
		}
	}
	if err := flush(); err != nil {
		return runFirst, err
	}
	return record{}, nil
}

// closeView adds the close of a view's history entry, with its totals, and
// the removal of the totals once it is recorded.
func (p *Processor) closeView(member, profile, title string, slot int, t viewing.Totals, r record, vc *viewChanges) {
	if p.History != nil {
		e := p.closedEntry(title, profile, t)
		vc.changes = append(vc.changes, viewing.HistoryMemberChange{Member: member, HistoryChange: viewing.HistoryChange{Entry: e.Entry, Closed: true, Count: e.Count}})
		vc.from = append(vc.from, r)
	}
	vc.closes = append(vc.closes, closing{rec: r, member: member, profile: profile, title: title, slot: slot, view: t.View, reason: t.Ended})
}

// closedEntry is the close of a view of title with totals t, and what it
// adds to the title's engagement.
func (p *Processor) closedEntry(title, profile string, t viewing.Totals) viewing.HistoryChange {
	e := viewing.Closed(title, profile, t)
	tt, _ := p.policy().Title(title)
	return viewing.HistoryChange{Entry: e, Closed: true, Count: viewing.EndEngagement(e, tt.Runtime.D(), p.policy().Viewing)}
}

// pending reports whether the batch holds a close of member's view, not
// yet recorded.
func (vc *viewChanges) pending(member, view string) bool {
	return slices.ContainsFunc(vc.closes, func(c closing) bool { return c.member == member && c.view == view })
}

// closePendingNow records the close of member's view the batch holds now,
// and removes its totals. On a failure it returns the record the close
// came from.
func (p *Processor) closePendingNow(ctx context.Context, member, view string, vc *viewChanges) (record, error) {
	i := slices.IndexFunc(vc.closes, func(c closing) bool { return c.member == member && c.view == view })
	c := vc.closes[i]
	vc.closes = slices.Delete(vc.closes, i, i+1)
	if p.History != nil {
		j := slices.IndexFunc(vc.changes, func(h viewing.HistoryMemberChange) bool {
			return h.Member == member && h.Closed && h.Entry.View == view
		})
		if j >= 0 {
			change, from := vc.changes[j], vc.from[j]
			vc.changes, vc.from = slices.Delete(vc.changes, j, j+1), slices.Delete(vc.from, j, j+1)
			if err := p.History.RecordHistory(ctx, []viewing.HistoryMemberChange{change}); err != nil {
				return from, err
			}
			vc.rows, vc.rowFrom = append(vc.rows, change), append(vc.rowFrom, from)
		}
	}
	_, err := p.Progress.CloseView(ctx, member, c.profile, c.title, c.slot, c.view, c.reason)
	return c.rec, err
}

// closeNow records a view's close at once, then removes its totals: for a
// view whose slot a later write of the batch takes (a deferred removal
// would leave the next view to find them). The row hears of it with the
// batch.
func (p *Processor) closeNow(ctx context.Context, member, profile, title string, slot int, t viewing.Totals, r record, vc *viewChanges) error {
	if p.History != nil {
		c := p.closedEntry(title, profile, t)
		if err := p.History.RecordHistory(ctx, []viewing.HistoryMemberChange{{Member: member, HistoryChange: c}}); err != nil {
			return err
		}
		vc.rows = append(vc.rows, viewing.HistoryMemberChange{Member: member, HistoryChange: c})
		vc.rowFrom = append(vc.rowFrom, r)
	}
	_, err := p.Progress.CloseView(ctx, member, profile, title, slot, t.View, t.Ended)
	return err
}

// record writes a batch's history changes (entries, engagement counts), the
// recently watched rows they touch, then removes the running totals of the
// views closed. It returns, per member that failed, its first record.
func (p *Processor) recordViews(ctx context.Context, vc *viewChanges) map[string]record {
	failed := map[string]record{}
	fail := func(member string, r record, err error, what string) {
		if f, ok := failed[member]; !ok || CompareSeq(r.seq, f.seq) < 0 {
			failed[member] = r
		}
		p.log().ErrorContext(ctx, what+" failed", "sequence", r.seq, "member", kernel.Pseudonym(member), "error", err)
	}
	if p.History != nil && len(vc.changes) > 0 {
		if err := p.History.RecordHistory(ctx, vc.changes); err != nil {
			for i, c := range vc.changes {
				fail(c.Member, vc.from[i], err, "history")
			}
			return failed
		}
	}
	if p.History != nil {
		// The rows hear of every open and close with figures (an end alone
		// says nothing of where the view was).
		type rowKey struct{ member, profile string }
		var order []rowKey
		rows := map[rowKey][]viewing.HistoryEntry{}
		firsts := map[rowKey]record{}
		add := func(c viewing.HistoryMemberChange, r record) {
			if c.EndOnly {
				return
			}
			k := rowKey{c.Member, c.Entry.Profile}
			if _, seen := rows[k]; !seen {
				order = append(order, k)
				firsts[k] = r
			}
			rows[k] = append(rows[k], c.Entry)
		}
		for i, c := range vc.rows {
			add(c, vc.rowFrom[i])
		}
		for i, c := range vc.changes {
			add(c, vc.from[i])
		}
		for _, k := range order {
			if err := p.History.WatchRow(ctx, k.member, k.profile, rows[k]); err != nil {
				fail(k.member, firsts[k], err, "recently watched row")
			}
		}
	}
	for _, c := range vc.closes {
		if _, ok := failed[c.member]; ok {
			continue // kept open: the retry records them again
		}
		if _, err := p.Progress.CloseView(ctx, c.member, c.profile, c.title, c.slot, c.view, c.reason); err != nil {
			fail(c.member, c.rec, err, "closing a view")
		}
	}
	return failed
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
	st, held, err := licensing.LoadState(ctx, p.Store, member, p.policy(), licensing.StateLoad{})
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
		return fmt.Errorf("save snapshot of %s v%d: %w", kernel.Pseudonym(member), snap.Version, err)
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
