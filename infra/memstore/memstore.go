// Package memstore is the memory twin of the DynamoDB stores: one Store
// serves every port (the event log and snapshots, screens and resume
// points, history, counters, holders, withdrawals, refusals), with the same
// semantics (conditional appends, one forward-only snapshot per stream,
// exact counts under redelivery), so the contract suites (infra/storetest)
// run against both. It is the embedded store of local runs, which it feeds
// the stream function from (Subscribe…), and the fast store of tests. It
// keeps events in their stored form and upcasts them on load. No Lambda
// links it.
package memstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/dlicense/dlicense/domain/audit"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
)

// Store is the in-memory store of every port, safe for concurrent use.
// The zero value is not usable; call New.
type Store struct {
	mu sync.Mutex
	// jobSlices and jobSummaries are the fleet-wide jobs' results.
	jobSlices    map[string]map[int][]byte
	jobSummaries map[string][]byte
	streams      map[string]*stream
	subs         []func(stream string, events []licensing.StoredEvent)
	// screenSubs hear screen writes (views), like subs hear appends, and
	// erasureSubs the erasures of members' viewing data.
	screenSubs  []func(ScreenChange)
	erasureSubs []func(viewing.Erasure)
	// pending holds writes not yet delivered to subscribers, in write
	// order; one goroutine at a time (draining) delivers them, outside mu.
	pending  []batch
	draining bool

	// screens holds each member's screen slots (index = slot), resumes
	// each resume point by resumeKey.
	screens map[string][]*viewing.View
	// audit holds each actor's audit records, oldest first.
	audit   map[string][]audit.Record
	resumes map[string]*viewing.Resume
	// history holds each member's history entries by key, rows each
	// recently watched row by member and profile, engagement each title's
	// counts by title and day.
	history    map[string]map[string]viewing.HistoryEntry
	rows       map[string]*viewing.Row
	engagement map[string]map[string]viewing.Engagement // day → title → counts
	erasures   map[string]*viewing.Erasure
	// withdrawals hold the operators' withdrawals by title, holders the
	// members that acquired each title, in order.
	withdrawals map[string]licensing.Withdrawal
	holders     map[string][]string
	refusals    map[string][]licensing.Refusal

	loads, appends, conflicts, snapshots atomic.Int64

	counts map[string]licensing.Counts
	// counted is, per member, the last version counted.
	counted map[string]int64
}

// stream is one member's log: stored events in version order (events[i]
// has version i+1) and the one snapshot held, if any. Stored events are
// never modified once written, so readers may share them outside the lock.
type stream struct {
	events []licensing.StoredEvent
	snap   *licensing.Snapshot
}

// batch is one write as subscribers hear it: an append (events) or a
// screen write (screen).
type batch struct {
	stream  string
	events  []licensing.StoredEvent
	screen  *ScreenChange
	erasure *viewing.Erasure
}

var (
	_ licensing.EventStore    = (*Store)(nil)
	_ licensing.SnapshotStore = (*Store)(nil)
)

// New returns an empty store.
func New() *Store {
	return &Store{
		streams: map[string]*stream{}, screens: map[string][]*viewing.View{}, resumes: map[string]*viewing.Resume{},
		history: map[string]map[string]viewing.HistoryEntry{}, rows: map[string]*viewing.Row{}, engagement: map[string]map[string]viewing.Engagement{},
		erasures: map[string]*viewing.Erasure{},
	}
}

// Stats counts the calls a store has served, failed ones included: a
// benchmark reads round trips from it and a test reads retries.
type Stats struct {
	// Loads counts Load calls.
	Loads int64
	// Appends counts Append and AppendStored calls.
	Appends int64
	// Conflicts counts appends refused because the stream had moved on.
	Conflicts int64
	// Snapshots counts SaveSnapshot calls.
	Snapshots int64
}

// Stats returns the call counts so far.
func (s *Store) Stats() Stats {
	return Stats{
		Loads:     s.loads.Load(),
		Appends:   s.appends.Load(),
		Conflicts: s.conflicts.Load(),
		Snapshots: s.snapshots.Load(),
	}
}

