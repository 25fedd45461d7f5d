package licensing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
)

// LoadOptions tune a load.
type LoadOptions struct {
	// SnapshotSchema is the newest state schema the caller can restore: a
	// snapshot of that schema or an older one is returned; one of a newer
	// schema (written by a newer release) is ignored and every event is
	// returned. Zero asks for the whole log without a snapshot.
	SnapshotSchema int
	// Consistent asks for a strongly consistent read, where the store has a
	// choice; the service asks for one after a conflict.
	Consistent bool
	// After, when positive, asks only for the events after that version,
	// without a snapshot: a holder of the state at After catches up.
	After int64
}

// Stream is a loaded member stream: the latest usable snapshot, if any, and
// every event after it, in version order (already upcast).
type Stream struct {
	Snapshot *Snapshot
	Events   []Event
}

// Version is the version of the last event loaded (or of the snapshot).
func (s Stream) Version() int64 {
	if n := len(s.Events); n > 0 {
		return s.Events[n-1].Version
	}
	if s.Snapshot != nil {
		return s.Snapshot.Version
	}
	return 0
}

// EventStore is the port to a member event log.
type EventStore interface {
	// Load returns a stream's latest usable snapshot and the events after it.
	// An unknown stream loads as empty.
	Load(ctx context.Context, stream string, opts LoadOptions) (Stream, error)
	// Append writes events at versions expected+1, expected+2, … all or
	// nothing. If the stream is not at version expected it writes nothing
	// and returns a *ConflictError. The events carry the request's
	// idempotency key and fingerprint in their envelope.
	Append(ctx context.Context, stream string, expected int64, events []Event) error
}

// SnapshotStore is the port that keeps snapshots.
type SnapshotStore interface {
	// SaveSnapshot stores a snapshot if it is newer than the one held, or of
	// the same version and another state schema; otherwise it is ignored
	// (saved reports which).
	SaveSnapshot(ctx context.Context, snap Snapshot) (saved bool, err error)
}

// Counted is what one member's events change in the counters: the changes
// of each event that changes any, in version order.
type Counted struct {
	Member  string
	Changes []Changes
	// From is the version of the member's first event in this delivery,
	// counting or not (0: unknown). A store that has counted some of the
	// member's events, but not every one before From, missed some (a
	// delivery given up on and set aside): it counts those from the
	// member's log first, so that no event goes uncounted, and a late
	// redelivery of them changes nothing. (A member never counted, older
	// than the counters, is counted from the delivery on: a recount
	// counts the rest.)
	From int64
}

// Changes are the counter changes of one event.
type Changes struct {
	Version int64
	Deltas  []CounterDelta
}

// CountedOf collects the counter changes of a member's events, in order.
func CountedOf(member string, events []Event) Counted {
	c := Counted{Member: member}
	for _, e := range events {
		if d := CounterDeltas(e); len(d) > 0 {
			c.Changes = append(c.Changes, Changes{Version: e.Version, Deltas: d})
		}
	}
	return c
}

// CounterStore keeps the counter read models.
type CounterStore interface {
	// AddCounts applies the changes of members' events, each event once
	// however often and however late it comes: the store remembers, per
	// member, the last version it counted, and applies only later ones,
	// atomically with that memory; with Counted.From, it first counts from
	// the log the events before From it has not counted. failed lists the
	// members whose changes were not applied when err is not nil.
	AddCounts(ctx context.Context, counted []Counted) (failed []string, err error)
	// Counts reads a counter scope.
	Counts(ctx context.Context, scope string) (Counts, error)
}

// Observer hears about the service's retries; any field may be nil.
type Observer struct {
	// Conflict is called each time an append loses a race and is retried.
	Conflict func(ctx context.Context, stream string, attempt int)
	// RefusalNotKept is called when a refusal could not be kept.
	RefusalNotKept func(ctx context.Context, stream string, err error)
}

// Service runs commands against member streams: load (or take the cached
// state), decide, append, and on a lost race read the events after the
// state's version and decide again.
type Service struct {
	Store  EventStore
	Policy func() *Policy
	// UpdatePolicy, when set, brings Policy up to date with ctx (a
	// request's: its deadline and meter) before a request decides by it:
	// the operators' withdrawals (Withdrawals.Update).
	UpdatePolicy func(ctx context.Context)
	Clock        kernel.Clock
	IDs          kernel.IDSource
	// MaxAttempts bounds the load-decide-append rounds of one command.
	MaxAttempts int
	// Backoff is the base wait before a retry; each retry waits a random
	// time up to Backoff·2^attempt.
	Backoff  time.Duration
	Observer Observer
	// Cache keeps recently used members' states (nil: none). A command on
	// a cached state goes straight to the conditional append; a lost race
	// catches up. A cached state that refuses or changes nothing is caught
	// up before the answer is given.
	Cache *StateCache
	// Refusals, when set, keeps the acquisitions and renewals refused.
	Refusals RefusalStore
}

