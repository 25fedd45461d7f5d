package storetest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/viewing"
)

func testProgressOnceEach(t *testing.T, s ViewStore) {
	member := streamID(t)
	ctx := t.Context()
	online := func(slot int, seq string, pos, watched int64, device string, at time.Duration) viewing.Progress {
		return viewing.Progress{Profile: "kids", Title: "tt-first-light", Device: device, View: fmt.Sprintf("v%d-%s", slot, device),
			At: vt0.Add(at), PositionMs: pos, WatchedMs: watched, Slot: slot, Seq: viewing.PadSeq(seq)}
	}
	// The tv plays in slot 0; the phone, in slot 1, joins; stream sequence
	// numbers are ordered per slot item, not across them.
	p := []viewing.Progress{
		online(0, "101", 10_000, 10_000, "tv", 10*time.Second), online(1, "090", 15_000, 5_000, "phone", 15*time.Second),
		online(0, "102", 20_000, 10_000, "tv", 20*time.Second), online(0, "103", 30_000, 10_000, "tv", 30*time.Second),
		online(1, "104", 40_000, 10_000, "phone", 40*time.Second), online(1, "1000", 50_000, 10_000, "phone", 50*time.Second),
	}
	if _, err := s.AddProgress(ctx, member, p[:3]); err != nil {
		t.Fatal(err)
	}
	// A redelivery from the second record on, with new ones.
	if _, err := s.AddProgress(ctx, member, p[1:]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddProgress(ctx, member, p[5:]); err != nil {
		t.Fatal(err)
	}
	open := map[int]viewing.Totals{
		0: {View: "v0-tv", Device: "tv", WatchedMs: 30_000, FurthestMs: 30_000, PositionMs: 30_000, LastSeen: vt0.Add(30 * time.Second)},
		1: {View: "v1-phone", Device: "phone", WatchedMs: 25_000, FurthestMs: 50_000, PositionMs: 50_000, LastSeen: vt0.Add(50 * time.Second)},
	}
	want := &viewing.Resume{Profile: "kids", Title: "tt-first-light", PositionMs: 50_000, At: vt0.Add(50 * time.Second), Device: "phone", View: "v1-phone",
		WatchedMs: 55_000, Seqs: map[int]string{0: viewing.PadSeq("103"), 1: viewing.PadSeq("1000")}, Open: open}
	got, err := s.Resume(ctx, member, "kids", "tt-first-light")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Resume = %+v, %v; want %+v", got, err, want)
	}
	// An offline upload from before: its time counts once, its position not.
	offline := viewing.Progress{Profile: "kids", Title: "tt-first-light", Device: "tablet", At: vt0.Add(-time.Hour), PositionMs: 5, WatchedMs: 600_000, Version: 4}
	for range 2 {
		if _, err := s.AddProgress(ctx, member, []viewing.Progress{offline}); err != nil {
			t.Fatal(err)
		}
	}
	want.WatchedMs, want.Version = 655_000, 4
	if got, _ := s.Resume(ctx, member, "kids", "tt-first-light"); !reflect.DeepEqual(got, want) {
		t.Errorf("after an older offline upload, twice: %+v, want %+v", got, want)
	}
	later := viewing.Progress{Profile: "kids", Title: "tt-first-light", Device: "tablet", At: vt0.Add(time.Hour), PositionMs: 70_000, WatchedMs: 60_000, Version: 6}
	if _, err := s.AddProgress(ctx, member, []viewing.Progress{later}); err != nil {
		t.Fatal(err)
	}
	want = &viewing.Resume{Profile: "kids", Title: "tt-first-light", PositionMs: 70_000, At: vt0.Add(time.Hour), Device: "tablet",
		WatchedMs: 715_000, Seqs: want.Seqs, Version: 6, Open: open}
	if got, _ := s.Resume(ctx, member, "kids", "tt-first-light"); !reflect.DeepEqual(got, want) {
		t.Errorf("after a newer offline upload: %+v, want %+v", got, want)
	}
	// A screen's record handled after that upload, though it was played
	// before it: its time counts, the newer position stays.
	if _, err := s.AddProgress(ctx, member, []viewing.Progress{online(0, "105", 99_000, 7_000, "tv", 30*time.Minute)}); err != nil {
		t.Fatal(err)
	}
	want.WatchedMs, want.Seqs[0] = 722_000, viewing.PadSeq("105")
	want.Open[0] = viewing.Totals{View: "v0-tv", Device: "tv", WatchedMs: 37_000, FurthestMs: 99_000, PositionMs: 99_000, LastSeen: vt0.Add(30 * time.Minute)}
	if got, _ := s.Resume(ctx, member, "kids", "tt-first-light"); !reflect.DeepEqual(got, want) {
		t.Errorf("after an older screen record: %+v, want %+v", got, want)
	}
	if got, err := s.Resume(ctx, member, "", "tt-first-light"); err != nil || got != nil {
		t.Errorf("Resume(default profile) = %+v, %v; want none: profiles are apart", got, err)
	}
	bad := []viewing.Progress{online(0, "200", 1, 1, "tv", 0), online(0, "199", 1, 1, "tv", 0)}
	if _, err := s.AddProgress(ctx, member, bad); err == nil {
		t.Errorf("AddProgress(a slot's records out of order) = nil, want an error")
	}
}

