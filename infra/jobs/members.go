package jobs

import (
	"context"

	"github.com/dlicense/dlicense/domain/licensing"
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
