package local_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
)

func TestViewingEndToEnd(t *testing.T) {
	for _, store := range []string{"memory", "dynamo", "dynamo-regions"} {
		t.Run(store, func(t *testing.T) { watching(t, start(t, store)) })
	}
}

// watching is the README's walk-through: a standard plan (two screens), a
// third screen refused with the two in use, one ended from the other
// device, resume on another device, completion, and a title watched
// offline resuming online.
func watching(t *testing.T, e *env) {
	alice := e.token(t, "alice", "standard")
	startView := func(device, title string, headers ...string) (int, map[string]any) {
		t.Helper()
		status, hdr, doc := e.call(t, "POST", "/v1/devices/"+device+"/views", alice, fmt.Sprintf(`{"title_id":%q}`, title), headers...)
		if status == 201 && !strings.HasSuffix(hdr.Get("Location"), "/views/"+viewID(doc)) {
			t.Errorf("start on %s: Location %q, want the view", device, hdr.Get("Location"))
		}
		return status, doc
	}
	beat := func(device, view string, seq, pos int64) (int, map[string]any) {
		t.Helper()
		status, _, doc := e.call(t, "POST", "/v1/devices/"+device+"/views/"+view+"/heartbeat", alice,
			fmt.Sprintf(`{"position_ms":%d,"state":"playing","seq":%d}`, pos, seq))
		return status, doc
	}

	status, doc := startView("phone", "tt-first-light")
	if status != 201 || doc["heartbeat_interval_s"] != 30.0 || doc["resume"].(map[string]any)["resume_from_ms"] != 0.0 {
		t.Fatalf("start on the phone = %d %v", status, doc)
	}
	phone := viewID(doc)
	if status, doc := beat("phone", phone, 1, 600_000); status != 200 || doc["position_ms"] != 600_000.0 {
		t.Fatalf("phone heartbeat = %d %v", status, doc)
	}
	status, doc = startView("laptop", "tt-paper-moons")
	if status != 201 {
		t.Fatalf("start on the laptop = %d %v", status, doc)
	}
	laptop := viewID(doc)

	// A third screen on a two-screen plan: refused, naming who is watching.
	status, doc = startView("tv", "tt-first-light")
	if status != 403 || doc["code"] != viewing.CodeScreensLimit || doc["limit"] != 2.0 {
		t.Fatalf("third screen = %d %v, want 403 %s with the limit", status, doc, viewing.CodeScreensLimit)
	}
	var devices []string
	for _, s := range doc["screens"].([]any) {
		devices = append(devices, s.(map[string]any)["device_id"].(string))
	}
	slices.Sort(devices)
	if !slices.Equal(devices, []string{"laptop", "phone"}) {
		t.Errorf("screens in use = %v, want the laptop and the phone", devices)
	}
	if _, _, doc := e.call(t, "GET", "/v1/views", alice, ""); doc["in_use"] != 2.0 || doc["limit"] != 2.0 {
		t.Errorf("GET /v1/views = %v, want 2 of 2 in use", doc)
	}

	// The TV ends the phone's screen; the phone's next heartbeat is told to stop.
	if status, _, doc := e.call(t, "DELETE", "/v1/views/"+phone, alice, ""); status != 200 || doc["ended"] != string(viewing.EndedByMember) {
		t.Fatalf("end the phone's view = %d %v", status, doc)
	}
	if status, doc := beat("phone", phone, 2, 610_000); status != 409 || doc["code"] != viewing.CodeViewEnded || doc["reason"] != string(viewing.EndedByMember) {
		t.Errorf("phone heartbeat after it was ended = %d %v, want 409 %s %s", status, doc, viewing.CodeViewEnded, viewing.EndedByMember)
	}

	// The TV resumes where the phone left off.
	e.catchUp(t)
	status, doc = startView("tv", "tt-first-light", "Idempotency-Key", "tv-start-1")
	resume := doc["resume"].(map[string]any)
	if status != 201 || resume["resume_from_ms"] != 600_000.0 || resume["device_id"] != "phone" {
		t.Fatalf("start on the tv = %d %v, want it to resume at 600000 ms, from the phone", status, doc)
	}
	tv := viewID(doc)
	if _, hdr, again := e.call(t, "POST", "/v1/devices/tv/views", alice, `{"title_id":"tt-first-light"}`, "Idempotency-Key", "tv-start-1"); viewID(again) != tv || hdr.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retried start = %v, want the same view %s replayed", again, tv)
	}
	if _, _, doc := e.call(t, "GET", "/v1/titles/tt-first-light/resume", e.token(t, "alice", "standard"), ""); doc["position_ms"] != 600_000.0 || doc["watched_ms"] == nil {
		t.Errorf("resume point from another device = %v, want 600000 ms", doc)
	}

	// Heartbeats: a repeat changes nothing, an older one is refused.
	if status, doc := beat("tv", tv, 1, 700_000); status != 200 || doc["repeated"] != false {
		t.Errorf("tv heartbeat = %d %v", status, doc)
	}
	if status, doc := beat("tv", tv, 1, 700_000); status != 200 || doc["repeated"] != true {
		t.Errorf("repeated heartbeat = %d %v, want 200, repeated", status, doc)
	}
	if status, doc := beat("tv", tv, 0+1, 650_000); status != 409 || doc["code"] != viewing.CodeOutOfOrder {
		t.Errorf("an older heartbeat = %d %v, want 409 %s", status, doc, viewing.CodeOutOfOrder)
	}

	// Stopped in the credits: completed, resumes from the start.
	if status, _, doc := e.call(t, "POST", "/v1/devices/tv/views/"+tv+"/stop", alice, `{"position_ms":6100000}`); status != 200 || doc["ended"] != string(viewing.Stopped) {
		t.Fatalf("stop = %d %v", status, doc)
	}
	if status, _, doc := e.call(t, "POST", "/v1/devices/tv/views/"+tv+"/stop", alice, `{"position_ms":6100000}`); status != 200 || doc["ended"] != string(viewing.Stopped) {
		t.Errorf("repeated stop = %d %v, want 200 STOPPED", status, doc)
	}
	e.catchUp(t)
	if _, _, doc := e.call(t, "GET", "/v1/titles/tt-first-light/resume", alice, ""); doc["completed"] != true || doc["resume_from_ms"] != 0.0 || doc["device_id"] != "tv" {
		t.Errorf("resume point after the credits = %v, want completed, from the start", doc)
	}

	// Watched offline on a tablet: the title resumes online where the plane left it.
	status, _, doc = e.call(t, "POST", "/v1/devices/tablet/licences", alice, `{"title_id":"tt-low-tide"}`)
	if status != 201 {
		t.Fatalf("acquire = %d %v", status, doc)
	}
	licence := doc["licence"].(map[string]any)["licence_id"].(string)
	now := time.Now().UTC()
	upload := fmt.Sprintf(`{"events":[{"id":"p1","licence_id":%q,"kind":"START","position_ms":0,"device_time":%q},{"id":"p2","licence_id":%q,"kind":"STOP","position_ms":900000,"device_time":%q}]}`,
		licence, now.Add(-4*time.Minute).Format(time.RFC3339), licence, now.Add(-time.Minute).Format(time.RFC3339))
	if status, _, doc := e.call(t, "POST", "/v1/devices/tablet/playback", alice, upload); status != 200 || fmt.Sprint(doc["results"]) != "[map[code:ACCEPTED id:p1] map[code:ACCEPTED id:p2]]" {
		t.Fatalf("playback upload = %d %v", status, doc)
	}
	e.catchUp(t)
	status, _, doc = e.call(t, "GET", "/v1/titles/tt-low-tide/resume", alice, "")
	if status != 200 || doc["position_ms"] != 900_000.0 || doc["device_id"] != "tablet" || doc["watched_ms"] != float64((3*time.Minute).Milliseconds()) {
		t.Errorf("resume point of a title watched offline = %d %v, want 900000 ms from the tablet, 3 minutes watched", status, doc)
	}
	_ = laptop
}