// Subscribe registers fn to hear every later successful append, as it was
// stored, the way a stream processor hears a table's change stream. Calls
// come one at a time, in write order, outside the store's lock, and fn gets
// its own copies of the events; fn may use the store, appends included.
// Without overlapping appends, an append has been delivered when it returns;
// with them, one appender may deliver for the others.
func (s *Store) Subscribe(fn func(stream string, events []licensing.StoredEvent)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs = append(s.subs, fn)
}

// Load implements licensing.EventStore. Every read is consistent, so
// opts.Consistent changes nothing.
func (s *Store) Load(ctx context.Context, name string, opts licensing.LoadOptions) (licensing.Stream, error) {
	s.loads.Add(1)
	if err := ctx.Err(); err != nil {
		return licensing.Stream{}, err
	}
	var out licensing.Stream
	var stored []licensing.StoredEvent
	s.mu.Lock()
	if st := s.streams[name]; st != nil && opts.After > 0 {
		stored = st.events[min(opts.After, int64(len(st.events))):]
	} else if st != nil {
		stored = st.events
		if sn := st.snap; sn != nil && sn.Schema >= 1 && sn.Schema <= opts.SnapshotSchema {
			c := *sn
			c.Data = bytes.Clone(sn.Data)
			out.Snapshot = &c
			stored = stored[sn.Version:]
		}
	}
	s.mu.Unlock()
	// Decoding outside the lock is safe: stored events are never modified
	// and a later append never touches the elements already in the slice.
	if len(stored) > 0 {
		out.Events = make([]licensing.Event, len(stored))
	}
	for i, se := range stored {
		e, err := licensing.DecodeEvent(se)
		if err != nil {
			return licensing.Stream{}, fmt.Errorf("load %s: %w", name, err)
		}
		out.Events[i] = e
	}
	return out, nil
}

// Append implements licensing.EventStore: it encodes the events at their
// current schema and appends them like AppendStored.
func (s *Store) Append(ctx context.Context, name string, expected int64, events []licensing.Event) error {
	s.appends.Add(1)
	if err := ctx.Err(); err != nil {
		return err
	}
	stored := make([]licensing.StoredEvent, len(events))
	for i, e := range events {
		se, err := licensing.EncodeEvent(e)
		if err != nil {
			return fmt.Errorf("append to %s: %w", name, err)
		}
		stored[i] = se
	}
	return s.appendStored(name, expected, stored)
}

// AppendStored appends events already in their stored form, at versions
// expected+1, expected+2, … all or nothing, exactly like Append: tests use
// it to seed events written under an older schema.
func (s *Store) AppendStored(ctx context.Context, name string, expected int64, events []licensing.StoredEvent) error {
	s.appends.Add(1)
	if err := ctx.Err(); err != nil {
		return err
	}
	stored := make([]licensing.StoredEvent, len(events))
	for i, e := range events {
		e.Data = bytes.Clone(e.Data)
		stored[i] = e
	}
	return s.appendStored(name, expected, stored)
}

// appendStored writes events the store owns (nobody else holds their Data).
func (s *Store) appendStored(name string, expected int64, events []licensing.StoredEvent) error {
	if err := licensing.CheckAppend(name, expected, events); err != nil {
		return err
	}

	s.mu.Lock()
	st := s.streams[name]
	if st == nil {
		st = &stream{}
		s.streams[name] = st
	}
	if cur := int64(len(st.events)); cur != expected {
		s.mu.Unlock()
		s.conflicts.Add(1)
		return &licensing.ConflictError{Stream: name, Expected: expected, Current: cur}
	}
	st.events = append(st.events, events...)
	if len(s.subs) == 0 {
		s.mu.Unlock()
		return nil
	}
	s.publish(batch{stream: name, events: events})
	return nil
}

// publish queues a write for the subscribers and delivers the queue unless
// another goroutine is delivering it. It is called with s.mu held and
// releases it.
func (s *Store) publish(b batch) {
	s.pending = append(s.pending, b)
	deliver := !s.draining
	s.draining = true
	s.mu.Unlock()
	if deliver {
		s.deliver()
	}
}

