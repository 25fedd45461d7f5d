package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/dlicense/dlicense/domain/licensing"
)

// RunHolders runs the contract of the title holders index: a holder
// recorded once however often it is added, every holder of a title listed
// exactly once a page at a time, a listing resumed from any cursor it gave,
// titles apart.
func RunHolders(t *testing.T, newStore func(t *testing.T) licensing.HolderStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, s licensing.HolderStore)
	}{
		{"EveryHolderOnce", testEveryHolderOnce},
		{"ResumeFromACursor", testHoldersResume},
		{"TitlesApart", testHolderTitlesApart},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
	}
}

// holdersOf adds n holders of title (each twice, in two calls) and returns
// them sorted.
func holdersOf(t *testing.T, s licensing.HolderStore, title string, n int) []string {
	t.Helper()
	var hs []licensing.Holder
	var members []string
	for i := range n {
		m := fmt.Sprintf("m%04d", i)
		members = append(members, m)
		hs = append(hs, licensing.Holder{Title: title, Member: m}, licensing.Holder{Title: title, Member: m})
	}
	for _, half := range [][]licensing.Holder{hs[:len(hs)/2], hs} {
		if err := s.AddHolders(context.Background(), half); err != nil {
			t.Fatalf("AddHolders(%d) = %v", len(half), err)
		}
	}
	return members
}

// listHolders lists title's holders from after, and the cursors it got.
func listHolders(t *testing.T, s licensing.HolderStore, title, after string) (members, cursors []string) {
	t.Helper()
	err := s.Holders(context.Background(), title, after, func(page []string, next string) error {
		members = append(members, page...)
		cursors = append(cursors, next)
		return nil
	})
	if err != nil {
		t.Fatalf("Holders(%s, %q) = %v", title, after, err)
	}
	return members, cursors
}

func testEveryHolderOnce(t *testing.T, s licensing.HolderStore) {
	title := "t-" + streamID(t)[:40]
	want := holdersOf(t, s, title, 250) // several pages
	got, cursors := listHolders(t, s, title, "")
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("Holders listed %d members, want the %d added, each once", len(got), len(want))
	}
	if len(cursors) < 2 || cursors[len(cursors)-1] != licensing.HoldersDone {
		t.Errorf("Holders gave cursors %v; want several pages, the last %q", cursors, licensing.HoldersDone)
	}
	if got, _ := listHolders(t, s, title, licensing.HoldersDone); len(got) != 0 {
		t.Errorf("Holders(after done) = %v, want nothing", got)
	}
	if got, cursors := listHolders(t, s, "t-nobody-"+streamID(t)[:30], ""); len(got) != 0 || len(cursors) > 1 || len(cursors) == 1 && cursors[0] != licensing.HoldersDone {
		t.Errorf("Holders(a title nobody holds) = %v, cursors %v; want nothing", got, cursors)
	}
}

func testHoldersResume(t *testing.T, s licensing.HolderStore) {
	title := "t-" + streamID(t)[:40]
	want := holdersOf(t, s, title, 230)
	// Stop after the first page, as a withdrawal job stopped anywhere does,
	// and resume from the cursor it saved.
	stop := errors.New("stopped")
	var first []string
	cursor := ""
	err := s.Holders(context.Background(), title, "", func(page []string, next string) error {
		first, cursor = page, next
		return stop
	})
	if !errors.Is(err, stop) || len(first) == 0 || cursor == "" || cursor == licensing.HoldersDone {
		t.Fatalf("Holders(stopped after a page) = %v, %d members, cursor %q", err, len(first), cursor)
	}
	rest, _ := listHolders(t, s, title, cursor)
	got := append(slices.Clone(first), rest...)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("a page and the rest from its cursor list %d members, want %d, each once", len(got), len(want))
	}
	if err := s.Holders(context.Background(), title, "not a cursor", func([]string, string) error { return nil }); err == nil {
		t.Errorf("Holders(a cursor it never gave) = nil error")
	}
}

func testHolderTitlesApart(t *testing.T, s licensing.HolderStore) {
	id := streamID(t)[:40]
	a, b := "ta-"+id, "tb-"+id
	holdersOf(t, s, a, 3)
	if err := s.AddHolders(context.Background(), []licensing.Holder{{Title: b, Member: "only"}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := listHolders(t, s, b, ""); !slices.Equal(got, []string{"only"}) {
		t.Errorf("Holders(%s) = %v, want [only]", b, got)
	}
}
