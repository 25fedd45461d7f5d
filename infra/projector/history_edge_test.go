package projector_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/memstore"
	"github.com/dlicense/dlicense/infra/projector/projectortest"
	"github.com/dlicense/dlicense/infra/setup"
)

// flakyHistory fails the next fail RecordHistory calls.
type flakyHistory struct {
	viewing.HistoryStore
	fail int
}

func (f *flakyHistory) RecordHistory(ctx context.Context, cs []viewing.HistoryMemberChange) error {
	if f.fail > 0 {
		f.fail--
		return errors.New("injected: throttled")
	}
	return f.HistoryStore.RecordHistory(ctx, cs)
}

// viewRecorder runs the viewing service on an embedded store and keeps the
// stream records of its screen writes and erasures.
type viewRecorder struct {
	mem  *memstore.Store
	recs []events.DynamoDBEventRecord
	seq  int
}

func newViewRecorder(t *testing.T) *viewRecorder {
	r := &viewRecorder{mem: memstore.New()}
	r.mem.SubscribeScreens(func(c memstore.ScreenChange) {
		r.seq++
		rec, err := projectortest.ScreenRecord(c.Member, &c.View, c.Insert, fmt.Sprintf("%021d", r.seq))
		if err != nil {
			t.Error(err)
		}
		r.recs = append(r.recs, rec)
	})
	r.mem.SubscribeErasures(func(e viewing.Erasure) {
		r.seq++
		rec, err := projectortest.ErasureRecord(e.Member, e.At, fmt.Sprintf("%021d", r.seq))
		if err != nil {
			t.Error(err)
		}
		r.recs = append(r.recs, rec)
	})
	return r
}

// dump is a member's history, logged.
func dump(t *testing.T, s viewing.HistoryStore, member string) []viewing.HistoryEntry {
	es, _, err := s.History(context.Background(), member, "", 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		t.Logf("  entry %s %s dev=%s ended=%q watched=%d pos=%d", e.View, e.Title, e.Device, e.Ended, e.WatchedMs, e.PositionMs)
	}
	return es
}

// TestViewsEndedBeforeAnyReportAreClosed: a view ended from another screen
// before its first heartbeat, and one replaced by its device's next start
// before any, still get their end.
func TestViewsEndedBeforeAnyReportAreClosed(t *testing.T) {
	bothStores(t, func(t *testing.T, s testStores) {
		ctx := context.Background()
		r := newViewRecorder(t)
		clock := &movable{t: time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)}
		policy := licensing.DefaultPolicy()
		svc := viewing.NewService(r.mem, policy, clock, &ids{})
		const m = "m-r1"
		st, err := svc.Start(ctx, viewing.Start{Member: m, Plan: "standard", Device: "tv", Title: "tt-first-light"}, "")
		if err != nil {
			t.Fatal(err)
		}
		clock.add(10 * time.Second)
		if _, err := svc.End(ctx, viewing.End{Member: m, View: st.View.ID, Reason: viewing.EndedByMember}); err != nil {
			t.Fatal(err)
		}
		// and a replaced view without heartbeats
		st2, err := svc.Start(ctx, viewing.Start{Member: m, Plan: "standard", Device: "phone", Title: "tt-low-tide"}, "")
		if err != nil {
			t.Fatal(err)
		}
		clock.add(5 * time.Second)
		if _, err := svc.Start(ctx, viewing.Start{Member: m, Plan: "standard", Device: "phone", Title: "tt-low-tide"}, ""); err != nil {
			t.Fatal(err)
		}
		_ = st2
		p := setup.NewProcessor(setup.Stores{Events: s.Log, Progress: s.Views, History: s.History}, 4, policy)
		if resp, err := p.Handle(ctx, events.DynamoDBEvent{Records: r.recs}); err != nil || len(resp.BatchItemFailures) > 0 {
			t.Fatal(resp, err)
		}
		for _, e := range dump(t, s.History, m) {
			if e.View == st.View.ID && e.Ended == "" {
				t.Errorf("a view ended by the member before its first heartbeat stays open")
			}
			if e.View == st2.View.ID && (e.Ended != viewing.Replaced || e.Device != "phone") {
				t.Errorf("a view replaced before any heartbeat = %+v, want it REPLACED, on the phone", e)
			}
			if e.View == st.View.ID && (e.Ended != viewing.EndedByMember || e.Device != "tv") {
				t.Errorf("a view ended before any heartbeat = %+v, want it ENDED_BY_MEMBER, on the tv", e)
			}
		}
	})
}

