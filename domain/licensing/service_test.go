package licensing_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/memstore"
)

type clock time.Time

func (c clock) Now() time.Time { return time.Time(c) }

type ids struct{ n atomic.Int64 }

func (i *ids) NewID() string { return fmt.Sprintf("id-%d", i.n.Add(1)) }

var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func newService(store licensing.EventStore) *licensing.Service {
	return licensing.NewService(store, licensing.DefaultPolicy(), clock(t0), &ids{})
}

func TestIdempotentRetryReturnsTheFirstAnswer(t *testing.T) {
	store := memstore.New()
	svc := newService(store)
	ctx := context.Background()
	cmd := licensing.Acquire{Member: "m1", Plan: "premium", Device: "d1", Title: "tt-first-light"}
	first, err := svc.Execute(ctx, cmd, "key-1")
	if err != nil || first.Replayed {
		t.Fatalf("Execute = %+v, %v", first, err)
	}
	again, err := svc.Execute(ctx, cmd, "key-1")
	if err != nil || !again.Replayed || again.Version != first.Version || again.Licences[0] != first.Licences[0] {
		t.Errorf("retry = %+v, %v; want the first answer %+v replayed", again, err, first)
	}
	if n := store.Stats().Appends; n != 1 {
		t.Errorf("%d appends, want 1", n)
	}
	// The key survives a snapshot: the answer comes from the snapshot's state.
	st, _ := svc.Load(ctx, "m1")
	snap, _ := licensing.EncodeSnapshot(st, licensing.DefaultPolicy())
	if _, err := store.SaveSnapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	again, err = svc.Execute(ctx, cmd, "key-1")
	if err != nil || !again.Replayed || again.Licences[0] != first.Licences[0] {
		t.Errorf("retry after a snapshot = %+v, %v; want the first answer", again, err)
	}
	// The same key for another request is refused.
	other := cmd
	other.Title = "tt-paper-moons"
	_, err = svc.Execute(ctx, other, "key-1")
	var e *kernel.Error
	if !errors.As(err, &e) || e.Kind != kernel.KindConflict || e.Code != kernel.CodeKeyReused {
		t.Errorf("same key, other request = %v, want %s", err, kernel.CodeKeyReused)
	}
	// A bad key is refused before anything is read.
	if _, err := svc.Execute(ctx, cmd, "key with spaces"); kernel.KindOf(err) != kernel.KindInvalid {
		t.Errorf("Execute with a bad key = %v, want invalid", err)
	}
}

func TestAKeyIsForgottenAfterItsRetention(t *testing.T) {
	store := memstore.New()
	svc := newService(store)
	ctx := context.Background()
	cmd := licensing.Release{Member: "m1", Device: "d1", Licence: "x", Reason: licensing.ReasonDeleted}
	res, err := svc.Execute(ctx, licensing.Acquire{Member: "m1", Plan: "premium", Device: "d1", Title: "tt-first-light"}, "k")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Licence = res.Licences[0].ID
	svc.Clock = clock(t0.Add(licensing.KeyRetention))
	// After the retention the key is free again.
	if res, err := svc.Execute(ctx, cmd, "k"); err != nil || res.Replayed {
		t.Errorf("Execute after the key's retention = %+v, %v; want a new answer", res, err)
	}
}

// alwaysConflicts loses every race.
type alwaysConflicts struct{ *memstore.Store }

func (s alwaysConflicts) Append(_ context.Context, stream string, expected int64, _ []licensing.Event) error {
	return &licensing.ConflictError{Stream: stream, Expected: expected, Current: expected + 1}
}

func TestConflictRetriesAreBounded(t *testing.T) {
	store := alwaysConflicts{memstore.New()}
	svc := newService(store)
	svc.MaxAttempts, svc.Backoff = 4, time.Microsecond
	conflicts := 0
	svc.Observer.Conflict = func(context.Context, string, int) { conflicts++ }
	_, err := svc.Execute(context.Background(), licensing.Acquire{Member: "m1", Plan: "premium", Device: "d1", Title: "tt-first-light"}, "")
	var e *kernel.Error
	if !errors.As(err, &e) || e.Kind != kernel.KindUnavailable || e.Code != kernel.CodeContention {
		t.Errorf("Execute under endless conflicts = %v, want %s", err, kernel.CodeContention)
	}
	// A load, then a catch-up per lost race; after the first, whose
	// eventually consistent catch-up sees nothing new, a consistent one too.
	if conflicts != 3 || store.Stats().Loads != 5 {
		t.Errorf("%d conflicts retried and %d loads, want 3 and 5", conflicts, store.Stats().Loads)
	}
}

