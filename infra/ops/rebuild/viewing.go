package rebuild

import (
	"context"
	"fmt"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/jobs"
)

// ViewingStore is what a rebuild of the viewing read models reads and
// writes: the history entries are the record of every view, and the rows
// and engagement counts are rebuilt from them.
type ViewingStore interface {
	viewing.HistoryStore
	// ViewingMembers calls fn with every member that has a viewing history.
	ViewingMembers(ctx context.Context, fn func(member string) error) error
	// ReplaceRows replaces a member's recently watched rows, by profile
	// (profiles not given are deleted).
	ReplaceRows(ctx context.Context, member string, rows map[string]*viewing.Row) error
	// ReplaceEngagement replaces every engagement count with counts (by day,
	// then title), and returns how many counts held before it cleared.
	ReplaceEngagement(ctx context.Context, counts map[string]map[string]viewing.Engagement) (cleared int, err error)
}

// ViewingReport counts what a viewing rebuild did.
type ViewingReport struct {
	Members int
	Entries int
	Rows    int // rows written
	Counts  int // title-days counted (with engagement)
	Cleared int // counts held before
	Erasing int // members skipped: an erasure of theirs is under way
}

// Viewing rebuilds the recently watched rows of members from their history
// entries and, with engagement, recounts the engagement of every title and
// day from them under policy p (what completes a view, for a new
// definition), replacing what the store holds. Run it with the stream
// function paused. Views of members whose viewing data was erased are no
// longer in any history: a recount counts them no more. A recount is
// refused while an erasure is under way.
func Viewing(ctx context.Context, s ViewingStore, p *licensing.Policy, members []string, engagement bool, progress func(done int)) (ViewingReport, error) {
	var r ViewingReport
	counts := map[string]map[string]viewing.Engagement{}
	for i, m := range members {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		mv, err := jobs.Viewing(ctx, s, p, m, engagement)
		if err != nil {
			return r, err
		}
		if mv.Erasing {
			r.Erasing++
			continue
		}
		r.Entries += mv.Entries
		rows := mv.Rows
		jobs.AddEngagement(counts, mv.Engagement)
		if err := s.ReplaceRows(ctx, m, rows); err != nil {
			return r, fmt.Errorf("rows of %s: %w", kernel.Pseudonym(m), err)
		}
		r.Members++
		r.Rows += len(rows)
		if progress != nil {
			progress(i + 1)
		}
	}
	if engagement {
		if r.Erasing > 0 {
			// Their views are counted now and will not be once erased: a
			// recount before the erasures are done would count them anyway,
			// and one that skips them would drop counts meant to stay.
			return r, fmt.Errorf("%d members have an erasure under way: let the stream function carry it out, then recount", r.Erasing)
		}
		for _, titles := range counts {
			r.Counts += len(titles)
		}
		cleared, err := s.ReplaceEngagement(ctx, counts)
		r.Cleared = cleared
		if err != nil {
			return r, err
		}
	}
	return r, nil
}