// TestAFailedHistoryWriteLosesNoClose: a view replaced by its device's next
// start after heartbeats, the next view's heartbeat in the same batch, and
// the history write failing once: Lambda's retry from the reported record
// closes the first view with its totals, counted once.
func TestAFailedHistoryWriteLosesNoClose(t *testing.T) {
	bothStores(t, func(t *testing.T, s testStores) {
		ctx := context.Background()
		r := newViewRecorder(t)
		clock := &movable{t: time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)}
		policy := licensing.DefaultPolicy()
		svc := viewing.NewService(r.mem, policy, clock, &ids{})
		const m = "m-r2"
		beat := func(view string, seq, pos int64) {
			if _, err := svc.Beat(ctx, viewing.Beat{Member: m, Plan: "standard", Device: "tv", View: view, PositionMs: pos, State: viewing.Playing, Seq: seq}); err != nil {
				t.Fatal(err)
			}
		}
		a, err := svc.Start(ctx, viewing.Start{Member: m, Plan: "standard", Device: "tv", Title: "tt-first-light"}, "")
		if err != nil {
			t.Fatal(err)
		}
		clock.add(30 * time.Second)
		beat(a.View.ID, 1, 30_000)
		clock.add(30 * time.Second)
		beat(a.View.ID, 2, 60_000)
		// app restarts the same title on the same device
		b, err := svc.Start(ctx, viewing.Start{Member: m, Plan: "standard", Device: "tv", Title: "tt-first-light"}, "")
		if err != nil {
			t.Fatal(err)
		}
		clock.add(30 * time.Second)
		beat(b.View.ID, 1, 90_000)
		fh := &flakyHistory{HistoryStore: s.History, fail: 1}
		p := setup.NewProcessor(setup.Stores{Events: s.Log, Progress: s.Views, History: fh}, 4, policy)
		resp, err := p.Handle(ctx, events.DynamoDBEvent{Records: r.recs})
		if err != nil || len(resp.BatchItemFailures) != 1 {
			t.Fatal(resp, err)
		}
		// Lambda retries from the reported record.
		from := resp.BatchItemFailures[0].ItemIdentifier
		var retry []events.DynamoDBEventRecord
		for _, rec := range r.recs {
			if rec.Change.SequenceNumber >= from {
				retry = append(retry, rec)
			}
		}
		if resp, err := p.Handle(ctx, events.DynamoDBEvent{Records: retry}); err != nil || len(resp.BatchItemFailures) > 0 {
			t.Fatal(resp, err)
		}
		for _, e := range dump(t, s.History, m) {
			if e.View == a.View.ID && e.Ended == "" {
				t.Errorf("view A's close lost after a failed history write (watched %d)", e.WatchedMs)
			}
			if e.View == a.View.ID && e.WatchedMs != 60_000 {
				t.Errorf("view A closed with %d ms watched, want 60000", e.WatchedMs)
			}
		}
		if eng, _ := s.History.Engagement(ctx, "tt-first-light", viewing.Day(clock.Now())); eng.Views != 2 || eng.WatchedMs != 60_000 {
			t.Errorf("engagement = %+v, want 2 views and A's 60 s", eng)
		}
	})
}

// TestAnErasureDeliveredAgainKeepsWhatCameAfter: an erasure record handled
// again (a redriven dead letter) after a view started after it leaves that
// view's resume point and row alone.
func TestAnErasureDeliveredAgainKeepsWhatCameAfter(t *testing.T) {
	bothStores(t, func(t *testing.T, s testStores) {
		ctx := context.Background()
		r := newViewRecorder(t)
		clock := &movable{t: time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)}
		policy := licensing.DefaultPolicy()
		svc := viewing.NewService(r.mem, policy, clock, &ids{})
		svc.History = r.mem
		const m = "m-r3"
		if _, err := svc.Erase(ctx, m); err != nil {
			t.Fatal(err)
		}
		// The erasure on the real store too (the record's item must exist).
		if err := s.History.BeginErasure(ctx, m, r.mem2at(t, m)); err != nil {
			t.Fatal(err)
		}
		clock.add(time.Second)
		st, err := svc.Start(ctx, viewing.Start{Member: m, Plan: "standard", Device: "tv", Title: "tt-low-tide"}, "")
		if err != nil {
			t.Fatal(err)
		}
		clock.add(30 * time.Second)
		// A stop writes the resume point (a heartbeat, only at a checkpoint).
		if _, err := svc.Stop(ctx, viewing.Stop{Member: m, Device: "tv", View: st.View.ID, PositionMs: 30_000}); err != nil {
			t.Fatal(err)
		}
		p := setup.NewProcessor(setup.Stores{Events: s.Log, Progress: s.Views, History: s.History}, 4, policy)
		if resp, err := p.Handle(ctx, events.DynamoDBEvent{Records: r.recs}); err != nil || len(resp.BatchItemFailures) > 0 {
			t.Fatal(resp, err)
		}
		res, _ := s.Views.Resume(ctx, m, "", "tt-low-tide")
		row, _ := s.History.Row(ctx, m, "")
		t.Logf("before redelivery: resume=%+v row=%d", res, len(row.Entries))
		// the erasure record alone, again (redrive)
		if resp, err := p.Handle(ctx, events.DynamoDBEvent{Records: r.recs[:1]}); err != nil || len(resp.BatchItemFailures) > 0 {
			t.Fatal(resp, err)
		}
		res, _ = s.Views.Resume(ctx, m, "", "tt-low-tide")
		row, _ = s.History.Row(ctx, m, "")
		t.Logf("after redelivery: resume=%+v row=%d", res, len(row.Entries))
		if res == nil || len(row.Entries) == 0 {
			t.Errorf("an erasure delivered again wiped a later view's resume point or row")
		}
	})
}

