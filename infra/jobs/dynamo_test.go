package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

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
