package storetest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/viewing"
)

// RunHistory runs the contract of history stores: entries opened and
// closed once each however often a change is delivered, engagement counted
// once per change, pages newest first that cover a long history exactly,
// the recently watched row, and members kept apart.
func RunHistory(t *testing.T, newStore func(t *testing.T) viewing.HistoryStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, s viewing.HistoryStore)
	}{
		{"OpenAndCloseOnce", testOpenAndCloseOnce},
		{"PagesCoverTheHistory", testPagesCoverTheHistory},
		{"Row", testRow},
		{"MembersApart", testHistoryMembersApart},
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

func testOpenAndCloseOnce(t *testing.T, s viewing.HistoryStore) {
	ctx := t.Context()
	member := streamID(t)
	title := "tt-" + member
	day := viewing.Day(vt0)
	a := historyEntry(title, vt0, "v0-a")
	b := historyEntry(title, vt0.Add(time.Minute), "v1-b")
	c := historyEntry(title, vt0.Add(2*time.Minute), "v2-c")
	batch := []viewing.HistoryMemberChange{open(member, a), open(member, b), closeOf(member, a, 600_000, true)}
	for range 2 { // the same batch delivered twice
		if err := s.RecordHistory(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	// b's close, twice in one batch; c closes without its start ever seen.
	if err := s.RecordHistory(ctx, []viewing.HistoryMemberChange{closeOf(member, b, 60_000, false), closeOf(member, b, 60_000, false), closeOf(member, c, 30_000, false)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Engagement(ctx, title, day)
	if want := (viewing.Engagement{Views: 3, WatchedMs: 690_000, Completions: 1}); err != nil || got != want {
		t.Errorf("Engagement = %+v, %v; want %+v", got, err, want)
	}
	all, err := s.DayEngagement(ctx, day)
	if err != nil || all[title] != got {
		t.Errorf("DayEngagement[%s] = %+v, %v; want %+v", title, all[title], err, got)
	}
	entries, more, err := s.History(ctx, member, "", 10)
	if err != nil || more || len(entries) != 3 {
		t.Fatalf("History = %d entries, more %v, %v; want 3", len(entries), more, err)
	}
	want := []viewing.HistoryEntry{closeOf(member, c, 30_000, false).Entry, closeOf(member, b, 60_000, false).Entry, closeOf(member, a, 600_000, true).Entry}
	if !reflect.DeepEqual(entries, want) {
		t.Errorf("History =\n%+v\nwant\n%+v", entries, want)
	}
	// An open delivered after its close changes nothing.
	if err := s.RecordHistory(ctx, []viewing.HistoryMemberChange{open(member, a)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Engagement(ctx, title, day); got.Views != 3 {
		t.Errorf("a late open counted again: %+v", got)
	}
	if entries, _, _ := s.History(ctx, member, "", 10); entries[2].Ended != viewing.Stopped {
		t.Errorf("a late open reopened the entry: %+v", entries[2])
	}
}

func testPagesCoverTheHistory(t *testing.T, s viewing.HistoryStore) {
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
		if err := s.RecordHistory(ctx, batch[from:min(from+250, n)]); err != nil {
			t.Fatal(err)
		}
	}
	var got []viewing.HistoryEntry
	after, pages := "", 0
	for {
		page, more, err := s.History(ctx, member, after, 37)
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

func testRow(t *testing.T, s viewing.HistoryStore) {
	ctx := t.Context()
	member := streamID(t)
	at := func(m int) time.Time { return vt0.Add(time.Duration(m) * time.Minute) }
	// Watched in the order a, b, c, a, b, told in two batches.
	if err := s.WatchRow(ctx, member, "kids", []viewing.HistoryEntry{historyEntry("a", at(0), "v0-1"), historyEntry("b", at(1), "v0-2"), historyEntry("c", at(2), "v0-3")}); err != nil {
		t.Fatal(err)
	}
	end := historyEntry("b", at(4), "v0-5")
	end.LastSeen, end.PositionMs, end.FurthestMs = at(30), 1_500_000, 1_600_000
	if err := s.WatchRow(ctx, member, "kids", []viewing.HistoryEntry{historyEntry("a", at(3), "v0-4"), historyEntry("b", at(4), "v0-5"), end}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Row(ctx, member, "kids")
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
	if r, err := s.Row(ctx, member, ""); err != nil || len(r.Entries) != 0 {
		t.Errorf("Row(default profile) = %+v, %v; want empty: profiles are apart", r, err)
	}
}

func testHistoryMembersApart(t *testing.T, s viewing.HistoryStore) {
	ctx := t.Context()
	alice, bob := streamID(t), streamID(t)
	e := historyEntry("tt-"+alice, vt0, "v0-a")
	if err := s.RecordHistory(ctx, []viewing.HistoryMemberChange{open(alice, e)}); err != nil {
		t.Fatal(err)
	}
	if err := s.WatchRow(ctx, alice, "", []viewing.HistoryEntry{e}); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.History(ctx, bob, "", 10); err != nil || len(got) != 0 {
		t.Errorf("bob's history = %+v, %v; want none", got, err)
	}
	if got, _, err := s.History(ctx, bob, e.Key(), 10); err != nil || len(got) != 0 {
		t.Errorf("bob's history after alice's key = %+v, %v; want none", got, err)
	}
	if r, err := s.Row(ctx, bob, ""); err != nil || len(r.Entries) != 0 {
		t.Errorf("bob's row = %+v, %v; want empty", r, err)
	}
}
