package jobs_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/jobs"
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
		if err := stores.Log.Append(ctx, member, 0, str.Events); err != nil {
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
