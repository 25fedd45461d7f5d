package projector_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/ops/eventsource"
	"github.com/dlicense/dlicense/infra/setup"
)

// viewingOps are the viewing operations the benchmark measures, in the
// order a screen makes them.
var viewingOps = []string{"start", "heartbeat", "resume", "stop", "history", "row"}

// opStats are one operation's latencies and DynamoDB usage.
type opStats struct {
	latencies []time.Duration
	usage     dynamo.Usage
}

func (s *opStats) add(o *opStats) {
	s.latencies = append(s.latencies, o.latencies...)
	s.usage.RoundTrips += o.usage.RoundTrips
	s.usage.ReadUnits += o.usage.ReadUnits
	s.usage.WriteUnits += o.usage.WriteUnits
}

// measure runs fn with a meter and keeps its latency and usage.
func (s *opStats) measure(b *testing.B, fn func(ctx context.Context) error) {
	var meter dynamo.Meter
	start := time.Now()
	err := fn(dynamo.WithMeter(context.Background(), &meter))
	s.latencies = append(s.latencies, time.Since(start))
	if err != nil {
		b.Error(err)
	}
	u := meter.Usage()
	s.usage.RoundTrips += u.RoundTrips
	s.usage.ReadUnits += u.ReadUnits
	s.usage.WriteUnits += u.WriteUnits
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkViewing drives the viewing service on DynamoDB Local with 16
// screens playing at once over 100 premium members and 11 titles, while
// the stream function polls the table's stream in the background and
// writes resume points, as Lambda runs it. Each screen, member after
// member: a start (which reads the resume point the previous round left),
// 20 heartbeats (every fifth paused), a resume read from another device and
// a stop. It reports, per operation, DynamoDB requests and capacity units
// and p50/p99 latency, the heartbeats per second the 16 screens get
// through, and the stream function's write units per report (heartbeat or
// stop) for the resume points.
func BenchmarkViewing(b *testing.B) {
	ctx := context.Background()
	db, cfg := localTable(b)
	stores := dynamo.OneTable(db, cfg.Table)
	policy := licensing.DefaultPolicy()
	svc := viewing.NewService(stores.Views, policy, setup.SystemClock{}, setup.RandomIDs{})
	svc.History = stores.History
	var titles []string
	for id, t := range policy.Titles {
		if t.Runtime > 0 && t.Availability(id, time.Now()) == nil {
			titles = append(titles, id)
		}
	}
	slices.Sort(titles)

	proc := setup.NewProcessor(setup.Stores{Events: stores.Log, Counters: stores.Counters, Progress: stores.Views, History: stores.History}, 4, nil)
	var streamMeter dynamo.Meter
	handle := func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		return proc.Handle(dynamo.WithMeter(ctx, &streamMeter), ev)
	}
	poller := localPoller(b, db, cfg, lambda.NewHandler(handle))
	poller.Interval = eventsource.DefaultInterval // as dlicense-local and Lambda's batching poll
	pollCtx, stopPolling := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() { defer close(polled); poller.Run(pollCtx) }()

	const members, screens, beats = 100, 16, 20
	stats := map[string]*opStats{}
	for _, op := range viewingOps {
		stats[op] = &opStats{}
	}
	var mu sync.Mutex
	var wall time.Duration
	round := 0
	for b.Loop() {
		round++
		began := time.Now()
		var wg sync.WaitGroup
		for w := range screens {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mine := map[string]*opStats{}
				for _, op := range viewingOps {
					mine[op] = &opStats{}
				}
				device := fmt.Sprintf("screen-%d", w)
				for m := w; m < members; m += screens {
					member := fmt.Sprintf("viewer-%03d", m)
					title := titles[(m+round)%len(titles)]
					var view viewing.Started
					mine["start"].measure(b, func(ctx context.Context) (err error) {
						view, err = svc.Start(ctx, viewing.Start{Member: member, Plan: "premium", Device: device, Title: title}, fmt.Sprintf("start-%d-%s", round, member))
						return err
					})
					if view.View == nil {
						continue
					}
					pos := view.View.PositionMs
					for seq := int64(1); seq <= beats; seq++ {
						state := viewing.Playing
						if seq%5 == 0 {
							state = viewing.Paused
						} else {
							pos = min(pos+30_000, view.View.Runtime.Milliseconds())
						}
						mine["heartbeat"].measure(b, func(ctx context.Context) error {
							_, err := svc.Beat(ctx, viewing.Beat{Member: member, Plan: "premium", Device: device, View: view.View.ID, PositionMs: pos, State: state, Seq: seq})
							return err
						})
					}
					mine["resume"].measure(b, func(ctx context.Context) error {
						_, err := svc.Resume(ctx, member, "", title)
						return err
					})
					mine["stop"].measure(b, func(ctx context.Context) error {
						_, err := svc.Stop(ctx, viewing.Stop{Member: member, Device: device, View: view.View.ID, PositionMs: pos})
						return err
					})
					mine["history"].measure(b, func(ctx context.Context) error {
						_, err := svc.HistoryPage(ctx, member, "", viewing.DefaultPageSize)
						return err
					})
					mine["row"].measure(b, func(ctx context.Context) error {
						_, err := svc.RecentlyWatched(ctx, member, "")
						return err
					})
				}
				mu.Lock()
				defer mu.Unlock()
				for op, s := range mine {
					stats[op].add(s)
				}
			}()
		}
		wg.Wait()
		wall += time.Since(began)
	}
	// How stale the row is on a quiet table: from a stop to the row showing
	// it, with the stream function polling in the background as
	// dlicense-local runs it (a pause of DefaultInterval between polls;
	// Lambda adds the template's one-second batching window instead).
	if err := poller.CatchUp(ctx); err != nil { // the rounds' backlog
		b.Fatal(err)
	}
	staleness := make([]time.Duration, 0, 20)
	for i := range 20 {
		member, title := fmt.Sprintf("stale-%02d", i), titles[i%len(titles)]
		st, err := svc.Start(ctx, viewing.Start{Member: member, Plan: "premium", Device: "tv", Title: title}, "")
		if err != nil {
			b.Fatal(err)
		}
		stopped := time.Now()
		if _, err := svc.Stop(ctx, viewing.Stop{Member: member, Device: "tv", View: st.View.ID, PositionMs: 700_000}); err != nil {
			b.Fatal(err)
		}
		for {
			row, err := svc.RecentlyWatched(ctx, member, "")
			if err != nil {
				b.Fatal(err)
			}
			if len(row) > 0 && row[0].PositionMs == 700_000 {
				break
			}
			if time.Since(stopped) > 30*time.Second {
				b.Fatalf("the row of %s never showed its stop: %+v", member, row)
			}
			time.Sleep(2 * time.Millisecond)
		}
		staleness = append(staleness, time.Since(stopped))
	}
	stopPolling()
	<-polled
	if err := poller.CatchUp(ctx); err != nil {
		b.Fatal(err)
	}
	reports := len(stats["heartbeat"].latencies) + len(stats["stop"].latencies)
	writes := reports + len(stats["start"].latencies)
	b.ReportMetric(streamMeter.Usage().WriteUnits/float64(reports), "stream-WCU/report")
	b.ReportMetric(streamMeter.Usage().WriteUnits/float64(writes), "stream-WCU/viewing-event")
	b.ReportMetric(streamMeter.Usage().ReadUnits/float64(writes), "stream-RCU/viewing-event")

	// At real time a heartbeat comes every 30 s and the stream function
	// handles each write in a batch of its own, with nothing to sum: views
	// of 20 heartbeats, each write handed to the function alone.
	var paced, pacedBeats dynamo.Meter
	pacedEvents, beatsHandled := 0, 0
	meter := &paced // the heartbeats' own, while their writes are handled
	handleOne := func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		return proc.Handle(dynamo.WithMeter(ctx, meter), ev)
	}
	one := localPoller(b, db, cfg, lambda.NewHandler(handleOne))
	one.BatchSize, one.StartAtLatest = 1, true
	if err := one.CatchUp(ctx); err != nil { // iterators at the stream's end
		b.Fatal(err)
	}
	// The service's clock moves as real time would: a heartbeat every
	// 30 s, so one in sixteen is a checkpoint (viewing.CheckpointEvery).
	pace := &movable{t: time.Now().UTC()}
	psvc := viewing.NewService(stores.Views, policy, pace, setup.RandomIDs{})
	for i := range 20 {
		member, title := fmt.Sprintf("paced-%02d", i), titles[i%len(titles)]
		st, err := psvc.Start(ctx, viewing.Start{Member: member, Plan: "premium", Device: "tv", Title: title}, "")
		if err != nil {
			b.Fatal(err)
		}
		pacedEvents++
		if err := one.CatchUp(ctx); err != nil { // the start's record, on the start's meter
			b.Fatal(err)
		}
		for seq := int64(1); seq <= beats; seq++ {
			pace.add(30 * time.Second)
			if _, err := psvc.Beat(ctx, viewing.Beat{Member: member, Plan: "premium", Device: "tv", View: st.View.ID, PositionMs: seq * 30_000, State: viewing.Playing, Seq: seq}); err != nil {
				b.Fatal(err)
			}
			pacedEvents++
			beatsHandled++
			meter = &pacedBeats
			if err := one.CatchUp(ctx); err != nil {
				b.Fatal(err)
			}
			meter = &paced
		}
		pace.add(10 * time.Second)
		if _, err := psvc.Stop(ctx, viewing.Stop{Member: member, Device: "tv", View: st.View.ID, PositionMs: 700_000}); err != nil {
			b.Fatal(err)
		}
		pacedEvents++
		if err := one.CatchUp(ctx); err != nil {
			b.Fatal(err)
		}
	}
	// The sweep of silent views: its cost is a read of every open view a
	// minute, and a write for each it closes. 200 views open, read by a
	// sweep of every shard; then, all silent, closed by the next.
	const open = 200
	for i := range open {
		member := fmt.Sprintf("sweep-%03d", i)
		st, err := psvc.Start(ctx, viewing.Start{Member: member, Plan: "premium", Device: "tv", Title: titles[i%len(titles)]}, "")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := psvc.Beat(ctx, viewing.Beat{Member: member, Plan: "premium", Device: "tv", View: st.View.ID, PositionMs: 30_000, State: viewing.Playing, Seq: 1}); err != nil {
			b.Fatal(err)
		}
	}
	pace.add(viewing.CloseSilentAfter + time.Second) // read, not due
	sweep := func(meter *dynamo.Meter) (read, closed int, shardTimes []time.Duration) {
		for shard := range viewing.LiveShards {
			began := time.Now()
			sw, err := viewing.SweepSilent(dynamo.WithMeter(ctx, meter), stores.Views, shard, pace.Now())
			if err != nil {
				b.Fatal(err)
			}
			shardTimes = append(shardTimes, time.Since(began))
			read, closed = read+sw.Read, closed+sw.Closed
		}
		return read, closed, shardTimes
	}
	var reading, closing dynamo.Meter
	read, closed, shardTimes := sweep(&reading)
	if read < open || closed != 0 {
		b.Fatalf("the sweep read %d open views and closed %d; want at least %d read, none closed", read, closed, open)
	}
	b.ReportMetric(reading.Usage().ReadUnits/float64(read), "sweep-RCU/open-view")
	b.ReportMetric(float64(reading.Usage().RoundTrips)/float64(read), "sweep-requests/open-view")
	b.ReportMetric(float64(percentile(shardTimes, 0.5).Microseconds()), "sweep-shard-p50-µs")
	b.ReportMetric(float64(percentile(shardTimes, 0.99).Microseconds()), "sweep-shard-p99-µs")
	pace.add(policy.Viewing.ViewExpiry.D())
	if _, closed, _ = sweep(&closing); closed < open {
		b.Fatalf("the sweep closed %d silent views, want %d", closed, open)
	}
	b.ReportMetric((closing.Usage().WriteUnits)/float64(closed), "sweep-WCU/close")

	all := paced.Usage()
	beatUsage := pacedBeats.Usage()
	b.ReportMetric((all.WriteUnits+beatUsage.WriteUnits)/float64(pacedEvents), "stream-WCU/viewing-event-paced")
	b.ReportMetric((all.ReadUnits+beatUsage.ReadUnits)/float64(pacedEvents), "stream-RCU/viewing-event-paced")
	// A heartbeat's own cost to the stream function, each handled alone.
	b.ReportMetric(beatUsage.WriteUnits/float64(beatsHandled), "stream-WCU/heartbeat-paced")
	b.ReportMetric(beatUsage.ReadUnits/float64(beatsHandled), "stream-RCU/heartbeat-paced")
	// A view's start and stop, each handled alone.
	b.ReportMetric(all.WriteUnits/float64(pacedEvents-beatsHandled), "stream-WCU/start-or-stop-paced")
	b.ReportMetric(float64(percentile(staleness, 0.5).Microseconds()), "row-staleness-p50-µs")
	b.ReportMetric(float64(percentile(staleness, 0.99).Microseconds()), "row-staleness-p99-µs")
	for _, op := range viewingOps {
		s := stats[op]
		n := float64(len(s.latencies))
		if n == 0 {
			b.Fatalf("no %s measured", op)
		}
		b.ReportMetric(float64(s.usage.RoundTrips)/n, "requests/"+op)
		b.ReportMetric(s.usage.ReadUnits/n, "RCU/"+op)
		b.ReportMetric(s.usage.WriteUnits/n, "WCU/"+op)
		b.ReportMetric(float64(percentile(s.latencies, 0.5).Microseconds()), op+"-p50-µs")
		b.ReportMetric(float64(percentile(s.latencies, 0.99).Microseconds()), op+"-p99-µs")
	}
	b.ReportMetric(float64(len(stats["heartbeat"].latencies))/wall.Seconds(), "heartbeats/s")
}
