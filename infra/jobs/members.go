package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
)

// LogStore is a member's log with its snapshot, as a snapshot rebuild reads
// and writes it.
type LogStore interface {
	licensing.EventStore
	licensing.SnapshotStore
}

// Snapshot rebuilds one member's snapshot for policy p (the API's) from its
// whole log, the snapshot held ignored, and writes it at the log's head
// (the store keeps the newer of two): how many events it folded and whether
// it wrote. The ops tools and the snapshots job both run it.
func Snapshot(ctx context.Context, s LogStore, p *licensing.Policy, member string) (events int, written bool, err error) {
	st, _, err := licensing.LoadState(ctx, s, member, p, licensing.StateLoad{Consistent: true, Replay: true})
	if err != nil {
		return 0, false, err
	}
	if st.Version == 0 {
		return 0, false, nil
	}
	snap, err := licensing.EncodeSnapshot(st, p)
	if err != nil {
		return int(st.Version), false, err
	}
	written, err = s.SaveSnapshot(ctx, snap)
	return int(st.Version), written, err
}

// Holders records a member's titles in the index of title holders, from
// its log (writing a holder again changes nothing): how many it wrote.
func Holders(ctx context.Context, hs licensing.HolderStore, member string, events []licensing.Event) (int, error) {
	var held []licensing.Holder
	for _, e := range events {
		held = append(held, licensing.HoldersOf(member, e)...)
	}
	if len(held) == 0 {
		return 0, nil
	}
	return len(held), hs.AddHolders(ctx, held)
}

// MemberViewing is what a member's history entries rebuild: its recently
// watched rows, by profile, and, when asked, its views' engagement (by
// day, then title).
type MemberViewing struct {
	Entries    int
	Rows       map[string]*viewing.Row
	Engagement map[string]map[string]viewing.Engagement
	// Erasing: an erasure of the member's is under way (nothing read).
	Erasing bool
}

// Viewing reads a member's history entries, page by page, and folds them
// into its rows and, with engagement, its views' engagement under policy
// p (what completes a view). The ops tools and the viewing-rows and
// engagement jobs both run it.
func Viewing(ctx context.Context, hs viewing.HistoryStore, p *licensing.Policy, member string, engagement bool) (MemberViewing, error) {
	out := MemberViewing{Rows: map[string]*viewing.Row{}}
	if engagement {
		out.Engagement = map[string]map[string]viewing.Engagement{}
	}
	after := ""
	for {
		page, more, err := hs.History(ctx, member, after, viewing.MaxPageSize)
		if errors.Is(err, viewing.ErrErasurePending) {
			return MemberViewing{Erasing: true}, nil // its erasure waits for the stream function
		}
		if err != nil {
			return MemberViewing{}, fmt.Errorf("history of %s: %w", kernel.Pseudonym(member), err)
		}
		for _, e := range page {
			out.Entries++
			row := out.Rows[e.Profile]
			if row == nil {
				row = &viewing.Row{Profile: e.Profile}
				out.Rows[e.Profile] = row
			}
			row.Watch(e)
			if engagement {
				day := viewing.Day(e.Started)
				if out.Engagement[day] == nil {
					out.Engagement[day] = map[string]viewing.Engagement{}
				}
				c := out.Engagement[day][e.Title]
				c.Add(viewing.StartEngagement(e))
				if e.Ended != "" {
					t, _ := p.Title(e.Title)
					c.Add(viewing.EndEngagement(e, t.Runtime.D(), p.Viewing))
				}
				out.Engagement[day][e.Title] = c
			}
		}
		if !more || len(page) == 0 {
			break
		}
		after = page[len(page)-1].Key()
	}
	for _, row := range out.Rows {
		row.Version = 1
	}
	return out, nil
}

// AddEngagement adds the counts of from (by day, then title) to to.
func AddEngagement(to, from map[string]map[string]viewing.Engagement) {
	for day, titles := range from {
		if to[day] == nil {
			to[day] = map[string]viewing.Engagement{}
		}
		for title, e := range titles {
			c := to[day][title]
			c.Add(e)
			to[day][title] = c
		}
	}
}
