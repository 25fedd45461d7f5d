package local_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/httpapi"
)

func TestRevocationEndToEnd(t *testing.T) {
	for _, store := range []string{"memory", "dynamo", "dynamo-regions"} {
		t.Run(store, func(t *testing.T) { revocation(t, start(t, store)) })
	}
}

// revocation: a DRM server holding a licence token asks whether it still
// holds: yes while active, no once the member released it (though the
// token has not expired), and forged or garbage tokens are refused.
func revocation(t *testing.T, e *env) {
	dave := e.token(t, "dave-status", "premium")
	_, _, doc := e.call(t, "POST", "/v1/devices/phone/licences", dave, `{"title_id":"tt-first-light"}`)
	token, _ := doc["token"].(string)
	licence, _ := doc["licence"].(map[string]any)["licence_id"].(string)
	if token == "" {
		t.Fatalf("acquire = %v", doc)
	}
	verifier, err := e.issuer.Mint("drm-server", "basic", []string{httpapi.StatusScope}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	status := func(tokens ...string) (int, []map[string]any) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"tokens": tokens})
		code, _, doc := e.call(t, "POST", "/v1/licence-status", verifier, string(body))
		var out []map[string]any
		if rs, ok := doc["results"].([]any); ok {
			for _, r := range rs {
				out = append(out, r.(map[string]any))
			}
		}
		return code, out
	}
	if code, rs := status(token); code != 200 || rs[0]["status"] != "ACTIVE" || rs[0]["valid"] != true || rs[0]["licence_id"] != licence {
		t.Fatalf("status of an active licence = %d %v", code, rs)
	}
	if code, _, doc := e.call(t, "DELETE", "/v1/devices/phone/licences/"+licence, dave, ""); code != 200 {
		t.Fatalf("release = %d %v", code, doc)
	}
	forged := token[:len(token)-6] + "AAAAAA"
	code, rs := status(token, forged, "not-a-token")
	if code != 200 || len(rs) != 3 || rs[0]["status"] != "RELEASED" || rs[0]["valid"] != false ||
		rs[1]["status"] != httpapi.StatusInvalidToken || rs[2]["status"] != httpapi.StatusInvalidToken {
		t.Errorf("status after the release = %d %v, want RELEASED refused and the forged and garbage tokens invalid", code, rs)
	}
	// A member's own token is not a verifier's; a list out of range is refused.
	if code, _, doc := e.call(t, "POST", "/v1/licence-status", dave, fmt.Sprintf(`{"tokens":[%q]}`, token)); code != 403 {
		t.Errorf("status without the scope = %d %v, want 403", code, doc)
	}
	for _, body := range []string{`{"tokens":[]}`, `{"tokens":[` + strings.Repeat(`"x",`, 100) + `"x"]}`, `{"tokens":"x"}`, `{"ids":["x"]}`} {
		if code, _, doc := e.call(t, "POST", "/v1/licence-status", verifier, body); code != 400 {
			t.Errorf("status %s = %d %v, want 400", body, code, doc)
		}
	}
}

func TestPlanChangeEndToEnd(t *testing.T) {
	for _, store := range []string{"memory", "dynamo", "dynamo-regions"} {
		t.Run(store, func(t *testing.T) { planChange(t, start(t, store)) })
	}
}