// DefaultCacheSize is how many member states a service keeps by default.
const DefaultCacheSize = 256

// NewService returns a service with default retry settings and a state
// cache of DefaultCacheSize members.
func NewService(store EventStore, policy *Policy, clock kernel.Clock, ids kernel.IDSource) *Service {
	return &Service{
		Store: store, Policy: func() *Policy { return policy }, Clock: clock, IDs: ids,
		MaxAttempts: 8, Backoff: 5 * time.Millisecond, Cache: NewStateCache(DefaultCacheSize, DefaultCacheIdle),
	}
}

// Execute runs a command. With a non-empty key, a retry of the same request
// within KeyRetention returns the first answer (Replayed set) and appends
// nothing; the same key with a different request is a KindConflict error.
// A refused command appends nothing and is decided afresh when retried.
func (s *Service) Execute(ctx context.Context, cmd Command, key string) (Result, error) {
	s.updatePolicy(ctx)
	if err := cmd.Validate(); err != nil {
		return Result{}, err
	}
	if key != "" && !kernel.ValidKey(key) {
		return Result{}, kernel.Invalid("Idempotency-Key", "idempotency key must be 1 to 128 printable characters")
	}
	fp := Fingerprint(cmd)
	member := cmd.MemberID()
	request := s.IDs.NewID()
	var st, held *State
	if s.Cache != nil {
		var trusted bool
		if held, trusted = s.Cache.take(member, s.now()); trusted {
			st, held = held, nil
		}
	}
	cached := st != nil
	switch {
	case held != nil:
		// The cache is not trusted: it reads first, but only what its
		// state lacks (one Query of the events after it, a few at most:
		// a state idle longer is not kept), and learns whether the state
		// was current.
		before := held.Version
		var err error
		if st, err = s.catchUp(ctx, held, false); err != nil {
			return Result{}, err
		}
		s.Cache.judge(st.Version == before)
	case st == nil:
		var err error
		if st, err = s.load(ctx, member, false); err != nil {
			return Result{}, err
		}
	}
	for attempt := 1; ; attempt++ {
		now := s.now()
		if key != "" {
			if r, ok := st.Request(key, now); ok {
				s.Cache.put(st, now)
				if r.Fingerprint != fp {
					return Result{}, kernel.Errorf(kernel.KindConflict, kernel.CodeKeyReused, "this idempotency key was used for a different request")
				}
				return Result{Version: r.Version, Licences: s.Policy().annotated(r.Licences), Playback: r.Playback, Replayed: true}, nil
			}
		}
		policy := s.Policy()
		d, err := Decide(st, cmd, policy, now, s.IDs.NewID)
		if cached && (err != nil || d.Event == nil) {
			// A cached state may be behind the log: a refusal, or an answer
			// that appends nothing, is given only once it has caught up.
			cached = false
			before := st.Version
			if st, err = s.catchUp(ctx, st, false); err != nil {
				return Result{}, err
			}
			s.Cache.judge(st.Version == before)
			attempt--
			continue
		}
		if err != nil {
			version := st.Version // the cache hands st to others once it is back
			s.Cache.put(st, now)
			s.keepRefusal(ctx, cmd, version, now, err)
			return Result{}, err
		}
		if d.Event == nil {
			s.Cache.put(st, now)
			d.Result.Licences = policy.annotated(d.Result.Licences)
			return d.Result, nil
		}
		e := Event{Version: st.Version + 1, At: now, PolicyVersion: policy.Version, Key: key, Fingerprint: fp, RequestID: request, Payload: d.Event}
		err = s.Store.Append(ctx, member, st.Version, []Event{e})
		if cached && (err == nil || errors.Is(err, ErrConflict)) {
			s.Cache.judge(err == nil)
		}
		if err == nil {
			touched, playback := st.apply(e, true)
			res := Result{Version: e.Version, Licences: touched, Playback: playback}
			s.Cache.put(st, now)
			res.Licences = policy.annotated(res.Licences)
			return res, nil
		}
		if !errors.Is(err, ErrConflict) {
			return Result{}, fmt.Errorf("append to %s at v%d: %w", kernel.Pseudonym(member), st.Version, err)
		}
		if attempt >= s.MaxAttempts {
			return Result{}, kernel.Errorf(kernel.KindUnavailable, kernel.CodeContention, "too many concurrent changes to this account; retry shortly")
		}
		if s.Observer.Conflict != nil {
			s.Observer.Conflict(ctx, member, attempt)
		}
		if err := kernel.Backoff(ctx, s.Backoff, attempt); err != nil {
			return Result{}, err
		}
		// The state is behind the log: read what it lacks (the state is
		// untouched by the refused append) and decide again. What made it
		// stale was mostly written a while ago (another instance served the
		// member last), so the first catch-up reads eventually consistent,
		// at half the price; if that sees nothing new, or a later attempt
		// loses again, strongly consistent.
		cached = false
		before := st.Version
		if st, err = s.catchUp(ctx, st, attempt > 1); err != nil {
			return Result{}, err
		}
		if st.Version == before && attempt == 1 {
			if st, err = s.catchUp(ctx, st, true); err != nil {
				return Result{}, err
			}
		}
	}
}

