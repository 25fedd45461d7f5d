package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
)

// CounterStores are what a counter store's suite runs on: the counters, and
// the log they count a missed delivery's events from (which may be kept
// elsewhere).
type CounterStores struct {
	Counters licensing.CounterStore
	Log      licensing.EventStore
}

// Recounter is what a counter store offers a recount from the logs
// (rebuild.CounterStore); a store that has it runs the Recount test too.
type Recounter interface {
	ReplaceCounts(ctx context.Context, scope string, counts licensing.Counts) error
	CounterScopes(ctx context.Context, fn func(scope string) error) error
	SetCounted(ctx context.Context, member string, version int64) error
}

// RunCounters runs the contract of counter stores: each event counted once
// however often and however late it is delivered, the events a given-up
// delivery held counted from the log, a scope's shards summed, members
// apart, and (with Recounter) counts replaced by a recount.
func RunCounters(t *testing.T, newStores func(t *testing.T) CounterStores) {
	tests := []struct {
		name string
		run  func(t *testing.T, s CounterStores)
	}{
		{"ExactUnderRedelivery", testCountsExactUnderRedelivery},
		{"CountsWhatADeliveryMissed", testCountsWhatADeliveryMissed},
		{"ANewMemberCountsFromItsDelivery", testNewMemberCountsFromItsDelivery},
		{"ManyMembersInOneCall", testManyMembersCounted},
		{"Recount", testRecount},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStores(t)) })
	}
}

// countDay is the day the counters' fixtures grant on.
var countDay = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// grants is a log of n events: licences of title (studio s) granted and,
// every third event, the one before released; expiring three days on.
func grants(title string, n int) []licensing.Event {
	var log []licensing.Event
	for v := int64(1); v <= int64(n); v++ {
		at := countDay.Add(10*time.Hour + time.Duration(v)*time.Minute)
		lic := fmt.Sprintf("L%d", v)
		var p licensing.Payload = &licensing.LicenceAcquired{Licence: lic, Plan: "premium", Title: title, Studio: "s", Device: "d1", ExpiresAt: countDay.Add(72 * time.Hour)}
		if v%3 == 0 {
			prev := fmt.Sprintf("L%d", v-1)
			p = &licensing.LicenceReleased{Licence: prev, Reason: licensing.ReasonDeleted, Ref: &licensing.LicenceRef{
				Licence: prev, Title: title, Studio: "s", IssuedAt: at.Add(-time.Minute), ExpiresAt: countDay.Add(72 * time.Hour)}}
		}
		log = append(log, licensing.Event{Version: v, At: at, PolicyVersion: policyVersion, Payload: p})
	}
	return log
}

// grantingMember is a member of the test's own whose log of n events
// (grants, of a title of its own) is appended to log.
func grantingMember(t *testing.T, log licensing.EventStore, n int) (member, title string, events []licensing.Event) {
	t.Helper()
	member = streamID(t)
	title = "t-" + member[len(member)-20:]
	events = grants(title, n)
	appendLog(t, log, member, events)
	return member, title, events
}

// tally is what a log counts: grants, and licences held on countDay.
func tally(log []licensing.Event) (granted, active int64) {
	for _, e := range log {
		switch e.Payload.(type) {
		case *licensing.LicenceAcquired:
			granted++
			active++
		case *licensing.LicenceReleased:
			active--
		}
	}
	return granted, active
}

// deliver counts log[from-1:to] as one delivery of member's records would.
func deliver(t *testing.T, s licensing.CounterStore, member string, log []licensing.Event, from, to int) {
	t.Helper()
	c := licensing.CountedOf(member, log[from-1:to])
	c.From = int64(from)
	if failed, err := s.AddCounts(context.Background(), []licensing.Counted{c}); err != nil || len(failed) != 0 {
		t.Fatalf("AddCounts(%s v%d-v%d) = %v, %v", member, from, to, failed, err)
	}
}

func checkCounts(t *testing.T, s licensing.CounterStore, title string, granted, active int64) {
	t.Helper()
	c, err := s.Counts(context.Background(), licensing.TitleScope(title))
	if err != nil {
		t.Fatal(err)
	}
	if c.Granted() != granted || c.ActiveOn(countDay) != active {
		t.Errorf("Counts(%s) = %d granted, %d active; want %d and %d", title, c.Granted(), c.ActiveOn(countDay), granted, active)
	}
	day, err := s.Counts(context.Background(), licensing.StudioDayScope("s", countDay))
	if err != nil {
		t.Fatal(err)
	}
	if day.Granted() < granted {
		t.Errorf("Counts(studio s on %s) = %d granted, want at least %d", countDay.Format(time.DateOnly), day.Granted(), granted)
	}
}

