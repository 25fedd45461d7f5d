package deploytest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/akrylysov/algnhsa"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/httpapi"
	"github.com/dlicense/dlicense/infra/setup"
	"github.com/dlicense/dlicense/infra/tokens"
)

// exampleLicence stands, in the sample events, for the licence the acquire
// event grants, and exampleView for the view the start event makes: their
// ids are random, so the test puts the real ones in.
const (
	exampleLicence = "L-EXAMPLE"
	exampleView    = "v0-exampleview0000001"
)

// deviceTime matches the device clock times in sample playback uploads.
var deviceTime = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)

// apiEvents reads the API Gateway v2 events of ../../../events by file name;
// other samples there (stream records) are not for the API.
func apiEvents(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("../../../events/*.json")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var shape struct {
			Version  string `json:"version"`
			RouteKey string `json:"routeKey"`
		}
		if err := json.Unmarshal(b, &shape); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if shape.Version == "2.0" && shape.RouteKey != "" {
			out[filepath.Base(f)] = b
		}
	}
	return out
}

// TestEveryRouteHasASampleEvent: each route of the handler has a sample,
// and each sample is a request its route key really matches, with the path
// parameters API Gateway would extract.
func TestEveryRouteHasASampleEvent(t *testing.T) {
	var matched *http.Request
	mux := http.NewServeMux()
	for _, r := range httpapi.Routes() {
		mux.HandleFunc(r, func(_ http.ResponseWriter, r *http.Request) { matched = r })
	}
	covered := map[string]bool{}
	for name, b := range apiEvents(t) {
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		covered[ev.RouteKey] = true
		if !slices.Contains(httpapi.Routes(), ev.RouteKey) {
			t.Errorf("%s: routeKey %q is not a route of httpapi.Routes()", name, ev.RouteKey)
		}
		if ev.RequestContext.RouteKey != ev.RouteKey || ev.RequestContext.HTTP.Path != ev.RawPath {
			t.Errorf("%s: requestContext (%q, %q) disagrees with routeKey %q, rawPath %q", name, ev.RequestContext.RouteKey, ev.RequestContext.HTTP.Path, ev.RouteKey, ev.RawPath)
		}
		matched = nil
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(ev.RequestContext.HTTP.Method, ev.RawPath, nil))
		if matched == nil || matched.Pattern != ev.RouteKey {
			t.Errorf("%s: %s %s is not routed to %q", name, ev.RequestContext.HTTP.Method, ev.RawPath, ev.RouteKey)
			continue
		}
		if n := strings.Count(ev.RouteKey, "{"); len(ev.PathParameters) != n {
			t.Errorf("%s: %d pathParameters, the route has %d", name, len(ev.PathParameters), n)
		}
		for k, v := range ev.PathParameters {
			if matched.PathValue(k) != v {
				t.Errorf("%s: pathParameters[%s] = %q, the path says %q", name, k, v, matched.PathValue(k))
			}
		}
	}
	for _, r := range httpapi.Routes() {
		if !covered[r] {
			t.Errorf("route %q has no sample event in events/", r)
		}
	}
}

// step is one sample event and the answer it must get.
type step struct {
	file        string
	status      int
	contentType string
	check       func(t *testing.T, doc map[string]any)
}

// TestSampleEventsThroughTheLambdaPath builds the API exactly as the Lambda
// does (setup.Assemble, algnhsa, lambda.NewHandler: what lambda.Start wraps the
// handler in), on the embedded store, and feeds it every sample event in the
// order a device would send them.
func TestSampleEventsThroughTheLambdaPath(t *testing.T) {
	key, err := tokens.GenerateKey("test")
	if err != nil {
		t.Fatal(err)
	}
	runSamples(t, "memory", setup.Config{SigningKeys: key.Encode(), Issuer: "dlicense", PlanClaim: "plan"})
}