func viewID(doc map[string]any) string {
	if v, ok := doc["view"].(map[string]any); ok {
		id, _ := v["view_id"].(string)
		return id
	}
	return ""
}

// TestViewsEndWhenThePlanShrinks: a member on premium (four screens) moves
// to basic (one): the most recently started view plays on, whatever its
// screen's number; the others are told to stop at their next heartbeat;
// the screens list says so before any heartbeat.
func TestViewsEndWhenThePlanShrinks(t *testing.T) {
	e := start(t, "memory")
	premium, basic := e.token(t, "carol", "premium"), e.token(t, "carol", "basic")
	var views []string
	for _, device := range []string{"tv", "phone", "laptop", "tablet"} {
		status, _, doc := e.call(t, "POST", "/v1/devices/"+device+"/views", premium, `{"title_id":"tt-first-light"}`)
		if status != 201 {
			t.Fatalf("start on %s = %d %v", device, status, doc)
		}
		views = append(views, device+"/views/"+viewID(doc))
		time.Sleep(2 * time.Millisecond) // starts a millisecond apart at least, as the store records them
	}
	// A heartbeat naming another device's view ends nothing.
	for _, v := range views {
		if strings.Contains(v, "/views/v0-") {
			continue
		}
		_, id, _ := strings.Cut(v, "/views/")
		if status, _, doc := e.call(t, "POST", "/v1/devices/somewhere-else/views/"+id+"/heartbeat", basic, `{"position_ms":1,"state":"playing","seq":1}`); status != 404 {
			t.Errorf("heartbeat of %s from another device = %d %v, want 404", id, status, doc)
		}
	}
	// A view already stopped says so, not PLAN_CHANGED.
	stopped := views[len(views)-1]
	if strings.Contains(stopped, "/views/v0-") {
		stopped = views[0]
	}
	if status, _, doc := e.call(t, "POST", "/v1/devices/"+stopped+"/stop", premium, `{"position_ms":500}`); status != 200 {
		t.Fatalf("stop %s = %d %v", stopped, status, doc)
	}
	// The newest live view is the one the one-screen plan keeps: the
	// screens list says so before any heartbeat, and the heartbeats agree.
	newest := views[len(views)-1]
	if newest == stopped {
		newest = views[len(views)-2]
	}
	_, newestID, _ := strings.Cut(newest, "/views/")
	if _, _, doc := e.call(t, "GET", "/v1/views", basic, ""); doc["in_use"] != 1.0 || doc["limit"] != 1.0 || !strings.Contains(fmt.Sprint(doc["screens"]), newestID) {
		t.Errorf("screens on basic before any heartbeat = %v; want %s alone", doc, newestID)
	}
	for _, v := range views {
		if v == stopped {
			if status, _, doc := e.call(t, "POST", "/v1/devices/"+v+"/heartbeat", basic, `{"position_ms":1000,"state":"playing","seq":1}`); status != 409 || doc["reason"] != string(viewing.Stopped) {
				t.Errorf("heartbeat of the stopped %s on basic = %d %v, want 409 STOPPED", v, status, doc)
			}
			continue
		}
		status, _, doc := e.call(t, "POST", "/v1/devices/"+v+"/heartbeat", basic, `{"position_ms":1000,"state":"playing","seq":1}`)
		switch {
		case status == 200 && v == newest:
		case status == 409 && doc["reason"] == string(viewing.PlanChanged) && v != newest:
		default:
			t.Errorf("heartbeat of %s on basic = %d %v; want only the newest, %s, kept", v, status, doc, newest)
		}
	}
	if _, _, doc := e.call(t, "GET", "/v1/views", basic, ""); doc["in_use"] != 1.0 || !strings.Contains(fmt.Sprint(doc["screens"]), newestID) {
		t.Errorf("after the heartbeats: screens %v; want the newest view alone", doc)
	}
	// It plays on: its next heartbeat is applied.
	if status, _, doc := e.call(t, "POST", "/v1/devices/"+newest+"/heartbeat", basic, `{"position_ms":31000,"state":"playing","seq":2}`); status != 200 {
		t.Errorf("the kept view's next heartbeat = %d %v", status, doc)
	}
}

