package console_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/httpapi"
)

// Markup an attacker might get into a member's data (the API refuses such
// ids, but a title's name, a message or a future field might carry it).
const (
	evilImg    = `<img src=x onerror="window.__xss=1">`
	evilScript = `<script>window.__xss=1</script>`
	evilAttr   = `"><svg onload="window.__xss=1"><b x="`
)

// crafted answers the console's data calls with the markup above in every
// string the page shows; the page itself comes from the real handler.
func crafted(t *testing.T, gateway http.Handler) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var auth []string
	at := time.Now().UTC().Add(-time.Hour)
	ts := func(d time.Duration) string { return at.Add(d).Format(time.RFC3339Nano) }
	rules := []map[string]any{{"code": evilImg, "message": evilScript}}
	ref := map[string]any{"licence_id": evilAttr, "title_id": evilScript, "studio_id": evilImg, "issued_at": ts(0), "expires_at": ts(48 * time.Hour)}
	answers := map[string]any{
		"/v1/admin/members/x/events": map[string]any{"member_id": "x", "version": 3, "snapshot_version": 2, "next_after": nil, "events": []any{
			map[string]any{"version": 1, "type": "LicenceAcquired", "at": ts(0), "policy_version": evilScript, "data": map[string]any{
				"licence_id": evilAttr, "plan": evilImg, "title_id": evilScript, "studio_id": evilImg, "device_id": evilImg, "expires_at": ts(48 * time.Hour)}},
			map[string]any{"version": 2, "type": "PlaybackRecorded", "at": ts(time.Minute), "data": map[string]any{"device_id": evilImg,
				"accepted": []any{map[string]any{"id": evilScript, "licence_id": evilAttr, "title_id": evilScript, "kind": "START", "position_ms": 0, "device_time": ts(30 * time.Second)}},
				"results":  []any{map[string]any{"id": evilScript, "code": "ACCEPTED"}}}},
			map[string]any{"version": 3, "type": "LicenceReleased", "at": ts(2 * time.Minute), "data": map[string]any{"licence_id": evilAttr, "reason": "DELETED_BY_MEMBER", "ref": ref}},
		}},
		"/v1/admin/members/x/timeline": map[string]any{"member": "x", "at": ts(time.Hour), "version": 3, "events": 3,
			"licences": []any{map[string]any{"licence_id": evilAttr, "title_id": evilScript, "studio_id": evilImg, "device_id": evilImg, "status": "RELEASED",
				"issued_at": ts(0), "expires_at": ts(48 * time.Hour), "playable_until": ts(48 * time.Hour), "renewals": 0, "plays": 1,
				"released_at": ts(2 * time.Minute), "release_reason": evilScript}},
			"refusals": []any{map[string]any{"at": ts(90 * time.Second), "version": 2, "command": "acquire", "plan": evilImg, "device_id": evilScript, "title_id": evilAttr, "rules": rules}}},
		"/v1/admin/members/x/history": map[string]any{"entries": []any{map[string]any{"view_id": evilAttr, "title_id": evilScript, "profile_id": evilImg, "device_id": evilAttr,
			"started_at": ts(3 * time.Minute), "last_seen_at": ts(5 * time.Minute), "watched_ms": 120000, "position_ms": 120000, "furthest_ms": 120000, "completed": false, "ended": evilScript}}},
		"/v1/admin/members/x/what-if": map[string]any{"member": "x", "policy_version": evilScript, "events": 3,
			"divergences": []any{map[string]any{"version": 1, "at": ts(0), "type": "LicenceAcquired", "licence_id": evilAttr, "title_id": evilScript, "rules": rules}},
			"would_grant": []any{map[string]any{"refusal": map[string]any{"at": ts(90 * time.Second), "version": 2, "command": "acquire", "plan": "premium",
				"device_id": evilImg, "title_id": evilScript, "rules": rules}}}},
		"/v1/admin/titles/t/counts":              map[string]any{"title_id": evilScript, "granted": 1, "active": 0},
		"/v1/admin/days/2026-01-02/most-watched": map[string]any{"day": evilImg, "titles": []any{map[string]any{"title_id": evilScript, "views": 1, "watched_ms": 1, "completions": 0}}},
	}
	mux := http.NewServeMux()
	// The console's own files from the API's handler, but without their
	// CSP: the test proves the page never parses data as markup, not
	// merely that the CSP would stop what it parsed.
	page := func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		gateway.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			if k != "Content-Security-Policy" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}
	mux.HandleFunc("GET /console", page)
	mux.HandleFunc("GET /console/{file}", page)
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization")+" "+r.URL.RawQuery)
		mu.Unlock()
		doc, ok := answers[r.URL.Path]
		status := http.StatusOK
		if !ok {
			// A refusal whose code and detail carry markup too.
			doc, status = map[string]any{"type": "urn:dlicense:problem:INVALID_INPUT", "title": evilImg, "status": 400, "code": evilImg, "detail": evilScript}, http.StatusBadRequest
			w.Header().Set("Content-Type", "application/problem+json")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(doc)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), auth...) }
}

