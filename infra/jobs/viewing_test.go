package jobs_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/jobs"
	"github.com/dlicense/dlicense/infra/memstore"
	"github.com/dlicense/dlicense/infra/projector/projectortest"
	"github.com/dlicense/dlicense/infra/setup"
)

// moving is a clock the viewing fleet moves.
type moving struct {
	mu sync.Mutex
	t  time.Time
}

func (c *moving) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *moving) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var profiles = []string{"", "kids", "guest"}

// viewingFleet plays the views of n members through the viewing service
// (starts, heartbeats, stops, views ended by the member, apps that die and
// expire) over several days, and hands every screen write's stream record
// to the stream function, as Lambda would: the live history entries,
// recently watched rows and engagement counts.
func viewingFleet(t testing.TB, n int) (*memstore.Store, *licensing.Policy) {
	t.Helper()
	ctx := context.Background()
	mem := memstore.New()
	var recs []events.DynamoDBEventRecord
	seq := 0
	mem.SubscribeScreens(func(c memstore.ScreenChange) {
		seq++
		r, err := projectortest.ScreenRecord(c.Member, &c.View, c.Insert, fmt.Sprintf("%021d", seq))
		if err != nil {
			t.Error(err)
		}
		recs = append(recs, r)
	})
	policy := licensing.DefaultPolicy()
	clock := &moving{t: time.Date(2026, 11, 20, 18, 0, 0, 0, time.UTC)}
	svc := viewing.NewService(mem, policy, clock, &ids{})
	rng := rand.New(rand.NewPCG(3, 4))
	p := setup.NewProcessor(setup.Stores{Events: mem, Progress: mem, History: mem}, -1, policy)
	for m := range n {
		member := fmt.Sprintf("viewer-%04d", m)
		for range 1 + rng.IntN(6) {
			device := fmt.Sprintf("d%d", rng.IntN(3))
			st, err := svc.Start(ctx, viewing.Start{Member: member, Plan: "premium", Device: device, Profile: profiles[rng.IntN(len(profiles))], Title: titles[rng.IntN(len(titles))]}, "")
			if err != nil {
				continue // the plan's screens are in use
			}
			pos := st.View.PositionMs
			beats := rng.IntN(8)
			for b := range beats {
				clock.add(30 * time.Second)
				pos += 30_000
				if _, err := svc.Beat(ctx, viewing.Beat{Member: member, Plan: "premium", Device: device, View: st.View.ID, PositionMs: pos, State: viewing.Playing, Seq: int64(b + 1)}); err != nil {
					break
				}
			}
			clock.add(10 * time.Second)
			switch rng.IntN(3) {
			case 0:
				svc.Stop(ctx, viewing.Stop{Member: member, Device: device, View: st.View.ID, PositionMs: pos + 10_000})
			case 1:
				svc.End(ctx, viewing.End{Member: member, View: st.View.ID, Reason: viewing.EndedByMember})
			default: // the app dies: the view expires, its screen taken later
			}
			clock.add(time.Duration(1+rng.IntN(20)) * time.Hour)
		}
		// The stream function, after every member (batches of one member's
		// records, in order).
		if resp, err := p.Handle(ctx, events.DynamoDBEvent{Records: recs}); err != nil || len(resp.BatchItemFailures) > 0 {
			t.Fatalf("stream function: %+v, %v", resp, err)
		}
		recs = recs[:0]
	}
	return mem, policy
}

// liveRows are the members' recently watched rows, by member and profile.
func liveRows(t testing.TB, mem *memstore.Store, n int) map[string][]viewing.RowEntry {
	t.Helper()
	rows := map[string][]viewing.RowEntry{}
	for m := range n {
		member := fmt.Sprintf("viewer-%04d", m)
		for _, profile := range profiles {
			r, err := mem.Row(context.Background(), member, profile)
			if err != nil {
				t.Fatal(err)
			}
			if r != nil && len(r.Entries) > 0 {
				rows[member+"/"+profile] = r.Entries
			}
		}
	}
	return rows
}

