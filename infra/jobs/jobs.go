// Package jobs runs work over every member of the service a slice at a
// time: one segment of a parallel scan of the members' logs, member by
// member. A distributed engine (Step Functions' Distributed Map over the
// segment numbers) or a local worker pool (RunLocal) hands out the
// segments; each slice's summary is merged with the others' into the job's
// (Summary.Merge is commutative, so the order slices end in does not
// matter, and a slice run again gives the same summary).
//
// Kinds:
//   - whatif: under another policy, the past grants and renewals it would
//     have refused (and the refusals it would have granted), counted by
//     rule, studio, plan and title, with sample members;
//   - recount: every licence counter recounted from the logs, to compare
//     with the live counters (a distributed recount sums the slices);
//   - counters: the same recount, written over the live counters at the
//     end (with the stream function paused, as the ops tool's);
//   - snapshots, holders: each member's snapshot rebuilt, its titles
//     recorded in the index of holders;
//   - viewing-rows: each member's recently watched rows rebuilt from its
//     history entries;
//   - engagement: every title's engagement recounted from the history
//     entries, written over the live counts at the end (stream function
//     paused).
//
// The rebuilds write through the code the ops tools run (Snapshot,
// Holders, Viewing); writes are idempotent (a slice run again writes the
// same items), and the writes of the whole job's recounts happen once, at
// the end (Finish), only when every slice ended.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
)

// The job kinds.
const (
	KindWhatIf      = "whatif"
	KindRecount     = "recount"
	KindCounters    = "counters"
	KindSnapshots   = "snapshots"
	KindHolders     = "holders"
	KindViewingRows = "viewing-rows"
	KindEngagement  = "engagement"
)

// Kinds are the kinds a job may be.
var Kinds = []string{KindWhatIf, KindRecount, KindCounters, KindSnapshots, KindHolders, KindViewingRows, KindEngagement}

// viewingKind: the job goes over the members with a viewing history.
func viewingKind(kind string) bool { return kind == KindViewingRows || kind == KindEngagement }

// MaxSegments bounds a job's segments (DynamoDB allows a million; a
// Distributed Map, any number; this keeps a summary's slices countable).
const MaxSegments = 100_000

// Members lists the members of one segment of a parallel scan of the logs.
type Members interface {
	// MembersOf calls fn with every member with at least one event whose
	// log falls in segment of total (0 <= segment < total), each once.
	MembersOf(ctx context.Context, segment, total int, fn func(member string) error) error
}

// CounterStore is the live licence counters, as the counters job (and the
// ops tool) writes them.
type CounterStore interface {
	ReplaceCounts(ctx context.Context, scope string, counts licensing.Counts) error
	CounterScopes(ctx context.Context, fn func(scope string) error) error
	// SetCounted records that a member's events up to version are counted.
	SetCounted(ctx context.Context, member string, version int64) error
}

// ViewingStore is the viewing read models the viewing-rows and
// engagement jobs rebuild from the history entries.
type ViewingStore interface {
	viewing.HistoryStore
	// ViewingMembersOf calls fn with every member with a viewing history
	// in segment of total of a parallel scan, each once.
	ViewingMembersOf(ctx context.Context, segment, total int, fn func(member string) error) error
	// ReplaceRows replaces a member's recently watched rows, by profile.
	ReplaceRows(ctx context.Context, member string, rows map[string]*viewing.Row) error
	// ReplaceEngagement replaces every engagement count (by day, then
	// title), and returns how many counts held before.
	ReplaceEngagement(ctx context.Context, counts map[string]map[string]viewing.Engagement) (cleared int, err error)
}

