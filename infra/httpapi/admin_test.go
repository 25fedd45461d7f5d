package httpapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/akrylysov/algnhsa"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/httpapi"
	"github.com/dlicense/dlicense/infra/memstore"
)

func TestAdminCountsNeedTheAdminScope(t *testing.T) {
	store := memstore.New()
	svc := licensing.NewService(store, licensing.DefaultPolicy(), clock(t0), &ids{})
	// Counts as the stream function would have left them.
	store.AddCounts(context.Background(), []licensing.Counted{licensing.CountedOf("m1", []licensing.Event{{Version: 1, At: t0,
		Payload: &licensing.LicenceAcquired{Licence: "L1", Title: "tt-first-light", Studio: "open-reel", Device: "d1", ExpiresAt: t0.AddDate(0, 0, 30)}}})})
	s := services(svc)
	s.Counters = store
	api := algnhsa.New(httpapi.New(s, httpapi.Options{Now: func() time.Time { return t0 }}), &algnhsa.Options{RequestType: algnhsa.RequestTypeAPIGatewayV2})

	get := func(path string, scopes ...string) (int, map[string]any) {
		resp, doc := invokeAs(t, api, "GET", path, "ops-1", "", scopes, "", nil)
		return resp.StatusCode, doc
	}
	if status, doc := get("/v1/admin/titles/tt-first-light/counts"); status != 403 || doc["code"] != "FORBIDDEN" {
		t.Errorf("counts without the admin scope = %d %v, want 403", status, doc)
	}
	if status, doc := get("/v1/admin/titles/tt-first-light/counts", httpapi.AdminScope); status != 200 || doc["granted"] != 1.0 || doc["active"] != 1.0 {
		t.Errorf("title counts = %d %v, want 1 granted and 1 active", status, doc)
	}
	if status, doc := get("/v1/admin/studios/open-reel/days/2026-11-02/counts", httpapi.AdminScope); status != 200 || doc["granted"] != 1.0 || doc["still_active"] != 1.0 {
		t.Errorf("studio day counts = %d %v, want 1 granted, 1 still active", status, doc)
	}
	if status, _ := get("/v1/admin/studios/open-reel/days/yesterday/counts", httpapi.AdminScope); status != 400 {
		t.Errorf("studio counts for a bad day = %d, want 400", status)
	}
}

func TestAdminTimelineAndWhatIf(t *testing.T) {
	store := memstore.New()
	svc := licensing.NewService(store, licensing.DefaultPolicy(), clock(t0), &ids{})
	ctx := context.Background()
	for _, title := range []string{"tt-first-light", "tt-paper-moons"} {
		if _, err := svc.Execute(ctx, licensing.Acquire{Member: "m1", Plan: "premium", Device: "d1", Title: title}, ""); err != nil {
			t.Fatal(err)
		}
	}
	api := algnhsa.New(httpapi.New(services(svc), httpapi.Options{Now: func() time.Time { return t0 }}), &algnhsa.Options{RequestType: algnhsa.RequestTypeAPIGatewayV2})
	admin := func(method, path, body string) (int, map[string]any) {
		resp, doc := invokeAs(t, api, method, path, "ops-1", "", []string{httpapi.AdminScope}, body, nil)
		return resp.StatusCode, doc
	}
	status, doc := admin("GET", "/v1/admin/members/m1/timeline", "")
	if status != 200 || doc["version"] != 2.0 || len(doc["licences"].([]any)) != 2 {
		t.Errorf("timeline now = %d %v, want v2 with 2 licences", status, doc)
	}
	status, doc = admin("GET", "/v1/admin/members/m1/timeline?at=2026-11-01T00:00:00Z", "")
	if status != 200 || doc["version"] != 0.0 || len(doc["licences"].([]any)) != 0 {
		t.Errorf("timeline before anything = %d %v, want v0 and no licences", status, doc)
	}
	// Under a policy where premium allows one download per member, the
	// second grant would have been refused.
	stricter := strings.Replace(string(licensing.DefaultPolicyJSON()), `"max_active_per_member": 600`, `"max_active_per_member": 1`, 1)
	status, doc = admin("POST", "/v1/admin/members/m1/what-if", stricter)
	div, _ := doc["divergences"].([]any)
	if status != 200 || len(div) != 1 || div[0].(map[string]any)["title_id"] != "tt-paper-moons" {
		t.Errorf("what-if = %d %v, want the second grant refused", status, doc)
	}
	if status, doc = admin("POST", "/v1/admin/members/m1/what-if", `{"version":""}`); status != 400 || doc["code"] != "INVALID_POLICY" {
		t.Errorf("what-if with a bad policy = %d %v, want 400 INVALID_POLICY", status, doc)
	}
	// The policy in force, the starting point of a what-if.
	if status, doc = admin("GET", "/v1/admin/policy", ""); status != 200 || doc["version"] != licensing.DefaultPolicy().Version || doc["plans"] == nil {
		t.Errorf("policy = %d %v, want the shipped policy document", status, doc)
	}
	if resp, doc := invokeAs(t, api, "GET", "/v1/admin/policy", "m1", "premium", nil, "", nil); resp.StatusCode != 403 || doc["code"] != "FORBIDDEN" {
		t.Errorf("policy for a member = %d %v, want 403 FORBIDDEN", resp.StatusCode, doc)
	}
	// The body rules every route applies: size and media type.
	huge := `{"version":"` + strings.Repeat("x", httpapi.MaxBody) + `"}`
	if status, doc = admin("POST", "/v1/admin/members/m1/what-if", huge); status != 413 || doc["code"] != "BODY_TOO_LARGE" {
		t.Errorf("what-if with a huge body = %d %v, want 413 BODY_TOO_LARGE", status, doc)
	}
	if resp, doc := invokeAs(t, api, "POST", "/v1/admin/members/m1/what-if", "ops-1", "", []string{httpapi.AdminScope}, stricter, map[string]string{"content-type": "text/plain"}); resp.StatusCode != 415 || doc["code"] != "UNSUPPORTED_MEDIA_TYPE" {
		t.Errorf("what-if as text/plain = %d %v, want 415", resp.StatusCode, doc)
	}
}
