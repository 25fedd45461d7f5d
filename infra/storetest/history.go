package storetest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/viewing"
)

// HistoryStores are what a history store's suite runs on: the history read
// models, and the screens and resume points an erasure ends with them
// (another store, which may keep them elsewhere).
type HistoryStores struct {
	History viewing.HistoryStore
	Views   ViewStore
}

// RunHistory runs the contract of history stores: entries opened and
// closed once each however often a change is delivered, engagement counted
// once per change, pages newest first that cover a long history exactly,
// the recently watched row, members kept apart, and erasure.
func RunHistory(t *testing.T, newStore func(t *testing.T) HistoryStores) {
	tests := []struct {
		name string
		run  func(t *testing.T, s HistoryStores)
	}{
		{"OpenAndCloseOnce", testOpenAndCloseOnce},
		{"PagesCoverTheHistory", testPagesCoverTheHistory},
		{"Row", testRow},
		{"MembersApart", testHistoryMembersApart},
		{"Erasure", testErasure},
		{"LostErasureStartsAgain", testLostErasureStartsAgain},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
	}
}

func historyEntry(title string, started time.Time, view string) viewing.HistoryEntry {
	return viewing.HistoryEntry{View: view, Title: title, Device: "tv", Started: started, LastSeen: started}
}

func open(member string, e viewing.HistoryEntry) viewing.HistoryMemberChange {
	return viewing.HistoryMemberChange{Member: member, HistoryChange: viewing.HistoryChange{Entry: e, Count: viewing.StartEngagement(e)}}
}

func closeOf(member string, e viewing.HistoryEntry, watched int64, completed bool) viewing.HistoryMemberChange {
	e.WatchedMs, e.PositionMs, e.FurthestMs, e.Ended = watched, watched, watched, viewing.Stopped
	e.LastSeen = e.Started.Add(time.Duration(watched) * time.Millisecond)
	c := viewing.Engagement{WatchedMs: watched}
	if completed {
		c.Completions = 1
	}
	return viewing.HistoryMemberChange{Member: member, HistoryChange: viewing.HistoryChange{Entry: e, Closed: true, Count: c}}
}

