package console_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/httpapi"
)

// sample is what seed did to the sample member.
type sample struct {
	member             string
	phone1, tablet, p2 string // licence ids: phone's first, the tablet's (released), phone's second
	plays              int
	midTablet          time.Time // between the tablet licence's acquisition and its release
}

// seed makes the sample member through the API, as devices would: a
// download on the phone and one on the tablet, a refused download on the
// tablet, offline plays on the phone, a renewal, the tablet's download
// released, a second download on the phone; and two screens watched.
func seed(t *testing.T, s *server) sample {
	t.Helper()
	sm := sample{member: "m-support", plays: 3}
	tok := s.token(t, sm.member, "premium")
	acquire := func(device, title string) string {
		t.Helper()
		status, doc := s.call(t, "POST", "/v1/devices/"+device+"/licences", tok, fmt.Sprintf(`{"title_id":%q}`, title))
		if status != 201 {
			t.Fatalf("acquire %s on %s = %d %v", title, device, status, doc)
		}
		return doc["licence"].(map[string]any)["licence_id"].(string)
	}
	sm.phone1 = acquire("phone", "tt-first-light")
	tabletAt := time.Now()
	sm.tablet = acquire("tablet", "tt-low-tide")
	if status, doc := s.call(t, "POST", "/v1/devices/tablet/licences", tok, `{"title_id":"tt-meridian-two"}`); status != 403 {
		t.Fatalf("acquire tt-meridian-two = %d %v, want 403", status, doc)
	}
	time.Sleep(150 * time.Millisecond)
	now := time.Now().UTC()
	var plays []string
	for i, kind := range []string{"START", "PAUSE", "STOP"} {
		at := now.Add(time.Duration(i-2) * 60 * time.Millisecond)
		plays = append(plays, fmt.Sprintf(`{"id":"p-%d","licence_id":%q,"kind":%q,"position_ms":%d,"device_time":%q}`, i, sm.phone1, kind, i*60000, at.Format(time.RFC3339Nano)))
	}
	if status, doc := s.call(t, "POST", "/v1/devices/phone/playback", tok, `{"events":[`+strings.Join(plays, ",")+`]}`); status != 200 {
		t.Fatalf("playback = %d %v", status, doc)
	}
	if status, doc := s.call(t, "POST", "/v1/devices/phone/licences/"+sm.phone1+"/renew", tok, ""); status != 200 {
		t.Fatalf("renew = %d %v", status, doc)
	}
	time.Sleep(150 * time.Millisecond)
	releaseAt := time.Now()
	if status, doc := s.call(t, "DELETE", "/v1/devices/tablet/licences/"+sm.tablet, tok, ""); status != 200 {
		t.Fatalf("release = %d %v", status, doc)
	}
	sm.midTablet = tabletAt.Add(releaseAt.Sub(tabletAt) / 2)
	sm.p2 = acquire("phone", "tt-paper-moons")
	for _, w := range []struct{ device, title string }{{"tv", "tt-breakwater"}, {"laptop", "tt-ice-road"}} {
		status, doc := s.call(t, "POST", "/v1/devices/"+w.device+"/views", tok, fmt.Sprintf(`{"title_id":%q}`, w.title))
		if status != 201 {
			t.Fatalf("start a view on %s = %d %v", w.device, status, doc)
		}
		view := doc["view"].(map[string]any)["view_id"].(string)
		time.Sleep(60 * time.Millisecond)
		if status, doc := s.call(t, "POST", "/v1/devices/"+w.device+"/views/"+view+"/heartbeat", tok, `{"position_ms":60000,"state":"playing","seq":1}`); status != 200 {
			t.Fatalf("heartbeat = %d %v", status, doc)
		}
		time.Sleep(60 * time.Millisecond)
		if status, doc := s.call(t, "POST", "/v1/devices/"+w.device+"/views/"+view+"/stop", tok, `{"position_ms":120000}`); status != 200 {
			t.Fatalf("stop = %d %v", status, doc)
		}
	}
	// The member removes the laptop's title from the recently watched row.
	if status, doc := s.call(t, "DELETE", "/v1/recently-watched/tt-ice-road", tok, ""); status != 200 {
		t.Fatalf("remove from the row = %d %v", status, doc)
	}
	return sm
}

