package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/jobs"
	"github.com/dlicense/dlicense/infra/memstore"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

type ids struct{ n int }

func (i *ids) NewID() string { i.n++; return fmt.Sprintf("L%d", i.n) }

var titles = []string{"tt-first-light", "tt-low-tide", "tt-salt-and-rope", "tt-lighthouse", "tt-ice-road", "tt-breakwater", "tt-northern-lines"}

// fleet writes the logs of n members with varied histories: plans, devices,
// acquisitions over months, renewals, releases, refusals.
func fleet(t testing.TB, n int) *memstore.Store {
	t.Helper()
	store := memstore.New()
	c := &clock{t: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
	svc := licensing.NewService(store, licensing.DefaultPolicy(), c, &ids{})
	svc.Refusals = store
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	plans := []string{"basic", "standard", "premium"}
	for m := range n {
		member := fmt.Sprintf("fleet-%04d", m)
		plan := plans[rng.IntN(len(plans))]
		var held []string
		for range 1 + rng.IntN(12) {
			c.t = c.t.Add(time.Duration(rng.IntN(72)) * time.Hour)
			device := fmt.Sprintf("d%d", rng.IntN(3))
			switch {
			case len(held) > 0 && rng.IntN(4) == 0:
				svc.Execute(ctx, licensing.Release{Member: member, Device: device, Licence: held[0], Reason: licensing.ReasonDeleted}, "")
				held = held[1:]
			case len(held) > 0 && rng.IntN(4) == 0:
				svc.Execute(ctx, licensing.Renew{Member: member, Plan: plan, Device: device, Licence: held[len(held)-1]}, "")
			default:
				res, err := svc.Execute(ctx, licensing.Acquire{Member: member, Plan: plan, Device: device, Title: titles[rng.IntN(len(titles))]}, "")
				if err == nil && len(res.Licences) > 0 {
					held = append(held, res.Licences[0].ID)
				}
			}
		}
	}
	return store
}

// stricter is the shipped policy with every studio's title quota at 1 a
// year and the premium plan at one device.
func stricter(t testing.TB) *licensing.Policy {
	t.Helper()
	p, err := licensing.ParsePolicy(bytes.NewReader(stricterJSON(t)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// stricterJSON is stricter's document.
func stricterJSON(t testing.TB) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(licensing.DefaultPolicyJSON(), &doc); err != nil {
		t.Fatal(err)
	}
	doc["version"] = "stricter"
	for _, s := range doc["studios"].(map[string]any) {
		if q, ok := s.(map[string]any)["title_quota"].(map[string]any); ok {
			q["count"] = 1
		}
	}
	doc["plans"].(map[string]any)["premium"].(map[string]any)["max_download_devices"] = 1
	b, _ := json.Marshal(doc)
	return b
}

// TestFleetWhatIfIsTheSumOfMembers: over 1,000 members, the fleet what-if,
// run a slice at a time by a pool of workers, counts exactly what the
// 1,000 one-member what-ifs find; run again (a retried job), the same.
func TestFleetWhatIfIsTheSumOfMembers(t *testing.T) {
	store := fleet(t, 1000)
	p := stricter(t)
	ctx := context.Background()
	st := jobs.Stores{Members: store, Events: store, Refusals: store}
	got, failed := jobs.RunLocal(ctx, st, jobs.Slice{Kind: jobs.KindWhatIf, Total: 16, Policy: p}, 4, 1, nil)
	if len(failed) > 0 {
		t.Fatalf("slices failed: %v", failed)
	}

	var want jobs.Summary
	want.Kind = jobs.KindWhatIf
	for m := range 1000 {
		member := fmt.Sprintf("fleet-%04d", m)
		str, err := store.Load(ctx, member, licensing.LoadOptions{Consistent: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(str.Events) == 0 {
			continue
		}
		want.Members++
		want.Events += len(str.Events)
		want.Flips += len(licensing.WhatIf(member, str.Events, p))
		refused, _ := store.Refusals(ctx, member, 1000)
		want.WouldGrant += len(licensing.WouldGrant(member, str.Events, refused, p))
	}
	if got.Members != want.Members || got.Events != want.Events || got.Flips != want.Flips || got.WouldGrant != want.WouldGrant || got.Segments != 16 {
		t.Errorf("fleet what-if = %d members, %d events, %d flips, %d would grant over %d segments; the members one by one: %d, %d, %d, %d",
			got.Members, got.Events, got.Flips, got.WouldGrant, got.Segments, want.Members, want.Events, want.Flips, want.WouldGrant)
	}
	if got.Flips == 0 || len(got.ByRule) == 0 || len(got.ByStudio) == 0 || len(got.Samples) == 0 {
		t.Errorf("the stricter policy flips nothing, or the summary says nothing of it: %+v", got)
	}
	rules := 0
	for _, n := range got.ByRule {
		rules += n
	}
	if rules < got.Flips {
		t.Errorf("%d rule counts for %d flips: each flip has at least one rule", rules, got.Flips)
	}
	again, _ := jobs.RunLocal(ctx, st, jobs.Slice{Kind: jobs.KindWhatIf, Total: 7, Policy: p}, 2, 1, nil)
	again.Segments = got.Segments
	if !reflect.DeepEqual(again, got) {
		t.Errorf("the same job in 7 segments = %+v, want %+v", again, got)
	}
	t.Logf("fleet what-if over %d members: %d flips by rule %v, %d refusals it would grant", got.Members, got.Flips, got.ByRule, got.WouldGrant)
}

// TestRecountEqualsTheLiveCounters: the fleet recount equals the counters
// the stream function kept, fed every append as Lambda would.
func TestRecountEqualsTheLiveCounters(t *testing.T) {
	store := fleet(t, 300)
	ctx := context.Background()
	sum, failed := jobs.RunLocal(ctx, jobs.Stores{Members: store, Events: store}, jobs.Slice{Kind: jobs.KindRecount, Total: 8}, 3, 1, nil)
	if len(failed) > 0 || len(sum.Counts) == 0 {
		t.Fatalf("recount = %+v, %v", sum, failed)
	}
	// The live counters: every log's counter changes, added as the stream
	// function adds them.
	for m := range 300 {
		member := fmt.Sprintf("fleet-%04d", m)
		str, _ := store.Load(ctx, member, licensing.LoadOptions{Consistent: true})
		if _, err := store.AddCounts(ctx, []licensing.Counted{licensing.CountedOf(member, str.Events)}); err != nil {
			t.Fatal(err)
		}
	}
	for scope, want := range sum.Counts {
		got, err := store.Counts(ctx, scope)
		if err != nil {
			t.Fatal(err)
		}
		for f, v := range want {
			if got[f] != v {
				t.Errorf("%s %s: recount %d, live %d", scope, f, v, got[f])
			}
		}
	}
}

// TestAnEmptyFleet: a job over no member ends with zeros.
func TestAnEmptyFleet(t *testing.T) {
	store := memstore.New()
	sum, failed := jobs.RunLocal(context.Background(), jobs.Stores{Members: store, Events: store}, jobs.Slice{Kind: jobs.KindWhatIf, Total: 4, Policy: licensing.DefaultPolicy()}, 2, 1, nil)
	if len(failed) > 0 || sum.Members != 0 || sum.Flips != 0 || sum.Segments != 4 {
		t.Errorf("a job over an empty table = %+v, %v; want zeros over 4 segments", sum, failed)
	}
	if err := (jobs.Slice{Kind: "defrag", Total: 4}).Check(); err == nil {
		t.Errorf("an unknown kind was accepted")
	}
}

// gated holds every listing until released: a job that keeps running.
type gated struct {
	jobs.Members
	release chan struct{}
}

func (g gated) MembersOf(ctx context.Context, segment, total int, fn func(string) error) error {
	<-g.release
	return g.Members.MembersOf(ctx, segment, total, fn)
}

// TestTheLocalEngine: a job of a kind running refuses another of that
// kind (JOB_RUNNING), not of another; the job's status counts the slices
// done, and ends with the summary RunLocal gives.
func TestTheLocalEngine(t *testing.T) {
	store := fleet(t, 60)
	release := make(chan struct{})
	e := &jobs.Local{Stores: jobs.Stores{Members: gated{store, release}, Events: store}, Results: store, Workers: 2}
	ctx := context.Background()
	if err := e.Start(ctx, "recount-1", jobs.Request{Kind: jobs.KindRecount, Segments: 6, MaxConcurrency: 2}); err != nil {
		t.Fatal(err)
	}
	err := e.Start(ctx, "recount-2", jobs.Request{Kind: jobs.KindRecount, Segments: 6, MaxConcurrency: 2})
	if kernel.KindOf(err) != kernel.KindConflict {
		t.Errorf("a second recount while one runs = %v, want JOB_RUNNING", err)
	}
	if st, err := e.Status(ctx, "recount-1"); err != nil || st.State != jobs.StateRunning || st.SegmentsDone != 0 {
		t.Errorf("status while held = %+v, %v", st, err)
	}
	close(release)
	var st jobs.Status
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if st, err = e.Status(ctx, "recount-1"); err != nil || st.State != jobs.StateRunning {
			break
		}
	}
	want, _ := jobs.RunLocal(ctx, jobs.Stores{Members: store, Events: store}, jobs.Slice{Kind: jobs.KindRecount, Total: 6}, 1, 1, nil)
	if st.State != jobs.StateSucceeded || st.SegmentsDone != 6 || st.Summary == nil || !reflect.DeepEqual(st.Summary.Counts, want.Counts) {
		t.Errorf("the job = %+v, want SUCCEEDED, 6 segments, the recount", st)
	}
	if _, err := e.Status(ctx, "recount-9"); kernel.KindOf(err) != kernel.KindNotFound {
		t.Errorf("an unknown job = %v, want JOB_NOT_FOUND", err)
	}
	if err := e.Start(ctx, "recount-3", jobs.Request{Kind: jobs.KindRecount, Segments: 2, MaxConcurrency: 1}); err != nil {
		t.Errorf("a recount once the first ended = %v", err)
	}
}

// TestRebuildJobs: the snapshots job writes every member's snapshot (a
// load then reads no event before it), and run again writes none; the
// holders job records every title a member acquired.
func TestRebuildJobs(t *testing.T) {
	store := fleet(t, 80)
	ctx := context.Background()
	st := jobs.Stores{Members: store, Events: store, Snapshots: store, Holders: store, Policy: licensing.DefaultPolicy()}
	sum, failed := jobs.RunLocal(ctx, st, jobs.Slice{Kind: jobs.KindSnapshots, Total: 5}, 2, 1, nil)
	if len(failed) > 0 || sum.Written != sum.Members || sum.Members == 0 {
		t.Fatalf("snapshots = %+v, %v; want one written per member", sum, failed)
	}
	for m := range 80 {
		str, _ := store.Load(ctx, fmt.Sprintf("fleet-%04d", m), licensing.LoadOptions{SnapshotSchema: licensing.StateSchema})
		if str.Version() > 0 && (str.Snapshot == nil || str.Snapshot.Version != str.Version()) {
			t.Errorf("fleet-%04d: snapshot %+v at v%d", m, str.Snapshot, str.Version())
		}
	}
	if again, _ := jobs.RunLocal(ctx, st, jobs.Slice{Kind: jobs.KindSnapshots, Total: 5}, 2, 1, nil); again.Written != 0 {
		t.Errorf("snapshots again wrote %d, want none", again.Written)
	}
	h, failed := jobs.RunLocal(ctx, st, jobs.Slice{Kind: jobs.KindHolders, Total: 3}, 2, 1, nil)
	if len(failed) > 0 || h.Holders == 0 {
		t.Fatalf("holders = %+v, %v", h, failed)
	}
	// Every member that acquired a title is among its holders.
	held := map[string]bool{}
	for _, title := range titles {
		if err := store.Holders(ctx, title, "", func(ms []string, _ string) error {
			for _, m := range ms {
				held[title+"/"+m] = true
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for m := range 80 {
		member := fmt.Sprintf("fleet-%04d", m)
		str, _ := store.Load(ctx, member, licensing.LoadOptions{Consistent: true})
		for _, e := range str.Events {
			if a, ok := e.Payload.(*licensing.LicenceAcquired); ok && !held[a.Title+"/"+member] {
				t.Errorf("%s acquired %s, and is not among its holders", member, a.Title)
			}
		}
	}
}

// TestABatchAsTheStateMachineSendsIt: the state machine passes its input's
// policy to every batch, null but for a what-if: a recount's batch runs,
// and so does its reduce.
func TestABatchAsTheStateMachineSendsIt(t *testing.T) {
	store := fleet(t, 30)
	ctx := context.Background()
	var b jobs.Batch
	if err := json.Unmarshal([]byte(`{"Items":[0,1],"BatchInput":{"job":"recount-1","kind":"recount","total":2,"policy":null}}`), &b); err != nil {
		t.Fatal(err)
	}
	st := jobs.Stores{Members: store, Events: store}
	out, err := jobs.Handle(ctx, st, store, b)
	if err != nil || len(out.Segments) != 2 || out.Members == 0 {
		t.Fatalf("a recount batch with a null policy = %+v, %v", out, err)
	}
	b.Reduce = true
	if out, err := jobs.Handle(ctx, st, store, b); err != nil || out.Summary == nil || out.Summary.Members != out.Members {
		t.Fatalf("its reduce = %+v, %v", out, err)
	}
}

// failingEvents fails the load of one member: the store went away.
type failingEvents struct {
	licensing.EventStore
	member string
}

func (f failingEvents) Load(ctx context.Context, member string, o licensing.LoadOptions) (licensing.Stream, error) {
	if member == f.member {
		return licensing.Stream{}, kernel.Unavailable("the store went away", nil)
	}
	return f.EventStore.Load(ctx, member, o)
}

// TestMembersAtOnce: a slice's members handled by 8 workers at once give
// the summary one worker gives, for every kind that reads the logs; a
// worker's error (the store gone) ends the slice with it.
func TestMembersAtOnce(t *testing.T) {
	store := fleet(t, 400)
	ctx := context.Background()
	p := stricter(t)
	for _, kind := range []string{jobs.KindWhatIf, jobs.KindRecount, jobs.KindHolders, jobs.KindSnapshots} {
		sl := jobs.Slice{Kind: kind, Total: 3, Policy: p}
		if kind != jobs.KindWhatIf {
			sl.Policy = nil
		}
		st := jobs.Stores{Members: store, Events: store, Refusals: store, Snapshots: store, Holders: store, Policy: licensing.DefaultPolicy()}
		one, failed := jobs.RunLocal(ctx, st, sl, 1, 1, nil)
		if len(failed) > 0 {
			t.Fatal(failed)
		}
		st.Workers = 8
		many, failed := jobs.RunLocal(ctx, st, sl, 2, 1, nil)
		if len(failed) > 0 {
			t.Fatal(failed)
		}
		if kind == jobs.KindSnapshots { // the first run wrote them all
			one.Written, many.Written = 0, 0
		}
		if !reflect.DeepEqual(one, many) {
			t.Errorf("%s with 8 workers a slice = %+v\nwith one %+v", kind, many, one)
		}
	}
	st := jobs.Stores{Members: store, Events: failingEvents{store, "fleet-0123"}, Workers: 8}
	_, failed := jobs.RunLocal(ctx, st, jobs.Slice{Kind: jobs.KindRecount, Total: 1}, 1, 1, nil)
	if err := failed[0]; kernel.KindOf(err) != kernel.KindUnavailable {
		t.Errorf("a slice whose store went away for one member = %v, want it unavailable", err)
	}
}