// deliver hands pending appends to the subscribers until none is left.
func (s *Store) deliver() {
	finished := false
	defer func() {
		if !finished { // a subscriber panicked: let the next append deliver
			s.mu.Lock()
			s.draining = false
			s.mu.Unlock()
		}
	}()
	for {
		s.mu.Lock()
		todo, subs, screenSubs, erasureSubs := s.pending, s.subs, s.screenSubs, s.erasureSubs
		s.pending = nil
		if len(todo) == 0 {
			s.draining = false
			s.mu.Unlock()
			finished = true
			return
		}
		s.mu.Unlock()
		for _, b := range todo {
			if b.erasure != nil {
				for _, fn := range erasureSubs {
					fn(*b.erasure)
				}
				continue
			}
			if b.screen != nil {
				for _, fn := range screenSubs {
					c := *b.screen
					c.View = *cloneView(&c.View)
					fn(c)
				}
				continue
			}
			for _, fn := range subs {
				fn(b.stream, cloneStored(b.events))
			}
		}
	}
}

// SaveSnapshot implements licensing.SnapshotStore. A stream holds one
// snapshot; a new one replaces it if its version is higher, whatever its
// schema, or at the same version if its schema differs (a migration). A
// snapshot past the stream's last event is an error.
func (s *Store) SaveSnapshot(ctx context.Context, snap licensing.Snapshot) (bool, error) {
	s.snapshots.Add(1)
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if snap.Stream == "" {
		return false, errors.New("save snapshot: empty stream name")
	}
	if snap.Version < 1 {
		return false, fmt.Errorf("save snapshot of %s: version %d is not positive", snap.Stream, snap.Version)
	}
	snap.Data = bytes.Clone(snap.Data)

	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[snap.Stream]
	var cur int64
	if st != nil {
		cur = int64(len(st.events))
	}
	if snap.Version > cur {
		return false, fmt.Errorf("save snapshot of %s v%d: the stream is at v%d", snap.Stream, snap.Version, cur)
	}
	if held := st.snap; held != nil && (snap.Version < held.Version || snap.Version == held.Version && snap.Schema == held.Schema) {
		return false, nil
	}
	st.snap = &snap
	return true, nil
}

func cloneStored(events []licensing.StoredEvent) []licensing.StoredEvent {
	out := slices.Clone(events)
	for i := range out {
		out[i].Data = bytes.Clone(out[i].Data)
	}
	return out
}

// MembersOf calls fn with every member with at least one event whose log
// falls in segment of total, in order (a member's segment is a hash of its
// id, as DynamoDB's parallel scan spreads partitions).
func (s *Store) MembersOf(ctx context.Context, segment, total int, fn func(member string) error) error {
	s.mu.Lock()
	var members []string
	for name, st := range s.streams {
		if len(st.events) > 0 && SegmentOf(name, total) == segment {
			members = append(members, name)
		}
	}
	s.mu.Unlock()
	slices.Sort(members)
	for _, m := range members {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

// SegmentOf is the segment of total a member falls in.
func SegmentOf(member string, total int) int {
	h := fnv.New32a()
	h.Write([]byte(member))
	return int(h.Sum32() % uint32(max(total, 1)))
}

// SaveSlice keeps a job slice's result once (jobs.Results).
func (s *Store) SaveSlice(_ context.Context, job string, segment int, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jobSlices == nil {
		s.jobSlices = map[string]map[int][]byte{}
	}
	if s.jobSlices[job] == nil {
		s.jobSlices[job] = map[int][]byte{}
	}
	if _, ok := s.jobSlices[job][segment]; !ok {
		s.jobSlices[job][segment] = slices.Clone(data)
	}
	return nil
}

// Slices returns a job's slice results, by segment (jobs.Results).
func (s *Store) Slices(_ context.Context, job string) ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	segs := slices.Sorted(maps.Keys(s.jobSlices[job]))
	out := make([][]byte, len(segs))
	for i, seg := range segs {
		out[i] = slices.Clone(s.jobSlices[job][seg])
	}
	return out, nil
}

// SaveSummary keeps a job's summary (jobs.Results).
func (s *Store) SaveSummary(_ context.Context, job string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jobSummaries == nil {
		s.jobSummaries = map[string][]byte{}
	}
	s.jobSummaries[job] = slices.Clone(data)
	return nil
}
