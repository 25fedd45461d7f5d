package kernel

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff waits before retry number attempt of a lost race or a throttled
// call: a random time up to base·2^attempt (capped at 64 times base), or
// until ctx is done. A zero base does not wait.
func Backoff(ctx context.Context, base time.Duration, attempt int) error {
	if base <= 0 {
		return nil
	}
	t := time.NewTimer(rand.N(base<<min(attempt, 6)) + 1)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
