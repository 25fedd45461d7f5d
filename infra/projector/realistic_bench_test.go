package projector_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/setup"
	"github.com/dlicense/dlicense/infra/storetest"
)

// seedRealistic writes the realistic profile's members: large with a
// realistic 10,000-event history, small with 10 (storetest.
// RealisticHistory, seeded from seed up), each snapshotted as the stream
// function leaves it. It returns the size of the first large member's
// snapshot.
func seedRealistic(b *testing.B, store *dynamo.Log, policy *licensing.Policy, large, small []string, end time.Time, seed uint64) int {
	ctx := context.Background()
	first := 0
	for i, m := range append(slices.Clone(large), small...) {
		n := 10
		if i < len(large) {
			n = 10000
		}
		log := storetest.RealisticHistory(m, n, end, seed+uint64(i))
		for from := 0; from < len(log); from += 100 {
			if err := store.Append(ctx, m, int64(from), log[from:min(from+100, len(log))]); err != nil {
				b.Fatal(err)
			}
		}
		snap, err := licensing.EncodeSnapshot(licensing.Fold(m, log), policy)
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			first = len(snap.Data)
		}
		if _, err := store.SaveSnapshot(ctx, snap); err != nil {
			b.Fatal(err)
		}
	}
	return first
}

// realisticPolicy is the shipped policy with 200 more titles (without
// quotas, so snapshots keep what they keep under the shipped policy):
// members with many titles to download.
func realisticPolicy(b *testing.B) *licensing.Policy {
	doc := string(licensing.DefaultPolicyJSON())
	var extra []string
	for i := range 200 {
		extra = append(extra, fmt.Sprintf(`"tt-extra-%03d": {"studio": "open-reel", "downloadable": true, "runtime": "44m"}`, i))
	}
	doc = strings.Replace(doc, `"titles": {`, `"titles": {`+strings.Join(extra, ",")+",", 1)
	p, err := licensing.ParsePolicy(strings.NewReader(doc))
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// opSample is what one command cost.
type opSample struct {
	latency time.Duration
	usage   dynamo.Usage
}

func pct(xs []float64, p float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// instancePool hands out API instances (services, each with its own state
// cache) as Lambda routes requests: to the most recently used idle
// instance, so a member's requests in quick succession mostly meet the
// instance that served the last one, and concurrent members spread.
type instancePool struct {
	mu   sync.Mutex
	cond *sync.Cond
	idle []*licensing.Service // most recently used last
}

func newInstancePool(n int, newInstance func() *licensing.Service) *instancePool {
	p := &instancePool{}
	p.cond = sync.NewCond(&p.mu)
	for range n {
		p.idle = append(p.idle, newInstance())
	}
	return p
}

func (p *instancePool) get() *licensing.Service {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle) == 0 {
		p.cond.Wait()
	}
	s := p.idle[len(p.idle)-1]
	p.idle = p.idle[:len(p.idle)-1]
	return s
}

func (p *instancePool) put(s *licensing.Service) {
	p.mu.Lock()
	p.idle = append(p.idle, s)
	p.mu.Unlock()
	p.cond.Signal()
}

// dayClock is the time of day on the day the benchmark has reached: each
// round of bursts happens a day after the one before, as a member does not
// download a season every second.
type dayClock struct{ days atomic.Int64 }

func (c *dayClock) Now() time.Time {
	return time.Now().UTC().Add(time.Duration(c.days.Load()-1) * 24 * time.Hour)
}

// BenchmarkRealisticLoad is the realistic profile on DynamoDB Local: two
// members with a realistic 10,000-event history (storetest.RealisticHistory,
// snapshotted as the stream function left them) and six with 10 events;
// 8 workers, each a warm API instance with its own state cache, handed
// requests as Lambda routes them (instancePool); every request keyed; each
// member downloads in bursts of 5 to 10 titles within a second (a season),
// then deletes them, one round a day (dayClock); the stream function polls
// the table's stream in the background with a one-second batching pause,
// as Lambda does, so snapshots lag behind bursts, and it catches up
// between rounds. It reports, per acquisition, DynamoDB
// requests and read and write units (mean and p99), p50 latency for the
// 10,000-event members and the 10-event ones and their ratio, the
// requests of an acquisition on a warm instance without contention, the
// snapshot of a 10,000-event member at rest (as seeded) and after the
// bursts (with the licences of the last rounds and the day's remembered
// answers), and the stream function's write units per event.
func BenchmarkRealisticLoad(b *testing.B) {
	ctx := context.Background()
	db, cfg := localTable(b)
	stores := dynamo.OneTable(db, cfg.Table)
	store := stores.Log
	policy := realisticPolicy(b)
	end := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Hour)
	var restBytes int
	large := []string{"real-large-1", "real-large-2"}
	small := []string{"real-small-1", "real-small-2", "real-small-3", "real-small-4", "real-small-5", "real-small-6"}
	restBytes = seedRealistic(b, store, policy, large, small, end, 1)

	// The stream function, from now on.
	proc := setup.NewProcessor(setup.Stores{Events: store, Counters: stores.Counters, Progress: stores.Views}, setup.DefaultSnapshotEvery, policy)
	var streamMeter dynamo.Meter
	var streamEvents int
	var streamMu sync.Mutex
	handle := func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		streamMu.Lock()
		streamEvents += len(ev.Records)
		streamMu.Unlock()
		return proc.Handle(dynamo.WithMeter(ctx, &streamMeter), ev)
	}
	poller := localPoller(b, db, cfg, lambda.NewHandler(handle))
	poller.StartAtLatest, poller.Interval = true, time.Second
	if err := poller.CatchUp(ctx); err != nil { // iterators at the stream's end
		b.Fatal(err)
	}
	pollCtx, stopPolling := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() { defer close(polled); poller.Run(pollCtx) }()

	const workers = 8
	clock := &dayClock{}
	pool := newInstancePool(workers, func() *licensing.Service {
		return licensing.NewService(store, policy, clock, setup.RandomIDs{})
	})
	var mu sync.Mutex
	samples := map[string][]opSample{}
	rng := rand.New(rand.NewPCG(7, 7))
	titles := make([]string, 0, 200)
	for i := range 200 {
		titles = append(titles, fmt.Sprintf("tt-extra-%03d", i))
	}
	var keyMu sync.Mutex
	key := func() string { // a UUID, as clients make idempotency keys
		keyMu.Lock()
		defer keyMu.Unlock()
		return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<12), 0x8000|rng.IntN(1<<14), rng.Int64N(1<<48))
	}
	exec := func(kind string, cmd licensing.Command) {
		k := key()
		svc := pool.get()
		defer pool.put(svc)
		var meter dynamo.Meter
		start := time.Now()
		_, err := svc.Execute(dynamo.WithMeter(ctx, &meter), cmd, k)
		s := opSample{time.Since(start), meter.Usage()}
		if err != nil {
			b.Error(err)
		}
		mu.Lock()
		samples[kind] = append(samples[kind], s)
		mu.Unlock()
	}
	members := append(slices.Clone(large), small...)
	for b.Loop() {
		// A day later, and the stream function has long caught up with the
		// day before: two of its batching pauses.
		if clock.days.Add(1) > 1 {
			b.StopTimer()
			time.Sleep(2 * poller.Interval)
			b.StartTimer()
		}
		// Every member downloads a season at once: 5 to 10 titles, one
		// request after another as the answers come (within a second),
		// then deletes them; members burst at the same time.
		var wg sync.WaitGroup
		for i, m := range members {
			keyMu.Lock()
			picked := rng.Perm(len(titles))[:5+rng.IntN(6)]
			keyMu.Unlock()
			kind := "acquire@10"
			if i < len(large) {
				kind = "acquire@10000"
			}
			wg.Go(func() {
				for _, t := range picked {
					exec(kind, licensing.Acquire{Member: m, Plan: "premium", Device: "tablet-burst", Title: titles[t]})
				}
				exec("release", licensing.ReleaseDevice{Member: m, Device: "tablet-burst", Reason: licensing.ReasonDeviceRemoved})
			})
		}
		wg.Wait()
	}

	// A warm instance without contention: one member, one worker. Warm: it
	// has served a member's requests in a row before, so its cache has
	// earned its trust (licensing.MinJudged verdicts).
	warm := licensing.NewService(store, policy, setup.SystemClock{}, setup.RandomIDs{})
	for i := range licensing.MinJudged + 1 {
		cmd := licensing.Acquire{Member: "real-warm-up", Plan: "premium", Device: "phone", Title: titles[i]}
		if _, err := warm.Execute(ctx, cmd, fmt.Sprintf("warm-up-%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	var warmRequests []float64
	for i := range 21 {
		var meter dynamo.Meter
		cmd := licensing.Acquire{Member: "real-warm", Plan: "premium", Device: "phone", Title: titles[i]}
		if _, err := warm.Execute(dynamo.WithMeter(ctx, &meter), cmd, fmt.Sprintf("warm-%d", i)); err != nil {
			b.Fatal(err)
		}
		if i > 0 { // the first one warms the cache
			warmRequests = append(warmRequests, float64(meter.Usage().RoundTrips))
		}
	}

	stopPolling()
	<-polled
	if err := poller.CatchUp(ctx); err != nil {
		b.Fatal(err)
	}
	var acquires []opSample
	for _, kind := range []string{"acquire@10", "acquire@10000"} {
		acquires = append(acquires, samples[kind]...)
	}
	var rcu, wcu, req []float64
	for _, s := range acquires {
		rcu = append(rcu, s.usage.ReadUnits)
		wcu = append(wcu, s.usage.WriteUnits)
		req = append(req, float64(s.usage.RoundTrips))
	}
	mean := func(xs []float64) float64 {
		t := 0.0
		for _, x := range xs {
			t += x
		}
		return t / float64(len(xs))
	}
	b.ReportMetric(mean(rcu), "RCU-mean/acquire")
	b.ReportMetric(pct(rcu, 0.99), "RCU-p99/acquire")
	b.ReportMetric(mean(wcu), "WCU-mean/acquire")
	b.ReportMetric(mean(req), "requests-mean/acquire")
	b.ReportMetric(pct(req, 0.99), "requests-p99/acquire")
	p50 := map[string]float64{}
	for _, kind := range []string{"acquire@10", "acquire@10000", "release"} {
		var lat []float64
		for _, s := range samples[kind] {
			lat = append(lat, float64(s.latency.Microseconds()))
		}
		p50[kind] = pct(lat, 0.5)
		b.ReportMetric(p50[kind], strings.Replace(kind, "@", "-p50-µs@", 1))
		b.ReportMetric(pct(lat, 0.99), strings.Replace(kind, "@", "-p99-µs@", 1))
	}
	b.ReportMetric(p50["acquire@10000"]/p50["acquire@10"], "p50-ratio-10000/10")
	b.ReportMetric(mean(warmRequests), "requests/acquire-warm")
	str, err := store.Load(ctx, large[0], licensing.LoadOptions{SnapshotSchema: licensing.StateSchema, Consistent: true})
	if err != nil || str.Snapshot == nil {
		b.Fatalf("Load(%s) = %v, %v; want its snapshot", large[0], str.Snapshot, err)
	}
	b.ReportMetric(float64(restBytes), "snapshot-bytes@rest")
	b.ReportMetric(float64(len(str.Snapshot.Data)), "snapshot-bytes@after")
	b.ReportMetric(streamMeter.Usage().WriteUnits/float64(streamEvents), "stream-WCU/event")
	b.ReportMetric(float64(len(acquires)), "acquisitions")
}