// updatePolicy runs UpdatePolicy, if set.
func (s *Service) updatePolicy(ctx context.Context) {
	if s.UpdatePolicy != nil {
		s.UpdatePolicy(ctx)
	}
}

// keepRefusal keeps a refusal for operators (best effort: a failure is
// reported to the observer, and the answer is the refusal all the same).
func (s *Service) keepRefusal(ctx context.Context, cmd Command, version int64, now time.Time, err error) {
	var d *Denial
	if s.Refusals == nil || !errors.As(err, &d) {
		return
	}
	r, ok := RefusalOf(cmd, version, now, d)
	if !ok {
		return
	}
	if err := s.Refusals.RecordRefusal(ctx, cmd.MemberID(), r); err != nil && s.Observer.RefusalNotKept != nil {
		s.Observer.RefusalNotKept(ctx, cmd.MemberID(), err)
	}
}

// catchUp brings a state up to the log: one read of the events after its
// version (strongly consistent if asked), folded in.
func (s *Service) catchUp(ctx context.Context, st *State, consistent bool) (*State, error) {
	str, err := s.Store.Load(ctx, st.Member, LoadOptions{After: st.Version, Consistent: consistent})
	if err != nil {
		return nil, fmt.Errorf("catch up %s from v%d: %w", kernel.Pseudonym(st.Member), st.Version, err)
	}
	for _, e := range str.Events {
		if e.Version != st.Version+1 {
			return nil, fmt.Errorf("catch up %s: event v%d follows v%d", kernel.Pseudonym(st.Member), e.Version, st.Version)
		}
		st.Apply(e)
	}
	return st, nil
}

// Load returns a member's current state.
func (s *Service) Load(ctx context.Context, member string) (*State, error) {
	if !kernel.ValidID(member) {
		return nil, kernel.Invalid("member", "invalid member id")
	}
	return s.load(ctx, member, false)
}

func (s *Service) load(ctx context.Context, member string, consistent bool) (*State, error) {
	st, _, err := LoadState(ctx, s.Store, member, s.Policy(), StateLoad{Consistent: consistent})
	return st, err
}

// StateLoad says how LoadState reads a member's log.
type StateLoad struct {
	// Consistent asks for a strongly consistent read.
	Consistent bool
	// Replay folds the whole log, passing every snapshot over: what a
	// rebuild of snapshots does, after the state's schema changed.
	Replay bool
}

// LoadState loads a member's state for policy p: the latest usable snapshot
// restored (one of another schema, kept for other quotas or unreadable is
// passed over, and the whole log replayed) and the events after it folded
// in, each checked to follow the one before. It returns the snapshot it
// started from, if any. The service, the stream function and a rebuild
// (with Replay) all load this way.
func LoadState(ctx context.Context, store EventStore, member string, p *Policy, how StateLoad) (*State, *Snapshot, error) {
	consistent := how.Consistent
	opts := LoadOptions{SnapshotSchema: StateSchema, Consistent: consistent}
	if how.Replay {
		opts = LoadOptions{Consistent: consistent}
	}
	str, err := store.Load(ctx, member, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", kernel.Pseudonym(member), err)
	}
	st := NewState(member)
	if str.Snapshot != nil && !how.Replay {
		restored, ok, err := RestoreSnapshot(*str.Snapshot, p)
		if err != nil || !ok {
			if str, err = store.Load(ctx, member, LoadOptions{Consistent: consistent}); err != nil {
				return nil, nil, fmt.Errorf("load %s without snapshot: %w", kernel.Pseudonym(member), err)
			}
		} else {
			st = restored
		}
	}
	for _, e := range str.Events {
		if e.Version != st.Version+1 {
			return nil, nil, fmt.Errorf("load %s: event v%d follows v%d", kernel.Pseudonym(member), e.Version, st.Version)
		}
		st.Apply(e)
	}
	return st, str.Snapshot, nil
}