// TestConsoleShowsDataAsText feeds the console markup in every string it
// shows: none of it runs or becomes an element; all of it shows as text.
func TestConsoleShowsDataAsText(t *testing.T) {
	s := startServer(t)
	// The real page comes with its CSP.
	for _, path := range []string{"/console", "/console/console.js", "/console/console.css"} {
		resp, err := http.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") != httpapi.ConsoleCSP || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s = %d, CSP %q, nosniff %q; want 200 with the console's CSP", path, resp.StatusCode, resp.Header.Get("Content-Security-Policy"), resp.Header.Get("X-Content-Type-Options"))
		}
	}

	b := browser(t)
	srv, requests := crafted(t, s.gateway)
	const token = "fake.admin.token"
	b.open(t, srv.URL, token, "x")
	b.do(t, "open the raw events", chromedp.Click(chromedp.CSS(`#raw summary`)))
	b.show(t, "whatif")
	b.do(t, "run what-if", chromedp.SetValue(chromedp.ID("policy"), string(licensing.DefaultPolicyJSON())), chromedp.Click(chromedp.CSS(`#whatif-form button[type=submit]`)))
	b.wait(t, "the what-if table", `document.getElementById('whatif-table') !== null`)
	b.show(t, "titles")
	b.do(t, "read a title's counts", chromedp.SetValue(chromedp.ID("title-id"), "t"), chromedp.Click(chromedp.CSS(`#title-form button`)))
	b.wait(t, "the title's counts", `document.getElementById('title-table') !== null`)
	b.do(t, "read a studio's counts", chromedp.SetValue(chromedp.ID("studio-id"), "s"), chromedp.SetValue(chromedp.ID("studio-day"), "2026-01-02"),
		chromedp.Click(chromedp.CSS(`#studio-form button`)))
	b.wait(t, "the studio's refusal", `document.querySelector('#studio-error code') !== null`)
	b.do(t, "read the most watched", chromedp.SetValue(chromedp.ID("watched-day"), "2026-01-02"), chromedp.Click(chromedp.CSS(`#watched-form button`)))
	b.wait(t, "the most watched", `document.getElementById('watched-table') !== null`)
	b.show(t, "member")
	b.shot(t, "xss-member")

	type page struct {
		XSS      string   `json:"xss"`
		Elements []string `json:"elements"`
		Handlers int      `json:"handlers"`
		Missing  []string `json:"missing"`
		Refusal  string   `json:"refusal"`
		Lanes    []string `json:"lanes"`
		Problem  string   `json:"problem"`
	}
	p := eval[page](t, b, fmt.Sprintf(`(() => {
	  const text = document.body.textContent;
	  return {
	    xss: typeof window.__xss,
	    elements: [...document.querySelectorAll('img, iframe, object, embed, b, script:not([src="/console/console.js"]), svg svg, foreignObject')].map(e => e.outerHTML),
	    handlers: [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
	    missing: [%q, %q, %q].filter(s => !text.includes(s)),
	    refusal: [...document.querySelectorAll('#timeline [data-kind="refusal"] text')].map(e => e.textContent).join(' '),
	    lanes: [...document.querySelectorAll('#timeline g[data-device]')].map(g => g.getAttribute('data-device')),
	    problem: document.getElementById('studio-error').textContent,
	  };
	})()`, evilImg, evilScript, evilAttr))
	if p.XSS != "undefined" || len(p.Elements) > 0 || p.Handlers > 0 {
		t.Errorf("markup from the API ran or became elements: window.__xss is %s, elements %q, %d elements with handlers", p.XSS, p.Elements, p.Handlers)
	}
	if len(p.Missing) > 0 {
		t.Errorf("the page does not show %q as text", p.Missing)
	}
	if p.Refusal != evilImg {
		t.Errorf("refusal label = %q, want the rule code as text %q", p.Refusal, evilImg)
	}
	if want := []string{evilImg, evilScript, evilAttr}; strings.Join(p.Lanes, "|") != strings.Join(want, "|") {
		t.Errorf("lanes = %q, want %q", p.Lanes, want)
	}
	if !strings.Contains(p.Problem, "400 "+evilImg+": "+evilScript) {
		t.Errorf("the studio's refusal shows %q, want its status, code and detail as text", p.Problem)
	}
	// The token went in the Authorization header of every call, and
	// nowhere else.
	calls := requests()
	for _, c := range calls {
		if !strings.Contains(c, " Bearer "+token+" ") || strings.Count(c, token) != 1 {
			t.Errorf("call %q: want the token once, in the Authorization header", c)
		}
	}
	if len(calls) < 6 {
		t.Errorf("%d calls, want at least 6: %q", len(calls), calls)
	}
	b.quiet(t, "the server responded with a status of 400")
}