// runSamples feeds every sample event, in a device's order, to the API
// built from cfg as the Lambda builds it.
func runSamples(t *testing.T, store string, cfg setup.Config) {
	ctx := context.Background()
	parts, err := local.Build(ctx, store, cfg)
	if err != nil {
		t.Fatalf("setup.Build = %v", err)
	}
	h := lambda.NewHandler(algnhsa.New(parts.Handler(), &algnhsa.Options{RequestType: algnhsa.RequestTypeAPIGatewayV2}))
	playSamples(t, h.Invoke, parts.Signer.JWKS(), nil)
}

// playSamples feeds every sample event, in a device's order, to invoke (a
// Lambda's handler, however it runs), whose licence tokens jwks verifies;
// answers gives other statuses to some samples (a deployment without the
// jobs' engine answers its routes 503).
func playSamples(t *testing.T, invoke func(context.Context, []byte) ([]byte, error), jwks []byte, answers map[string]int) {
	ctx := context.Background()
	var licence, view, licenceToken, job string
	var issued time.Time
	samples := apiEvents(t)
	var acquire events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(samples["acquire.json"], &acquire); err != nil || acquire.RequestContext.Authorizer == nil {
		t.Fatalf("events/acquire.json: %v, want an event with JWT claims", err)
	}
	member := acquire.RequestContext.Authorizer.JWT.Claims["sub"]
	steps := []step{
		{"acquire.json", 201, "application/json", func(t *testing.T, doc map[string]any) {
			l, _ := doc["licence"].(map[string]any)
			licence, _ = l["licence_id"].(string)
			licenceToken = str(doc["token"])
			issued, _ = time.Parse(time.RFC3339Nano, str(l["issued_at"]))
			if licence == "" || l["status"] != "ACTIVE" || l["title_id"] != "tt-first-light" || l["device_id"] != "pixel-8a" || issued.IsZero() {
				t.Fatalf("licence = %v, want an ACTIVE tt-first-light licence on pixel-8a", l)
			}
			claims, err := tokens.Verify(str(doc["token"]), jwks, "dlicense", time.Now())
			if err != nil || claims.Member != member || claims.Licence.LicenceID != licence {
				t.Errorf("token = %+v, %v; want a token of the licence for the event's sub", claims, err)
			}
		}},
		{"sync.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			if ids := licenceIDs(doc["active"]); !slices.Equal(ids, []string{licence}) || fmt.Sprint(doc["delete"]) != "[]" {
				t.Errorf("sync = %v, want %s active and nothing to delete", doc, licence)
			}
		}},
		{"renew.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			l, _ := doc["licence"].(map[string]any)
			if l["licence_id"] != licence || l["renewals"] != 1.0 || str(doc["token"]) == "" {
				t.Errorf("renew = %v, want %s renewed once, with a token", doc, licence)
			}
		}},
		{"playback.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			results, _ := doc["results"].([]any)
			if len(results) == 0 {
				t.Fatalf("playback = %v, want results", doc)
			}
			for _, r := range results {
				if r.(map[string]any)["code"] != "ACCEPTED" {
					t.Errorf("playback result %v, want ACCEPTED", r)
				}
			}
		}},
		{"eligibility.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			if doc["eligible"] != true {
				t.Errorf("eligibility = %v, want eligible", doc)
			}
		}},
		{"release.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			l, _ := doc["licence"].(map[string]any)
			if l["licence_id"] != licence || l["status"] != "RELEASED" || doc["token"] != nil {
				t.Errorf("release = %v, want %s RELEASED without a token", doc, licence)
			}
		}},
		{"licence-status.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			// The licence of the sample's token was released: a verifier
			// refuses it, though its token has not expired.
			results, _ := doc["results"].([]any)
			if len(results) != 1 || results[0].(map[string]any)["status"] != "RELEASED" || results[0].(map[string]any)["valid"] != false {
				t.Errorf("licence status = %v, want the released licence refused", doc)
			}
		}},
		{"release-device.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			// The one licence is released already: nothing is left to release.
			if released, ok := doc["released"].([]any); !ok || len(released) != 0 {
				t.Errorf("release device = %v, want an empty released list", doc)
			}
		}},
		{"admin-title-counts.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			// Counts come from the stream function, which does not run here.
			if doc["title_id"] != "tt-first-light" || doc["granted"] == nil || doc["active"] == nil {
				t.Errorf("title counts = %v, want granted and active of tt-first-light", doc)
			}
		}},
		{"admin-studio-day-counts.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			if doc["studio_id"] != "open-reel" || doc["day"] != "2026-11-26" || doc["granted"] == nil {
				t.Errorf("studio day counts = %v", doc)
			}
		}},
		{"admin-timeline.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			// By then the member acquired, renewed and released one licence.
			if doc["member"] != member || doc["version"] == 0.0 || doc["licences"] == nil {
				t.Errorf("timeline = %v, want the sample member's replayed state", doc)
			}
		}},
		{"admin-member-events.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			events, _ := doc["events"].([]any)
			if doc["member_id"] != member || len(events) == 0 || events[0].(map[string]any)["type"] != "LicenceAcquired" || doc["version"] != float64(len(events)) {
				t.Errorf("member events = %v, want the sample member's log from its acquisition", doc)
			}
		}},
		{"admin-member-history.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			if _, ok := doc["entries"].([]any); !ok {
				t.Errorf("member history = %v, want a page of entries", doc)
			}
		}},
		{"admin-policy.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			if doc["version"] == nil || doc["plans"] == nil {
				t.Errorf("policy = %v, want the policy document in force", doc)
			}
		}},
		{"admin-what-if.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			if doc["policy_version"] != "what-if-1" || doc["divergences"] == nil {
				t.Errorf("what-if = %v", doc)
			}
		}},
		{"view-start.json", 201, "application/json", func(t *testing.T, doc map[string]any) {
			v, _ := doc["view"].(map[string]any)
			view, _ = v["view_id"].(string)
			if view == "" || v["device_id"] != "living-room-tv" || v["title_id"] != "tt-first-light" || v["profile_id"] != "family" || doc["heartbeat_interval_s"] != 30.0 {
				t.Fatalf("start = %v, want a view of tt-first-light on living-room-tv, heartbeats every 30 s", doc)
			}
			if r, _ := doc["resume"].(map[string]any); r["resume_from_ms"] != 0.0 || r["completed"] != false {
				t.Errorf("resume = %v, want the start of a title never watched", doc["resume"])
			}
		}},
		{"view-heartbeat.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			if doc["view_id"] != view || doc["position_ms"] != 30000.0 || doc["state"] != "playing" || doc["seq"] != 1.0 || doc["repeated"] != false {
				t.Errorf("heartbeat = %v, want %s at 30 s, playing", doc, view)
			}
		}},
		{"views.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			screens, _ := doc["screens"].([]any)
			if doc["limit"] != 4.0 || doc["in_use"] != 1.0 || len(screens) != 1 || screens[0].(map[string]any)["position_ms"] != 30000.0 {
				t.Errorf("screens = %v, want 1 of 4 in use, at 30 s", doc)
			}
		}},
		{"resume.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			// Resume points come from the stream function, which does not run here.
			if doc["title_id"] != "tt-first-light" || doc["profile_id"] != "family" || doc["runtime_ms"] != 6360000.0 {
				t.Errorf("resume = %v, want the family profile's point in tt-first-light", doc)
			}
		}},
		{"view-stop.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			if doc["view_id"] != view || doc["ended"] != "STOPPED" {
				t.Errorf("stop = %v, want %s STOPPED", doc, view)
			}
		}},
		{"view-end.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			// Stopped already: ending it changes nothing and says so.
			if doc["view_id"] != view || doc["ended"] != "STOPPED" {
				t.Errorf("end = %v, want %s, already STOPPED", doc, view)
			}
		}},
		{"history.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			// History comes from the stream function, which does not run here.
			if entries, ok := doc["entries"].([]any); !ok || len(entries) != 0 || doc["next_cursor"] != nil {
				t.Errorf("history = %v, want an empty first page", doc)
			}
		}},
		{"recently-watched.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			if titles, ok := doc["titles"].([]any); !ok || len(titles) != 0 || doc["profile_id"] != "family" {
				t.Errorf("recently watched = %v, want the family profile's empty row", doc)
			}
		}},
		{"recently-watched-remove.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			if doc["title_id"] != "tt-low-tide" || doc["removed"] != false || doc["profile_id"] != "family" {
				t.Errorf("remove from the row = %v, want tt-low-tide out of the family row (it was not in it)", doc)
			}
		}},
		{"admin-member-row.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			if titles, ok := doc["titles"].([]any); !ok || len(titles) != 0 || doc["removed"] == nil {
				t.Errorf("member row = %v, want an empty row and its removals", doc)
			}
		}},
		{"admin-title-engagement.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			if doc["title_id"] != "tt-first-light" || doc["views"] != 0.0 || doc["watched_ms"] != 0.0 || doc["completions"] != 0.0 {
				t.Errorf("title engagement = %v", doc)
			}
		}},
		{"admin-most-watched.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			if titles, ok := doc["titles"].([]any); !ok || len(titles) != 0 || doc["day"] != "2026-11-02" {
				t.Errorf("most watched = %v", doc)
			}
		}},
		{"history-erase.json", 202, "application/json", func(t *testing.T, doc map[string]any) {
			if e, _ := doc["erasure"].(map[string]any); e["state"] != "pending" || e["requested_at"] == nil {
				t.Errorf("erase = %v, want a pending erasure", doc)
			}
		}},
		{"admin-erase-member.json", 409, "application/problem+json", func(t *testing.T, doc map[string]any) {
			// The member's own erasure is still under way: the stream
			// function that carries it out does not run here.
			if doc["code"] != "ERASURE_IN_PROGRESS" {
				t.Errorf("erase again = %v, want ERASURE_IN_PROGRESS", doc)
			}
		}},
		{"admin-close-account.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			// The sample member's one licence was released already.
			if released, ok := doc["released"].([]any); !ok || len(released) != 0 || doc["more"] != false {
				t.Errorf("close account = %v, want nothing left to release", doc)
			}
		}},
		{"admin-withdraw-title.json", 202, "application/json", func(t *testing.T, doc map[string]any) {
			if w, _ := doc["withdrawal"].(map[string]any); w["title_id"] != "tt-first-light" || w["done"] != false {
				t.Errorf("withdraw a title = %v", doc)
			}
		}},
		{"admin-withdrawal.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			if w, _ := doc["withdrawal"].(map[string]any); w["title_id"] != "tt-first-light" || w["licences_ended"] != 0.0 {
				t.Errorf("withdrawal = %v", doc)
			}
		}},
		{"admin-withdraw-studio.json", 202, "application/json", func(t *testing.T, doc map[string]any) {
			if ws, _ := doc["withdrawals"].([]any); doc["studio_id"] != "harbour" || len(ws) == 0 {
				t.Errorf("withdraw a studio = %v", doc)
			}
		}},
		{"admin-start-job.json", 202, "application/json", func(t *testing.T, doc map[string]any) {
			if job, _ = doc["job_id"].(string); doc["kind"] != "recount" || doc["state"] != "RUNNING" || job == "" {
				t.Errorf("start a job = %v", doc)
			}
		}},
		{"admin-job.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			if doc["job_id"] != job || doc["kind"] != "recount" || doc["segments"] != 4.0 {
				t.Errorf("the job = %v, want %s, a recount over 4 segments", doc, job)
			}
		}},
		{"admin-audit.json", 200, "application/json", func(t *testing.T, doc map[string]any) {
			// The operator's own trail: the erasure above among its calls,
			// with who (subject and app client), what, which member, when
			// and how it ended.
			records, _ := doc["records"].([]any)
			found := false
			for _, x := range records {
				r := x.(map[string]any)
				if r["route"] == "DELETE /v1/admin/members/{member}/viewing" {
					found = r["member"] == member && r["status"] == 409.0 && r["client_id"] == "example-ops-console-client" && r["actor"] == doc["actor"] && r["at"] != nil
				}
			}
			if len(records) < 5 || !found {
				t.Errorf("audit = %v, want the operator's calls, the erasure among them", doc)
			}
		}},
		{"console.json", 200, "text/html; charset=utf-8", nil},
		{"console-file.json", 200, "text/javascript; charset=utf-8", nil},
		{"jwks.json", 200, "application/jwk-set+json", func(t *testing.T, doc map[string]any) {
			keys, _ := doc["keys"].([]any)
			if len(keys) != 1 || keys[0].(map[string]any)["kid"] != "test" {
				t.Errorf("jwks = %v, want the one key \"test\"", doc)
			}
		}},
	}

	files := make([]string, len(steps))
	for i, s := range steps {
		files[i] = s.file
	}
	checkCovered(t, samples, files)

	for _, s := range steps {
		payload, ok := samples[s.file]
		if !ok {
			continue
		}
		payload = personalise(payload, licence, issued)
		if licenceToken != "" {
			payload = []byte(strings.ReplaceAll(string(payload), "LICENCE_TOKEN_EXAMPLE", licenceToken))
		}
		if view != "" {
			payload = []byte(strings.ReplaceAll(string(payload), exampleView, view))
		}
		if job != "" {
			payload = []byte(strings.ReplaceAll(string(payload), "JOB_ID_EXAMPLE", job))
		}
		if status, ok := answers[s.file]; ok {
			s = step{s.file, status, "application/problem+json", func(*testing.T, map[string]any) {}}
		}
		out, err := invoke(ctx, payload)
		if err != nil {
			t.Fatalf("Invoke(%s) = %v", s.file, err)
		}
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("%s: response %s: %v", s.file, out, err)
		}
		if resp.StatusCode != s.status || resp.Headers["Content-Type"] != s.contentType {
			t.Fatalf("%s = %d %s %s, want %d %s", s.file, resp.StatusCode, resp.Headers["Content-Type"], resp.Body, s.status, s.contentType)
		}
		if s.check == nil {
			// The support console's files: served with their policy.
			if resp.Body == "" || !strings.Contains(resp.Headers["Content-Security-Policy"], "script-src 'self'") {
				t.Errorf("%s = %d bytes, CSP %q; want the file with the console's policy", s.file, len(resp.Body), resp.Headers["Content-Security-Policy"])
			}
			continue
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(resp.Body), &doc); err != nil {
			t.Fatalf("%s: body %q: %v", s.file, resp.Body, err)
		}
		s.check(t, doc)
	}
}