func TestAnUnreadableSnapshotIsIgnored(t *testing.T) {
	store := memstore.New()
	svc := newService(store)
	ctx := context.Background()
	for _, title := range []string{"tt-first-light", "tt-paper-moons"} {
		if _, err := svc.Execute(ctx, licensing.Acquire{Member: "m1", Plan: "premium", Device: "d1", Title: title}, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.SaveSnapshot(ctx, licensing.Snapshot{Stream: "m1", Version: 2, Schema: licensing.StateSchema, Data: []byte("{not json")}); err != nil {
		t.Fatal(err)
	}
	st, err := svc.Load(ctx, "m1")
	if err != nil || st.Version != 2 || len(st.Licences(t0)) != 2 {
		t.Errorf("Load past a broken snapshot = %v, %v; want the state replayed to v2 with 2 licences", st, err)
	}
}

func TestCheckAcquiresNothing(t *testing.T) {
	store := memstore.New()
	svc := newService(store)
	ctx := context.Background()
	if err := svc.Check(ctx, licensing.Acquire{Member: "m1", Plan: "basic", Device: "d1", Title: "tt-first-light"}); err != nil {
		t.Errorf("Check = %v, want nil", err)
	}
	if err := svc.Check(ctx, licensing.Acquire{Member: "m1", Plan: "basic", Device: "d1", Title: "tt-meridian-two"}); kernel.KindOf(err) != kernel.KindDenied {
		t.Errorf("Check(streaming-only title) = %v, want a denial", err)
	}
	if n := store.Stats().Appends; n != 0 {
		t.Errorf("Check appended %d times, want 0", n)
	}
}

// trust makes svc's cache trusted the way an instance earns it: a
// member's requests meeting it again and again, its state each time
// current. It returns the store's loads so far.
func trust(t *testing.T, svc *licensing.Service, store *memstore.Store) int64 {
	t.Helper()
	for range licensing.MinJudged + 1 {
		if _, err := svc.Execute(context.Background(), licensing.ReleaseDevice{Member: "m-regular", Device: "d", Reason: licensing.ReasonDeviceRemoved}, ""); err != nil {
			t.Fatal(err)
		}
	}
	if !svc.Cache.Trusted() {
		judged, current := svc.Cache.Verdicts()
		t.Fatalf("after %d commands of one member the cache is not trusted (%d judged, %d current)", licensing.MinJudged+1, judged, current)
	}
	return store.Stats().Loads
}

// TestAWarmCacheGoesStraightToTheAppend: once trusted, a member's second
// command on the same service reads nothing: it is decided on the cached
// state and appended conditionally.
func TestAWarmCacheGoesStraightToTheAppend(t *testing.T) {
	store := memstore.New()
	svc := newService(store)
	ctx := context.Background()
	loads := trust(t, svc, store)
	takes0, hits0 := svc.Cache.Stats()
	for i, title := range []string{"tt-first-light", "tt-paper-moons", "tt-low-tide"} {
		if _, err := svc.Execute(ctx, licensing.Acquire{Member: "m1", Plan: "premium", Device: "d1", Title: title}, fmt.Sprintf("k%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if st := store.Stats(); st.Loads-loads != 1 || st.Appends != 3 {
		t.Errorf("three commands on a warm service: %d loads, %d appends; want 1 and 3", st.Loads-loads, st.Appends)
	}
	if takes, hits := svc.Cache.Stats(); takes-takes0 != 3 || hits-hits0 != 2 {
		t.Errorf("cache: %d takes, %d hits; want 3 and 2", takes-takes0, hits-hits0)
	}
}

// TestACacheReadsFirstUntilItsStatesProveCurrent: a new instance's cache
// is not trusted: it reads first and judges its state against the read;
// after MinJudged current states of members it served last, it decides
// without reading. Two instances taking a member's requests in turn (as
// Lambda may route them) see their states stale, and keep reading first:
// no conditional write is lost, where a trusting cache loses every one.
func TestACacheReadsFirstUntilItsStatesProveCurrent(t *testing.T) {
	store := memstore.New()
	a, b := newService(store), newService(store)
	ctx := context.Background()
	titles := []string{"tt-first-light", "tt-paper-moons", "tt-low-tide", "tt-breakwater"}
	for i := range 40 {
		svc := a
		if i%2 == 1 {
			svc = b
		}
		cmd := licensing.Acquire{Member: "m-shared", Plan: "premium", Device: "d1", Title: titles[i%len(titles)]}
		if i%len(titles) == len(titles)-1 {
			if _, err := svc.Execute(ctx, licensing.ReleaseDevice{Member: "m-shared", Device: "d1", Reason: licensing.ReasonDeviceRemoved}, ""); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := svc.Execute(ctx, cmd, ""); err != nil {
			t.Fatal(err)
		}
	}
	if a.Cache.Trusted() || b.Cache.Trusted() {
		t.Errorf("caches trusted after alternating requests: %v, %v; want neither", a.Cache.Trusted(), b.Cache.Trusted())
	}
	if judged, current := a.Cache.Verdicts(); judged < 15 || current != 0 {
		t.Errorf("a judged %d states, %d current; want its states judged, all stale", judged, current)
	}
	if c := store.Stats().Conflicts; c != 0 {
		t.Errorf("%d conditional writes lost; want none (the caches read first)", c)
	}
	// A member's requests meeting one new instance: its state current each
	// time.
	c := newService(store)
	before := store.Stats().Loads
	loads := trust(t, c, store)
	if loads-before != licensing.MinJudged+1 {
		t.Errorf("earning trust read %d times, want %d (one a command)", loads-before, licensing.MinJudged+1)
	}
	if _, err := c.Execute(ctx, licensing.Acquire{Member: "m-regular", Plan: "premium", Device: "d", Title: "tt-first-light"}, ""); err != nil {
		t.Fatal(err)
	}
	if store.Stats().Loads != loads {
		t.Error("a trusted cache read the log for a member it served last")
	}
}

// settableClock is a clock a test moves.
type settableClock struct{ t *time.Time }

func (c settableClock) Now() time.Time { return *c.t }

// TestACachedStateLeftIdleIsLoadedAfresh: a state unused for the cache's
// idle time is not used again; one used within it is.
func TestACachedStateLeftIdleIsLoadedAfresh(t *testing.T) {
	store := memstore.New()
	now := t0
	svc := licensing.NewService(store, licensing.DefaultPolicy(), settableClock{&now}, &ids{})
	svc.Cache = licensing.NewStateCache(8, time.Minute)
	ctx := context.Background()
	loads := trust(t, svc, store)
	for i, step := range []struct {
		after time.Duration
		loads int64
	}{{0, 1}, {59 * time.Second, 1}, {time.Minute, 2}, {30 * time.Second, 2}, {2 * time.Hour, 3}} {
		now = now.Add(step.after)
		title := []string{"tt-first-light", "tt-paper-moons", "tt-low-tide", "tt-breakwater", "tt-meridian-one"}[i]
		if _, err := svc.Execute(ctx, licensing.Acquire{Member: "m1", Plan: "premium", Device: "d1", Title: title}, fmt.Sprintf("k%d", i)); err != nil {
			t.Fatal(err)
		}
		if got := store.Stats().Loads - loads; got != step.loads {
			t.Errorf("command %d, %v after the one before: %d loads so far, want %d", i, step.after, got, step.loads)
		}
	}
}

// TestRacingInstancesWithCaches: two services (two warm Lambda instances)
// on one store. Each one's cache falls behind the other's appends: a
// command on a stale state loses its race and is decided again on a fresh
// load, and a refusal or a no-op from a stale state is never answered.
func TestRacingInstancesWithCaches(t *testing.T) {
	store := memstore.New()
	a, b := newService(store), newService(store)
	trust(t, a, store)
	trust(t, b, store)
	ctx := context.Background()
	acquire := func(svc *licensing.Service, device, title string) (licensing.Result, error) {
		return svc.Execute(ctx, licensing.Acquire{Member: "m1", Plan: "basic", Device: device, Title: title}, "")
	}
	first, err := acquire(a, "d1", "tt-first-light") // a caches v1
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acquire(b, "d1", "tt-paper-moons"); err != nil { // b appends v2
		t.Fatal(err)
	}
	// a's cache is at v1: its append at v2 loses, it catches up and decides again.
	if res, err := acquire(a, "d1", "tt-low-tide"); err != nil || res.Version != 3 {
		t.Fatalf("a on a stale cache = %+v, %v; want a grant at v3", res, err)
	}
	// b releases everything on d1; a, whose cache still holds the licences,
	// would refuse a second device on basic: it must look again.
	if _, err := b.Execute(ctx, licensing.ReleaseDevice{Member: "m1", Device: "d1", Reason: licensing.ReasonDeviceRemoved}, ""); err != nil {
		t.Fatal(err)
	}
	if res, err := acquire(a, "d2", "tt-first-light"); err != nil {
		t.Fatalf("a after b freed the device = %v; want a grant (the refusal came from a stale cache)", err)
	} else if res.Licences[0].Device != "d2" {
		t.Errorf("granted %+v, want on d2", res.Licences[0])
	}
	// And the release a knows nothing of answers from the log, not from a's cache.
	res, err := a.Execute(ctx, licensing.Release{Member: "m1", Device: "d1", Licence: first.Licences[0].ID, Reason: licensing.ReasonDeleted}, "")
	if err != nil || res.Licences[0].Status != licensing.StatusReleased {
		t.Errorf("release of a licence b released = %+v, %v; want it released already", res, err)
	}
	log, _ := a.Log(ctx, "m1")
	if len(log) != 5 {
		t.Errorf("the log holds %d events, want 5 (three grants, a device release, a grant)", len(log))
	}
}

// TestRightsBoundTheLicence: a licence granted or renewed close to the end
// of its title's availability expires there, and the answer says so; a
// title whose rights run on is not capped.
func TestRightsBoundTheLicence(t *testing.T) {
	end := t0.Add(10 * 24 * time.Hour)
	doc := strings.Replace(string(licensing.DefaultPolicyJSON()), `"tt-first-light":    {`, fmt.Sprintf(`"tt-first-light":    { "available_until": %q,`, end.Format(time.RFC3339)), 1)
	policy, err := licensing.ParsePolicy(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	svc := licensing.NewService(memstore.New(), policy, settableClock{&now}, &ids{})
	ctx := context.Background()
	capped, err := svc.Execute(ctx, licensing.Acquire{Member: "m1", Plan: "premium", Device: "d1", Title: "tt-first-light"}, "k1")
	if err != nil {
		t.Fatal(err)
	}
	if l := capped.Licences[0]; !l.ExpiresAt.Equal(end) || !l.PlayableUntil.Equal(end) || l.ExpiryCappedBy != licensing.CappedByAvailability {
		t.Errorf("grant = expires %v, playable until %v, capped by %q; want %v, by %s", l.ExpiresAt, l.PlayableUntil, l.ExpiryCappedBy, end, licensing.CappedByAvailability)
	}
	if again, _ := svc.Execute(ctx, licensing.Acquire{Member: "m1", Plan: "premium", Device: "d1", Title: "tt-first-light"}, "k1"); again.Licences[0].ExpiryCappedBy != licensing.CappedByAvailability {
		t.Errorf("the retried grant = %+v, want it capped too", again.Licences[0])
	}
	free, err := svc.Execute(ctx, licensing.Acquire{Member: "m1", Plan: "premium", Device: "d1", Title: "tt-paper-moons"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if l := free.Licences[0]; l.ExpiryCappedBy != "" || !l.ExpiresAt.After(end) {
		t.Errorf("a title with no availability end = %+v, want the studio's duration, uncapped", l)
	}
	// A renewal five days before the end: capped again.
	now = end.Add(-5 * 24 * time.Hour)
	renewed, err := svc.Execute(ctx, licensing.Renew{Member: "m1", Plan: "premium", Device: "d1", Licence: capped.Licences[0].ID}, "")
	if err != nil {
		t.Fatal(err)
	}
	if l := renewed.Licences[0]; !l.ExpiresAt.Equal(end) || l.ExpiryCappedBy != licensing.CappedByAvailability || l.Renewals != 1 {
		t.Errorf("renewal = %+v, want it to expire at %v, capped", l, end)
	}
	// Sync shows the same.
	v, err := svc.Sync(ctx, "m1", "premium", "d1", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range v.Active {
		if l.Title == "tt-first-light" && l.ExpiryCappedBy != licensing.CappedByAvailability {
			t.Errorf("sync = %+v, want the capped licence said so", l)
		}
	}
}
