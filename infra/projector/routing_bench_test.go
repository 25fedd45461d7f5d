package projector_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/setup"
)

// router hands a request of a member to one of the API instances, as a
// routing does; done gives it back.
type router interface {
	get(member int) *licensing.Service
	done(s *licensing.Service)
}

// stickyRouter gives each member the same instance: the kindest routing,
// which Lambda does not promise.
type stickyRouter struct{ instances []*licensing.Service }

func (r *stickyRouter) get(member int) *licensing.Service {
	return r.instances[member%len(r.instances)]
}
func (r *stickyRouter) done(*licensing.Service) {}

// mruRouter is instancePool: the most recently used idle instance.
type mruRouter struct{ p *instancePool }

func (r *mruRouter) get(int) *licensing.Service { return r.p.get() }
func (r *mruRouter) done(s *licensing.Service)  { r.p.put(s) }

// randomRouter gives a request to an instance picked at random, waiting
// for it if it is busy (an instance serves one request at a time): a
// member's next request meets the instance that served the last one by
// chance only, as AWS documents no affinity.
type randomRouter struct {
	instances []*licensing.Service
	busy      []sync.Mutex
	mu        sync.Mutex
	rng       *rand.Rand
}

func newRandomRouter(instances []*licensing.Service, seed uint64) *randomRouter {
	return &randomRouter{instances: instances, busy: make([]sync.Mutex, len(instances)), rng: rand.New(rand.NewPCG(seed, seed))}
}

func (r *randomRouter) get(int) *licensing.Service {
	r.mu.Lock()
	i := r.rng.IntN(len(r.instances))
	r.mu.Unlock()
	r.busy[i].Lock()
	return r.instances[i]
}

func (r *randomRouter) done(s *licensing.Service) {
	r.busy[slices.Index(r.instances, s)].Unlock()
}