// planChange: a premium member with downloads on three devices moves to
// basic (one device): the first sync with the new plan releases what basic
// no longer allows, the newest kept, with PLAN_CHANGED, and the device is
// told to delete them; a plan the policy does not know changes nothing; an
// operator closing the account ends the rest.
func planChange(t *testing.T, e *env) {
	premium, basic := e.token(t, "erin-plan", "premium"), e.token(t, "erin-plan", "basic")
	for _, d := range []struct{ device, title string }{{"phone", "tt-first-light"}, {"tablet", "tt-paper-moons"}, {"laptop", "tt-low-tide"}} {
		if code, _, doc := e.call(t, "POST", "/v1/devices/"+d.device+"/licences", premium, fmt.Sprintf(`{"title_id":%q}`, d.title)); code != 201 {
			t.Fatalf("acquire on %s = %d %v", d.device, code, doc)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if code, _, doc := e.call(t, "GET", "/v1/devices/phone/licences", e.token(t, "erin-plan", "gold"), ""); code != 403 || doc["code"] != "DENIED" {
		t.Errorf("sync with a plan the policy does not know = %d %v, want 403", code, doc)
	}
	code, _, doc := e.call(t, "GET", "/v1/devices/phone/licences", basic, "")
	released, _ := doc["released"].([]any)
	if code != 200 || len(released) != 1 || released[0].(map[string]any)["release_reason"] != "PLAN_CHANGED" || len(doc["delete"].([]any)) != 1 {
		t.Fatalf("sync on basic = %d %v, want the phone's licence released, PLAN_CHANGED, to delete", code, doc)
	}
	// The newest (the laptop's) is kept; the tablet's went too.
	if _, _, doc := e.call(t, "GET", "/v1/devices/laptop/licences", basic, ""); len(doc["active"].([]any)) != 1 {
		t.Errorf("the laptop after the downgrade = %v, want its licence kept", doc)
	}
	if _, _, doc := e.call(t, "GET", "/v1/devices/tablet/licences", basic, ""); len(doc["released"].([]any)) != 1 {
		t.Errorf("the tablet after the downgrade = %v, want its licence released", doc)
	}
	// The account closes: the rest end.
	code, _, doc = e.call(t, "DELETE", "/v1/admin/members/erin-plan/licences", e.adminToken(t), "")
	if released, _ := doc["released"].([]any); code != 200 || len(released) != 1 || released[0].(map[string]any)["release_reason"] != "ACCOUNT_CLOSED" {
		t.Errorf("close the account = %d %v, want the laptop's licence released, ACCOUNT_CLOSED", code, doc)
	}
	if code, _, doc := e.call(t, "DELETE", "/v1/admin/members/erin-plan/licences", basic, ""); code != 403 {
		t.Errorf("close an account without the admin scope = %d %v, want 403", code, doc)
	}
}

func TestRefusalsEndToEnd(t *testing.T) {
	for _, store := range []string{"memory", "dynamo", "dynamo-regions"} {
		t.Run(store, func(t *testing.T) { refusalsKept(t, start(t, store)) })
	}
}

// refusalsKept: a refused acquisition is kept for operators without a
// write to the member's log: the timeline shows it with its rule codes, and
// what-if under a policy that allows it says it would have been granted.
func refusalsKept(t *testing.T, e *env) {
	basic := e.token(t, "fran-refused", "basic")
	if code, _, doc := e.call(t, "POST", "/v1/devices/phone/licences", basic, `{"title_id":"tt-first-light"}`); code != 201 {
		t.Fatalf("acquire = %d %v", code, doc)
	}
	code, _, doc := e.call(t, "POST", "/v1/devices/tablet/licences", basic, `{"title_id":"tt-paper-moons"}`)
	if code != 403 {
		t.Fatalf("a second device on basic = %d %v, want 403", code, doc)
	}
	admin := e.adminToken(t)
	_, _, doc = e.call(t, "GET", "/v1/admin/members/fran-refused/timeline", admin, "")
	refused, _ := doc["refusals"].([]any)
	if doc["version"] != 1.0 || len(refused) != 1 {
		t.Fatalf("timeline = %v, want one event and one refusal", doc)
	}
	r := refused[0].(map[string]any)
	rules := r["rules"].([]any)
	if r["command"] != "acquire" || r["title_id"] != "tt-paper-moons" || r["device_id"] != "tablet" || rules[0].(map[string]any)["code"] != "DEVICE_COUNT_LIMIT" {
		t.Errorf("the refusal = %v, want the acquisition of tt-paper-moons on the tablet, DEVICE_COUNT_LIMIT", r)
	}
	// What-if: a policy whose basic plan allows two devices would have
	// granted it.
	generous := strings.Replace(string(licensing.DefaultPolicyJSON()), `"basic":    { "max_download_devices": 1`, `"basic":    { "max_download_devices": 2`, 1)
	if generous == string(licensing.DefaultPolicyJSON()) {
		t.Fatal("the shipped policy's basic plan is not as this test expects")
	}
	code, _, doc = e.call(t, "POST", "/v1/admin/members/fran-refused/what-if", admin, generous)
	grants, _ := doc["would_grant"].([]any)
	if code != 200 || len(grants) != 1 || grants[0].(map[string]any)["refusal"].(map[string]any)["title_id"] != "tt-paper-moons" {
		t.Errorf("what-if = %d %v, want the refused acquisition granted", code, doc)
	}
	if _, _, doc := e.call(t, "POST", "/v1/admin/members/fran-refused/what-if", admin, string(licensing.DefaultPolicyJSON())); len(doc["would_grant"].([]any)) != 0 {
		t.Errorf("what-if under the same policy = %v, want nothing granted", doc)
	}
}
