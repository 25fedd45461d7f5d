package viewing

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"
)

// CloseSilentAfter is how long past its expiry a view that sends nothing
// more (an app killed, a device gone) waits to be closed: its history
// entry and engagement get its last known position and totals. The sweep
// that closes them runs every minute (SweepEvery), so a silent view is
// closed within expiry + CloseSilentAfter + SweepEvery of its last report.
const CloseSilentAfter = 2 * time.Minute

// SweepEvery is how often the sweep of silent views runs.
const SweepEvery = time.Minute

// Silent reports whether v is due to be closed at now: not ended, not
// closed yet, and past its expiry by CloseSilentAfter.
func (v *View) Silent(now time.Time) bool {
	return v != nil && v.Ended == "" && v.Closed.IsZero() && !now.Before(v.Expires.Add(CloseSilentAfter))
}

// CloseSilent closes a silent view at now: its last checkpoint catches up
// with the time watched to its last report (nothing after it counts), and
// the write is one the stream function handles (Checkpoint), which closes
// its history entry as Expired. The view keeps its slot: only a start that
// claims the slot ends it, so a view silent because the service could not
// be reached plays on from its next heartbeat (which clears Closed).
func (v *View) CloseSilent(now time.Time) {
	v.PrevCheckpointMs, v.CheckpointMs = v.CheckpointMs, v.WatchedMs
	v.Checkpoint, v.Closed = true, now
}

// SilentStore finds the views whose heartbeats stopped and closes them.
// Open views are spread over LiveShards shards (by member), swept apart.
type SilentStore interface {
	// Silent calls fn with each open view of the shard (not ended, not
	// closed) started before before, as an eventually consistent read
	// holds it. fn's error stops the walk.
	Silent(ctx context.Context, shard int, before time.Time, fn func(member string, v *View) error) error
	// CloseSilent applies View.CloseSilent to v (as Silent gave it) if its
	// slot still holds it as it was (same heartbeat): applied is false if
	// it has changed since (a heartbeat came, a stop, an end, another
	// start, or another sweep closed it).
	CloseSilent(ctx context.Context, member string, v *View, now time.Time) (applied bool, err error)
}

// LiveShards is the number of shards the open views are spread over: the
// sweep's unit of work (a shard a Lambda invocation).
const LiveShards = 16

// LiveShard is the shard of member's open views.
func LiveShard(member string) int {
	h := fnv.New32a()
	h.Write([]byte(member))
	return int(h.Sum32() % LiveShards)
}

// Sweep is what a sweep of one shard did: the open views it read, and
// those it closed.
type Sweep struct {
	Shard  int `json:"shard"`
	Read   int `json:"read"`
	Closed int `json:"closed"`
}

// SweepSilent closes the silent views of one shard at now.
func SweepSilent(ctx context.Context, s SilentStore, shard int, now time.Time) (Sweep, error) {
	out := Sweep{Shard: shard}
	if shard < 0 || shard >= LiveShards {
		return out, fmt.Errorf("shard %d: the shards are 0 to %d", shard, LiveShards-1)
	}
	err := s.Silent(ctx, shard, now.Add(-CloseSilentAfter), func(member string, v *View) error {
		out.Read++
		if !v.Silent(now) {
			return nil
		}
		closed, err := s.CloseSilent(ctx, member, v, now)
		if err != nil {
			return fmt.Errorf("close %s: %w", v, err)
		}
		if closed {
			out.Closed++
		}
		return nil
	})
	return out, err
}
