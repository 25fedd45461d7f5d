package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/jobs"
	"github.com/dlicense/dlicense/infra/memstore"
)

// TestFleetWhatIfOnDynamoDB: the same job on DynamoDB Local, where a slice
// is a segment of a parallel Scan: every member is in exactly one, and the
// fleet what-if equals the members' own.
func TestFleetWhatIfOnDynamoDB(t *testing.T) {
	db, table := dynamotest.Table(t)
	stores := dynamo.OneTable(db, table)
	mem := fleet(t, 120)
	ctx := context.Background()
	p := stricter(t)
	var want jobs.Summary
	for m := range 120 {
		member := fmt.Sprintf("fleet-%04d", m)
		str, err := mem.Load(ctx, member, licensing.LoadOptions{Consistent: true})
		if err != nil || len(str.Events) == 0 {
			continue
		}
		if err := stores.Log.Append(ctx, member, 0, ownRequests(t, member, str.Events)); err != nil {
			t.Fatal(err)
		}
		want.Members++
		want.Flips += len(licensing.WhatIf(member, str.Events, p))
	}
	seen := map[string]int{}
	for seg := range 5 {
		if err := stores.Log.MembersOf(ctx, seg, 5, func(m string) error { seen[m]++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	for m, n := range seen {
		if n != 1 {
			t.Errorf("%s is in %d segments, want 1", m, n)
		}
	}
	if len(seen) != want.Members {
		t.Errorf("the segments hold %d members, want %d", len(seen), want.Members)
	}
	got, failed := jobs.RunLocal(ctx, jobs.Stores{Members: stores.Log, Events: stores.Log, Refusals: stores.Refusals}, jobs.Slice{Kind: jobs.KindWhatIf, Total: 5, Policy: p}, 2, 2, nil)
	if len(failed) > 0 || got.Members != want.Members || got.Flips != want.Flips {
		t.Errorf("fleet what-if on DynamoDB = %d members, %d flips, failed %v; want %d, %d", got.Members, got.Flips, failed, want.Members, want.Flips)
	}
}

// ownRequests gives the events request ids of the test's own: an append of
// several is a transaction whose token comes from them, and DynamoDB Local
// remembers tokens across tables.
func ownRequests(t *testing.T, member string, events []licensing.Event) []licensing.Event {
	out := slices.Clone(events)
	for i := range out {
		out[i].RequestID = fmt.Sprintf("%s-%s-%d", t.Name(), member, i)
	}
	return out
}

// failingOnce fails the first listing of a segment after a few members, as
// a slice that dies half-way.
type failingOnce struct {
	jobs.Members
	failed map[int]bool
}

func (f *failingOnce) MembersOf(ctx context.Context, segment, total int, fn func(string) error) error {
	n := 0
	return f.Members.MembersOf(ctx, segment, total, func(m string) error {
		if n++; n > 3 && !f.failed[segment] {
			f.failed[segment] = true
			return kernel.Unavailable("the store went away half-way", nil)
		}
		return fn(m)
	})
}

// TestTheJobFunction: the job function's batches write each slice once; a
// batch that fails half-way and is run again, as the engine retries it,
// gives the same job summary as a clean run, and the reduce writes it.
func TestTheJobFunction(t *testing.T) {
	db, table := dynamotest.Table(t)
	stores := dynamo.OneTable(db, table)
	mem := fleet(t, 80)
	ctx := context.Background()
	for m := range 80 {
		member := fmt.Sprintf("fleet-%04d", m)
		str, _ := mem.Load(ctx, member, licensing.LoadOptions{Consistent: true})
		if len(str.Events) > 0 {
			if err := stores.Log.Append(ctx, "job-"+member, 0, ownRequests(t, member, str.Events)); err != nil {
				t.Fatal(err)
			}
		}
	}
	policy, _ := json.Marshal(json.RawMessage(stricterJSON(t)))
	in := jobs.BatchInput{Job: "job-1", Kind: jobs.KindWhatIf, Total: 6, Policy: policy}
	flaky := jobs.Stores{Members: &failingOnce{Members: stores.Log, failed: map[int]bool{}}, Events: stores.Log}
	for _, items := range [][]int{{0, 1, 2}, {3, 4, 5}} {
		if _, err := jobs.Handle(ctx, flaky, stores.JobResults, jobs.Batch{Items: items, BatchInput: in}); err == nil {
			t.Fatalf("batch %v did not fail half-way", items)
		}
		// The engine's retries: each slice fails half-way once, the batch
		// goes on from the start each time; then once more, which writes
		// nothing twice.
		var err error
		for range 4 {
			if _, err = jobs.Handle(ctx, flaky, stores.JobResults, jobs.Batch{Items: items, BatchInput: in}); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("batch %v retried = %v", items, err)
		}
		if _, err := jobs.Handle(ctx, flaky, stores.JobResults, jobs.Batch{Items: items, BatchInput: in}); err != nil {
			t.Fatalf("batch %v run again = %v", items, err)
		}
	}
	out, err := jobs.Handle(ctx, flaky, stores.JobResults, jobs.Batch{Reduce: true, BatchInput: in})
	if err != nil || out.Summary == nil {
		t.Fatalf("reduce = %+v, %v", out, err)
	}
	clean, _ := jobs.RunLocal(ctx, jobs.Stores{Members: stores.Log, Events: stores.Log}, jobs.Slice{Kind: jobs.KindWhatIf, Total: 6, Policy: stricter(t)}, 2, 1, nil)
	if !reflect.DeepEqual(*out.Summary, clean) {
		t.Errorf("the job's summary after failed and retried batches = %+v, want the clean run's %+v", *out.Summary, clean)
	}
	if slices, _ := stores.JobResults.Slices(ctx, "job-1"); len(slices) != 6 {
		t.Errorf("%d slices written, want 6, once each", len(slices))
	}
}

// TestViewingJobsOnDynamoDB: the viewing fleet's history entries, written
// to DynamoDB Local, rebuild there the rows and engagement counts the
// stream function keeps live, each member in exactly one segment of the
// parallel scan of the history items.
func TestViewingJobsOnDynamoDB(t *testing.T) {
	const n = 60
	db, table := dynamotest.Table(t)
	stores := dynamo.OneTable(db, table)
	mem, policy := viewingFleet(t, n)
	ctx := context.Background()
	viewers := copyHistory(t, mem, stores.History)
	seen := map[string]int{}
	for seg := range 4 {
		if err := stores.History.ViewingMembersOf(ctx, seg, 4, func(m string) error { seen[m]++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	for m, k := range seen {
		if k != 1 {
			t.Errorf("%s is in %d segments, want 1", m, k)
		}
	}
	if len(seen) != viewers {
		t.Errorf("the segments hold %d viewers, want %d", len(seen), viewers)
	}
	st := jobs.Stores{Viewing: stores.History, Policy: policy}
	sum, failed := jobs.RunLocal(ctx, st, jobs.Slice{Kind: jobs.KindViewingRows, Total: 4}, 2, 1, nil)
	if len(failed) > 0 || sum.Members != viewers {
		t.Fatalf("viewing-rows on DynamoDB = %+v, %v", sum, failed)
	}
	for key, want := range liveRows(t, mem, n) {
		member, profile, _ := strings.Cut(key, "/")
		got, err := stores.History.Row(ctx, member, profile)
		if err != nil || got == nil || !reflect.DeepEqual(got.Entries, want) {
			t.Errorf("row %s on DynamoDB = %+v (%v), want %+v", key, got, err, want)
		}
	}
	sum, failed = jobs.RunLocal(ctx, st, jobs.Slice{Kind: jobs.KindEngagement, Total: 4}, 2, 1, nil)
	if len(failed) > 0 {
		t.Fatal(failed)
	}
	if _, err := jobs.Finish(ctx, st, sum, 4); err != nil {
		t.Fatal(err)
	}
	for key, want := range liveEngagement(t, mem) {
		day, title, _ := strings.Cut(key, "/")
		if got, err := stores.History.Engagement(ctx, title, day); err != nil || got != want {
			t.Errorf("engagement of %s on %s on DynamoDB = %+v (%v), want %+v", title, day, got, err, want)
		}
	}
}

// copyHistory writes the history entries of every viewer of mem to h, and
// returns how many viewers.
func copyHistory(t testing.TB, mem *memstore.Store, h *dynamo.History) int {
	t.Helper()
	ctx := context.Background()
	viewers := 0
	err := mem.ViewingMembers(ctx, func(member string) error {
		viewers++
		entries, _, err := mem.History(ctx, member, "", viewing.MaxPageSize)
		if err != nil {
			return err
		}
		var changes []viewing.HistoryMemberChange
		for _, e := range entries {
			changes = append(changes, viewing.HistoryMemberChange{Member: member, HistoryChange: viewing.HistoryChange{Entry: e, Closed: e.Ended != ""}})
		}
		return h.RecordHistory(ctx, changes)
	})
	if err != nil {
		t.Fatal(err)
	}
	return viewers
}

// TestRebuiltRowsKeepRemovedTitles: a title the member removed from the
// row stays out of it when the viewing-rows job rebuilds the row from the
// history (which keeps its views), on both stores; a profile whose row
// held only removals keeps them.
func TestRebuiltRowsKeepRemovedTitles(t *testing.T) {
	run := func(t *testing.T, h jobs.ViewingStore) {
		ctx := context.Background()
		t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
		var changes []viewing.HistoryMemberChange
		for i, title := range []string{"tt-first-light", "tt-paper-moons", "tt-low-tide", "tt-ice-road"} {
			at := t0.Add(time.Duration(i) * time.Hour)
			profile := ""
			if title == "tt-ice-road" {
				profile = "kids"
			}
			e := viewing.HistoryEntry{View: fmt.Sprintf("v0-%d", i), Title: title, Profile: profile, Device: "tv", Started: at, LastSeen: at.Add(time.Minute), Ended: viewing.Stopped}
			changes = append(changes, viewing.HistoryMemberChange{Member: "m-rows", HistoryChange: viewing.HistoryChange{Entry: e, Closed: true}})
			// The rows as the stream function keeps them.
			if err := h.WatchRow(ctx, "m-rows", profile, []viewing.HistoryEntry{e}); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.RecordHistory(ctx, changes); err != nil {
			t.Fatal(err)
		}
		removal := t0.Add(5 * time.Hour)
		if _, err := h.HideInRow(ctx, "m-rows", "", "tt-paper-moons", removal); err != nil {
			t.Fatal(err)
		}
		if _, err := h.HideInRow(ctx, "m-rows", "kids", "tt-ice-road", removal); err != nil {
			t.Fatal(err)
		}
		sum, failed := jobs.RunLocal(ctx, jobs.Stores{Viewing: h, Policy: licensing.DefaultPolicy()}, jobs.Slice{Kind: jobs.KindViewingRows, Total: 2}, 1, 1, nil)
		if len(failed) > 0 || sum.Members != 1 {
			t.Fatalf("viewing-rows = %+v, %v", sum, failed)
		}
		r, err := h.Row(ctx, "m-rows", "")
		var got []string
		for _, e := range r.Entries {
			got = append(got, e.Title)
		}
		if err != nil || strings.Join(got, ",") != "tt-low-tide,tt-first-light" || !r.Hidden["tt-paper-moons"].Equal(removal) {
			t.Errorf("rebuilt row = %v hidden %v (%v); want tt-paper-moons still out", got, r.Hidden, err)
		}
		if kids, err := h.Row(ctx, "m-rows", "kids"); err != nil || !kids.Hidden["tt-ice-road"].Equal(removal) || len(kids.Entries) != 0 {
			t.Errorf("kids' row = %+v, %v; want its removal kept, the title out", kids, err)
		}
		// A removal from a profile with no row leaves it without one.
		if removed, err := h.HideInRow(ctx, "m-rows", "guest", "tt-first-light", removal); err != nil || removed {
			t.Errorf("removal from a profile without a row = %v, %v", removed, err)
		}
		if guest, _ := h.Row(ctx, "m-rows", "guest"); guest.Version != 0 || len(guest.Hidden) != 0 {
			t.Errorf("guest's row after a removal = %+v; want none", guest)
		}
	}
	t.Run("memory", func(t *testing.T) { run(t, memstore.New()) })
	t.Run("dynamo", func(t *testing.T) {
		db, table := dynamotest.Table(t)
		run(t, dynamo.OneTable(db, table).History)
	})
}