// Log returns a member's whole log, without snapshots, for replay.
func (s *Service) Log(ctx context.Context, member string) ([]Event, error) {
	if !kernel.ValidID(member) {
		return nil, kernel.Invalid("member", "invalid member id")
	}
	str, err := s.Store.Load(ctx, member, LoadOptions{Consistent: true})
	if err != nil {
		return nil, fmt.Errorf("log of %s: %w", kernel.Pseudonym(member), err)
	}
	return str.Events, nil
}

// SnapshotVersion is the version of member's latest snapshot of a state
// schema this release reads (0: none).
func (s *Service) SnapshotVersion(ctx context.Context, member string) (int64, error) {
	if !kernel.ValidID(member) {
		return 0, kernel.Invalid("member", "invalid member id")
	}
	str, err := s.Store.Load(ctx, member, LoadOptions{SnapshotSchema: StateSchema})
	if err != nil {
		return 0, fmt.Errorf("snapshot of %s: %w", kernel.Pseudonym(member), err)
	}
	if str.Snapshot == nil {
		return 0, nil
	}
	return str.Snapshot.Version, nil
}

// Sync reads a device's licences.
//
// The member's plan applies at sync: licences it no longer allows (after a
// downgrade) are released first, the newest kept, and so are licences of
// titles withdrawn since (EnforcePlan, one conditional append); the device
// learns of them in the same answer.
// An unknown plan is refused and changes nothing.
func (s *Service) Sync(ctx context.Context, member, plan, device string, held []string) (Synced, error) {
	s.updatePolicy(ctx)
	if err := checkIDs("member", member, "plan", plan, "device_id", device); err != nil {
		return Synced{}, err
	}
	st, err := s.Load(ctx, member)
	if err != nil {
		return Synced{}, err
	}
	excess, err := Excess(st, s.Policy(), plan, s.now())
	if err != nil {
		return Synced{}, err
	}
	if len(excess) > 0 || len(Withdrawn(st, s.Policy(), "", s.now())) > 0 {
		if _, err := s.Execute(ctx, EnforcePlan{Member: member, Plan: plan}, ""); err != nil {
			return Synced{}, err
		}
		if st, err = s.load(ctx, member, true); err != nil {
			return Synced{}, err
		}
	}
	return Sync(st, s.Policy(), device, held, s.now()), nil
}

// Status is a licence of member as a verifier (a DRM server) must know it
// now: read strongly consistent, so that a licence released a moment ago is
// known as released. A licence the member does not hold (or no longer
// remembers, long after it ended) is KindNotFound.
func (s *Service) Status(ctx context.Context, member, licence string) (LicenceStatus, error) {
	s.updatePolicy(ctx)
	if err := checkIDs("member", member, "licence_id", licence); err != nil {
		return LicenceStatus{}, err
	}
	st, err := s.load(ctx, member, true)
	if err != nil {
		return LicenceStatus{}, err
	}
	now := s.now()
	l := st.Licence(licence, now)
	if l == nil {
		e := kernel.Errorf(kernel.KindNotFound, CodeLicenceNotFound, "no licence %s", licence)
		e.Field = "licence_id"
		return LicenceStatus{}, e
	}
	return l.StatusAt(s.Policy(), now), nil
}

// Check decides an acquisition without appending it: nil if it would be
// granted now, else the denial.
func (s *Service) Check(ctx context.Context, c Acquire) error {
	s.updatePolicy(ctx)
	if err := c.Validate(); err != nil {
		return err
	}
	st, err := s.Load(ctx, c.Member)
	if err != nil {
		return err
	}
	_, err = Decide(st, c, s.Policy(), s.now(), func() string { return "dry-run" })
	return err
}

// now is the clock's time in UTC, to the millisecond: event times and
// expiries read cleanly and survive any store exactly.
func (s *Service) now() time.Time { return s.Clock.Now().UTC().Truncate(time.Millisecond) }
