package local_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/viewing"
)

func TestHistoryEndToEnd(t *testing.T) {
	for _, store := range []string{"memory", "dynamo", "dynamo-regions"} {
		t.Run(store, func(t *testing.T) { watchedHistory(t, start(t, store)) })
	}
}

// watchedHistory: a member watches titles in the order a, b, c, a, b (each
// started, played and stopped), then reads the history a page at a time,
// the recently watched row, and the engagement; cursors and page sizes
// that are not the member's own are refused; another member sees nothing.
func watchedHistory(t *testing.T, e *env) {
	bob := e.token(t, "bob-history", "premium")
	order := []string{"tt-first-light", "tt-paper-moons", "tt-low-tide", "tt-first-light", "tt-paper-moons"}
	for i, title := range order {
		status, _, doc := e.call(t, "POST", "/v1/devices/tv/views", bob, fmt.Sprintf(`{"title_id":%q}`, title))
		if status != 201 {
			t.Fatalf("start %s = %d %v", title, status, doc)
		}
		view := viewID(doc)
		if status, _, doc := e.call(t, "POST", "/v1/devices/tv/views/"+view+"/heartbeat", bob, fmt.Sprintf(`{"position_ms":%d,"state":"playing","seq":1}`, (i+1)*60_000)); status != 200 {
			t.Fatalf("heartbeat = %d %v", status, doc)
		}
		if status, _, doc := e.call(t, "POST", "/v1/devices/tv/views/"+view+"/stop", bob, fmt.Sprintf(`{"position_ms":%d}`, (i+1)*61_000)); status != 200 {
			t.Fatalf("stop = %d %v", status, doc)
		}
		time.Sleep(3 * time.Millisecond) // starts in distinct milliseconds
	}
	e.catchUp(t)

	// Two entries a page, newest first, to the end.
	var titles []string
	cursor, pages := "", 0
	for {
		path := "/v1/history?limit=2"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		status, _, doc := e.call(t, "GET", path, bob, "")
		if status != 200 {
			t.Fatalf("GET %s = %d %v", path, status, doc)
		}
		pages++
		for _, x := range doc["entries"].([]any) {
			entry := x.(map[string]any)
			titles = append(titles, entry["title_id"].(string))
			if entry["ended"] != string(viewing.Stopped) || entry["device_id"] != "tv" {
				t.Errorf("entry %v, want a view stopped on the tv", entry)
			}
		}
		next, _ := doc["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	want := []string{"tt-paper-moons", "tt-first-light", "tt-low-tide", "tt-paper-moons", "tt-first-light"}
	if strings.Join(titles, ",") != strings.Join(want, ",") || pages != 3 {
		t.Errorf("history in %d pages = %v, want %v in 3", pages, titles, want)
	}

	// The row: one entry per title, the latest watched first.
	status, _, doc := e.call(t, "GET", "/v1/recently-watched", bob, "")
	var row []string
	for _, x := range doc["titles"].([]any) {
		row = append(row, x.(map[string]any)["title_id"].(string))
	}
	if status != 200 || strings.Join(row, ",") != "tt-paper-moons,tt-first-light,tt-low-tide" {
		t.Errorf("recently watched = %d %v", status, doc)
	}
	first := doc["titles"].([]any)[0].(map[string]any)
	if first["position_ms"] != 5*61_000.0 || first["resume_from_ms"] != 5*61_000.0 || first["completed"] != false {
		t.Errorf("row entry of tt-paper-moons = %v, want where its last view stopped", first)
	}

	// Bad input: another member's cursor, a forged one, page sizes out of range.
	alice := e.token(t, "alice-history", "premium")
	for _, path := range []string{"/v1/history?cursor=" + url.QueryEscape(cursor), "/v1/history?cursor=bm90LWEtY3Vyc29y", "/v1/history?cursor=%25%25"} {
		if status, _, doc := e.call(t, "GET", path, alice, ""); status != 400 || doc["code"] != viewing.CodeBadCursor {
			t.Errorf("alice GET %s = %d %v, want 400 %s", path, status, doc, viewing.CodeBadCursor)
		}
	}
	for _, limit := range []string{"0", "101", "-1", "ten"} {
		if status, _, doc := e.call(t, "GET", "/v1/history?limit="+limit, bob, ""); status != 400 || doc["code"] != "INVALID_INPUT" {
			t.Errorf("limit=%s: %d %v, want 400 INVALID_INPUT", limit, status, doc)
		}
	}
	if status, _, doc := e.call(t, "GET", "/v1/history", alice, ""); status != 200 || len(doc["entries"].([]any)) != 0 {
		t.Errorf("alice's history = %d %v, want empty", status, doc)
	}

	// Engagement, for an operator.
	admin := e.adminToken(t)
	day := time.Now().UTC().Format(time.DateOnly)
	status, _, doc = e.call(t, "GET", "/v1/admin/titles/tt-first-light/days/"+day+"/engagement", admin, "")
	if status != 200 || doc["views"] != 2.0 || doc["watched_ms"] == 0.0 {
		t.Errorf("engagement of tt-first-light = %d %v, want 2 views", status, doc)
	}
	status, _, doc = e.call(t, "GET", "/v1/admin/days/"+day+"/most-watched?limit=2", admin, "")
	if ranked, _ := doc["titles"].([]any); status != 200 || len(ranked) != 2 {
		t.Errorf("most watched = %d %v, want the top two", status, doc)
	}
	if status, _, doc := e.call(t, "GET", "/v1/admin/days/"+day+"/most-watched", bob, ""); status != 403 {
		t.Errorf("most watched without the admin scope = %d %v, want 403", status, doc)
	}
}

func TestErasureEndToEnd(t *testing.T) {
	for _, store := range []string{"memory", "dynamo", "dynamo-regions"} {
		t.Run(store, func(t *testing.T) { erasure(t, start(t, store), store) })
	}
}

// erasure: a member with a history, a row and a screen still playing
// erases their viewing data; the screen is told to stop, reads during the
// erasure are refused, and afterwards nothing of theirs is readable, a late
// heartbeat brings nothing back, the engagement counts stay, and a new view
// counts again.
func erasure(t *testing.T, e *env, store string) {
	carol := e.token(t, "carol-erasure", "premium")
	var playing string
	for i, title := range []string{"tt-first-light", "tt-paper-moons"} {
		_, _, doc := e.call(t, "POST", "/v1/devices/tv/views", carol, fmt.Sprintf(`{"title_id":%q}`, title))
		playing = viewID(doc)
		e.call(t, "POST", "/v1/devices/tv/views/"+playing+"/heartbeat", carol, `{"position_ms":60000,"state":"playing","seq":1}`)
		if i == 0 {
			e.call(t, "POST", "/v1/devices/tv/views/"+playing+"/stop", carol, `{"position_ms":61000}`)
		}
	}
	e.catchUp(t)
	day := time.Now().UTC().Format(time.DateOnly)
	admin := e.adminToken(t)
	_, _, before := e.call(t, "GET", "/v1/admin/titles/tt-first-light/days/"+day+"/engagement", admin, "")

	status, _, doc := e.call(t, "DELETE", "/v1/history", carol, "")
	if er, _ := doc["erasure"].(map[string]any); status != 202 || er["state"] != "pending" {
		t.Fatalf("erase = %d %v, want 202 pending", status, doc)
	}
	// The screen still playing is gone: its player is told to stop.
	if status, _, doc := e.call(t, "POST", "/v1/devices/tv/views/"+playing+"/heartbeat", carol, `{"position_ms":90000,"state":"playing","seq":2}`); status != 404 || doc["code"] != viewing.CodeViewNotFound {
		t.Errorf("heartbeat after the erasure = %d %v, want 404 %s", status, doc, viewing.CodeViewNotFound)
	}
	if store == "dynamo" { // the stream function has not run yet
		if status, _, doc := e.call(t, "GET", "/v1/history", carol, ""); status != 409 || doc["code"] != viewing.CodeErasureInProgress {
			t.Errorf("history during the erasure = %d %v, want 409 %s", status, doc, viewing.CodeErasureInProgress)
		}
		if status, _, doc := e.call(t, "DELETE", "/v1/admin/members/carol-erasure/viewing", admin, ""); status != 409 || doc["code"] != viewing.CodeErasureInProgress {
			t.Errorf("a second erasure during the first = %d %v, want 409", status, doc)
		}
	}
	e.catchUp(t)
	if status, _, doc := e.call(t, "GET", "/v1/history", carol, ""); status != 200 || len(doc["entries"].([]any)) != 0 {
		t.Errorf("history after the erasure = %d %v, want empty", status, doc)
	}
	if status, _, doc := e.call(t, "GET", "/v1/recently-watched", carol, ""); status != 200 || len(doc["titles"].([]any)) != 0 {
		t.Errorf("row after the erasure = %d %v, want empty", status, doc)
	}
	if status, _, doc := e.call(t, "GET", "/v1/titles/tt-first-light/resume", carol, ""); status != 200 || doc["position_ms"] != 0.0 || doc["watched_ms"] != 0.0 {
		t.Errorf("resume point after the erasure = %d %v, want none", status, doc)
	}
	if _, _, after := e.call(t, "GET", "/v1/admin/titles/tt-first-light/days/"+day+"/engagement", admin, ""); after["views"] != before["views"] || after["views"] == 0.0 {
		t.Errorf("engagement after the erasure = %v, want it kept (%v)", after, before)
	}
	// A new view counts again.
	_, _, doc = e.call(t, "POST", "/v1/devices/phone/views", carol, `{"title_id":"tt-low-tide"}`)
	if viewID(doc) == "" {
		t.Fatalf("start after the erasure = %v", doc)
	}
	e.catchUp(t)
	status, _, doc = e.call(t, "GET", "/v1/history", carol, "")
	if entries, _ := doc["entries"].([]any); status != 200 || len(entries) != 1 || entries[0].(map[string]any)["title_id"] != "tt-low-tide" {
		t.Errorf("history after a new view = %d %v, want only it", status, doc)
	}
}

// TestRemoveFromRecentlyWatched: a member removes a title from the
// recently watched row: the row drops it, the history keeps its views,
// removing it again changes nothing, and watching it again brings it back
// to the front. On every store layout.
func TestRemoveFromRecentlyWatched(t *testing.T) {
	for _, store := range []string{"memory", "dynamo", "dynamo-regions"} {
		t.Run(store, func(t *testing.T) {
			e := start(t, store)
			tok := e.token(t, "rowan", "premium")
			watch := func(title string) {
				t.Helper()
				status, _, doc := e.call(t, "POST", "/v1/devices/tv/views", tok, fmt.Sprintf(`{"title_id":%q}`, title))
				if status != 201 {
					t.Fatalf("start %s = %d %v", title, status, doc)
				}
				if status, _, doc := e.call(t, "POST", "/v1/devices/tv/views/"+viewID(doc)+"/stop", tok, `{"position_ms":60000}`); status != 200 {
					t.Fatalf("stop = %d %v", status, doc)
				}
				time.Sleep(3 * time.Millisecond)
			}
			row := func() string {
				t.Helper()
				_, _, doc := e.call(t, "GET", "/v1/recently-watched", tok, "")
				var titles []string
				for _, x := range doc["titles"].([]any) {
					titles = append(titles, x.(map[string]any)["title_id"].(string))
				}
				return strings.Join(titles, ",")
			}
			for _, title := range []string{"tt-first-light", "tt-paper-moons", "tt-low-tide"} {
				watch(title)
			}
			e.catchUp(t)
			if got := row(); got != "tt-low-tide,tt-paper-moons,tt-first-light" {
				t.Fatalf("row = %s", got)
			}
			status, _, doc := e.call(t, "DELETE", "/v1/recently-watched/tt-paper-moons", tok, "")
			if status != 200 || doc["removed"] != true || doc["title_id"] != "tt-paper-moons" {
				t.Fatalf("remove = %d %v", status, doc)
			}
			if got := row(); got != "tt-low-tide,tt-first-light" {
				t.Errorf("row after the removal = %s", got)
			}
			if _, _, doc := e.call(t, "GET", "/v1/history", tok, ""); len(doc["entries"].([]any)) != 3 {
				t.Errorf("history after the removal = %v; want its 3 entries", doc)
			}
			if status, _, doc := e.call(t, "DELETE", "/v1/recently-watched/tt-paper-moons", tok, ""); status != 200 || doc["removed"] != false {
				t.Errorf("remove again = %d %v; want 200, removed false", status, doc)
			}
			if status, _, doc := e.call(t, "DELETE", "/v1/recently-watched/not..valid!", tok, ""); status != 400 {
				t.Errorf("remove a bad title id = %d %v; want 400", status, doc)
			}
			// A title neither in the catalogue nor in the row is refused: a
			// row remembers only real removals.
			if status, _, doc := e.call(t, "DELETE", "/v1/recently-watched/tt-no-such-title", tok, ""); status != 404 {
				t.Errorf("remove a title not in the catalogue = %d %v; want 404", status, doc)
			}
			time.Sleep(2 * time.Millisecond) // a view started after the removal, not in its millisecond
			watch("tt-paper-moons")
			e.catchUp(t)
			if got := row(); got != "tt-paper-moons,tt-low-tide,tt-first-light" {
				t.Errorf("row after watching it again = %s; want it back in front", got)
			}
		})
	}
}