func (r *viewRecorder) mem2at(t *testing.T, m string) time.Time {
	es, _ := r.mem.Erasures(context.Background(), []string{m})
	return es[m]
}

// TestPagesDuringAnErasure: while an erasure is under way the first page is
// refused; a page after a cursor given before it is read as one Query
// reads it, on both stores alike.
func TestPagesDuringAnErasure(t *testing.T) {
	bothStores(t, func(t *testing.T, s testStores) {
		ctx := context.Background()
		const m = "m-r4"
		t0 := time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)
		var cs []viewing.HistoryMemberChange
		for i := range 3 {
			e := viewing.HistoryEntry{View: fmt.Sprintf("v0-x%d", i), Title: "tt-first-light", Device: "tv", Started: t0.Add(time.Duration(i) * time.Minute)}
			e.LastSeen = e.Started
			cs = append(cs, viewing.HistoryMemberChange{Member: m, HistoryChange: viewing.HistoryChange{Entry: e, Count: viewing.StartEngagement(e)}})
		}
		if err := s.History.RecordHistory(ctx, cs); err != nil {
			t.Fatal(err)
		}
		page, more, err := s.History.History(ctx, m, "", 1)
		if err != nil || !more {
			t.Fatal(err, more)
		}
		if err := s.History.BeginErasure(ctx, m, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.History.History(ctx, m, "", 1); err != viewing.ErrErasurePending {
			t.Errorf("first page under way = %v, want ErrErasurePending", err)
		}
		if es, _, err := s.History.History(ctx, m, page[0].Key(), 10); err != nil || len(es) != 2 {
			t.Errorf("page after a cursor under way = %d entries, %v; want the 2 older", len(es), err)
		}
	})
}

// TestAStopBeforeTheNextViewOfItsSlot: a view that stops and the slot's
// next view of the same title, heartbeats and all, in one batch, the
// history write failing once: the first view is closed as stopped, with
// its totals, counted once.
func TestAStopBeforeTheNextViewOfItsSlot(t *testing.T) {
	bothStores(t, func(t *testing.T, s testStores) {
		ctx := context.Background()
		r := newViewRecorder(t)
		clock := &movable{t: time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)}
		policy := licensing.DefaultPolicy()
		svc := viewing.NewService(r.mem, policy, clock, &ids{})
		const m = "m-stop-next"
		watch := func(seconds int64, stop bool) string {
			st, err := svc.Start(ctx, viewing.Start{Member: m, Plan: "basic", Device: "tv", Title: "tt-first-light"}, "")
			if err != nil {
				t.Fatal(err)
			}
			clock.add(time.Duration(seconds) * time.Second)
			if _, err := svc.Beat(ctx, viewing.Beat{Member: m, Plan: "basic", Device: "tv", View: st.View.ID, PositionMs: seconds * 1000, State: viewing.Playing, Seq: 1}); err != nil {
				t.Fatal(err)
			}
			if stop {
				if _, err := svc.Stop(ctx, viewing.Stop{Member: m, Device: "tv", View: st.View.ID, PositionMs: seconds * 1000}); err != nil {
					t.Fatal(err)
				}
			}
			return st.View.ID
		}
		a := watch(60, true)
		watch(30, false)
		for fails := 1; fails <= 2; fails++ {
			fh := &flakyHistory{HistoryStore: s.History, fail: fails}
			p := setup.NewProcessor(setup.Stores{Events: s.Log, Progress: s.Views, History: fh}, 4, policy)
			recs := r.recs
			for range 4 {
				resp, err := p.Handle(ctx, events.DynamoDBEvent{Records: recs})
				if err != nil {
					t.Fatal(err)
				}
				if len(resp.BatchItemFailures) == 0 {
					break
				}
				from := resp.BatchItemFailures[0].ItemIdentifier
				recs = slices.DeleteFunc(slices.Clone(r.recs), func(rec events.DynamoDBEventRecord) bool { return rec.Change.SequenceNumber < from })
			}
		}
		for _, e := range dump(t, s.History, m) {
			if e.View == a && (e.Ended != viewing.Stopped || e.WatchedMs != 60_000) {
				t.Errorf("the stopped view = %+v, want STOPPED with 60 s watched", e)
			}
		}
		if eng, _ := s.History.Engagement(ctx, "tt-first-light", viewing.Day(clock.Now())); eng.Views != 2 || eng.WatchedMs != 60_000 {
			t.Errorf("engagement = %+v, want 2 views and the stopped view's 60 s", eng)
		}
	})
}