func testOpenAndCloseOnce(t *testing.T, s HistoryStores) {
	ctx := t.Context()
	member := streamID(t)
	title := "tt-" + member
	day := viewing.Day(vt0)
	a := historyEntry(title, vt0, "v0-a")
	b := historyEntry(title, vt0.Add(time.Minute), "v1-b")
	c := historyEntry(title, vt0.Add(2*time.Minute), "v2-c")
	batch := []viewing.HistoryMemberChange{open(member, a), open(member, b), closeOf(member, a, 600_000, true)}
	for range 2 { // the same batch delivered twice
		if err := s.History.RecordHistory(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	// b's close, twice in one batch; c closes without its start ever seen.
	if err := s.History.RecordHistory(ctx, []viewing.HistoryMemberChange{closeOf(member, b, 60_000, false), closeOf(member, b, 60_000, false), closeOf(member, c, 30_000, false)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.History.Engagement(ctx, title, day)
	if want := (viewing.Engagement{Views: 3, WatchedMs: 690_000, Completions: 1}); err != nil || got != want {
		t.Errorf("Engagement = %+v, %v; want %+v", got, err, want)
	}
	all, err := s.History.DayEngagement(ctx, day)
	if err != nil || all[title] != got {
		t.Errorf("DayEngagement[%s] = %+v, %v; want %+v", title, all[title], err, got)
	}
	entries, more, err := s.History.History(ctx, member, "", 10)
	if err != nil || more || len(entries) != 3 {
		t.Fatalf("History = %d entries, more %v, %v; want 3", len(entries), more, err)
	}
	want := []viewing.HistoryEntry{closeOf(member, c, 30_000, false).Entry, closeOf(member, b, 60_000, false).Entry, closeOf(member, a, 600_000, true).Entry}
	if !reflect.DeepEqual(entries, want) {
		t.Errorf("History =\n%+v\nwant\n%+v", entries, want)
	}
	// An open delivered after its close changes nothing.
	if err := s.History.RecordHistory(ctx, []viewing.HistoryMemberChange{open(member, a)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.History.Engagement(ctx, title, day); got.Views != 3 {
		t.Errorf("a late open counted again: %+v", got)
	}
	if entries, _, _ := s.History.History(ctx, member, "", 10); entries[2].Ended != viewing.Stopped {
		t.Errorf("a late open reopened the entry: %+v", entries[2])
	}
}

func testPagesCoverTheHistory(t *testing.T, s HistoryStores) {
	ctx := t.Context()
	member := streamID(t)
	const n = 1000
	var batch []viewing.HistoryMemberChange
	for i := range n {
		// Views of a few titles, some starting in the same millisecond.
		e := historyEntry(fmt.Sprintf("tt-%s-%d", member, i%7), vt0.Add(time.Duration(i/2)*time.Minute), viewing.NewViewID(i%4, fmt.Sprintf("%05d", i)))
		batch = append(batch, open(member, e))
	}
	for from := 0; from < n; from += 250 {
		if err := s.History.RecordHistory(ctx, batch[from:min(from+250, n)]); err != nil {
			t.Fatal(err)
		}
	}
	var got []viewing.HistoryEntry
	after, pages := "", 0
	for {
		page, more, err := s.History.History(ctx, member, after, 37)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(page) > 37 || more && len(page) != 37 {
			t.Fatalf("page %d: %d entries, more %v", pages, len(page), more)
		}
		got = append(got, page...)
		if !more {
			break
		}
		after = page[len(page)-1].Key()
	}
	if len(got) != n || pages != (n+36)/37 {
		t.Fatalf("paged %d entries in %d pages, want %d in %d", len(got), pages, n, (n+36)/37)
	}
	seen := map[string]bool{}
	for i, e := range got {
		if seen[e.View] {
			t.Fatalf("%s twice", e.View)
		}
		seen[e.View] = true
		if i > 0 && got[i-1].Key() <= e.Key() {
			t.Fatalf("entry %d (%s) is not older than the one before (%s)", i, e.Key(), got[i-1].Key())
		}
	}
}

func testRow(t *testing.T, s HistoryStores) {
	ctx := t.Context()
	member := streamID(t)
	at := func(m int) time.Time { return vt0.Add(time.Duration(m) * time.Minute) }
	// Watched in the order a, b, c, a, b, told in two batches.
	if err := s.History.WatchRow(ctx, member, "kids", []viewing.HistoryEntry{historyEntry("a", at(0), "v0-1"), historyEntry("b", at(1), "v0-2"), historyEntry("c", at(2), "v0-3")}); err != nil {
		t.Fatal(err)
	}
	end := historyEntry("b", at(4), "v0-5")
	end.LastSeen, end.PositionMs, end.FurthestMs = at(30), 1_500_000, 1_600_000
	if err := s.History.WatchRow(ctx, member, "kids", []viewing.HistoryEntry{historyEntry("a", at(3), "v0-4"), historyEntry("b", at(4), "v0-5"), end}); err != nil {
		t.Fatal(err)
	}
	r, err := s.History.Row(ctx, member, "kids")
	if err != nil {
		t.Fatal(err)
	}
	want := []viewing.RowEntry{
		{Title: "b", View: "v0-5", Started: at(4), PositionMs: 1_500_000, FurthestMs: 1_600_000, At: at(30)},
		{Title: "a", View: "v0-4", Started: at(3), At: at(3)},
		{Title: "c", View: "v0-3", Started: at(2), At: at(2)},
	}
	if r.Profile != "kids" || !reflect.DeepEqual(r.Entries, want) {
		t.Errorf("Row = %+v\nwant %+v", r.Entries, want)
	}
	if r, err := s.History.Row(ctx, member, ""); err != nil || len(r.Entries) != 0 {
		t.Errorf("Row(default profile) = %+v, %v; want empty: profiles are apart", r, err)
	}
}

func testHistoryMembersApart(t *testing.T, s HistoryStores) {
	ctx := t.Context()
	alice, bob := streamID(t), streamID(t)
	e := historyEntry("tt-"+alice, vt0, "v0-a")
	if err := s.History.RecordHistory(ctx, []viewing.HistoryMemberChange{open(alice, e)}); err != nil {
		t.Fatal(err)
	}
	if err := s.History.WatchRow(ctx, alice, "", []viewing.HistoryEntry{e}); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.History.History(ctx, bob, "", 10); err != nil || len(got) != 0 {
		t.Errorf("bob's history = %+v, %v; want none", got, err)
	}
	if got, _, err := s.History.History(ctx, bob, e.Key(), 10); err != nil || len(got) != 0 {
		t.Errorf("bob's history after alice's key = %+v, %v; want none", got, err)
	}
	if r, err := s.History.Row(ctx, bob, ""); err != nil || len(r.Entries) != 0 {
		t.Errorf("bob's row = %+v, %v; want empty", r, err)
	}
}

// testErasure: an erasure ends the screens and empties the rows at once,
// refuses history reads and a second erasure while under way, and once
// carried out leaves nothing of the member's views started before it (not
// even what a record handled in between wrote), keeps the engagement
// counts and other members' data, and lets views started after it count.
func testErasure(t *testing.T, s HistoryStores) {
	ctx := t.Context()
	alice, bob := streamID(t), streamID(t)
	title := "tt-" + alice
	a := historyEntry(title, vt0, "v0-a")
	mustRecord := func(cs ...viewing.HistoryMemberChange) {
		t.Helper()
		if err := s.History.RecordHistory(ctx, cs); err != nil {
			t.Fatal(err)
		}
	}
	mustRecord(open(alice, a), closeOf(alice, a, 60_000, false), open(bob, historyEntry(title, vt0, "v0-b")))
	if err := s.History.WatchRow(ctx, alice, "", []viewing.HistoryEntry{a}); err != nil {
		t.Fatal(err)
	}
	beat := viewing.Progress{Title: title, Device: "tv", View: "v1-c", Started: vt0, At: vt0.Add(time.Minute), PositionMs: 60_000, WatchedMs: 60_000, Slot: 1, Seq: viewing.PadSeq("7")}
	if _, err := s.Views.AddProgress(ctx, alice, []viewing.Progress{beat}); err != nil {
		t.Fatal(err)
	}
	mustClaim(t, s.Views, alice, viewing.Claim{View: fixtureView(1, "tv")}, vt0)

	at := vt0.Add(time.Hour)
	if err := s.History.BeginErasure(ctx, alice, at); err != nil {
		t.Fatal(err)
	}
	if err := s.History.BeginErasure(ctx, alice, at.Add(time.Second)); err != viewing.ErrErasurePending {
		t.Errorf("a second erasure under way = %v, want ErrErasurePending", err)
	}
	if _, _, err := s.History.History(ctx, alice, "", 10); err != viewing.ErrErasurePending {
		t.Errorf("History under way = %v, want ErrErasurePending", err)
	}
	if r, err := s.History.Row(ctx, alice, ""); err != nil || len(r.Entries) != 0 {
		t.Errorf("Row under way = %+v, %v; want empty", r, err)
	}
	if views, err := s.Views.Views(ctx, alice); err != nil || len(views) != 0 {
		t.Errorf("screens under way = %+v, %v; want none", views, err)
	}
	// A record handled between the erasure's start and its carrying out.
	b := historyEntry(title, vt0.Add(time.Minute), "v2-late")
	mustRecord(open(alice, b))

	if err := s.History.EraseViewing(ctx, alice, at); err != nil {
		t.Fatal(err)
	}
	if err := s.History.EraseViewing(ctx, alice, at); err != nil {
		t.Fatalf("EraseViewing again = %v, want nil", err)
	}
	if got, more, err := s.History.History(ctx, alice, "", 10); err != nil || len(got) != 0 || more {
		t.Errorf("History after the erasure = %+v, %v, %v; want nothing", got, more, err)
	}
	if r, err := s.Views.Resume(ctx, alice, "", title); err != nil || r != nil {
		t.Errorf("Resume after the erasure = %+v, %v; want none", r, err)
	}
	if e, err := s.History.Engagement(ctx, title, viewing.Day(vt0)); err != nil || e.Views != 3 || e.WatchedMs != 60_000 {
		t.Errorf("Engagement after the erasure = %+v, %v; want the counts kept", e, err)
	}
	if got, _, err := s.History.History(ctx, bob, "", 10); err != nil || len(got) != 1 {
		t.Errorf("bob's history = %+v, %v; want his entry", got, err)
	}
	// Views started after the erasure count again; so may another erasure.
	c := historyEntry(title, at.Add(time.Minute), "v0-new")
	mustRecord(open(alice, c))
	if got, _, err := s.History.History(ctx, alice, "", 10); err != nil || len(got) != 1 || got[0].View != "v0-new" {
		t.Errorf("History after a new view = %+v, %v", got, err)
	}
	if err := s.History.BeginErasure(ctx, alice, at.Add(time.Hour)); err != nil {
		t.Errorf("a new erasure after one done = %v", err)
	}
}

// testLostErasureStartsAgain: an erasure under way for longer than
// viewing.StaleErasure was lost (nothing will carry it out): a new request
// starts it again, as of the new request; a younger one is still refused.
func testLostErasureStartsAgain(t *testing.T, s HistoryStores) {
	ctx := t.Context()
	alice := streamID(t)
	at := vt0.Add(time.Hour)
	if err := s.History.BeginErasure(ctx, alice, at); err != nil {
		t.Fatal(err)
	}
	if err := s.History.BeginErasure(ctx, alice, at.Add(viewing.StaleErasure)); err != viewing.ErrErasurePending {
		t.Errorf("a new erasure %v after the first = %v, want ErrErasurePending", viewing.StaleErasure, err)
	}
	again := at.Add(viewing.StaleErasure + time.Second)
	if err := s.History.BeginErasure(ctx, alice, again); err != nil {
		t.Fatalf("a new erasure past StaleErasure = %v, want it started again", err)
	}
	held, err := s.History.Erasures(ctx, []string{alice})
	if err != nil || !held[alice].Equal(again) {
		t.Errorf("erasure under way = %v, %v; want the one started again, at %v", held[alice], err, again)
	}
	if err := s.History.BeginErasure(ctx, alice, again.Add(time.Minute)); err != viewing.ErrErasurePending {
		t.Errorf("a third erasure a minute after the second = %v, want ErrErasurePending", err)
	}
}