// picture is what the member's SVG shows, counted by the marks' data-kind.
type picture struct {
	PhoneLicences  int     `json:"phoneLicences"`
	TabletLicences int     `json:"tabletLicences"`
	PhonePlays     int     `json:"phonePlays"`
	TabletPlays    int     `json:"tabletPlays"`
	Renewals       int     `json:"renewals"`
	Refusals       int     `json:"refusals"`
	RefusalText    string  `json:"refusalText"`
	Snapshots      int     `json:"snapshots"`
	SnapshotAt     string  `json:"snapshotAt"`
	Views          int     `json:"views"`
	ViewLanes      int     `json:"viewLanes"`
	Cursor         float64 `json:"cursor"`
	Role           string  `json:"role"`
	Label          string  `json:"label"`
	Elements       int     `json:"elements"`
}

// pictureJS counts the marks of the picture, by lane.
const pictureJS = `(() => {
  const svg = document.getElementById('timeline');
  const lane = (g, d) => svg.querySelector('g[data-group="' + g + '"][data-device="' + d + '"]');
  const all = (el, k) => el ? [...el.querySelectorAll('[data-kind="' + k + '"]')] : [];
  const sum = (el, k) => all(el, k).reduce((n, e) => n + Number(e.getAttribute('data-count') || 1), 0);
  const snap = svg.querySelector('[data-kind="snapshot"]');
  return {
    phoneLicences: all(lane('licences', 'phone'), 'licence').length,
    tabletLicences: all(lane('licences', 'tablet'), 'licence').length,
    phonePlays: sum(lane('licences', 'phone'), 'play'),
    tabletPlays: sum(lane('licences', 'tablet'), 'play'),
    renewals: all(svg, 'renewal').length,
    refusals: all(lane('licences', 'tablet'), 'refusal').length,
    refusalText: all(svg, 'refusal').map(e => e.textContent).join(' '),
    snapshots: all(svg, 'snapshot').length,
    snapshotAt: snap ? snap.getAttribute('data-version') : '',
    views: all(svg, 'view').length,
    viewLanes: svg.querySelectorAll('g[data-group="views"]').length,
    cursor: Number(svg.querySelector('[data-kind="cursor"]').getAttribute('x1')),
    role: svg.getAttribute('role'),
    label: svg.getAttribute('aria-label'),
    elements: svg.querySelectorAll('*').length,
  };
})()`

// statesJS is the state table: licence id → status.
const statesJS = `Object.fromEntries([...document.querySelectorAll('#state-table tbody tr[data-licence]')].map(r => [r.dataset.licence, r.dataset.status]))`

