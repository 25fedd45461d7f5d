package projector_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/memstore"
	"github.com/dlicense/dlicense/infra/projector/projectortest"
	"github.com/dlicense/dlicense/infra/setup"
)

// movable is a clock a test moves.
type movable struct {
	mu sync.Mutex
	t  time.Time
}

func (c *movable) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *movable) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestHistoryFromScreenWrites plays views through the viewing service on
// the embedded store, captures the stream records of its screen writes,
// and hands them to the stream function twice (a redelivered batch) and a
// stop's record a third time: every view gets one history entry with its
// totals and why it ended, the row holds the titles by latest start, and
// the engagement counts each view once.
func TestHistoryFromScreenWrites(t *testing.T) {
	ctx := context.Background()
	mem := memstore.New()
	var recs []events.DynamoDBEventRecord
	seq := 0
	mem.SubscribeScreens(func(c memstore.ScreenChange) {
		seq++
		r, err := projectortest.ScreenRecord(c.Member, &c.View, c.Insert, fmt.Sprintf("%021d", seq))
		if err != nil {
			t.Error(err)
		}
		recs = append(recs, r)
	})
	t0 := time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)
	clock := &movable{t: t0}
	policy := licensing.DefaultPolicy()
	svc := viewing.NewService(mem, policy, clock, &ids{})
	const member = "m-history"
	start := func(device, title string) string {
		t.Helper()
		st, err := svc.Start(ctx, viewing.Start{Member: member, Plan: "standard", Device: device, Title: title}, "")
		if err != nil {
			t.Fatalf("start %s on %s: %v", title, device, err)
		}
		return st.View.ID
	}
	beat := func(device, view string, seq, pos int64) {
		t.Helper()
		if _, err := svc.Beat(ctx, viewing.Beat{Member: member, Plan: "standard", Device: device, View: view, PositionMs: pos, State: viewing.Playing, Seq: seq}); err != nil {
			t.Fatalf("heartbeat of %s: %v", view, err)
		}
	}
	// The phone watches tt-first-light for a minute and stops.
	a := start("phone", "tt-first-light")
	clock.add(30 * time.Second)
	beat("phone", a, 1, 30_000)
	clock.add(30 * time.Second)
	beat("phone", a, 2, 60_000)
	clock.add(10 * time.Second)
	if _, err := svc.Stop(ctx, viewing.Stop{Member: member, Device: "phone", View: a, PositionMs: 70_000}); err != nil {
		t.Fatal(err)
	}
	// The tv plays tt-paper-moons, the laptop tt-low-tide; the phone ends
	// the tv's screen, and the tv starts tt-paper-moons again.
	b := start("tv", "tt-paper-moons")
	clock.add(time.Second)
	c := start("laptop", "tt-low-tide")
	clock.add(30 * time.Second)
	beat("tv", b, 1, 30_000)
	beat("laptop", c, 1, 45_000)
	if _, err := svc.End(ctx, viewing.End{Member: member, View: b, Reason: viewing.EndedByMember}); err != nil {
		t.Fatal(err)
	}
	b2 := start("tv", "tt-paper-moons")
	clock.add(60 * time.Second)
	beat("tv", b2, 1, 90_000)
	// The laptop's app died: past the view expiry, the tablet takes its
	// slot to watch tt-first-light again, from where the phone stopped.
	clock.add(40 * time.Second)
	d := start("tablet", "tt-first-light")
	clock.add(30 * time.Second)
	beat("tablet", d, 1, 100_000)
	beat("tv", b2, 2, 120_000)

	p := setup.NewProcessor(setup.Stores{Events: mem, Progress: mem, History: mem}, 4, policy)
	for range 2 {
		if resp, err := p.Handle(ctx, events.DynamoDBEvent{Records: recs}); err != nil || len(resp.BatchItemFailures) > 0 {
			t.Fatalf("Handle = %+v, %v", resp, err)
		}
	}
	// The stop's record alone, again.
	for _, r := range recs {
		if r.Change.NewImage["er"].String() == string(viewing.Stopped) {
			if resp, err := p.Handle(ctx, events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{r}}); err != nil || len(resp.BatchItemFailures) > 0 {
				t.Fatalf("Handle(the stop) = %+v, %v", resp, err)
			}
		}
	}

	entries, more, err := mem.History(ctx, member, "", 10)
	if err != nil || more {
		t.Fatal(err, more)
	}
	var got []string
	for _, e := range entries {
		got = append(got, fmt.Sprintf("%s %s %s watched %ds at %d furthest %d", e.Title, e.Device, e.Ended, e.WatchedMs/1000, e.PositionMs, e.FurthestMs))
	}
	// Open views show their start until they are seen to end. The resume
	// points were not written yet when they started, so each starts where
	// a view of its title on the account's screens was last seen: the tv's
	// second tt-paper-moons where its first was ended (30000), the
	// tablet's tt-first-light at 0 (the phone's stopped view had left the
	// screens by then).
	want := []string{
		"tt-first-light tablet  watched 0s at 0 furthest 0",
		"tt-paper-moons tv  watched 0s at 30000 furthest 30000",
		"tt-low-tide laptop EXPIRED watched 30s at 45000 furthest 45000",
		"tt-paper-moons tv ENDED_BY_MEMBER watched 31s at 30000 furthest 30000",
		"tt-first-light phone STOPPED watched 70s at 70000 furthest 70000",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("history:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	row, _ := mem.Row(ctx, member, "")
	var titles []string
	for _, e := range row.Entries {
		titles = append(titles, e.Title)
	}
	if strings.Join(titles, ",") != "tt-first-light,tt-paper-moons,tt-low-tide" {
		t.Errorf("row = %v", titles)
	}
	day := viewing.Day(t0)
	for title, want := range map[string]viewing.Engagement{
		"tt-first-light": {Views: 2, WatchedMs: 70_000},
		"tt-paper-moons": {Views: 2, WatchedMs: 31_000},
		"tt-low-tide":    {Views: 1, WatchedMs: 30_000},
	} {
		if got, _ := mem.Engagement(ctx, title, day); got != want {
			t.Errorf("engagement of %s = %+v, want %+v", title, got, want)
		}
	}
	// Every closed view's running totals are gone from its resume point.
	for _, title := range []string{"tt-low-tide"} {
		if r, _ := mem.Resume(ctx, member, "", title); r == nil || len(r.Open) != 0 {
			t.Errorf("resume point of %s = %+v, want no open totals", title, r)
		}
	}
	// The tablet's view has not reached a checkpoint: its resume point is
	// the phone's stop, and it has no running totals there yet (the slot
	// keeps them).
	if r, _ := mem.Resume(ctx, member, "", "tt-first-light"); r == nil || len(r.Open) != 0 || r.PositionMs != 70_000 {
		t.Errorf("resume point of tt-first-light = %+v, want the phone's stop, nothing open", r)
	}
	_ = d
	_ = b2
}

// TestErasureHoldsAgainstLateRecords: a member's records before an
// erasure, the erasure, and views after it, in one batch: only the views
// after it are left. The records before it handled again afterwards (a
// dead letter redriven late) bring nothing back.
func TestErasureHoldsAgainstLateRecords(t *testing.T) {
	ctx := context.Background()
	mem := memstore.New()
	var recs []events.DynamoDBEventRecord
	seq := 0
	mem.SubscribeScreens(func(c memstore.ScreenChange) {
		seq++
		r, err := projectortest.ScreenRecord(c.Member, &c.View, c.Insert, fmt.Sprintf("%021d", seq))
		if err != nil {
			t.Error(err)
		}
		recs = append(recs, r)
	})
	mem.SubscribeErasures(func(e viewing.Erasure) {
		seq++
		r, err := projectortest.ErasureRecord(e.Member, e.At, fmt.Sprintf("%021d", seq))
		if err != nil {
			t.Error(err)
		}
		recs = append(recs, r)
	})
	clock := &movable{t: time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)}
	policy := licensing.DefaultPolicy()
	svc := viewing.NewService(mem, policy, clock, &ids{})
	svc.History = mem
	const member = "m-erased"
	watch := func(device, title string) {
		t.Helper()
		st, err := svc.Start(ctx, viewing.Start{Member: member, Plan: "premium", Device: device, Title: title}, "")
		if err != nil {
			t.Fatal(err)
		}
		clock.add(30 * time.Second)
		if _, err := svc.Beat(ctx, viewing.Beat{Member: member, Plan: "premium", Device: device, View: st.View.ID, PositionMs: 30_000, State: viewing.Playing, Seq: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Stop(ctx, viewing.Stop{Member: member, Device: device, View: st.View.ID, PositionMs: 31_000}); err != nil {
			t.Fatal(err)
		}
		clock.add(time.Second)
	}
	watch("tv", "tt-first-light")
	watch("phone", "tt-paper-moons")
	// A view started earlier in the erasure's own millisecond is erased too.
	clock.add(200 * time.Microsecond)
	if _, err := svc.Start(ctx, viewing.Start{Member: member, Plan: "premium", Device: "laptop", Title: "tt-breakwater"}, ""); err != nil {
		t.Fatal(err)
	}
	clock.add(300 * time.Microsecond)
	before := len(recs)
	if _, err := svc.Erase(ctx, member); err != nil {
		t.Fatal(err)
	}
	clock.add(time.Second)
	watch("tablet", "tt-low-tide")

	p := setup.NewProcessor(setup.Stores{Events: mem, Progress: mem, History: mem}, 4, policy)
	handle := func(rs []events.DynamoDBEventRecord) {
		t.Helper()
		if resp, err := p.Handle(ctx, events.DynamoDBEvent{Records: rs}); err != nil || len(resp.BatchItemFailures) > 0 {
			t.Fatalf("Handle = %+v, %v", resp, err)
		}
	}
	check := func(when string) {
		t.Helper()
		entries, _, err := mem.History(ctx, member, "", 10)
		if err != nil || len(entries) != 1 || entries[0].Title != "tt-low-tide" || entries[0].Ended != viewing.Stopped {
			t.Errorf("%s: history = %+v, %v; want only the view after the erasure", when, entries, err)
		}
		for _, title := range []string{"tt-first-light", "tt-paper-moons"} {
			if r, _ := mem.Resume(ctx, member, "", title); r != nil {
				t.Errorf("%s: resume point of %s = %+v, want none", when, title, r)
			}
		}
		row, _ := mem.Row(ctx, member, "")
		if len(row.Entries) != 1 || row.Entries[0].Title != "tt-low-tide" {
			t.Errorf("%s: row = %+v, want only tt-low-tide", when, row.Entries)
		}
	}
	handle(recs)
	check("after the batch")
	handle(recs[:before]) // the records before the erasure, again, late
	check("after late records")
	handle(recs) // the whole batch again
	check("after the batch again")
}
