package console_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/httpapi"
	"github.com/dlicense/dlicense/infra/storetest"
)

// bigEvents is the log length of the busiest member the console is tested
// with: six and a half years of a realistic premium member.
const bigEvents = 10_000

// TestConsoleBigMember opens a member of 10,000 events: the page draws what
// the screen can show (marks aggregated per pixel columns, counted, not
// dropped) and a page of the events table, not 10,000 rows.
func TestConsoleBigMember(t *testing.T) {
	b := browser(t)
	s := startServer(t)
	const member = "m-big"
	began := time.Now()
	log := storetest.RealisticHistory(member, bigEvents, time.Now().Add(-time.Hour), 1)
	// Appended a thousand at a time, through the stream function as the
	// service's own appends are (counters, snapshots).
	for i := 0; i < len(log); i += 1000 {
		if err := s.parts.Memory.Append(context.Background(), member, int64(i), log[i:min(i+1000, len(log))]); err != nil {
			t.Fatal(err)
		}
	}
	licences, plays := 0, 0
	for _, e := range log {
		switch p := e.Payload.(type) {
		case *licensing.LicenceAcquired:
			licences++
		case *licensing.PlaybackRecorded:
			plays += len(p.Accepted)
		}
	}
	t.Logf("%d events (%d licences, %d offline plays) seeded in %v", len(log), licences, plays, time.Since(began).Round(time.Millisecond))

	began = time.Now()
	b.open(t, s.url, s.token(t, "ops-1", "basic", httpapi.AdminScope), member)
	t.Logf("member of %d events drawn in %v", len(log), time.Since(began).Round(time.Millisecond))

	type drawn struct {
		Elements int    `json:"elements"`
		Licences int    `json:"licences"`
		Bars     int    `json:"bars"`
		Plays    int    `json:"plays"`
		Marks    int    `json:"marks"`
		Label    string `json:"label"`
		Rows     int    `json:"rows"`
		Pager    string `json:"pager"`
		State    int    `json:"state"`
	}
	d := eval[drawn](t, b, `(() => {
	  const svg = document.getElementById('timeline');
	  const all = k => [...svg.querySelectorAll('[data-kind="' + k + '"]')];
	  const sum = k => all(k).reduce((n, e) => n + Number(e.getAttribute('data-count') || 1), 0);
	  return {
	    elements: svg.querySelectorAll('*').length,
	    licences: sum('licence'), bars: all('licence').length,
	    plays: sum('play'), marks: all('play').length,
	    label: svg.getAttribute('aria-label'),
	    rows: document.querySelectorAll('#events-table tbody tr').length,
	    pager: document.querySelector('#raw-table .pager span').textContent,
	    state: document.querySelectorAll('#state-table tbody tr').length,
	  };
	})()`)
	t.Logf("drawn: %d SVG elements; %d licences in %d bars, %d plays in %d marks; events table %d rows (%s); state table %d rows",
		d.Elements, d.Licences, d.Bars, d.Plays, d.Marks, d.Rows, d.Pager, d.State)
	if d.Elements >= 5000 {
		t.Errorf("the picture has %d SVG elements, want fewer than 5,000", d.Elements)
	}
	if d.Licences != licences || d.Plays != plays {
		t.Errorf("the picture counts %d licences and %d plays, want %d and %d (aggregated, not dropped)", d.Licences, d.Plays, licences, plays)
	}
	if !strings.Contains(d.Label, "10000 events") {
		t.Errorf("picture label %q, want 10000 events", d.Label)
	}
	if d.Rows != 100 || !strings.Contains(d.Pager, "page 1 of 100") || d.State > 100 {
		t.Errorf("events table %d rows (%q), state table %d rows; want a page of 100 of 100 pages, at most 100", d.Rows, d.Pager, d.State)
	}
	// Half-way back: the state replayed from 10,000 events.
	b.do(t, "move the slider", chromedp.Evaluate[chromedp.Void](`(() => {
	  const w = document.getElementById('when');
	  w.value = String((Number(w.min) + Number(w.max)) / 2);
	  w.dispatchEvent(new Event('change', {bubbles: true}));
	})()`))
	b.wait(t, "the state half-way", `Number(document.getElementById('state').dataset.version) < `+strconv.Itoa(len(log)))
	b.shot(t, "member-10000-events")
	b.do(t, "next page of events", chromedp.Click(chromedp.CSS(`#raw summary`)), chromedp.Click(chromedp.CSS(`#raw-table .pager button:nth-of-type(2)`)))
	if first := eval[string](t, b, `document.querySelector('#events-table tbody tr').dataset.version`); first != "101" {
		t.Errorf("second page starts at version %s, want 101", first)
	}
	b.quiet(t)
}