func TestConsole(t *testing.T) {
	b := browser(t)
	s := startServer(t)
	began := time.Now()
	sm := seed(t, s)
	t.Logf("sample member seeded in %v", time.Since(began).Round(time.Millisecond))
	admin := s.token(t, "ops-1", "basic", httpapi.AdminScope)

	began = time.Now()
	b.open(t, s.url, admin, sm.member)
	t.Logf("member view drawn in %v", time.Since(began).Round(time.Millisecond))

	// The picture: a lane per device, a bar per licence, the plays, the
	// refusal with its rule, the snapshot (every 4 events: version 4), the
	// screens.
	p := eval[picture](t, b, pictureJS)
	t.Logf("picture: %+v", p)
	if p.PhoneLicences != 2 || p.TabletLicences != 1 {
		t.Errorf("licence bars: phone %d, tablet %d; want 2 and 1", p.PhoneLicences, p.TabletLicences)
	}
	if p.PhonePlays != sm.plays || p.TabletPlays != 0 {
		t.Errorf("offline plays: phone %d, tablet %d; want %d and 0", p.PhonePlays, p.TabletPlays, sm.plays)
	}
	if p.Renewals != 1 {
		t.Errorf("renewal ticks = %d, want 1", p.Renewals)
	}
	if p.Refusals != 1 || !strings.Contains(p.RefusalText, "TITLE_NOT_DOWNLOADABLE") {
		t.Errorf("refusals on the tablet's lane = %d %q, want 1 labelled TITLE_NOT_DOWNLOADABLE", p.Refusals, p.RefusalText)
	}
	if p.Snapshots != 1 || p.SnapshotAt != "4" {
		t.Errorf("snapshot markers = %d at version %q, want 1 at version 4", p.Snapshots, p.SnapshotAt)
	}
	if p.Views != 2 || p.ViewLanes != 2 {
		t.Errorf("screens: %d bars on %d lanes, want 2 on 2", p.Views, p.ViewLanes)
	}
	if p.Role != "img" || !strings.Contains(p.Label, "6 events") || !strings.Contains(p.Label, "3 licences") {
		t.Errorf("picture role %q, label %q: want img, a summary with 6 events and 3 licences", p.Role, p.Label)
	}
	// Landmarks, a label for every input, the picture's title and
	// description: what a screen reader needs.
	if missing := eval[[]string](t, b, `[
	  ...['header', 'nav', 'main', '#timeline > title', '#timeline > desc', 'table caption', 'th[scope=col]'].filter(q => !document.querySelector(q)),
	  ...[...document.querySelectorAll('input, select, textarea')].filter(e => e.labels.length === 0).map(e => 'a label for #' + e.id),
	]`); len(missing) > 0 {
		t.Errorf("the page lacks %q", missing)
	}
	now := eval[map[string]string](t, b, statesJS)
	if now[sm.tablet] != "RELEASED" || now[sm.phone1] != "ACTIVE" || now[sm.p2] != "ACTIVE" {
		t.Errorf("state now = %v, want the tablet's licence RELEASED, the phone's two ACTIVE", now)
	}
	if n := eval[int](t, b, `document.querySelectorAll('#refusals-table tbody tr').length`); n != 1 {
		t.Errorf("refusals table: %d rows, want 1", n)
	}
	if n := eval[int](t, b, `document.querySelectorAll('#views-table tbody tr').length`); n != 2 {
		t.Errorf("views table: %d rows, want 2", n)
	}
	// The row holds the tv's title; the laptop's, removed by the member,
	// is listed as removed (it stays in the history above).
	row := eval[[]string](t, b, `[...document.querySelectorAll('#row-table tbody tr td:first-child')].map(td => td.textContent)`)
	removed := eval[[]string](t, b, `[...document.querySelectorAll('#row-removed li')].map(li => li.dataset.title)`)
	if strings.Join(row, ",") != "tt-breakwater" || strings.Join(removed, ",") != "tt-ice-road" {
		t.Errorf("row %v, removed %v; want tt-breakwater in the row and tt-ice-road removed", row, removed)
	}
	b.shot(t, "member")

	// The slider, back to when the tablet's licence was held: the state
	// then, and the cursor with it.
	b.do(t, "move the slider", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
	  const w = document.getElementById('when');
	  w.value = '%d';
	  w.dispatchEvent(new Event('input', {bubbles: true}));
	  w.dispatchEvent(new Event('change', {bubbles: true}));
	})()`, sm.midTablet.UnixMilli())))
	b.wait(t, "the state at the slider's time", `document.querySelector('#state tr[data-licence="`+sm.tablet+`"][data-status="ACTIVE"]') !== null`)
	then := eval[map[string]string](t, b, statesJS)
	if then[sm.tablet] != "ACTIVE" || then[sm.phone1] != "ACTIVE" || then[sm.p2] != "" {
		t.Errorf("state at %v = %v, want the tablet's licence and the phone's first ACTIVE, the second not yet there", sm.midTablet, then)
	}
	if c := eval[float64](t, b, `Number(document.querySelector('#timeline [data-kind="cursor"]').getAttribute('x1'))`); c >= p.Cursor {
		t.Errorf("cursor at x %.1f after moving back, was %.1f", c, p.Cursor)
	}
	b.shot(t, "member-earlier")

	// The keyboard: End takes the slider back to now.
	b.do(t, "press End on the slider", chromedp.Focus(chromedp.ID("when")), chromedp.SendKeys(chromedp.ID("when"), kb.End))
	b.wait(t, "the state now, from the keyboard", `document.querySelector('#state tr[data-licence="`+sm.tablet+`"][data-status="RELEASED"]') !== null`)

	// The raw events, one click away.
	b.do(t, "open the raw events", chromedp.Click(chromedp.CSS(`#raw summary`)))
	rows := eval[[]string](t, b, `[...document.querySelectorAll('#events-table tbody tr')].map(r => r.cells[0].textContent + ' ' + r.cells[1].textContent)`)
	want := []string{"1 LicenceAcquired", "2 LicenceAcquired", "3 PlaybackRecorded", "4 LicenceRenewed", "5 LicenceReleased", "6 LicenceAcquired"}
	if strings.Join(rows, ",") != strings.Join(want, ",") {
		t.Errorf("events table = %q, want %q", rows, want)
	}

	// What-if: a stricter policy picked as a file; the flipped decisions.
	stricter := strings.Replace(string(licensing.DefaultPolicyJSON()), `"max_active_per_member": 600`, `"max_active_per_member": 1`, 1)
	file := filepath.Join(t.TempDir(), "stricter.json")
	if err := os.WriteFile(file, []byte(stricter), 0o644); err != nil {
		t.Fatal(err)
	}
	_, api := s.call(t, "POST", "/v1/admin/members/"+sm.member+"/what-if", admin, stricter)
	flips := len(api["divergences"].([]any)) + len(api["would_grant"].([]any))
	b.show(t, "whatif")
	// The policy in force loads from the API, ready to change.
	b.do(t, "load the policy in force", chromedp.Click(chromedp.ID("policy-load")))
	b.wait(t, "the policy in force", `(() => { try { const p = JSON.parse(document.getElementById('policy').value); return p.version === `+strconv.Quote(licensing.DefaultPolicy().Version)+` && p.plans.premium.max_active_per_member === 600 } catch (e) { return false } })()`)
	b.do(t, "pick the policy file", chromedp.SetUploadFiles(chromedp.ID("policy-file"), []string{file}))
	b.wait(t, "the policy read", `document.getElementById('policy').value.includes('"max_active_per_member": 1,')`)
	b.do(t, "run what-if", chromedp.Click(chromedp.CSS(`#whatif-form button[type=submit]`)))
	b.wait(t, "the what-if table", `document.getElementById('whatif-table') !== null`)
	flipped := eval[[]string](t, b, `[...document.querySelectorAll('#whatif-table tr[data-kind="flip"]')].map(r => [...r.cells].map(c => c.textContent).join(' | '))`)
	t.Logf("what-if rows: %q", flipped)
	low := false
	for _, r := range flipped {
		low = low || strings.Contains(r, "tt-low-tide") && strings.Contains(r, "| GRANTED | REFUSED |") && strings.Contains(r, "MEMBER_DOWNLOAD_LIMIT")
	}
	if len(flipped) != flips || flips < 1 || !low {
		t.Errorf("what-if rows = %q, want %d (as the API says), the tablet's tt-low-tide granted then, refused with MEMBER_DOWNLOAD_LIMIT", flipped, flips)
	}
	b.shot(t, "whatif")

	// My actions: the operator's own trail, the member's events and the
	// what-if among them, newest first.
	b.show(t, "audit")
	b.wait(t, "the operator's trail", `document.querySelector('#audit-table tr[data-route="POST /v1/admin/members/{member}/what-if"][data-member=`+strconv.Quote(sm.member)+`]') !== null && document.querySelector('#audit-table tr[data-route="GET /v1/admin/members/{member}/events"]') !== null`)
	if first := eval[string](t, b, `document.querySelector('#audit-table tbody tr').dataset.route`); first != "POST /v1/admin/members/{member}/what-if" {
		t.Errorf("the newest action = %q, want the what-if", first)
	}
	b.shot(t, "audit")

	// Jobs: the same stricter policy over every member of the service, a
	// progress bar, then the flips by rule and studio as a table and as
	// bars, counted as the API's job summary counts them.
	b.show(t, "jobs")
	b.do(t, "start a fleet what-if", chromedp.SetValue(chromedp.ID("job-policy"), stricter), chromedp.SetValue(chromedp.ID("job-segments"), "8"),
		chromedp.Click(chromedp.CSS(`#job-form button[type=submit]`)))
	b.wait(t, "the job's end", `document.getElementById('job-state').textContent.includes('SUCCEEDED')`)
	job := eval[map[string]any](t, b, `({state: document.getElementById('job-state').textContent,
	  progress: document.getElementById('job-progress').value, max: document.getElementById('job-progress').max,
	  flips: document.getElementById('job-flips').textContent,
	  rules: Object.fromEntries([...document.querySelectorAll('#job-chart-rules [data-kind=bar]')].map(g => [g.dataset.name, Number(g.dataset.count)])),
	  rows: document.querySelectorAll('#job-table tr[data-kind=flip-count]').length})`)
	t.Logf("jobs view: %v", job)
	id := strings.Fields(job["state"].(string))[1]
	_, summary := s.call(t, "GET", "/v1/admin/jobs/"+id, admin, "")
	sum, _ := summary["summary"].(map[string]any)
	byRule, _ := sum["by_rule"].(map[string]any)
	rules, _ := job["rules"].(map[string]any)
	if job["progress"] != job["max"] || job["max"] != 8.0 || len(rules) != len(byRule) || len(rules) == 0 ||
		!strings.HasPrefix(job["flips"].(string), fmt.Sprint(sum["flips"])+" past") {
		t.Errorf("jobs view = %v; want 8 of 8 segments, the flips and a bar per rule of %v", job, sum)
	}
	for rule, n := range byRule {
		if rules[rule] != n {
			t.Errorf("bar of %s = %v, the job's summary %v", rule, rules[rule], n)
		}
	}
	b.shot(t, "jobs")

	// Titles and studios: the counters, as tables.
	today := time.Now().UTC().Format(time.DateOnly)
	b.show(t, "titles")
	// One at a time: each table moves the forms below it.
	b.do(t, "read a title's counts", chromedp.SetValue(chromedp.ID("title-id"), "tt-first-light"), chromedp.Click(chromedp.CSS(`#title-form button`)))
	b.wait(t, "the title's counts", `document.getElementById('title-table') !== null`)
	b.do(t, "read a studio's counts", chromedp.SetValue(chromedp.ID("studio-id"), "open-reel"), chromedp.SetValue(chromedp.ID("studio-day"), today),
		chromedp.Click(chromedp.CSS(`#studio-form button`)))
	b.wait(t, "the studio's counts", `document.getElementById('studio-table') !== null`)
	b.do(t, "read the most watched", chromedp.SetValue(chromedp.ID("watched-day"), today), chromedp.Click(chromedp.CSS(`#watched-form button`)))
	b.wait(t, "the most watched", `document.getElementById('watched-table') !== null`)
	cells := eval[map[string][]string](t, b, `Object.fromEntries(['title-table', 'studio-table', 'watched-table'].map(id =>
	  [id, [...document.querySelectorAll('#' + id + ' tbody td')].map(c => c.textContent)]))`)
	t.Logf("counts: %v", cells)
	if got := strings.Join(cells["title-table"], " "); got != "tt-first-light 1 1" {
		t.Errorf("title counts row = %q, want tt-first-light 1 1", got)
	}
	if got := strings.Join(cells["studio-table"], " "); got != "open-reel "+today+" 2 2" {
		t.Errorf("studio counts row = %q, want open-reel %s 2 2", got, today)
	}
	if got := strings.Join(cells["watched-table"], " "); !strings.Contains(got, "tt-breakwater") || !strings.Contains(got, "tt-ice-road") {
		t.Errorf("most watched = %q, want tt-breakwater and tt-ice-road", got)
	}
	b.shot(t, "titles")

	// The token stayed in the page's memory.
	if kept := eval[string](t, b, fmt.Sprintf(`[localStorage.length ? 'localStorage' : '', sessionStorage.length ? 'sessionStorage' : '',
	  document.cookie ? 'a cookie' : '', location.href.includes(%[1]q) ? 'the address' : '',
	  document.documentElement.outerHTML.includes(%[1]q) ? 'the page' : '', document.getElementById('token').value ? 'the token box' : ''].filter(Boolean).join(', ')`, admin)); kept != "" {
		t.Errorf("the admin token was found in %s", kept)
	}
	b.quiet(t)
}