func appendLog(t *testing.T, s licensing.EventStore, member string, log []licensing.Event) {
	t.Helper()
	for i := 0; i < len(log); i += 50 {
		end := min(i+50, len(log))
		if err := s.Append(context.Background(), member, int64(i), log[i:end]); err != nil {
			t.Fatalf("Append(%s, %d) = %v", member, i, err)
		}
	}
}

func testCountsExactUnderRedelivery(t *testing.T, s CounterStores) {
	member, title, log := grantingMember(t, s.Log, 8)
	deliver(t, s.Counters, member, log, 1, 4)
	deliver(t, s.Counters, member, log, 5, 8)
	g, a := tally(log)
	checkCounts(t, s.Counters, title, g, a)
	// The same delivery again, one retried from the middle, everything again.
	deliver(t, s.Counters, member, log, 5, 8)
	deliver(t, s.Counters, member, log, 3, 6)
	deliver(t, s.Counters, member, log, 1, 8)
	checkCounts(t, s.Counters, title, g, a)
}

func testCountsWhatADeliveryMissed(t *testing.T, s CounterStores) {
	member, title, log := grantingMember(t, s.Log, 9)
	deliver(t, s.Counters, member, log, 1, 2)
	// v3-v5 were given up on (a dead letter); v6-v9 come: the store counts
	// v3-v5 from the log first.
	deliver(t, s.Counters, member, log, 6, 9)
	g, a := tally(log)
	checkCounts(t, s.Counters, title, g, a)
	// The dead letter, redriven late, changes nothing.
	deliver(t, s.Counters, member, log, 3, 5)
	checkCounts(t, s.Counters, title, g, a)
}

func testNewMemberCountsFromItsDelivery(t *testing.T, s CounterStores) {
	member, title, log := grantingMember(t, s.Log, 6)
	// A member older than the counters: counted from its first delivery on
	// (a recount counts the rest).
	deliver(t, s.Counters, member, log, 4, 6)
	g, a := tally(log[3:])
	checkCounts(t, s.Counters, title, g, a)
}

func testManyMembersCounted(t *testing.T, s CounterStores) {
	prefix := streamID(t)
	title := "t-" + prefix[len(prefix)-20:]
	const members = 120 // more than one transaction's worth
	var counted []licensing.Counted
	var all []licensing.Event
	for i := range members {
		m := fmt.Sprintf("%s-%d", prefix[:min(len(prefix), 56)], i)
		log := grants(title, 2+i%3)
		appendLog(t, s.Log, m, log)
		c := licensing.CountedOf(m, log)
		c.From = 1
		counted = append(counted, c)
		all = append(all, log...)
	}
	failed, err := s.Counters.AddCounts(context.Background(), counted)
	if err != nil || len(failed) != 0 {
		t.Fatalf("AddCounts(%d members) = %v, %v", members, failed, err)
	}
	g, a := tally(all)
	checkCounts(t, s.Counters, title, g, a)
	// Every one of them again, in another order: nothing changes.
	slices.Reverse(counted)
	if failed, err := s.Counters.AddCounts(context.Background(), counted); err != nil || len(failed) != 0 {
		t.Fatalf("AddCounts(again) = %v, %v", failed, err)
	}
	checkCounts(t, s.Counters, title, g, a)
}

func testRecount(t *testing.T, s CounterStores) {
	rc, ok := s.Counters.(Recounter)
	if !ok {
		t.Skip("the store offers no recount")
	}
	ctx := context.Background()
	member, title, log := grantingMember(t, s.Log, 6)
	deliver(t, s.Counters, member, log, 1, 6)
	// A recount of the first four events: the scope is replaced, and the
	// member counted up to v4.
	g, a := tally(log[:4])
	counts := licensing.Counts{licensing.FieldGranted: g, "a:" + countDay.Add(72*time.Hour).Format(time.DateOnly): a}
	if err := rc.ReplaceCounts(ctx, licensing.TitleScope(title), counts); err != nil {
		t.Fatal(err)
	}
	if err := rc.SetCounted(ctx, member, 4); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, s.Counters, title, g, a)
	found := false
	if err := rc.CounterScopes(ctx, func(scope string) error {
		found = found || scope == licensing.TitleScope(title)
		return nil
	}); err != nil || !found {
		t.Errorf("CounterScopes = %v, found %s: %v; want it listed", err, licensing.TitleScope(title), found)
	}
	// The stream function, resumed, counts what comes after the recount.
	deliver(t, s.Counters, member, log, 3, 6)
	g, a = tally(log)
	checkCounts(t, s.Counters, title, g, a)
}