// Stores are what a slice reads, and the rebuilds write.
type Stores struct {
	Members Members
	Events  licensing.EventStore
	// Refusals, when set, are read for what-if's refusals it would grant.
	Refusals licensing.RefusalStore
	// Snapshots and Holders are what the snapshots and holders jobs
	// write (those jobs are refused without them); Policy is the
	// service's, which snapshots are kept for.
	Snapshots licensing.SnapshotStore
	Holders   licensing.HolderStore
	Policy    *licensing.Policy
	// Counters are what the counters job writes; Viewing, what the
	// viewing-rows and engagement jobs read and write.
	Counters CounterStore
	Viewing  ViewingStore
	// Silent is what the sweep of silent views reads and closes; Now its
	// clock (time.Now if nil).
	Silent viewing.SilentStore
	Now    func() time.Time
	// Licensing (deciding under the policy with the withdrawals) and
	// Withdrawals are what the run of due withdrawals uses, with Holders.
	Licensing   *licensing.Service
	Withdrawals licensing.WithdrawalStore
	// Workers is how many members of a slice are handled at once (one if
	// zero): a slice's time is mostly waiting for DynamoDB, and one
	// invocation of the job function must end within Lambda's 15 minutes.
	Workers int
}

// Slice is one segment of one job.
type Slice struct {
	Kind           string
	Segment, Total int
	// Policy is what-if's policy.
	Policy *licensing.Policy
}

// Check refuses a slice that names no kind, no segment or no policy it
// needs.
func (s Slice) Check() error {
	switch {
	case !slices.Contains(Kinds, s.Kind):
		return kernel.Invalid("kind", "kind must be one of %v", Kinds)
	case s.Total < 1 || s.Total > MaxSegments:
		return kernel.Invalid("segments", "segments must be from 1 to %d", MaxSegments)
	case s.Segment < 0 || s.Segment >= s.Total:
		return kernel.Invalid("segment", "segment must be from 0 to %d", s.Total-1)
	case s.Kind == KindWhatIf && s.Policy == nil:
		return kernel.Invalid("policy", "a what-if needs a policy")
	}
	return nil
}

// MaxSamples is how many members a summary names as samples.
const MaxSamples = 10

