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

// BenchmarkFleetWhatIf runs the fleet what-if over 1,000 members with
// varied histories on DynamoDB Local, with 1, 2 and 4 workers (the
// machine's two cores run DynamoDB Local too): members per second per
// worker, and read units per member (the log read eventually consistent, the
// refusals).
func BenchmarkFleetWhatIf(b *testing.B) {
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
	p := stricter(b)
	st := jobs.Stores{Members: stores.Log, Events: stores.Log, Refusals: stores.Refusals}
	b.ResetTimer()
	for range b.N {
		for _, workers := range []int{1, 2, 4} {
			meter := &dynamo.Meter{}
			mctx := dynamo.WithMeter(ctx, meter)
			start := time.Now()
			sum, failed := jobs.RunLocal(mctx, st, jobs.Slice{Kind: jobs.KindWhatIf, Total: 16, Policy: p}, workers, 1, nil)
			took := time.Since(start)
			if len(failed) > 0 || sum.Members != members {
				b.Fatalf("%d workers: %d members, failed %v; want %d", workers, sum.Members, failed, members)
			}
			u := meter.Usage()
			b.ReportMetric(float64(members)/took.Seconds()/float64(workers), fmt.Sprintf("members/s-per-worker@%d", workers))
			b.ReportMetric(float64(members)/took.Seconds(), fmt.Sprintf("members/s@%d", workers))
			if workers == 1 {
				b.ReportMetric(u.ReadUnits/float64(members), "RCU/member")
				b.ReportMetric(float64(u.RoundTrips)/float64(members), "requests/member")
				b.ReportMetric(float64(sum.Events)/float64(members), "events/member")
			}
		}
	}
}
