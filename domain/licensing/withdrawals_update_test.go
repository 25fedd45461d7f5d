package licensing_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
)

type ctxKey struct{}

// slowWithdrawals is a withdrawal store whose reads take as long as a test
// says, and remember the context they were given.
type slowWithdrawals struct {
	licensing.WithdrawalStore
	reads   atomic.Int64
	mu      sync.Mutex
	release chan struct{}
	seen    []any
}

func (s *slowWithdrawals) Withdrawals(ctx context.Context) ([]licensing.Withdrawal, error) {
	s.reads.Add(1)
	s.mu.Lock()
	s.seen = append(s.seen, ctx.Value(ctxKey{}))
	release := s.release
	s.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return []licensing.Withdrawal{{Title: "tt-first-light", From: t0}}, nil
}

// lockedClock is a clock a test moves while others read it.
type lockedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *lockedClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *lockedClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestWithdrawalsAreReadWithTheRequestsContext: a due refresh reads with
// the request's context (its values, so its meter, and its deadline); a
// request arriving while that read is under way goes on with the
// withdrawals last read instead of waiting; none is read again before
// Refresh; a failed read keeps the last.
func TestWithdrawalsAreReadWithTheRequestsContext(t *testing.T) {
	clock := &lockedClock{t: t0}
	store := &slowWithdrawals{}
	w := &licensing.Withdrawals{Base: licensing.DefaultPolicy(), Store: store, Refresh: time.Minute, Clock: clock}
	ctx := context.WithValue(context.Background(), ctxKey{}, "request-1")
	p := w.Update(ctx)
	if store.reads.Load() != 1 || len(store.seen) != 1 || store.seen[0] != "request-1" {
		t.Fatalf("first Update: %d reads, contexts %v; want one read with the request's context", store.reads.Load(), store.seen)
	}
	if tt, _ := p.Title("tt-first-light"); tt.WithdrawnFrom == nil || !tt.WithdrawnFrom.Equal(t0) {
		t.Error("the policy after the read does not withdraw tt-first-light")
	}
	w.Update(ctx)
	w.Policy()
	if store.reads.Load() != 1 {
		t.Errorf("%d reads within Refresh, want 1", store.reads.Load())
	}
	// Due again: one request reads (slowly); another goes on meanwhile.
	clock.add(time.Minute)
	release := make(chan struct{})
	store.mu.Lock()
	store.release = release
	store.mu.Unlock()
	var reader sync.WaitGroup
	reader.Go(func() { w.Update(context.WithValue(context.Background(), ctxKey{}, "request-2")) })
	for store.reads.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	done := make(chan *licensing.Policy)
	go func() { done <- w.Update(context.WithValue(context.Background(), ctxKey{}, "request-3")) }()
	select {
	case got := <-done:
		if got != p {
			t.Error("a request during the read did not get the policy in force")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a request waited for another's read of the withdrawals")
	}
	close(release)
	reader.Wait()
	// A read past its request's deadline fails; the last withdrawals stay.
	clock.add(2 * time.Minute)
	store.mu.Lock()
	store.release = make(chan struct{})
	store.mu.Unlock()
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if got := w.Update(short); got != p || !errors.Is(w.Err(), context.DeadlineExceeded) {
		t.Errorf("a read past the request's deadline: policy kept %v, error %v; want the last policy and DeadlineExceeded", got == p, w.Err())
	}
}