// Run runs one slice: every member of its segment. A log is read
// eventually consistent (half the read units: a what-if or a recount of
// the past does not need the last second); a snapshot is rebuilt, and the
// counters recounted, from strongly consistent reads. A member whose log
// or history cannot be read is counted in Errors and the slice goes on; a
// store that is unavailable ends it with an error (the engine runs it
// again).
func Run(ctx context.Context, st Stores, sl Slice) (Summary, error) {
	if err := sl.Check(); err != nil {
		return Summary{}, err
	}
	var logs LogStore
	switch sl.Kind {
	case KindSnapshots:
		var ok bool
		if logs, ok = st.Events.(LogStore); !ok || st.Policy == nil {
			return Summary{}, kernel.Invalid("kind", "this engine does not rebuild snapshots")
		}
	case KindHolders:
		if st.Holders == nil {
			return Summary{}, kernel.Invalid("kind", "this engine does not record holders")
		}
	case KindCounters:
		if st.Counters == nil {
			return Summary{}, kernel.Invalid("kind", "this engine does not write counters")
		}
	case KindViewingRows, KindEngagement:
		if st.Viewing == nil || st.Policy == nil {
			return Summary{}, kernel.Invalid("kind", "this engine does not rebuild viewing data")
		}
	}
	// skip counts a member that could not be read, unless the store is
	// gone: then the slice ends, to be run again.
	skip := func(sum *Summary, err error) error {
		if kernel.KindOf(err) == kernel.KindUnavailable || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		sum.Errors++
		return nil
	}
	one := func(ctx context.Context, sum *Summary, member string) error {
		switch sl.Kind {
		case KindSnapshots:
			events, written, err := Snapshot(ctx, logs, st.Policy, member)
			if err != nil {
				return err
			}
			sum.Members++
			sum.Events += events
			if written {
				sum.Written++
			}
			return nil
		case KindViewingRows, KindEngagement:
			mv, err := Viewing(ctx, st.Viewing, st.Policy, member, sl.Kind == KindEngagement)
			if err != nil {
				return skip(sum, err)
			}
			if mv.Erasing {
				sum.Erasing++
				return nil
			}
			sum.Members++
			sum.Entries += mv.Entries
			if sl.Kind == KindEngagement {
				if sum.Engagement == nil {
					sum.Engagement = map[string]map[string]viewing.Engagement{}
				}
				AddEngagement(sum.Engagement, mv.Engagement)
				return nil
			}
			if err := st.Viewing.ReplaceRows(ctx, member, mv.Rows); err != nil {
				return fmt.Errorf("rows of %s: %w", kernel.Pseudonym(member), err)
			}
			sum.Rows += len(mv.Rows)
			return nil
		}
		str, err := st.Events.Load(ctx, member, licensing.LoadOptions{Consistent: sl.Kind == KindCounters})
		if err != nil {
			return skip(sum, err)
		}
		sum.Members++
		sum.Events += len(str.Events)
		switch sl.Kind {
		case KindWhatIf:
			return whatIf(ctx, st, sl.Policy, member, str.Events, sum)
		case KindRecount:
			recount(str.Events, sum)
		case KindCounters:
			// The stream function, resumed, counts only what follows.
			if err := st.Counters.SetCounted(ctx, member, str.Version()); err != nil {
				return err
			}
			recount(str.Events, sum)
		case KindHolders:
			n, err := Holders(ctx, st.Holders, member, str.Events)
			if err != nil {
				return err
			}
			sum.Holders += n
		}
		return nil
	}
	scan := func(ctx context.Context, fn func(member string) error) error {
		if viewingKind(sl.Kind) {
			return st.Viewing.ViewingMembersOf(ctx, sl.Segment, sl.Total, fn)
		}
		return st.Members.MembersOf(ctx, sl.Segment, sl.Total, fn)
	}
	sum := Summary{Kind: sl.Kind, Segments: 1}
	var err error
	if workers := max(st.Workers, 1); workers == 1 {
		err = scan(ctx, func(member string) error { return one(ctx, &sum, member) })
	} else {
		// The scan hands members to workers, each with its summary of its
		// own; the first error stops them all. Merging is commutative:
		// the slice's summary is the same whoever took which member.
		wctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		members := make(chan string, workers)
		parts := make([]Summary, workers)
		var wg sync.WaitGroup
		for i := range parts {
			wg.Go(func() {
				for m := range members {
					if err := one(wctx, &parts[i], m); err != nil {
						cancel(err)
					}
				}
			})
		}
		err = scan(wctx, func(member string) error {
			select {
			case members <- member:
				return nil
			case <-wctx.Done():
				return context.Cause(wctx)
			}
		})
		close(members)
		wg.Wait()
		if cause := context.Cause(wctx); cause != nil { // a worker's error, or the caller's
			err = cause
		}
		for _, p := range parts {
			p.Segments = 0
			sum.Merge(p)
		}
	}
	if err != nil {
		return Summary{}, fmt.Errorf("segment %d of %d: %w", sl.Segment, sl.Total, err)
	}
	return sum, nil
}

// Finish does what a job does once, at the end, with every slice's
// summary merged into sum (total slices): the counters job writes the
// counters recounted over the live ones (and clears scopes no event counts
// any more); the engagement job writes the counts recounted over the live
// ones, and keeps only how many in the summary. Both refuse unless every
// slice ended (a recount of part of the members would wipe the others'),
// and engagement while an erasure is under way. Writing again writes the
// same: a retried end changes nothing twice.
func Finish(ctx context.Context, st Stores, sum Summary, total int) (Summary, error) {
	switch sum.Kind {
	case KindCounters, KindEngagement:
	default:
		return sum, nil
	}
	if sum.Segments != total {
		return sum, fmt.Errorf("only %d of %d slices ended: the live %s are left as they were", sum.Segments, total, sum.Kind)
	}
	if sum.Kind == KindEngagement {
		if st.Viewing == nil {
			return sum, kernel.Invalid("kind", "this engine does not rebuild viewing data")
		}
		if sum.Erasing > 0 {
			return sum, fmt.Errorf("%d members have an erasure under way: let the stream function carry it out, then recount", sum.Erasing)
		}
		counts := sum.Engagement
		if counts == nil {
			counts = map[string]map[string]viewing.Engagement{}
		}
		cleared, err := st.Viewing.ReplaceEngagement(ctx, counts)
		if err != nil {
			return sum, err
		}
		sum.TitleDays, sum.Cleared, sum.Engagement = 0, cleared, nil
		for _, titles := range counts {
			sum.TitleDays += len(titles)
		}
		return sum, nil
	}
	if st.Counters == nil {
		return sum, kernel.Invalid("kind", "this engine does not write counters")
	}
	var stale []string
	if err := st.Counters.CounterScopes(ctx, func(scope string) error {
		if sum.Counts[scope] == nil {
			stale = append(stale, scope)
		}
		return nil
	}); err != nil {
		return sum, err
	}
	sum.Scopes, sum.Cleared = 0, 0
	for scope, c := range sum.Counts {
		if err := st.Counters.ReplaceCounts(ctx, scope, c); err != nil {
			return sum, err
		}
		sum.Scopes++
	}
	for _, scope := range stale {
		if err := st.Counters.ReplaceCounts(ctx, scope, licensing.Counts{}); err != nil {
			return sum, err
		}
		sum.Cleared++
	}
	return sum, nil
}