// TestASilentViewIsClosedWithItsLastReport: a view that stops sending
// heartbeats (its app killed) and whose slot nobody takes is closed by the
// sweep: the stream function closes its history entry as EXPIRED with its
// last position and the time watched to its last heartbeat, in engagement
// and the resume point too; and only the records the table's filter
// passes are needed.
func TestASilentViewIsClosedWithItsLastReport(t *testing.T) {
	bothStores(t, func(t *testing.T, s testStores) {
		ctx := context.Background()
		r := newViewRecorder(t)
		clock := &movable{t: time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)}
		policy := licensing.DefaultPolicy()
		svc := viewing.NewService(r.mem, policy, clock, &ids{})
		const m = "m-silent"
		st, err := svc.Start(ctx, viewing.Start{Member: m, Plan: "basic", Device: "tv", Title: "tt-first-light"}, "")
		if err != nil {
			t.Fatal(err)
		}
		for seq := int64(1); seq <= 20; seq++ { // ten minutes, a checkpoint at 8
			clock.add(30 * time.Second)
			if _, err := svc.Beat(ctx, viewing.Beat{Member: m, Plan: "basic", Device: "tv", View: st.View.ID, PositionMs: seq * 30_000, State: viewing.Playing, Seq: seq}); err != nil {
				t.Fatal(err)
			}
		}
		clock.add(policy.Viewing.ViewExpiry.D() + viewing.CloseSilentAfter)
		sw, err := viewing.SweepSilent(ctx, r.mem, viewing.LiveShard(m), clock.Now())
		if err != nil || sw.Closed != 1 {
			t.Fatalf("SweepSilent = %+v, %v; want the view closed", sw, err)
		}
		var passed []events.DynamoDBEventRecord
		for _, rec := range r.recs {
			if ck, ok := rec.Change.NewImage["ck"]; ok && ck.Boolean() {
				passed = append(passed, rec)
			}
		}
		if len(passed) != 3 {
			t.Fatalf("the filter passes %d records, want 3 (the start, the checkpoint, the close)", len(passed))
		}
		p := setup.NewProcessor(setup.Stores{Events: s.Log, Progress: s.Views, History: s.History}, 4, policy)
		for range 2 { // delivered twice: counted once
			if resp, err := p.Handle(ctx, events.DynamoDBEvent{Records: passed}); err != nil || len(resp.BatchItemFailures) > 0 {
				t.Fatalf("Handle = %+v, %v", resp, err)
			}
		}
		es := dump(t, s.History, m)
		if len(es) != 1 || es[0].Ended != viewing.Expired || es[0].WatchedMs != 600_000 || es[0].PositionMs != 600_000 || !es[0].LastSeen.Equal(st.View.Started.Add(10*time.Minute)) {
			t.Errorf("history = %+v; want one entry, EXPIRED, 10 min watched, at 600000 as of its last heartbeat", es)
		}
		if eng, _ := s.History.Engagement(ctx, "tt-first-light", viewing.Day(clock.Now())); eng.Views != 1 || eng.WatchedMs != 600_000 {
			t.Errorf("engagement = %+v, want 1 view and its 10 min", eng)
		}
		if res, err := s.Views.Resume(ctx, m, "", "tt-first-light"); err != nil || res == nil || res.PositionMs != 600_000 || res.WatchedMs != 600_000 || len(res.Open) != 0 {
			t.Errorf("resume point = %+v, %v; want 600000, 10 min watched, no view open", res, err)
		}
	})
}
