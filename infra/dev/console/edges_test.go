package console_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/httpapi"
)

// TestConsoleEdges: what a newcomer met. With no member open the state
// slider is hidden; a mistyped member says nothing is recorded, with no
// picture and no slider; a viewing-only member gets no empty licences
// heading, and counts say "1 view", not "1 views"; on a 700-pixel window
// every column of the views table can be seen (the table scrolls inside
// the page); a failed what-if leaves no "What-if done." beside its error.
func TestConsoleEdges(t *testing.T) {
	b := browser(t)
	s := startServer(t)
	admin := s.token(t, "ops-1", "basic", httpapi.AdminScope)
	b.do(t, "load the console at 700 pixels",
		chromedp.EmulateViewport(700, 900),
		chromedp.Navigate(s.url+"/console"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SetValue(chromedp.ID("token"), admin),
		chromedp.Click(chromedp.CSS(`#token-form button[type=submit]`)),
		chromedp.Poll[chromedp.Void](`document.getElementById('token-state').textContent.startsWith('Token in use')`))
	if visible := eval[bool](t, b, `getComputedStyle(document.getElementById('when-box')).display !== 'none'`); visible {
		t.Error("the state slider shows with no member open")
	}

	open := func(member string) {
		b.do(t, "open "+member, chromedp.SetValue(chromedp.ID("member"), member), chromedp.Click(chromedp.CSS(`#member-form button[type=submit]`)))
	}
	open("m-nobody")
	b.wait(t, "the answer for a mistyped member", `document.getElementById('member-summary').textContent.includes('Nothing recorded for m-nobody')`)
	if shown := eval[bool](t, b, `getComputedStyle(document.getElementById('when-box')).display !== 'none' || getComputedStyle(document.getElementById('picture')).display !== 'none'`); shown {
		t.Error("a member with nothing recorded shows a picture or a slider")
	}

	// A member who only watched: one view, stopped.
	tok := s.token(t, "m-viewer", "premium")
	status, doc := s.call(t, "POST", "/v1/devices/tv/views", tok, `{"title_id":"tt-first-light"}`)
	if status != 201 {
		t.Fatalf("start = %d %v", status, doc)
	}
	view := doc["view"].(map[string]any)["view_id"].(string)
	if status, doc := s.call(t, "POST", "/v1/devices/tv/views/"+view+"/stop", tok, `{"position_ms":60000}`); status != 200 {
		t.Fatalf("stop = %d %v", status, doc)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, h := s.call(t, "GET", "/v1/admin/members/m-viewer/history", admin, ""); len(h["entries"].([]any)) == 1 || time.Now().After(deadline) {
			break
		}
	}
	open("m-viewer")
	b.wait(t, "the viewer's picture", `document.querySelector('svg#timeline[data-member="m-viewer"]') !== null`)
	summary := eval[string](t, b, `document.getElementById('member-summary').textContent`)
	if !strings.Contains(summary, "0 licences") || !strings.Contains(summary, "1 view,") || strings.Contains(summary, "1 views") {
		t.Errorf("summary = %q, want 0 licences and 1 view", summary)
	}
	if eval[bool](t, b, `[...document.querySelectorAll('svg#timeline text.heading')].some(e => e.textContent.startsWith('Licences'))`) {
		t.Error("a viewing-only member gets a licences heading with nothing under it")
	}
	// Every column of the views table: in view, or reachable by scrolling
	// its own box.
	ended := eval[bool](t, b, `(() => {
		const th = [...document.querySelectorAll('#views-table th')].find(e => e.textContent === 'Ended');
		const box = document.getElementById('views-table').closest('.table');
		return th != null && (th.getBoundingClientRect().right <= document.documentElement.clientWidth ||
			(getComputedStyle(box).overflowX === 'auto' && box.scrollWidth > box.clientWidth));
	})()`)
	if !ended {
		t.Error("the views table's Ended column is cut at 700 pixels")
	}
	if got := eval[string](t, b, `document.querySelector('#views-table tbody tr').cells[8].textContent`); got != string(viewing.Stopped) {
		t.Errorf("the view's Ended cell = %q, want STOPPED", got)
	}

	// A what-if that fails says so, without a "done" from before.
	b.show(t, "whatif")
	b.do(t, "a policy that is not JSON", chromedp.SetValue(chromedp.ID("policy"), "{not json"), chromedp.Click(chromedp.CSS(`#whatif-form button[type=submit]`)))
	b.wait(t, "the error", `document.getElementById('whatif-error').textContent.includes('NOT_JSON')`)
	if st := eval[string](t, b, `document.getElementById('status').textContent`); strings.Contains(st, "done") {
		t.Errorf("status beside the error = %q", st)
	}
	b.shot(t, "edges-700px")
}
