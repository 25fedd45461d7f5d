package jobs

import (
	"context"
	"sync"
)

// RunLocal runs every slice of a job of total segments with a pool of
// workers, standing in for the distributed engine: each slice is tried up
// to attempts times, as the engine retries one, and the job's summary is
// the slices' merged. progress, if set, is called after each slice with
// the number done. It returns the summary and the slices that failed
// every attempt (their errors, by segment).
func RunLocal(ctx context.Context, st Stores, job Slice, workers, attempts int, progress func(done int)) (Summary, map[int]error) {
	workers, attempts = max(workers, 1), max(attempts, 1)
	segments := make(chan int)
	var mu sync.Mutex
	var sum Summary
	failed := map[int]error{}
	done := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for seg := range segments {
				sl := job
				sl.Segment = seg
				var s Summary
				var err error
				for range attempts {
					if s, err = Run(ctx, st, sl); err == nil || ctx.Err() != nil {
						break
					}
				}
				mu.Lock()
				if err != nil {
					failed[seg] = err
				} else {
					sum.Merge(s)
				}
				done++
				if progress != nil {
					progress(done)
				}
				mu.Unlock()
			}
		})
	}
	for seg := range job.Total {
		select {
		case segments <- seg:
		case <-ctx.Done():
		}
	}
	close(segments)
	wg.Wait()
	if sum.Kind == "" {
		sum.Kind = job.Kind
	}
	return sum, failed
}
