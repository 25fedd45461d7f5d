package projector

import (
	"context"
	"fmt"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
)

// LogStore is what the snapshots read and write: the members' logs.
type LogStore interface {
	licensing.EventStore
	licensing.SnapshotStore
}

// Snapshots keeps the members' snapshots up, so that every load stays one
// Query: a member gets a snapshot each time its log crosses a multiple of
// Every events.
type Snapshots struct {
	Store LogStore
	Every int
	// Policy is the policy snapshots are kept for (their acquisition times
	// are those its quotas can look at): the API's.
	Policy *licensing.Policy
}

// Project implements Projection: for each member whose events in the batch
// cross a multiple of Every, one eventually consistent load (a stale one
// only makes the snapshot older) and one conditional write. A member whose
// snapshot fails is retried from its first record: writing it again is
// harmless.
func (s *Snapshots) Project(ctx context.Context, b Batch) ([]Failure, error) {
	var failures []Failure
	every := int64(max(s.Every, 1))
	for _, part := range b {
		events := eventsOf(part.Records)
		if len(events) == 0 {
			continue
		}
		first, last := events[0].Event.Version, events[len(events)-1].Event.Version
		if (first-1)/every == last/every {
			continue
		}
		if err := s.snapshot(ctx, part.Member); err != nil {
			failures = append(failures, Failure{Record: events[0], What: "snapshot", Err: err})
		}
	}
	return failures, nil
}

func (s *Snapshots) snapshot(ctx context.Context, member string) error {
	policy := s.Policy
	st, held, err := licensing.LoadState(ctx, s.Store, member, policy, licensing.StateLoad{})
	if err != nil {
		return err
	}
	if held != nil && held.Schema == licensing.StateSchema && held.Version >= st.Version {
		return nil // nothing newer to write: another delivery got here first, or the read is stale
	}
	snap, err := licensing.EncodeSnapshot(st, policy)
	if err != nil {
		return err
	}
	if _, err := s.Store.SaveSnapshot(ctx, snap); err != nil {
		return fmt.Errorf("save snapshot of %s v%d: %w", kernel.Pseudonym(member), snap.Version, err)
	}
	return nil
}

// eventsOf is the records of log events among rs.
func eventsOf(rs []Record) []Record {
	var out []Record
	for _, r := range rs {
		if r.Event != nil {
			out = append(out, r)
		}
	}
	return out
}