// TestHostileViewingRequests: bad input to the viewing routes gets a 4xx
// with a stable code, never a 5xx, and changes no screen.
func TestHostileViewingRequests(t *testing.T) {
	e := start(t, "memory")
	alice, bob := e.token(t, "alice", "premium"), e.token(t, "bob", "premium")
	status, _, doc := e.call(t, "POST", "/v1/devices/tv/views", alice, `{"title_id":"tt-first-light"}`)
	if status != 201 {
		t.Fatalf("start = %d %v", status, doc)
	}
	view := viewID(doc)
	beatPath := "/v1/devices/tv/views/" + view + "/heartbeat"
	if status, _, doc := e.call(t, "POST", beatPath, alice, `{"position_ms":60000,"state":"playing","seq":5}`); status != 200 {
		t.Fatalf("heartbeat = %d %v", status, doc)
	}
	nobody := e.token(t, "dave", "platinum")
	cases := []struct {
		name, method, path, token, body string
		status                          int
		code                            string
	}{
		{"unknown title", "POST", "/v1/devices/tv/views", alice, `{"title_id":"tt-nowhere"}`, 404, licensing.CodeTitleNotFound},
		{"a title not yet available", "POST", "/v1/devices/tv/views", alice, `{"title_id":"tt-coming-soon"}`, 403, licensing.CodeTitleNotAvailable},
		{"no title", "POST", "/v1/devices/tv/views", alice, `{}`, 400, kernel.CodeInvalidInput},
		{"a bad profile", "POST", "/v1/devices/tv/views", alice, `{"title_id":"tt-first-light","profile_id":"<script>"}`, 400, kernel.CodeInvalidInput},
		{"a plan without streaming", "POST", "/v1/devices/tv/views", nobody, `{"title_id":"tt-first-light"}`, 403, licensing.CodePlanNotEligible},
		{"another member's view: heartbeat", "POST", beatPath, bob, `{"position_ms":1,"state":"playing","seq":9}`, 404, viewing.CodeViewNotFound},
		{"another member's view: end", "DELETE", "/v1/views/" + view, bob, "", 404, viewing.CodeViewNotFound},
		{"another member's view: stop", "POST", "/v1/devices/tv/views/" + view + "/stop", bob, `{"position_ms":1}`, 404, viewing.CodeViewNotFound},
		{"another device's view", "POST", "/v1/devices/phone/views/" + view + "/heartbeat", alice, `{"position_ms":1,"state":"playing","seq":9}`, 404, viewing.CodeViewNotFound},
		{"an unknown view", "POST", "/v1/devices/tv/views/v3-unknown/heartbeat", alice, `{"position_ms":1,"state":"playing","seq":9}`, 404, viewing.CodeViewNotFound},
		{"a view id no view has", "POST", "/v1/devices/tv/views/x/heartbeat", alice, `{"position_ms":1,"state":"playing","seq":9}`, 404, viewing.CodeViewNotFound},
		{"a negative position", "POST", beatPath, alice, `{"position_ms":-1,"state":"playing","seq":9}`, 400, kernel.CodeInvalidInput},
		{"an absurd position", "POST", beatPath, alice, `{"position_ms":99999999999999,"state":"playing","seq":9}`, 400, kernel.CodeInvalidInput},
		{"a position past the end", "POST", beatPath, alice, `{"position_ms":6360001,"state":"playing","seq":9}`, 400, viewing.CodePositionOutOfRange},
		{"an out-of-order heartbeat", "POST", beatPath, alice, `{"position_ms":30000,"state":"playing","seq":4}`, 409, viewing.CodeOutOfOrder},
		{"no seq", "POST", beatPath, alice, `{"position_ms":1,"state":"playing"}`, 400, kernel.CodeInvalidInput},
		{"an unknown state", "POST", beatPath, alice, `{"position_ms":1,"state":"rewinding","seq":9}`, 400, kernel.CodeInvalidInput},
		{"a fractional position", "POST", beatPath, alice, `{"position_ms":1.5,"state":"playing","seq":9}`, 400, "MALFORMED_JSON"},
		{"malformed JSON", "POST", beatPath, alice, `{"position_ms":`, 400, "MALFORMED_JSON"},
		{"an unknown field", "POST", beatPath, alice, `{"position_ms":1,"state":"playing","seq":9,"member":"bob"}`, 400, "UNKNOWN_FIELD"},
		{"an oversized body", "POST", beatPath, alice, `{"state":"` + strings.Repeat("p", 300<<10) + `"}`, 413, "BODY_TOO_LARGE"},
		{"a stop past the end", "POST", "/v1/devices/tv/views/" + view + "/stop", alice, `{"position_ms":6360001}`, 400, viewing.CodePositionOutOfRange},
		{"a body on DELETE", "DELETE", "/v1/views/" + view, alice, `{"force":true}`, 400, "UNKNOWN_FIELD"},
		{"resume of an unknown title", "GET", "/v1/titles/tt-nowhere/resume", alice, "", 404, licensing.CodeTitleNotFound},
		{"resume of a bad profile", "GET", "/v1/titles/tt-first-light/resume?profile=%3Cb%3E", alice, "", 400, kernel.CodeInvalidInput},
	}
	before := screensOf(t, e, alice)
	for _, c := range cases {
		status, hdr, doc := e.call(t, c.method, c.path, c.token, c.body)
		if status != c.status || doc["code"] != c.code || hdr.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %s %s = %d %v, want %d %s as problem+json", c.name, c.method, c.path, status, doc, c.status, c.code)
		}
	}
	if after := screensOf(t, e, alice); after != before {
		t.Errorf("alice's screens changed under bad requests:\n%s\nwant\n%s", after, before)
	}
}