// whatIf adds a member's flips under p to sum.
func whatIf(ctx context.Context, st Stores, p *licensing.Policy, member string, events []licensing.Event, sum *Summary) error {
	// Plan and studio of each grant and renewal, from the log.
	type origin struct{ plan, studio string }
	byVersion := map[int64]origin{}
	studioOf := map[string]string{}
	for _, e := range events {
		switch pl := e.Payload.(type) {
		case *licensing.LicenceAcquired:
			studioOf[pl.Licence] = pl.Studio
			byVersion[e.Version] = origin{pl.Plan, pl.Studio}
		case *licensing.LicenceRenewed:
			byVersion[e.Version] = origin{pl.Plan, studioOf[pl.Licence]}
		}
	}
	add := func(m *map[string]int, k string) {
		if k == "" {
			return
		}
		if *m == nil {
			*m = map[string]int{}
		}
		(*m)[k]++
	}
	divs := licensing.WhatIf(member, events, p)
	for _, d := range divs {
		sum.Flips++
		o := byVersion[d.Version]
		for _, r := range d.Rules {
			add(&sum.ByRule, r.Code)
		}
		add(&sum.ByStudio, o.studio)
		add(&sum.ByPlan, o.plan)
		add(&sum.ByTitle, d.Title)
	}
	grants := 0
	if st.Refusals != nil {
		refused, err := st.Refusals.Refusals(ctx, member, 1000)
		if err != nil {
			return err
		}
		for _, g := range licensing.WouldGrant(member, events, refused, p) {
			grants++
			add(&sum.ByPlan, g.Refusal.Plan)
			add(&sum.ByTitle, g.Refusal.Title)
			if t, ok := p.Title(g.Refusal.Title); ok {
				add(&sum.ByStudio, t.Studio)
			}
		}
	}
	sum.WouldGrant += grants
	if len(divs) > 0 || grants > 0 {
		sum.Samples = append(sum.Samples, member)
		slices.Sort(sum.Samples)
		if len(sum.Samples) > MaxSamples {
			sum.Samples = sum.Samples[:MaxSamples]
		}
	}
	return nil
}

// recount adds a member's counter changes to sum.
func recount(events []licensing.Event, sum *Summary) {
	for _, e := range events {
		for _, d := range licensing.CounterDeltas(e) {
			if sum.Counts == nil {
				sum.Counts = map[string]licensing.Counts{}
			}
			if sum.Counts[d.Scope] == nil {
				sum.Counts[d.Scope] = licensing.Counts{}
			}
			sum.Counts[d.Scope][d.Field] += d.Delta
		}
	}
	// Fields that add up to nothing are no counter.
	for scope, c := range sum.Counts {
		maps.DeleteFunc(c, func(_ string, v int64) bool { return v == 0 })
		if len(c) == 0 {
			delete(sum.Counts, scope)
		}
	}
}