// liveEngagement is every title's engagement on the days of the fleet.
func liveEngagement(t testing.TB, mem *memstore.Store) map[string]viewing.Engagement {
	t.Helper()
	out := map[string]viewing.Engagement{}
	for d := range 400 { // the fleet's views span some 8 months
		day := viewing.Day(time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC).AddDate(0, 0, d))
		for _, title := range titles {
			e, err := mem.Engagement(context.Background(), title, day)
			if err != nil {
				t.Fatal(err)
			}
			if e != (viewing.Engagement{}) {
				out[day+"/"+title] = e
			}
		}
	}
	return out
}

// TestViewingJobsRebuildTheLiveReadModels: over members whose views the
// stream function projected as in AWS, the viewing-rows job rebuilds rows
// equal to the live ones (after some are spoiled), and the engagement job
// recounts counts equal to the live ones (after they are spoiled); run
// again, the same.
func TestViewingJobsRebuildTheLiveReadModels(t *testing.T) {
	const n = 150
	ctx := context.Background()
	mem, policy := viewingFleet(t, n)
	wantRows, wantEngagement := liveRows(t, mem, n), liveEngagement(t, mem)
	viewers := 0 // members with a history (a start can be refused)
	if err := mem.ViewingMembers(ctx, func(string) error { viewers++; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(wantRows) < n*9/10 || len(wantEngagement) < 20 {
		t.Fatalf("fleet too small: %d rows, %d title-days", len(wantRows), len(wantEngagement))
	}
	// Spoil: a row that says something else, another deleted, and the
	// engagement counts replaced with one stale count.
	if err := mem.ReplaceRows(ctx, "viewer-0003", nil); err != nil {
		t.Fatal(err)
	}
	stale := viewing.HistoryEntry{View: "v-stale", Title: "tt-gone", Started: time.Now(), LastSeen: time.Now()}
	if err := mem.WatchRow(ctx, "viewer-0007", "", []viewing.HistoryEntry{stale}); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.ReplaceEngagement(ctx, map[string]map[string]viewing.Engagement{"2026-01-01": {"tt-gone": {Views: 9}}}); err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(liveRows(t, mem, n), wantRows) {
		t.Fatal("the rows were not spoiled")
	}
	st := jobs.Stores{Viewing: mem, Policy: policy}
	for round := range 2 {
		sum, failed := jobs.RunLocal(ctx, st, jobs.Slice{Kind: jobs.KindViewingRows, Total: 7}, 3, 1, nil)
		if len(failed) > 0 || sum.Members != viewers || sum.Rows != len(wantRows) || sum.Entries == 0 {
			t.Fatalf("round %d: viewing-rows = %+v, %v; want %d members, %d rows", round, sum, failed, viewers, len(wantRows))
		}
		if got := liveRows(t, mem, n); !reflect.DeepEqual(got, wantRows) {
			for k, w := range wantRows {
				if !reflect.DeepEqual(got[k], w) {
					t.Errorf("round %d: row %s rebuilt\n%+v\nwant\n%+v", round, k, got[k], w)
				}
			}
			t.FailNow()
		}
		sum, failed = jobs.RunLocal(ctx, st, jobs.Slice{Kind: jobs.KindEngagement, Total: 5}, 2, 1, nil)
		if len(failed) > 0 || sum.Members != viewers || len(sum.Engagement) == 0 {
			t.Fatalf("round %d: engagement = %+v, %v", round, sum, failed)
		}
		done, err := jobs.Finish(ctx, st, sum, 5)
		if err != nil || done.TitleDays != len(wantEngagement) || done.Engagement != nil {
			t.Fatalf("round %d: Finish = %+v, %v; want %d title-days written", round, done, err, len(wantEngagement))
		}
		if got := liveEngagement(t, mem); !reflect.DeepEqual(got, wantEngagement) {
			t.Fatalf("round %d: engagement recounted\n%v\nwant\n%v", round, got, wantEngagement)
		}
		if e, _ := mem.Engagement(ctx, "tt-gone", "2026-01-01"); e != (viewing.Engagement{}) {
			t.Errorf("round %d: the stale count stayed: %+v", round, e)
		}
	}
	// The end of a job with a slice missing writes nothing.
	sum, _ := jobs.RunLocal(ctx, st, jobs.Slice{Kind: jobs.KindEngagement, Total: 5}, 2, 1, nil)
	sum.Segments--
	if _, err := jobs.Finish(ctx, st, sum, 5); err == nil {
		t.Error("Finish with 4 of 5 slices wrote the counts")
	}
}

// TestCountersJobReplacesTheCounters: the counters job, over spoiled live
// counters (one scope wrong, one nothing counts), leaves them equal to the
// counters the stream function keeps, and records every member's counted
// version; a job with a slice missing writes nothing.
func TestCountersJobReplacesTheCounters(t *testing.T) {
	const n = 200
	store := fleet(t, n)
	ctx := context.Background()
	live := memstore.New() // the stream function's counters, fed every log
	for m := range n {
		member := fmt.Sprintf("fleet-%04d", m)
		str, _ := store.Load(ctx, member, licensing.LoadOptions{Consistent: true})
		if _, err := live.AddCounts(ctx, []licensing.Counted{licensing.CountedOf(member, str.Events)}); err != nil {
			t.Fatal(err)
		}
	}
	var scopes []string
	if err := live.CounterScopes(ctx, func(scope string) error { scopes = append(scopes, scope); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(scopes) == 0 {
		t.Fatal("no counter touched")
	}
	if err := store.ReplaceCounts(ctx, scopes[0], licensing.Counts{licensing.FieldGranted: 9999}); err != nil {
		t.Fatal(err)
	}
	if err := store.ReplaceCounts(ctx, "title:tt-nobody-has", licensing.Counts{licensing.FieldGranted: 3}); err != nil {
		t.Fatal(err)
	}
	members := 0 // members with a log (some were refused everything)
	if err := store.MembersOf(ctx, 0, 1, func(string) error { members++; return nil }); err != nil {
		t.Fatal(err)
	}
	st := jobs.Stores{Members: store, Events: store, Counters: store}
	sum, failed := jobs.RunLocal(ctx, st, jobs.Slice{Kind: jobs.KindCounters, Total: 6}, 3, 1, nil)
	if len(failed) > 0 || sum.Members != members {
		t.Fatalf("counters = %+v, %v", sum, failed)
	}
	partial := sum
	partial.Segments--
	if _, err := jobs.Finish(ctx, st, partial, 6); err == nil {
		t.Error("Finish with 5 of 6 slices wrote the counters")
	}
	done, err := jobs.Finish(ctx, st, sum, 6)
	if err != nil || done.Scopes == 0 || done.Cleared != 1 {
		t.Fatalf("Finish = scopes %d cleared %d, %v; want the stale scope cleared", done.Scopes, done.Cleared, err)
	}
	for _, scope := range append(scopes, "title:tt-nobody-has") {
		want, _ := live.Counts(ctx, scope)
		got, _ := store.Counts(ctx, scope)
		for f, v := range want {
			if got[f] != v {
				t.Errorf("%s %s: job wrote %d, live %d", scope, f, got[f], v)
			}
		}
		for f, v := range got {
			if want[f] != v {
				t.Errorf("%s %s: job left %d, live %d", scope, f, v, want[f])
			}
		}
	}
	// Every member's events are recorded as counted: the stream function,
	// resumed and handed them again, counts none twice.
	before, _ := store.Counts(ctx, scopes[0])
	for m := range n {
		member := fmt.Sprintf("fleet-%04d", m)
		str, _ := store.Load(ctx, member, licensing.LoadOptions{Consistent: true})
		if _, err := store.AddCounts(ctx, []licensing.Counted{licensing.CountedOf(member, str.Events)}); err != nil {
			t.Fatal(err)
		}
	}
	if after, _ := store.Counts(ctx, scopes[0]); !reflect.DeepEqual(after, before) {
		t.Errorf("%s counted again after the job: %v, was %v", scopes[0], after, before)
	}
}