// BenchmarkRouting runs the realistic profile's bursts (two members with a
// 10,000-event history and six with 10; 5 to 10 keyed acquisitions a
// member at once, then a release, one round a day; the stream function
// polling in the background) over 8 API instances, each with its own
// state cache, under four routings: each member sticky to one instance,
// the most recently used idle instance (BenchmarkRealisticLoad's),
// a random instance (what Lambda promises), and no cache at all (the
// cold limit). Each routing starts on new instances. It reports per
// acquisition, by routing, after two unmeasured rounds (Lambda's warm
// instances have served a while): DynamoDB requests (mean and p99; and
// the mean of a member's acquisitions after its burst's first, which
// comes a day after the last and finds no state kept), read and write
// units billed (a write refused by its condition included, as DynamoDB
// bills it), conditional writes lost, p50 and p99 latency, acquisitions
// a second, and the share of the cached states judged current.
func BenchmarkRouting(b *testing.B) {
	ctx := context.Background()
	db, cfg := localTable(b)
	stores := dynamo.OneTable(db, cfg.Table)
	store := stores.Log
	policy := realisticPolicy(b)
	end := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Hour)
	large := []string{"route-large-1", "route-large-2"}
	small := []string{"route-small-1", "route-small-2", "route-small-3", "route-small-4", "route-small-5", "route-small-6"}
	members := append(slices.Clone(large), small...)
	seedRealistic(b, store, policy, large, small, end, 11)
	proc := setup.NewProcessor(setup.Stores{Events: store, Counters: stores.Counters}, setup.DefaultSnapshotEvery, policy)
	poller := localPoller(b, db, cfg, lambda.NewHandler(func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		return proc.Handle(ctx, ev)
	}))
	poller.StartAtLatest, poller.Interval = true, time.Second
	if err := poller.CatchUp(ctx); err != nil {
		b.Fatal(err)
	}
	pollCtx, stopPolling := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() { defer close(polled); poller.Run(pollCtx) }()
	defer func() { stopPolling(); <-polled }()

	titles := make([]string, 0, 200)
	for i := range 200 {
		titles = append(titles, fmt.Sprintf("tt-extra-%03d", i))
	}
	const workers = 8
	clock := &dayClock{}
	rng := rand.New(rand.NewPCG(11, 11))
	var rngMu sync.Mutex
	newInstances := func(cache bool) []*licensing.Service {
		out := make([]*licensing.Service, workers)
		for i := range out {
			out[i] = licensing.NewService(store, policy, clock, setup.RandomIDs{})
			if !cache {
				out[i].Cache = nil
			}
		}
		return out
	}
	type routing struct {
		name string
		r    router
	}
	stickyInstances := newInstances(true)
	routings := []routing{
		{"sticky", &stickyRouter{instances: stickyInstances}},
		{"mru", &mruRouter{p: newInstancePool(workers, func() *licensing.Service { return licensing.NewService(store, policy, clock, setup.RandomIDs{}) })}},
		{"random", newRandomRouter(newInstances(true), 5)},
		{"nocache", newRandomRouter(newInstances(false), 5)},
	}
	samples := map[string][]opSample{}
	later := map[string][]opSample{} // a member's acquisitions after its burst's first
	elapsed := map[string]time.Duration{}
	var mu sync.Mutex
	rounds := 0
	measured := false
	round := func() {
		rounds++
		for _, rt := range routings {
			// A day later; the stream function has caught up with the day before.
			clock.days.Add(1)
			b.StopTimer()
			time.Sleep(2 * poller.Interval)
			b.StartTimer()
			began := time.Now()
			var wg sync.WaitGroup
			for i, m := range members {
				rngMu.Lock()
				picked := rng.Perm(len(titles))[:5+rng.IntN(6)]
				rngMu.Unlock()
				wg.Go(func() {
					exec := func(cmd licensing.Command, acquisition int) {
						svc := rt.r.get(i)
						defer rt.r.done(svc)
						var meter dynamo.Meter
						start := time.Now()
						_, err := svc.Execute(dynamo.WithMeter(ctx, &meter), cmd, fmt.Sprintf("%s-%d-%s-%d", rt.name, rounds, m, acquisition))
						if err != nil {
							b.Error(err)
						}
						if acquisition >= 0 && measured {
							s := opSample{time.Since(start), meter.Usage()}
							mu.Lock()
							samples[rt.name] = append(samples[rt.name], s)
							if acquisition > 0 {
								later[rt.name] = append(later[rt.name], s)
							}
							mu.Unlock()
						}
					}
					for j, t := range picked {
						exec(licensing.Acquire{Member: m, Plan: "premium", Device: "tablet-" + rt.name, Title: titles[t]}, j)
					}
					exec(licensing.ReleaseDevice{Member: m, Device: "tablet-" + rt.name, Reason: licensing.ReasonDeviceRemoved}, -1)
				})
			}
			wg.Wait()
			if measured {
				elapsed[rt.name] += time.Since(began)
			}
		}
	}
	// Instances that have served a while, as Lambda's warm ones have: two
	// rounds first, unmeasured.
	b.StopTimer()
	round()
	round()
	b.StartTimer()
	measured = true
	for b.Loop() {
		round()
	}
	for _, rt := range routings {
		ss := samples[rt.name]
		var req, rcu, wcu, lost, lat []float64
		for _, s := range ss {
			req = append(req, float64(s.usage.RoundTrips))
			rcu = append(rcu, s.usage.ReadUnits)
			wcu = append(wcu, s.usage.WriteUnits)
			lost = append(lost, float64(s.usage.LostWrites))
			lat = append(lat, float64(s.latency.Microseconds()))
		}
		mean := func(xs []float64) float64 {
			t := 0.0
			for _, x := range xs {
				t += x
			}
			return t / float64(len(xs))
		}
		b.ReportMetric(mean(req), "requests/acquire-"+rt.name)
		b.ReportMetric(pct(req, 0.99), "requests-p99/acquire-"+rt.name)
		b.ReportMetric(mean(rcu), "RCU/acquire-"+rt.name)
		b.ReportMetric(mean(wcu), "WCU/acquire-"+rt.name)
		b.ReportMetric(mean(lost), "lost/acquire-"+rt.name)
		b.ReportMetric(pct(lat, 0.5), "p50-µs-"+rt.name)
		b.ReportMetric(pct(lat, 0.99), "p99-µs-"+rt.name)
		b.ReportMetric(float64(len(ss))/elapsed[rt.name].Seconds(), "acquisitions/s-"+rt.name)
		var laterReq []float64
		for _, s := range later[rt.name] {
			laterReq = append(laterReq, float64(s.usage.RoundTrips))
		}
		b.ReportMetric(mean(laterReq), "requests/later-acquire-"+rt.name)
	}
	for _, rt := range routings {
		var instances []*licensing.Service
		switch r := rt.r.(type) {
		case *stickyRouter:
			instances = r.instances
		case *mruRouter:
			instances = r.p.idle
		case *randomRouter:
			instances = r.instances
		}
		var judged int64
		var current int
		for _, s := range instances {
			j, c := s.Cache.Verdicts()
			judged, current = judged+min(j, licensing.JudgeWindow), current+c
		}
		if judged > 0 {
			b.ReportMetric(float64(current)/float64(judged), "current-share-"+rt.name)
		}
	}
}
