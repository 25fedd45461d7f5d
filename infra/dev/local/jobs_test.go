package local_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
)

// TestFleetJobsEndToEnd: an operator starts a fleet-wide what-if through
// the API and follows it to its summary, which counts what the one-member
// what-ifs find; bad requests are refused as documented.
func TestFleetJobsEndToEnd(t *testing.T) {
	for _, store := range []string{"memory", "dynamo"} {
		t.Run(store, func(t *testing.T) { fleetJobs(t, start(t, store)) })
	}
}

func fleetJobs(t *testing.T, e *env) {
	titles := []string{"tt-first-light", "tt-low-tide", "tt-salt-and-rope", "tt-lighthouse", "tt-ice-road"}
	var members []string
	for m := range 12 {
		member := fmt.Sprintf("jobs-%02d-%s", m, t.Name()[len(t.Name())-3:])
		members = append(members, member)
		tok := e.token(t, member, "premium")
		for d := range 1 + m%3 {
			e.call(t, "POST", fmt.Sprintf("/v1/devices/d%d/licences", d), tok, fmt.Sprintf(`{"title_id":%q}`, titles[(m+d)%len(titles)]))
		}
	}
	admin := e.adminToken(t)
	var doc map[string]any
	if err := json.Unmarshal(licensing.DefaultPolicyJSON(), &doc); err != nil {
		t.Fatal(err)
	}
	doc["version"] = "one-device"
	doc["plans"].(map[string]any)["premium"].(map[string]any)["max_download_devices"] = 1
	policy, _ := json.Marshal(doc)

	// The one-member what-ifs, for comparison.
	want := 0
	for _, m := range members {
		code, _, d := e.call(t, "POST", "/v1/admin/members/"+m+"/what-if", admin, string(policy))
		if code != 200 {
			t.Fatalf("what-if of %s = %d %v", m, code, d)
		}
		want += len(d["divergences"].([]any))
	}
	if want == 0 {
		t.Fatal("the policy flips nothing: the test would prove nothing")
	}

	if code, _, d := e.call(t, "POST", "/v1/admin/jobs", admin, `{"kind":"defrag"}`); code != 400 || d["field"] != "kind" {
		t.Errorf("an unknown kind = %d %v, want 400 on kind", code, d)
	}
	if code, _, d := e.call(t, "POST", "/v1/admin/jobs", admin, `{"kind":"whatif","policy":{"version":"x"}}`); code != 400 || d["code"] != "INVALID_POLICY" {
		t.Errorf("an invalid policy = %d %v, want 400 INVALID_POLICY", code, d)
	}
	if code, _, d := e.call(t, "GET", "/v1/admin/jobs/whatif-nosuchjob", admin, ""); code != 404 || d["code"] != "JOB_NOT_FOUND" {
		t.Errorf("an unknown job = %d %v, want 404 JOB_NOT_FOUND", code, d)
	}
	member := e.token(t, "jobs-member", "premium")
	if code, _, _ := e.call(t, "POST", "/v1/admin/jobs", member, `{"kind":"recount"}`); code != 403 {
		t.Errorf("a member starting a job = %d, want 403", code)
	}

	code, hdr, started := e.call(t, "POST", "/v1/admin/jobs", admin, fmt.Sprintf(`{"kind":"whatif","policy":%s,"segments":8}`, policy))
	id, _ := started["job_id"].(string)
	if code != 202 || id == "" || hdr.Get("Location") != "/v1/admin/jobs/"+id {
		t.Fatalf("start = %d %v %v", code, hdr, started)
	}
	var job map[string]any
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, _, job = e.call(t, "GET", "/v1/admin/jobs/"+id, admin, "")
		if job["state"] != "RUNNING" {
			break
		}
	}
	sum, _ := job["summary"].(map[string]any)
	if job["state"] != "SUCCEEDED" || job["segments_done"] != 8.0 || sum == nil {
		t.Fatalf("the job = %v, want SUCCEEDED over 8 segments with a summary", job)
	}
	if sum["flips"] != float64(want) || sum["members"].(float64) < float64(len(members)) {
		t.Errorf("the fleet what-if = %v flips over %v members, want %d (the one-member what-ifs) over at least %d", sum["flips"], sum["members"], want, len(members))
	}
}
