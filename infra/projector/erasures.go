package projector

import (
	"context"
	"time"
)

// ErasureStore carries out erasures of members' viewing data.
type ErasureStore interface {
	// EraseViewing erases what member's viewing data holds of views started
	// before at; doing it again changes nothing.
	EraseViewing(ctx context.Context, member string, at time.Time) error
}

// Erasures carries out the erasures of members' viewing data that the API
// began (viewing.HistoryStore.BeginErasure wrote the record): history
// entries, rows, resume points and screens of views started before it.
// It runs before the Viewing projection, which drops what any record says
// of a view started before an erasure.
type Erasures struct {
	Store ErasureStore
}

// Project implements Projection: each erasure in partition order. A member
// whose erasure fails is retried from that record, and nothing after it is
// projected until it is done.
func (e *Erasures) Project(ctx context.Context, b Batch) ([]Failure, error) {
	var failures []Failure
	for _, part := range b {
		for _, r := range part.Records {
			if r.Erasure.IsZero() {
				continue
			}
			if err := e.Store.EraseViewing(ctx, part.Member, r.Erasure); err != nil {
				failures = append(failures, Failure{Record: r, What: "erasure", Err: err})
				break
			}
		}
	}
	return failures, nil
}
