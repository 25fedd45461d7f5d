package projector

import (
	"context"

	"github.com/dlicense/dlicense/domain/licensing"
)

// Counts keeps the licence counters exact: every event's counter changes,
// once per event, summed over the batch into a few transactions.
type Counts struct {
	Store licensing.CounterStore
}

// Project implements Projection. Each member's changes carry the version
// its delivery starts at (Counted.From), so that the store counts from the
// log what a given-up delivery held. A member whose changes were not
// applied fails at its first record that counts.
func (c *Counts) Project(ctx context.Context, b Batch) ([]Failure, error) {
	var counted []licensing.Counted
	first := map[string]Record{} // member → its first record that counts
	for _, part := range b {
		events := eventsOf(part.Records)
		if len(events) == 0 {
			continue
		}
		decoded := make([]licensing.Event, len(events))
		for i, r := range events {
			decoded[i] = *r.Event
		}
		cd := licensing.CountedOf(part.Member, decoded)
		if len(cd.Changes) == 0 {
			continue
		}
		cd.From = events[0].Event.Version
		for _, r := range events {
			if r.Event.Version == cd.Changes[0].Version {
				first[part.Member] = r
			}
		}
		counted = append(counted, cd)
	}
	if len(counted) == 0 {
		return nil, nil
	}
	failed, err := c.Store.AddCounts(ctx, counted)
	var failures []Failure
	for _, m := range failed {
		failures = append(failures, Failure{Record: first[m], What: "counting", Err: err})
	}
	return failures, nil
}

// Holders keeps the index of title holders: the members that acquire each
// title, for a withdrawal to find them, in a few batch writes a batch.
type Holders struct {
	Store licensing.HolderStore
}

// Project implements Projection. If the write fails, every member of it
// fails at its first record that makes it a holder (writing a holder again
// changes nothing).
func (h *Holders) Project(ctx context.Context, b Batch) ([]Failure, error) {
	var holders []licensing.Holder
	var firsts []Record // each member's first record that makes it a holder
	for _, part := range b {
		found := false
		for _, r := range eventsOf(part.Records) {
			hs := licensing.HoldersOf(part.Member, *r.Event)
			if len(hs) > 0 && !found {
				firsts, found = append(firsts, r), true
			}
			holders = append(holders, hs...)
		}
	}
	if len(holders) == 0 {
		return nil, nil
	}
	err := h.Store.AddHolders(ctx, holders)
	if err == nil {
		return nil, nil
	}
	failures := make([]Failure, len(firsts))
	for i, r := range firsts {
		failures[i] = Failure{Record: r, What: "holders", Err: err}
	}
	return failures, nil
}
