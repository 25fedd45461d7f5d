package projector

import (
	"context"
	"slices"
	"time"

	"github.com/dlicense/dlicense/domain/viewing"
)

// viewChanges is what a batch's screen writes change in the history read
// models: history entries opened and closed, with the record each came
// from, and the running totals to remove once their entries are recorded.
type viewChanges struct {
	changes []viewing.HistoryMemberChange
	from    []Record
	closes  []closing
	// rows are closes recorded already, for the rows.
	rows    []viewing.HistoryMemberChange
	rowFrom []Record
	// erased holds, per member, the time as of which its viewing data was
	// last erased: records of views started before it change nothing.
	erased map[string]time.Time
}

// closing is a view's running totals to remove from its resume point.
type closing struct {
	rec     Record
	member  string
	profile string
	title   string
	slot    int
	view    string
	reason  viewing.EndReason
}

// closeView adds the close of a view's history entry, with its totals, and
// the removal of the totals once it is recorded.
func (p *Viewing) closeView(member, profile, title string, slot int, t viewing.Totals, r Record, vc *viewChanges) {
	if p.History != nil {
		e := p.closedEntry(title, profile, t)
		vc.changes = append(vc.changes, viewing.HistoryMemberChange{Member: member, HistoryChange: viewing.HistoryChange{Entry: e.Entry, Closed: true, Count: e.Count}})
		vc.from = append(vc.from, r)
	}
	vc.closes = append(vc.closes, closing{rec: r, member: member, profile: profile, title: title, slot: slot, view: t.View, reason: t.Ended})
}

// closedEntry is the close of a view of title with totals t, and what it
// adds to the title's engagement.
func (p *Viewing) closedEntry(title, profile string, t viewing.Totals) viewing.HistoryChange {
	e := viewing.Closed(title, profile, t)
	tt, _ := p.Policy.Title(title)
	return viewing.HistoryChange{Entry: e, Closed: true, Count: viewing.EndEngagement(e, tt.Runtime.D(), p.Policy.Viewing)}
}

// pending reports whether the batch holds a close of member's view, not
// yet recorded.
func (vc *viewChanges) pending(member, view string) bool {
	return slices.ContainsFunc(vc.closes, func(c closing) bool { return c.member == member && c.view == view })
}

// closePendingNow records the close of member's view the batch holds now,
// and removes its totals. On a failure it returns the record the close
// came from.
func (p *Viewing) closePendingNow(ctx context.Context, member, view string, vc *viewChanges) (Record, error) {
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
func (p *Viewing) closeNow(ctx context.Context, member, profile, title string, slot int, t viewing.Totals, r Record, vc *viewChanges) error {
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

// recordViews writes a batch's history changes (entries, engagement
// counts), the recently watched rows they touch, then removes the running
// totals of the views closed. It returns the records whose changes failed.
func (p *Viewing) recordViews(ctx context.Context, vc *viewChanges) []Failure {
	var failures []Failure
	failed := map[string]bool{} // members
	fail := func(member string, r Record, err error, what string) {
		failed[member] = true
		failures = append(failures, Failure{Record: r, What: what, Err: err})
	}
	if p.History != nil && len(vc.changes) > 0 {
		if err := p.History.RecordHistory(ctx, vc.changes); err != nil {
			for i, c := range vc.changes {
				fail(c.Member, vc.from[i], err, "history")
			}
			return failures
		}
	}
	if p.History != nil {
		// The rows hear of every open and close with figures (an end alone
		// says nothing of where the view was).
		type rowKey struct{ member, profile string }
		var order []rowKey
		rows := map[rowKey][]viewing.HistoryEntry{}
		firsts := map[rowKey]Record{}
		add := func(c viewing.HistoryMemberChange, r Record) {
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
		if failed[c.member] {
			continue // kept open: the retry records them again
		}
		if _, err := p.Progress.CloseView(ctx, c.member, c.profile, c.title, c.slot, c.view, c.reason); err != nil {
			fail(c.member, c.rec, err, "closing a view")
		}
	}
	return failures
}
