package viewing

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
	"pgregory.net/rapid"
)

func TestHistoryKeysSortByStartNewestLast(t *testing.T) {
	var keys []string
	var want []string
	for i := range 50 {
		started := t0.Add(time.Duration(i*37%50) * time.Minute)
		view := NewViewID(i%4, fmt.Sprintf("r%03d", i))
		k := HistoryKey(started, view)
		if !ValidHistoryKey(k) {
			t.Fatalf("HistoryKey(%v, %s) = %q, not valid", started, view, k)
		}
		keys = append(keys, k)
		want = append(want, fmt.Sprintf("%d/%s", started.UnixMilli(), view))
	}
	sort.Strings(keys)
	sort.Strings(want)
	for i, k := range keys {
		parts := strings.SplitN(strings.TrimPrefix(k, "h#"), "#", 2)
		ms := strings.TrimLeft(parts[0], "0")
		if got := ms + "/" + parts[1]; got != want[i] {
			t.Fatalf("key %d in order is %s, want %s", i, got, want[i])
		}
	}
	for _, bad := range []string{"", "h#", "h#123#v0-x", "h#00000000000x1#v0-x", "h#0000000000001#nope", "r#0000000000001#v0-x", "h#0000000000001-v0-x"} {
		if ValidHistoryKey(bad) {
			t.Errorf("ValidHistoryKey(%q) = true", bad)
		}
	}
}

func TestCursorsAreSealedAndBoundToTheirMember(t *testing.T) {
	k, err := NewCursorKey([]byte("a secret every instance shares"), "history cursors")
	if err != nil {
		t.Fatal(err)
	}
	same, _ := NewCursorKey([]byte("a secret every instance shares"), "history cursors")
	other, _ := NewCursorKey([]byte("another deployment's secret!!"), "history cursors")
	if _, err := NewCursorKey([]byte("short"), "x"); err == nil {
		t.Error("NewCursorKey(a 5-byte secret) = nil error")
	}
	key := HistoryKey(t0, "v1-abc")
	c := k.EncodeCursor("m-1", key)
	if got, err := same.DecodeCursor("m-1", c); err != nil || got != key {
		t.Fatalf("DecodeCursor(own, another instance's key of the same secret) = %q, %v; want %q", got, err, key)
	}
	if c2 := k.EncodeCursor("m-1", key); c2 == c {
		t.Error("two cursors of the same key are equal: the nonce is not fresh")
	}
	// It reveals nothing: neither the view, nor the start, nor the member.
	raw, _ := base64.RawURLEncoding.DecodeString(c)
	for _, clear := range []string{"v1-abc", fmt.Sprint(t0.UnixMilli()), "h#", "m-1"} {
		if strings.Contains(string(raw), clear) {
			t.Errorf("the cursor holds %q in clear", clear)
		}
	}
	if _, err := k.DecodeCursor("m-2", c); err != ErrBadCursor {
		t.Errorf("another member's cursor: %v, want ErrBadCursor", err)
	}
	if _, err := other.DecodeCursor("m-1", c); err != ErrBadCursor {
		t.Errorf("a cursor of another key: %v, want ErrBadCursor", err)
	}
	altered := append([]byte(nil), raw...)
	altered[len(altered)-1] ^= 1
	old := base64.RawURLEncoding.EncodeToString(append([]byte{1}, raw[1:]...))
	for _, bad := range []string{"", "!!!", c + "=", "AAAA", base64.RawURLEncoding.EncodeToString(altered), old, strings.Repeat("A", 400)} {
		if _, err := k.DecodeCursor("m-1", bad); err != ErrBadCursor {
			t.Errorf("DecodeCursor(%q) = %v, want ErrBadCursor", bad, err)
		}
	}
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.String().Draw(t, "cursor")
		if k2, err := k.DecodeCursor("m-1", s); err == nil && !ValidHistoryKey(k2) {
			t.Fatalf("DecodeCursor(%q) = %q, a key no history holds", s, k2)
		}
	})
}

