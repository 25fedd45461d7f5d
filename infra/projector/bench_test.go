package projector_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/projector/projectortest"
	"github.com/dlicense/dlicense/infra/setup"
)

// BenchmarkStreamFunction feeds the handler batches of 100 records from 20
// members (each download followed by four playback uploads and a deletion)
// on DynamoDB Local, and reports the write units it spends per event
// processed (snapshots and counters) and the records it handles per second.
func BenchmarkStreamFunction(b *testing.B) {
	ctx := context.Background()
	db, name := dynamotest.Table(b)
	stores := dynamo.OneTable(db, name)
	store := stores.Log
	p := setup.NewProcessor(setup.Stores{Events: store, Counters: stores.Counters}, 4, nil)
	// Each member's log: acquire, 4 playback uploads, release; repeated.
	const members, perMember = 20, 60
	logOf := func(member string) []licensing.Event {
		var evs []licensing.Event
		at := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
		for v := int64(1); v <= perMember; v++ {
			lic := fmt.Sprintf("L%d", (v-1)/6)
			var pl licensing.Payload
			switch (v - 1) % 6 {
			case 0:
				pl = &licensing.LicenceAcquired{Licence: lic, Plan: "premium", Title: "tt-first-light", Studio: "open-reel", Device: "d1", ExpiresAt: at.Add(720 * time.Hour)}
			case 5:
				pl = &licensing.LicenceReleased{Licence: lic, Reason: licensing.ReasonDeleted, Ref: &licensing.LicenceRef{
					Licence: lic, Title: "tt-first-light", Studio: "open-reel", IssuedAt: at.Add(-5 * time.Hour), ExpiresAt: at.Add(715 * time.Hour)}}
			default:
				id := fmt.Sprintf("e%d", v)
				pl = &licensing.PlaybackRecorded{Device: "d1",
					Accepted: []licensing.PlaybackEntry{{ID: id, Licence: lic, Kind: licensing.PlaybackKeepalive, PositionMs: v * 1000, DeviceTime: at}},
					Results:  []licensing.PlaybackResult{{ID: id, Code: licensing.PlaybackAccepted}}}
			}
			evs = append(evs, licensing.Event{Version: v, At: at, PolicyVersion: "p", Payload: pl})
			at = at.Add(time.Hour)
		}
		return evs
	}
	var writes, reads float64
	var handled int
	var busy time.Duration
	seq := 0
	round := 0
	for b.Loop() {
		round++
		// The stream as DynamoDB delivers it: members interleaved, each in
		// order. Every batch of 5 versions of 20 members is first appended
		// (as the API would), then handled (metered).
		logs := make([][]licensing.Event, members)
		for m := range logs {
			logs[m] = logOf(fmt.Sprintf("bench-r%d-m%d", round, m))
		}
		for v := 0; v < perMember; v += 5 {
			var batch []events.DynamoDBEventRecord
			for m := 0; m < members; m++ {
				member := fmt.Sprintf("bench-r%d-m%d", round, m)
				evs := logs[m][v : v+5]
				if err := store.Append(ctx, member, int64(v), evs); err != nil {
					b.Fatal(err)
				}
				for _, e := range evs {
					se, _ := licensing.EncodeEvent(e)
					seq++
					r, err := projectortest.InsertRecord(member, se, fmt.Sprintf("%021d", seq))
					if err != nil {
						b.Fatal(err)
					}
					batch = append(batch, r)
				}
			}
			var meter dynamo.Meter
			start := time.Now()
			resp, err := p.Handle(dynamo.WithMeter(ctx, &meter), events.DynamoDBEvent{Records: batch})
			busy += time.Since(start)
			if err != nil || len(resp.BatchItemFailures) > 0 {
				b.Fatalf("Handle = %v, %v", resp, err)
			}
			u := meter.Usage()
			writes += u.WriteUnits
			reads += u.ReadUnits
			handled += len(batch)
		}
	}
	b.ReportMetric(writes/float64(handled), "WCU/event")
	b.ReportMetric(reads/float64(handled), "RCU/event")
	b.ReportMetric(float64(handled)/busy.Seconds(), "records/s")
}