// testProgressClosesViews: a view's running totals sum its reports once
// each, keep the furthest position through a seek backwards, and close
// once: at its stop, when another view of the title takes its slot without
// its end seen (expired), or by CloseView.
func testProgressClosesViews(t *testing.T, s ViewStore) {
	member := streamID(t)
	ctx := t.Context()
	beat := func(view, seq string, pos int64, at time.Duration) viewing.Progress {
		return viewing.Progress{Title: "tt-low-tide", Device: "tv", View: view, Started: vt0, At: vt0.Add(at), PositionMs: pos, WatchedMs: 30_000, Slot: 2, Seq: viewing.PadSeq(seq)}
	}
	add := func(ps ...viewing.Progress) []viewing.Totals {
		t.Helper()
		closed, err := s.AddProgress(ctx, member, ps)
		if err != nil {
			t.Fatal(err)
		}
		return closed
	}
	if c := add(beat("v2-a", "10", 600_000, 30*time.Second), beat("v2-a", "11", 30_000, time.Minute)); c != nil {
		t.Fatalf("heartbeats closed %+v", c)
	}
	stop := beat("v2-a", "12", 40_000, 70*time.Second)
	stop.WatchedMs, stop.End = 10_000, viewing.Stopped
	closed := add(beat("v2-a", "11", 30_000, time.Minute), stop) // a redelivery, then the stop
	want := viewing.Totals{View: "v2-a", Device: "tv", Started: vt0, Ended: viewing.Stopped, LastSeen: vt0.Add(70 * time.Second), PositionMs: 40_000, FurthestMs: 600_000, WatchedMs: 70_000}
	if len(closed) != 1 || closed[0] != want {
		t.Fatalf("the stop closed %+v, want %+v", closed, want)
	}
	// The totals stay open until CloseView: delivered again, the stop gives
	// them again (so a history entry whose recording failed is not lost).
	if c := add(stop); len(c) != 1 || c[0] != want {
		t.Errorf("the stop delivered again gave %+v, want %+v", c, want)
	}
	open := want
	open.Ended = ""
	if tot, err := s.OpenTotals(ctx, member, "", "tt-low-tide", 2, "v2-a"); err != nil || tot == nil || *tot != open {
		t.Errorf("OpenTotals = %+v, %v; want %+v", tot, err, open)
	}
	if tot, err := s.OpenTotals(ctx, member, "", "tt-low-tide", 2, "v2-z"); err != nil || tot != nil {
		t.Errorf("OpenTotals(another view) = %+v, %v; want nil", tot, err)
	}
	if tot, err := s.CloseView(ctx, member, "", "tt-low-tide", 2, "v2-a", viewing.Stopped); err != nil || tot == nil || *tot != want {
		t.Errorf("CloseView = %+v, %v; want %+v", tot, err, want)
	}
	if c := add(stop); c != nil {
		t.Errorf("the stop delivered after CloseView gave %+v", c)
	}
	if got, _ := s.Resume(ctx, member, "", "tt-low-tide"); got == nil || len(got.Open) != 0 || got.WatchedMs != 70_000 {
		t.Errorf("resume point after the stop = %+v", got)
	}
	// The slot's next view of the title, and the one after it, with no end
	// seen between them: the second closes the first, as expired.
	add(beat("v2-b", "20", 50_000, 2*time.Minute))
	closed = add(beat("v2-c", "30", 60_000, 3*time.Minute))
	if len(closed) != 1 || closed[0].View != "v2-b" || closed[0].Ended != viewing.Expired || closed[0].WatchedMs != 30_000 {
		t.Errorf("the next view closed %+v, want v2-b expired", closed)
	}
	// CloseView: once, and only the view that is open.
	if tot, err := s.CloseView(ctx, member, "", "tt-low-tide", 2, "v2-b", viewing.EndedByMember); err != nil || tot != nil {
		t.Errorf("CloseView(a closed view) = %+v, %v; want nil", tot, err)
	}
	tot, err := s.CloseView(ctx, member, "", "tt-low-tide", 2, "v2-c", viewing.EndedByMember)
	if err != nil || tot == nil || tot.View != "v2-c" || tot.Ended != viewing.EndedByMember || tot.PositionMs != 60_000 {
		t.Errorf("CloseView(v2-c) = %+v, %v", tot, err)
	}
	if tot, err := s.CloseView(ctx, member, "", "tt-low-tide", 2, "v2-c", viewing.EndedByMember); err != nil || tot != nil {
		t.Errorf("CloseView twice = %+v, %v; want nil", tot, err)
	}
	if tot, err := s.CloseView(ctx, member, "", "tt-never", 0, "v0-x", viewing.Expired); err != nil || tot != nil {
		t.Errorf("CloseView(no resume point) = %+v, %v; want nil", tot, err)
	}
}
