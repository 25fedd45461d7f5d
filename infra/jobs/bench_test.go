package jobs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/jobs"
)

// benchFleet writes the logs and refusals of 1,000 members with varied
// histories to a table of DynamoDB Local: the stores, and how many members
// have a log.
func benchFleet(b *testing.B) (dynamo.Stores, int) {
	b.Helper()
	db, table := dynamotest.Table(b)
	stores := dynamo.OneTable(db, table)
	mem := fleet(b, 1000)
	ctx := context.Background()
	members := 0
	for m := range 1000 {
		member := fmt.Sprintf("fleet-%04d", m)
		str, _ := mem.Load(ctx, member, licensing.LoadOptions{Consistent: true})
		if len(str.Events) == 0 {
			continue
		}
		for i := range str.Events {
			str.Events[i].RequestID = fmt.Sprintf("bench-%s-%d", member, i)
		}
		if err := stores.Log.Append(ctx, member, 0, str.Events); err != nil {
			b.Fatal(err)
		}
		refused, _ := mem.Refusals(ctx, member, 100)
		for _, r := range refused {
			stores.Refusals.RecordRefusal(ctx, member, r)
		}
		members++
	}
	return stores, members
}

// BenchmarkFleetJobs runs every job kind over the same 1,000 members (and
// the history entries of 1,000 viewers, for the viewing kinds) on DynamoDB
// Local with 1, 2 and 4 workers: members per second per worker, and the
// read and write units a member (at one worker). The rebuilds write what
// they rebuild (the snapshots only where the store holds an older one);
// counters and engagement write their recount at the end, which is timed
// too. Then the what-if again with 8 members at once in each slice, as the
// job function runs it in AWS.
func BenchmarkFleetJobs(b *testing.B) {
	stores, members := benchFleet(b)
	ctx := context.Background()
	mem, policy := viewingFleet(b, 1000)
	viewers := copyHistory(b, mem, stores.History)
	base := jobs.Stores{Members: stores.Log, Events: stores.Log, Refusals: stores.Refusals, Snapshots: stores.Log, Holders: stores.Holders,
		Counters: stores.Counters, Viewing: stores.History, Policy: policy}
	p := stricter(b)
	b.ResetTimer()
	for range b.N {
		for _, kind := range jobs.Kinds {
			sl := jobs.Slice{Kind: kind, Total: 16}
			if kind == jobs.KindWhatIf {
				sl.Policy = p
			}
			want := members
			if kind == jobs.KindViewingRows || kind == jobs.KindEngagement {
				want = viewers
			}
			for _, workers := range []int{1, 2, 4} {
				meter := &dynamo.Meter{}
				mctx := dynamo.WithMeter(ctx, meter)
				start := time.Now()
				sum, failed := jobs.RunLocal(mctx, base, sl, workers, 1, nil)
				if len(failed) == 0 {
					_, err := jobs.Finish(mctx, base, sum, sl.Total)
					if err != nil {
						b.Fatalf("%s: %v", kind, err)
					}
				}
				took := time.Since(start)
				if len(failed) > 0 || sum.Members != want {
					b.Fatalf("%s, %d workers: %d members, failed %v; want %d", kind, workers, sum.Members, failed, want)
				}
				b.ReportMetric(float64(want)/took.Seconds()/float64(workers), fmt.Sprintf("%s-members/s-per-worker@%d", kind, workers))
				if workers == 1 {
					u := meter.Usage()
					b.ReportMetric(u.ReadUnits/float64(want), kind+"-RCU/member")
					b.ReportMetric(u.WriteUnits/float64(want), kind+"-WCU/member")
					b.ReportMetric(float64(u.RoundTrips)/float64(want), kind+"-requests/member")
				}
			}
		}
		st := base
		st.Workers = 8
		start := time.Now()
		if _, failed := jobs.RunLocal(ctx, st, jobs.Slice{Kind: jobs.KindWhatIf, Total: 16, Policy: p}, 1, 1, nil); len(failed) > 0 {
			b.Fatal(failed)
		}
		b.ReportMetric(float64(members)/time.Since(start).Seconds(), "whatif-members/s-8-at-once@1")
	}
}
