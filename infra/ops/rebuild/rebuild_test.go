package rebuild_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/memstore"
	"github.com/dlicense/dlicense/infra/ops/rebuild"
)

type clock struct{}

func (clock) Now() time.Time { return time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC) }

type ids struct{ n atomic.Int64 }

func (i *ids) NewID() string { return fmt.Sprintf("L%d", i.n.Add(1)) }

func seed(t *testing.T, s rebuild.LogStore, members []string) {
	t.Helper()
	svc := licensing.NewService(s, licensing.DefaultPolicy(), clock{}, &ids{})
	for _, m := range members {
		for _, title := range []string{"tt-first-light", "tt-paper-moons", "tt-low-tide"} {
			if _, err := svc.Execute(context.Background(), licensing.Acquire{Member: m, Plan: "premium", Device: "d1", Title: title}, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func check(t *testing.T, s rebuild.LogStore, members []string) {
	t.Helper()
	ctx := context.Background()
	// A snapshot of a state schema that no longer exists, at the head.
	str, _ := s.Load(ctx, members[0], licensing.LoadOptions{})
	old, _ := licensing.EncodeSnapshot(licensing.Fold(members[0], str.Events), licensing.DefaultPolicy())
	old.Schema = licensing.StateSchema - 1
	if _, err := s.SaveSnapshot(ctx, old); err != nil {
		t.Fatal(err)
	}
	done := 0
	r := rebuild.Members(ctx, s, licensing.DefaultPolicy(), append(slices.Clone(members), "nobody"), func(n int) { done = n })
	if r.Members != len(members)+1 || r.Written != len(members) || r.Empty != 1 || r.Failed != 0 || r.Events != 3*len(members) || done != len(members)+1 {
		t.Errorf("rebuild = %+v (progress %d)", r, done)
	}
	for _, m := range members {
		str, err := s.Load(ctx, m, licensing.LoadOptions{SnapshotSchema: licensing.StateSchema})
		if err != nil || str.Snapshot == nil || str.Snapshot.Version != 3 || len(str.Events) != 0 {
			t.Errorf("member %s after rebuild: %+v, %v; want a current snapshot at v3", m, str.Snapshot, err)
		}
	}
	// Again: everything is up to date.
	if r := rebuild.Members(ctx, s, licensing.DefaultPolicy(), members, nil); r.UpToDate != len(members) || r.Written != 0 {
		t.Errorf("second rebuild = %+v, want all up to date", r)
	}
}

func TestRebuildMemory(t *testing.T) {
	s := memstore.New()
	members := []string{"m-a", "m-b", "m-c"}
	seed(t, s, members)
	check(t, s, members)
}

func TestRebuildDynamo(t *testing.T) {
	ctx := context.Background()
	db, name := dynamotest.Table(t)
	s := dynamo.OneTable(db, name).Log
	members := []string{"m-a", "m-b", "m-c"}
	seed(t, s, members)
	var listed []string
	if err := s.Members(ctx, func(m string) error { listed = append(listed, m); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(listed)
	if !slices.Equal(listed, members) {
		t.Errorf("Members = %v, want %v", listed, members)
	}
	check(t, s, members)
}

func TestRebuildCounters(t *testing.T) {
	run := func(t *testing.T, s rebuild.LogStore, cs rebuild.CounterStore, counters licensing.CounterStore) {
		members := []string{"m-a", "m-b"}
		seed(t, s, members)
		ctx := context.Background()
		// Counts gone wrong (as after a changed definition), and a scope
		// that no event counts any more.
		wrong := func(scope string, n int64) licensing.Counted {
			return licensing.Counted{Member: "m-old", Changes: []licensing.Changes{{Version: n, Deltas: []licensing.CounterDelta{{Scope: scope, Field: licensing.FieldGranted, Delta: n}}}}}
		}
		counters.AddCounts(ctx, []licensing.Counted{wrong(licensing.TitleScope("tt-first-light"), 40)})
		counters.AddCounts(ctx, []licensing.Counted{wrong(licensing.TitleScope("tt-gone"), 43)})
		r, err := rebuild.Counters(ctx, s, cs, members, nil)
		if err != nil || r.Members != 2 || r.Events != 6 || r.Cleared != 1 {
			t.Fatalf("rebuild.Counters = %+v, %v", r, err)
		}
		// The stream function, resumed, is handed events the rebuild counted
		// already: they are not counted again.
		str, err := s.Load(ctx, "m-a", licensing.LoadOptions{Consistent: true})
		if err != nil {
			t.Fatal(err)
		}
		if failed, err := counters.AddCounts(ctx, []licensing.Counted{licensing.CountedOf("m-a", str.Events)}); err != nil {
			t.Fatalf("AddCounts(recounted events) = %v, %v", failed, err)
		}
		for title, want := range map[string]int64{"tt-first-light": 2, "tt-paper-moons": 2, "tt-low-tide": 2, "tt-gone": 0} {
			c, err := counters.Counts(ctx, licensing.TitleScope(title))
			if err != nil || c.Granted() != want || c.ActiveOn(clock{}.Now()) != want {
				t.Errorf("%s after recount: %v, %v; want %d granted and active", title, c, err, want)
			}
		}
	}
	t.Run("memory", func(t *testing.T) {
		s := memstore.New()
		run(t, s, s, s)
	})
	t.Run("dynamo", func(t *testing.T) {
		db, name := dynamotest.Table(t)
		s := dynamo.OneTable(db, name)
		run(t, s.Log, s.Counters, s.Counters)
	})
}

// TestRebuildViewing: rows gone wrong and engagement counted under an old
// definition are rebuilt from the history entries, under the policy given:
// a lower completion share completes more views.
func TestRebuildViewing(t *testing.T) {
	run := func(t *testing.T, s rebuild.ViewingStore) {
		ctx := context.Background()
		t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
		entry := func(title, profile string, min int, view string, watchedMs int64) viewing.HistoryEntry {
			at := t0.Add(time.Duration(min) * time.Minute)
			return viewing.HistoryEntry{View: view, Title: title, Profile: profile, Device: "tv", Started: at, LastSeen: at.Add(time.Hour),
				PositionMs: watchedMs, FurthestMs: watchedMs, WatchedMs: watchedMs, Ended: viewing.Stopped}
		}
		var changes []viewing.HistoryMemberChange
		for _, c := range []struct {
			member string
			e      viewing.HistoryEntry
		}{
			{"m-a", entry("tt-first-light", "", 0, "v0-1", 3_000_000)}, // 50 of 106 minutes
			{"m-a", entry("tt-paper-moons", "kids", 1, "v1-2", 600_000)},
			{"m-a", entry("tt-first-light", "", 2, "v0-3", 6_300_000)}, // in the credits
			{"m-b", entry("tt-first-light", "", 3, "v0-4", 60_000)},
		} {
			changes = append(changes, viewing.HistoryMemberChange{Member: c.member, HistoryChange: viewing.HistoryChange{Entry: c.e, Closed: true}})
		}
		// Recorded without counts (as if counted under another definition)
		// and a row that says something else.
		if err := s.RecordHistory(ctx, changes); err != nil {
			t.Fatal(err)
		}
		if err := s.WatchRow(ctx, "m-a", "", []viewing.HistoryEntry{entry("tt-gone", "", 9, "v0-9", 1)}); err != nil {
			t.Fatal(err)
		}
		var members []string
		if err := s.ViewingMembers(ctx, func(m string) error { members = append(members, m); return nil }); err != nil {
			t.Fatal(err)
		}
		slices.Sort(members)
		if !slices.Equal(members, []string{"m-a", "m-b"}) {
			t.Fatalf("ViewingMembers = %v", members)
		}
		policy := licensing.DefaultPolicy()
		policy.Viewing.Completion = 0.4 // a new definition: 40 % of the runtime completes a view
		var done []int
		r, err := rebuild.Viewing(ctx, s, policy, members, true, func(n int) { done = append(done, n) })
		if err != nil || r.Members != 2 || r.Entries != 4 || r.Rows != 3 || r.Counts != 2 || !slices.Equal(done, []int{1, 2}) {
			t.Fatalf("rebuild.Viewing = %+v, %v, progress %v", r, err, done)
		}
		row, _ := s.Row(ctx, "m-a", "")
		if len(row.Entries) != 1 || row.Entries[0].Title != "tt-first-light" || row.Entries[0].View != "v0-3" {
			t.Errorf("m-a's row = %+v, want tt-first-light's latest view alone", row.Entries)
		}
		if kids, _ := s.Row(ctx, "m-a", "kids"); len(kids.Entries) != 1 || kids.Entries[0].Title != "tt-paper-moons" {
			t.Errorf("m-a's kids row = %+v", kids.Entries)
		}
		day := viewing.Day(t0)
		if e, _ := s.Engagement(ctx, "tt-first-light", day); e != (viewing.Engagement{Views: 3, WatchedMs: 9_360_000, Completions: 2}) {
			t.Errorf("tt-first-light recounted = %+v", e)
		}
		if e, _ := s.Engagement(ctx, "tt-paper-moons", day); e.Views != 1 || e.WatchedMs != 600_000 {
			t.Errorf("tt-paper-moons recounted = %+v", e)
		}
		// Again: the same.
		r, err = rebuild.Viewing(ctx, s, policy, members, true, nil)
		if err != nil || r.Cleared != 2 {
			t.Errorf("second rebuild = %+v, %v; want the 2 counts replaced", r, err)
		}
		if e, _ := s.Engagement(ctx, "tt-first-light", day); e.Views != 3 {
			t.Errorf("tt-first-light after a second recount = %+v", e)
		}
	}
	t.Run("memory", func(t *testing.T) { run(t, memstore.New()) })
	t.Run("dynamo", func(t *testing.T) {
		db, name := dynamotest.Table(t)
		run(t, dynamo.OneTable(db, name).History)
	})
}

// TestRebuildHolders: logs written before the holders index existed are
// recorded in it, once however often the rebuild runs.
func TestRebuildHolders(t *testing.T) {
	run := func(t *testing.T, s rebuild.LogStore, hs licensing.HolderStore) {
		members := []string{"m-a", "m-b"}
		seed(t, s, members)
		ctx := context.Background()
		for range 2 {
			if _, err := rebuild.Holders(ctx, s, hs, members, nil); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		if err := hs.Holders(ctx, "tt-first-light", "", func(ms []string, _ string) error { got = append(got, ms...); return nil }); err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, members) {
			t.Errorf("holders of tt-first-light = %v, want %v", got, members)
		}
	}
	t.Run("memory", func(t *testing.T) {
		s := memstore.New()
		run(t, s, s)
	})
	t.Run("dynamo", func(t *testing.T) {
		db, name := dynamotest.Table(t)
		s := dynamo.OneTable(db, name)
		run(t, s.Log, s.Holders)
	})
}