func screensOf(t *testing.T, e *env, token string) string {
	t.Helper()
	_, _, doc := e.call(t, "GET", "/v1/views", token, "")
	return fmt.Sprint(doc)
}

// TestARetriedStartEndsNoLiveView: a start retried with its
// Idempotency-Key after its view was replaced on the same device (the
// player gave up waiting and started again without the key) is told its
// view ended (409 VIEW_ENDED, REPLACED): it starts nothing, and the
// device's current view plays on. The same key with another title is a
// conflict. On both stores.
func TestARetriedStartEndsNoLiveView(t *testing.T) {
	for _, store := range []string{"memory", "dynamo"} {
		t.Run(store, func(t *testing.T) {
			e := start(t, store)
			tok := e.token(t, "rita", "premium")
			status, _, doc := e.call(t, "POST", "/v1/devices/tv/views", tok, `{"title_id":"tt-first-light"}`, "Idempotency-Key", "start-1")
			first := viewID(doc)
			if status != 201 || first == "" {
				t.Fatalf("start = %d %v", status, doc)
			}
			status, _, doc = e.call(t, "POST", "/v1/devices/tv/views", tok, `{"title_id":"tt-low-tide"}`)
			current := viewID(doc)
			if status != 201 || current == "" || current == first {
				t.Fatalf("second start on the tv = %d %v", status, doc)
			}
			status, _, doc = e.call(t, "POST", "/v1/devices/tv/views", tok, `{"title_id":"tt-first-light"}`, "Idempotency-Key", "start-1")
			if status != 409 || doc["code"] != "VIEW_ENDED" || doc["reason"] != "REPLACED" {
				t.Errorf("the first start retried = %d %v; want 409 VIEW_ENDED, REPLACED", status, doc)
			}
			status, _, doc = e.call(t, "POST", "/v1/devices/tv/views", tok, `{"title_id":"tt-paper-moons"}`, "Idempotency-Key", "start-1")
			if status != 409 || doc["code"] != "IDEMPOTENCY_KEY_REUSED" {
				t.Errorf("the key with another title = %d %v; want 409 IDEMPOTENCY_KEY_REUSED", status, doc)
			}
			if _, _, doc := e.call(t, "GET", "/v1/views", tok, ""); doc["in_use"] != 1.0 || !strings.Contains(fmt.Sprint(doc["screens"]), current) {
				t.Errorf("screens after the retries = %v; want the tv's current view %s alone", doc, current)
			}
			if status, _, doc := e.call(t, "POST", "/v1/devices/tv/views/"+current+"/heartbeat", tok, `{"position_ms":30000,"state":"playing","seq":1}`); status != 200 {
				t.Errorf("the current view's heartbeat = %d %v", status, doc)
			}
		})
	}
}
