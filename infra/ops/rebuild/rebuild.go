// Package rebuild rebuilds members' snapshots from their logs: after a state
// schema change, or to repair a member, without touching a single event.
package rebuild

import (
	"context"
	"fmt"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/jobs"
)

// LogStore is what a rebuild reads and writes.
type LogStore interface {
	licensing.EventStore
	licensing.SnapshotStore
}

// Report counts what a rebuild did.
type Report struct {
	Members   int
	Events    int
	Written   int // snapshots written
	UpToDate  int // members whose snapshot was already this one
	Empty     int // members with no events
	Failed    int
	LastError error
}

// Members rebuilds the snapshot of each member from its whole log (the
// snapshot held is ignored), writing it at the log's head for policy p (the
// API's). progress is called after each member.
func Members(ctx context.Context, s LogStore, p *licensing.Policy, members []string, progress func(done int)) Report {
	var r Report
	for i, m := range members {
		if err := ctx.Err(); err != nil {
			r.LastError = err
			break
		}
		r.Members++
		n, written, err := One(ctx, s, p, m)
		r.Events += n
		switch {
		case err != nil:
			r.Failed++
			r.LastError = fmt.Errorf("member %s: %w", kernel.Pseudonym(m), err)
		case n == 0:
			r.Empty++
		case written:
			r.Written++
		default:
			r.UpToDate++
		}
		if progress != nil {
			progress(i + 1)
		}
	}
	return r
}

// One rebuilds one member's snapshot for policy p and returns how many
// events it folded and whether it wrote the snapshot (jobs.Snapshot, as the
// snapshots job runs it).
func One(ctx context.Context, s LogStore, p *licensing.Policy, member string) (events int, written bool, err error) {
	return jobs.Snapshot(ctx, s, p, member)
}

// CounterStore is what a counter rebuild writes.
type CounterStore = jobs.CounterStore

// CounterReport counts what a counter rebuild did.
type CounterReport struct {
	Members, Events, Scopes, Cleared int
}

// Counters recounts every counter from the logs of members and replaces
// what the store holds, clearing scopes no event counts any more, and
// records for each member the version counted up to, so that the stream
// function, resumed, does not count those events again. Run it with the
// stream function paused (its event source mapping disabled), for when a
// counter definition changes; then resume it.
func Counters(ctx context.Context, s LogStore, cs CounterStore, members []string, progress func(done int)) (CounterReport, error) {
	var r CounterReport
	totals := map[string]licensing.Counts{}
	for i, m := range members {
		str, err := s.Load(ctx, m, licensing.LoadOptions{Consistent: true})
		if err != nil {
			return r, fmt.Errorf("member %s: %w", kernel.Pseudonym(m), err)
		}
		r.Members++
		if err := cs.SetCounted(ctx, m, str.Version()); err != nil {
			return r, err
		}
		for _, e := range str.Events {
			r.Events++
			for _, d := range licensing.CounterDeltas(e) {
				if totals[d.Scope] == nil {
					totals[d.Scope] = licensing.Counts{}
				}
				totals[d.Scope][d.Field] += d.Delta
			}
		}
		if progress != nil {
			progress(i + 1)
		}
	}
	var stale []string
	if err := cs.CounterScopes(ctx, func(scope string) error {
		if totals[scope] == nil {
			stale = append(stale, scope)
		}
		return nil
	}); err != nil {
		return r, err
	}
	for scope, c := range totals {
		if err := cs.ReplaceCounts(ctx, scope, c); err != nil {
			return r, err
		}
		r.Scopes++
	}
	for _, scope := range stale {
		if err := cs.ReplaceCounts(ctx, scope, licensing.Counts{}); err != nil {
			return r, err
		}
		r.Cleared++
	}
	return r, nil
}

// Holders records, from their logs, every title members acquired in the
// index of title holders (licensing.HolderStore), for logs written before
// the stream function kept it: a withdrawal then finds them too. Writing a
// holder again changes nothing. It returns how many holders it wrote.
func Holders(ctx context.Context, s licensing.EventStore, hs licensing.HolderStore, members []string, progress func(done int)) (int, error) {
	n := 0
	for i, m := range members {
		str, err := s.Load(ctx, m, licensing.LoadOptions{Consistent: true})
		if err != nil {
			return n, fmt.Errorf("member %s: %w", kernel.Pseudonym(m), err)
		}
		w, err := jobs.Holders(ctx, hs, m, str.Events)
		n += w
		if err != nil {
			return n, err
		}
		if progress != nil {
			progress(i + 1)
		}
	}
	return n, nil
}
