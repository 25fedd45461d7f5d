package dynamo_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/setup"
)

// benchMember is a member whose log the benchmark keeps snapshotted the way
// the stream function does: every DefaultSnapshotEvery events.
type benchMember struct {
	id        string
	svc       *licensing.Service
	store     *dynamo.Log
	lastSnap  int64
	latencies []time.Duration
	usage     dynamo.Usage
	acquires  int
	calls     int // never reset: every request gets a key of its own
}

// history seeds n events: a realistic mix of acquisitions and releases on
// one device, then a snapshot as of the end.
func seedMember(b *testing.B, store *dynamo.Log, svc *licensing.Service, id string, n int) *benchMember {
	b.Helper()
	var events []licensing.Event
	// Two hours apart: 10,000 events span more than two years.
	at := t0.Add(-time.Duration(n) * 2 * time.Hour)
	for v := int64(1); v <= int64(n); v++ {
		lic := fmt.Sprintf("seed-%d", (v+1)/2)
		var p licensing.Payload = &licensing.LicenceAcquired{Licence: lic, Plan: "p", Title: "t0", Studio: "s", Device: "d0", ExpiresAt: at.Add(30 * 24 * time.Hour)}
		if v%2 == 0 {
			p = &licensing.LicenceReleased{Licence: lic, Reason: licensing.ReasonDeleted}
		}
		events = append(events, licensing.Event{Version: v, At: at, PolicyVersion: "cap", Payload: p})
		at = at.Add(2 * time.Hour)
	}
	seed(b, store, id, events)
	m := &benchMember{id: id, svc: svc, store: store}
	m.snapshot(b)
	return m
}

func (m *benchMember) snapshot(b *testing.B) {
	st, err := m.svc.Load(context.Background(), m.id)
	if err != nil {
		b.Fatal(err)
	}
	if st.Version-m.lastSnap < setup.DefaultSnapshotEvery && m.lastSnap > 0 {
		return
	}
	snap, err := licensing.EncodeSnapshot(st, m.svc.Policy()) // for the quotas the service decides by
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.store.SaveSnapshot(context.Background(), snap); err != nil {
		b.Fatal(err)
	}
	m.lastSnap = st.Version
}

// acquire runs one metered acquisition, then (unmetered) releases it and
// keeps snapshots up as the stream function would.
func (m *benchMember) acquire(b *testing.B, i int) {
	var meter dynamo.Meter
	ctx := dynamo.WithMeter(context.Background(), &meter)
	start := time.Now()
	res, err := m.svc.Execute(ctx, licensing.Acquire{Member: m.id, Plan: "p", Device: "d1", Title: fmt.Sprintf("t%d", i%20)}, fmt.Sprintf("k-%s-%d", m.id, m.calls))
	m.calls++
	m.latencies = append(m.latencies, time.Since(start))
	if err != nil {
		b.Fatal(err)
	}
	u := meter.Usage()
	m.usage.RoundTrips += u.RoundTrips
	m.usage.ReadUnits += u.ReadUnits
	m.usage.WriteUnits += u.WriteUnits
	m.acquires++
	if _, err := m.svc.Execute(context.Background(), licensing.Release{Member: m.id, Device: "d1", Licence: res.Licences[0].ID, Reason: licensing.ReasonDeleted}, ""); err != nil {
		b.Fatal(err)
	}
	m.snapshot(b)
}

// dailyClock moves a day forward every other reading (one acquisition and
// one release a day).
type dailyClock struct {
	mu sync.Mutex
	at time.Time
	n  int
}

func (c *dailyClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if c.n%2 == 0 {
		c.at = c.at.Add(12 * time.Hour)
	}
	return c.at
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkAcquire measures what one licence acquisition costs on DynamoDB
// Local for a member with 10 events of history and one with 10,000,
// alternating between them so both see the same conditions, without the
// state cache: a load and a conditional write (BenchmarkRealisticLoad
// measures the warm instance).
func BenchmarkAcquire(b *testing.B) {
	db, table := localTable(b)
	store := dynamo.OneTable(db, table).Log
	// A typical member: one download kept and one deleted a day.
	svc := licensing.NewService(store, capPolicy(b, 100, 20), &dailyClock{at: t0}, &counterIDs{})
	svc.Cache = nil // every acquisition loads: the cost of a load, by history length
	small := seedMember(b, store, svc, "bench-small", 10)
	large := seedMember(b, store, svc, "bench-large", 10000)
	for i := 0; i < 20; i++ { // warm up the connection pool and the JIT
		small.acquire(b, i)
		large.acquire(b, i)
	}
	small.latencies, large.latencies = nil, nil
	small.usage, large.usage = dynamo.Usage{}, dynamo.Usage{}
	small.acquires, large.acquires = 0, 0
	i := 0
	for b.Loop() {
		small.acquire(b, i)
		large.acquire(b, i)
		i++
	}
	for _, m := range []struct {
		name string
		m    *benchMember
	}{{"10", small}, {"10000", large}} {
		n := float64(m.m.acquires)
		b.ReportMetric(m.m.usage.ReadUnits/n, "RCU/acquire@"+m.name)
		b.ReportMetric(m.m.usage.WriteUnits/n, "WCU/acquire@"+m.name)
		b.ReportMetric(float64(m.m.usage.RoundTrips)/n, "roundtrips/acquire@"+m.name)
		b.ReportMetric(float64(median(m.m.latencies).Microseconds()), "p50-µs@"+m.name)
	}
	b.ReportMetric(float64(median(large.latencies))/float64(median(small.latencies)), "latency-ratio")
}