func TestTotalsAndClose(t *testing.T) {
	v := &View{ID: "v0-a", Title: "tt-first-light", Device: "tv", Profile: "kid", Started: t0}
	if e := EntryOf(v); e.Title != "tt-first-light" || e.Device != "tv" || e.Profile != "kid" || !e.Started.Equal(t0) || e.Ended != "" {
		t.Errorf("EntryOf = %+v", e)
	}
	var r Resume
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	beat := func(seq string, s int, pos int64) Progress {
		return Progress{Title: "tt-first-light", Profile: "kid", View: "v0-a", Device: "tv", Started: t0, At: at(s), PositionMs: pos, WatchedMs: 30_000, Seq: PadSeq(seq)}
	}
	for _, p := range []Progress{beat("1", 30, 30_000), beat("2", 60, 900_000), beat("2", 60, 900_000), beat("3", 90, 40_000)} {
		if _, closed := r.Apply(p); closed != nil {
			t.Fatalf("a heartbeat closed %+v", closed)
		}
	}
	stop := beat("4", 100, 45_000)
	stop.WatchedMs, stop.End = 10_000, Stopped
	_, closed := r.Apply(stop)
	if len(closed) != 1 || len(r.Open) != 1 {
		t.Fatalf("the stop closed %+v, left %+v open", closed, r.Open)
	}
	// Delivered again while its totals are open, the stop gives them again;
	// once they are closed, nothing.
	if _, again := r.Apply(stop); len(again) != 1 || again[0] != closed[0] {
		t.Errorf("the stop again gave %+v, want %+v", again, closed)
	}
	if tot, ok := r.Close(0, "v0-a", Stopped); !ok || tot != closed[0] {
		t.Errorf("Close = %+v, %v; want %+v", tot, ok, closed[0])
	}
	if _, again := r.Apply(stop); again != nil {
		t.Errorf("the stop after Close gave %+v", again)
	}
	got := Closed("tt-first-light", "kid", closed[0])
	want := HistoryEntry{View: "v0-a", Profile: "kid", Title: "tt-first-light", Device: "tv", Started: t0, LastSeen: at(100), PositionMs: 45_000, FurthestMs: 900_000, WatchedMs: 100_000, Ended: Stopped}
	if got != want {
		t.Errorf("closed entry = %+v\nwant %+v", got, want)
	}
	// A new view in the slot whose former view of this title was never
	// seen to end closes it as expired.
	r.Apply(beat("5", 200, 1_000))
	next := Progress{Title: "tt-first-light", Profile: "kid", View: "v0-b", Device: "phone", Started: at(300), At: at(330), PositionMs: 5_000, WatchedMs: 30_000, Seq: PadSeq("6")}
	if _, closed := r.Apply(next); len(closed) != 1 || closed[0].View != "v0-a" || closed[0].Ended != Expired {
		t.Errorf("the next view closed %+v, want v0-a expired", closed)
	}
	if tot, ok := r.Close(0, "v0-a", EndedByMember); ok {
		t.Errorf("closing a view closed already gave %+v", tot)
	}
	if tot, ok := r.Close(0, "v0-b", EndedByMember); !ok || tot.WatchedMs != 30_000 || tot.Ended != EndedByMember {
		t.Errorf("Close(v0-b) = %+v, %v", tot, ok)
	}
	rules := licensing.ViewingRules{Completion: 0.95}
	if Completed(got.FurthestMs, 0, rules) || !Completed(950_000, 1000*time.Second, rules) || Completed(949_999, 1000*time.Second, rules) {
		t.Error("Completed: wrong at the completion share")
	}
	if en := EndEngagement(got, 900*time.Second, rules); en != (Engagement{WatchedMs: 100_000, Completions: 1}) {
		t.Errorf("EndEngagement = %+v", en)
	}
}

func entry(title string, startMin int, view string) HistoryEntry {
	s := t0.Add(time.Duration(startMin) * time.Minute)
	return HistoryEntry{Title: title, View: view, Started: s, LastSeen: s}
}

func titles(r Row) string {
	var out []string
	for _, e := range r.Entries {
		out = append(out, e.Title)
	}
	return strings.Join(out, ",")
}

func TestRowMovesATitleToTheFront(t *testing.T) {
	var r Row
	for i, e := range []HistoryEntry{
		entry("a", 0, "v0-1"), entry("b", 1, "v0-2"), entry("c", 2, "v1-3"), entry("a", 3, "v0-4"), entry("b", 4, "v1-5"),
	} {
		if !r.Watch(e) {
			t.Fatalf("view %d changed nothing", i)
		}
	}
	if got := titles(r); got != "b,a,c" {
		t.Fatalf("row after a b c a b = %s, want b,a,c", got)
	}
	// A late record of an older view of a changes nothing.
	if r.Watch(entry("a", 0, "v0-1")) || titles(r) != "b,a,c" {
		t.Errorf("an older view moved the row: %s", titles(r))
	}
	// The end of a's latest view updates its figures in place.
	end := entry("a", 3, "v0-4")
	end.LastSeen, end.PositionMs, end.FurthestMs = t0.Add(40*time.Minute), 2_000_000, 2_100_000
	if !r.Watch(end) || titles(r) != "b,a,c" || r.Entries[1].PositionMs != 2_000_000 || r.Entries[1].FurthestMs != 2_100_000 {
		t.Errorf("end of a's view: %+v", r.Entries)
	}
	if r.Watch(end) {
		t.Error("the same report twice changed the row")
	}
	// A stop in the millisecond of its start still moves the position.
	quick := entry("e", 50, "v3-7")
	r.Watch(quick)
	quick.PositionMs = 42_000
	if !r.Watch(quick) || r.Entries[0].PositionMs != 42_000 {
		t.Errorf("a stop in its start's millisecond: %+v", r.Entries[0])
	}
	r.Entries = r.Entries[1:]
	// A view that started earlier but is seen later goes where it started.
	if !r.Watch(entry("d", 2, "v2-6")) || titles(r) != "b,a,d,c" {
		t.Errorf("row = %s, want b,a,d,c", titles(r))
	}
}

