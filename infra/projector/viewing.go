package projector

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
)

// HistoryStore is what the viewing projection writes history with: the
// entries and their engagement counts, the recently watched rows, and the
// erasures it reads to drop what any record says of an erased view.
type HistoryStore interface {
	RecordHistory(ctx context.Context, changes []viewing.HistoryMemberChange) error
	WatchRow(ctx context.Context, member, profile string, es []viewing.HistoryEntry) error
	Erasures(ctx context.Context, members []string) (map[string]time.Time, error)
}

// Viewing keeps the viewing read models up: resume points from screen
// writes (heartbeats, stops) and offline playback uploads, each once; and,
// with History, the history entries of views that start and end, the
// recently watched rows and engagement counts.
type Viewing struct {
	Progress viewing.ProgressStore
	// History, when set, gets the views that start and end.
	History HistoryStore
	// Policy says what completes a view (runtimes, credits): the API's.
	Policy *licensing.Policy
}

// Project implements Projection. What any record says of a view started
// before the member's viewing data was last erased is dropped, however
// late it comes (a redriven dead letter): the erasures are read for the
// members of the batch, and an erasure the batch holds counts too (the
// Erasures projection, run before, carried it out). A batch's history
// changes are written together, in a few transactions.
func (p *Viewing) Project(ctx context.Context, b Batch) ([]Failure, error) {
	var failures []Failure
	var vc viewChanges
	if p.History != nil {
		var members []string
		seen := map[string]bool{}
		for _, part := range b {
			if !seen[part.Member] && slices.ContainsFunc(part.Records, viewingRecord) {
				seen[part.Member] = true
				members = append(members, part.Member)
			}
		}
		erased, err := p.History.Erasures(ctx, members)
		if err != nil {
			return nil, fmt.Errorf("read the erasures of %d members: %w", len(members), err)
		}
		vc.erased = erased
		for _, part := range b {
			for _, r := range part.Records {
				if r.Erasure.After(vc.erased[part.Member]) {
					if vc.erased == nil {
						vc.erased = map[string]time.Time{}
					}
					vc.erased[part.Member] = r.Erasure
				}
			}
		}
	}
	for _, part := range b {
		if slices.ContainsFunc(part.Records, func(r Record) bool { return r.View != nil }) {
			if r, err := p.screens(ctx, part.Member, part.Records, &vc); err != nil {
				failures = append(failures, Failure{Record: r, What: "resume points", Err: err})
			}
		} else if r, err := p.offline(ctx, part.Member, part.Records, vc.erased[part.Member]); err != nil {
			failures = append(failures, Failure{Record: r, What: "resume points", Err: err})
		}
	}
	return append(failures, p.recordViews(ctx, &vc)...), nil
}

// viewingRecord reports whether a record says anything of viewing: a screen
// write, an erasure, or an offline playback upload.
func viewingRecord(r Record) bool {
	if r.Event != nil {
		_, upload := r.Event.Payload.(*licensing.PlaybackRecorded)
		return upload
	}
	return r.View != nil || !r.Erasure.IsZero()
}

// offline applies what a member's offline playback uploads add to resume
// points, record by record, each once. On a failure it returns the record
// that failed: the records before it are done.
func (p *Viewing) offline(ctx context.Context, member string, recs []Record, erased time.Time) (Record, error) {
	for _, r := range recs {
		if r.Event == nil || r.Event.At.Before(erased) {
			continue // played before the member's viewing data was erased
		}
		for _, pr := range viewing.OfflineProgress(*r.Event) {
			if _, err := p.Progress.AddProgress(ctx, member, []viewing.Progress{pr}); err != nil {
				return r, err
			}
		}
	}
	return Record{}, nil
}

// screens applies what a member's screen writes report to resume points,
// slot by slot in record order, and adds to vc the history changes they
// make: a start opens the view's entry (and closes the slot's former
// view), a stop or an end closes it with the running totals. On a failure
// it returns the first record that failed.
func (p *Viewing) screens(ctx context.Context, member string, recs []Record, vc *viewChanges) (Record, error) {
	var slots []int
	bySlot := map[int][]Record{}
	for _, r := range recs {
		if r.View == nil {
			continue // an erasure: carried out by the Erasures projection
		}
		if _, seen := bySlot[r.View.Slot]; !seen {
			slots = append(slots, r.View.Slot)
		}
		bySlot[r.View.Slot] = append(bySlot[r.View.Slot], r)
	}
	var failed Record
	var firstErr error
	for _, slot := range slots {
		if r, err := p.slot(ctx, member, bySlot[slot], vc); err != nil && (firstErr == nil || CompareSeq(r.Seq, failed.Seq) < 0) {
			failed, firstErr = r, err
		}
	}
	return failed, firstErr
}

// slot handles one slot's records in order: runs of progress of one view
// go to its resume point in one AddProgress.
func (p *Viewing) slot(ctx context.Context, member string, recs []Record, vc *viewChanges) (Record, error) {
	var run []viewing.Progress
	var runFirst Record
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
	closeEnded := func(r Record, profile, title string, slot int, view string, reason viewing.EndReason, start viewing.HistoryEntry) error {
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
		v := r.View
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
					// Its last report and the time watched since its last
					// checkpoint first (the slot kept them), then its close.
					if !f.LastSeen.IsZero() {
						run, runFirst = []viewing.Progress{viewing.FormerProgress(f, v.Slot, r.Seq)}, r
						if err := flush(); err != nil {
							return r, err
						}
					}
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
		if pr, ok := viewing.ProgressOf(v, r.Seq); ok {
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
	return Record{}, nil
}