// personalise puts the granted licence's id in place of the placeholder and
// moves the device clock times of a playback upload to just after the grant,
// in their order, a second apart: the sample's own times are in the past of
// a licence granted now.
func personalise(payload []byte, licence string, issued time.Time) []byte {
	if licence == "" {
		return payload
	}
	payload = []byte(strings.ReplaceAll(string(payload), exampleLicence, licence))
	times := deviceTime.FindAllString(string(payload), -1)
	slices.Sort(times)
	times = slices.Compact(times)
	return deviceTime.ReplaceAllFunc(payload, func(b []byte) []byte {
		i, _ := slices.BinarySearch(times, string(b))
		return []byte(issued.Add(time.Duration(i) * time.Second).UTC().Format(time.RFC3339))
	})
}

func licenceIDs(v any) []string {
	var ids []string
	list, _ := v.([]any)
	for _, l := range list {
		m, _ := l.(map[string]any)
		ids = append(ids, str(m["licence_id"]))
	}
	return ids
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// checkCovered fails unless the sample files and the files a test expects
// answers for are the same set.
func checkCovered(t *testing.T, samples map[string][]byte, files []string) {
	t.Helper()
	for _, f := range files {
		if _, ok := samples[f]; !ok {
			t.Errorf("events/%s is missing", f)
		}
	}
	for name := range samples {
		if !slices.Contains(files, name) {
			t.Errorf("events/%s: no expected answer in this test", name)
		}
	}
}