func TestRowHoldsTheLatestTitles(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 120).Draw(t, "views")
		var r Row
		latest := map[string]int{} // title → latest start
		for i := range n {
			title := fmt.Sprintf("t%d", rapid.IntRange(0, 60).Draw(t, "title"))
			start := rapid.IntRange(0, 500).Draw(t, "start")
			r.Watch(entry(title, start, NewViewID(0, fmt.Sprintf("%04d", i))))
			if s, ok := latest[title]; !ok || start > s {
				latest[title] = start
			}
		}
		// Expected: titles by latest start, newest first, at most RowLength.
		type ts struct {
			title string
			start int
		}
		var all []ts
		for ti, s := range latest {
			all = append(all, ts{ti, s})
		}
		sort.Slice(all, func(i, j int) bool { return all[i].start > all[j].start })
		if len(r.Entries) > RowLength {
			t.Fatalf("row holds %d titles", len(r.Entries))
		}
		seen := map[string]bool{}
		for i, e := range r.Entries {
			if seen[e.Title] {
				t.Fatalf("%s twice in the row", e.Title)
			}
			seen[e.Title] = true
			if want := t0.Add(time.Duration(latest[e.Title]) * time.Minute); !e.Started.Equal(want) {
				t.Fatalf("%s at start %v, want its latest %v", e.Title, e.Started, want)
			}
			if i > 0 && e.Started.After(r.Entries[i-1].Started) {
				t.Fatalf("row out of order at %d", i)
			}
		}
		// Every title newer than the row's last one is in it.
		if len(r.Entries) > 0 {
			oldest := r.Entries[len(r.Entries)-1].Started
			for _, x := range all {
				if t0.Add(time.Duration(x.start)*time.Minute).After(oldest) && !seen[x.title] {
					t.Fatalf("%s (start %d) is missing from the row", x.title, x.start)
				}
			}
		}
		if want := min(len(latest), RowLength); len(r.Entries) != want {
			t.Fatalf("row holds %d titles, want %d", len(r.Entries), want)
		}
	})
}

func TestRank(t *testing.T) {
	got := Rank(map[string]Engagement{
		"a": {Views: 3, WatchedMs: 100}, "b": {Views: 1, WatchedMs: 500}, "c": {Views: 5, WatchedMs: 100}, "d": {Views: 5, WatchedMs: 100},
	}, 3)
	var order []string
	for _, r := range got {
		order = append(order, r.Title)
	}
	if strings.Join(order, ",") != "b,c,d" {
		t.Errorf("Rank = %v, want b,c,d", order)
	}
}

// TestRowHidesARemovedTitle: a title removed from the row leaves it; late
// records of its views started before the removal change nothing; a view
// started after brings it back; removing it again, or a title not in the
// row, still remembers the removal; a rebuild keeps it.
func TestRowHidesARemovedTitle(t *testing.T) {
	var r Row
	for _, e := range []HistoryEntry{entry("a", 0, "v0-1"), entry("b", 1, "v0-2"), entry("c", 2, "v1-3")} {
		r.Watch(e)
	}
	removal := t0.Add(10 * time.Minute)
	if !r.Hide("b", removal) || titles(r) != "c,a" {
		t.Fatalf("row after removing b = %s", titles(r))
	}
	late := entry("b", 1, "v0-2")
	late.PositionMs = 99_000
	if r.Watch(late) || r.Watch(entry("b", 9, "v2-9")) || titles(r) != "c,a" {
		t.Errorf("late records of b's views started before the removal: row %s", titles(r))
	}
	if r.Hide("b", removal) {
		t.Error("removing b again changed the row")
	}
	if !r.Hide("z", removal) || r.Hidden["z"] != removal {
		t.Error("removing a title not in the row remembers nothing")
	}
	if !r.Watch(entry("b", 11, "v2-10")) || titles(r) != "b,c,a" {
		t.Errorf("b watched again: row %s, want b,c,a", titles(r))
	}
	if _, ok := r.Hidden["b"]; ok {
		t.Error("b watched again is still hidden")
	}
	// A rebuild from the history keeps the removals it is given.
	var rebuilt Row
	for _, e := range []HistoryEntry{entry("a", 0, "v0-1"), entry("b", 1, "v0-2"), entry("c", 2, "v1-3"), entry("d", 12, "v1-11")} {
		rebuilt.Watch(e)
	}
	rebuilt.KeepHidden(map[string]time.Time{"b": removal, "d": removal})
	if titles(rebuilt) != "d,c,a" || len(rebuilt.Hidden) != 1 {
		t.Errorf("rebuilt row = %s hidden %v; want d (watched since) and c, a, with b hidden", titles(rebuilt), rebuilt.Hidden)
	}
	// At most MaxHidden removals are remembered, the oldest forgotten.
	for i := range MaxHidden + 5 {
		r.Hide(fmt.Sprintf("x%03d", i), removal.Add(time.Duration(i)*time.Second))
	}
	if _, ok := r.Hidden["z"]; len(r.Hidden) != MaxHidden || ok {
		t.Errorf("%d removals remembered, z among them: %v; want %d, the oldest forgotten", len(r.Hidden), ok, MaxHidden)
	}
}
