// Package rebuild rebuilds members' snapshots from their logs: after a state
// schema change, or to repair a member, without touching a single event.
package rebuild

import (
	"context"
	"fmt"

	"github.com/dlicense/dlicense/domain/licensing"
)

// Store is what a rebuild reads and writes.
type Store interface {
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
// snapshot held is ignored), writing it at the log's head. progress is
// called after each member.
func Members(ctx context.Context, s Store, members []string, progress func(done int)) Report {
	var r Report
	for i, m := range members {
		if err := ctx.Err(); err != nil {
			r.LastError = err
			break
		}
		r.Members++
		n, written, err := One(ctx, s, m)
		r.Events += n
		switch {
		case err != nil:
			r.Failed++
			r.LastError = fmt.Errorf("member %s: %w", licensing.Pseudonym(m), err)
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

// One rebuilds one member's snapshot and returns how many events it folded
// and whether it wrote the snapshot.
func One(ctx context.Context, s Store, member string) (events int, written bool, err error) {
	str, err := s.Load(ctx, member, licensing.LoadOptions{Consistent: true})
	if err != nil {
		return 0, false, err
	}
	if len(str.Events) == 0 {
		return 0, false, nil
	}
	snap, err := licensing.EncodeSnapshot(licensing.Fold(member, str.Events))
	if err != nil {
		return len(str.Events), false, err
	}
	written, err = s.SaveSnapshot(ctx, snap)
	return len(str.Events), written, err
}
