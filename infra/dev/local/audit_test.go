package local_test

import (
	"testing"
	"time"

	"github.com/dlicense/dlicense/infra/httpapi"
)

// TestOperatorsCallsAndErasuresAreAudited: through the local gateway, an
// operator's calls (one refused by the function's own scope check too)
// and a member's erasure of their history each leave one record: who, the
// route, which member, the outcome; an operator reads back their own
// trail, and only their own.
func TestOperatorsCallsAndErasuresAreAudited(t *testing.T) {
	e := start(t, "memory")
	alice := e.token(t, "alice", "premium")
	ops, _ := e.issuer.Mint("ops-1", "basic", []string{httpapi.AdminScope}, time.Hour, time.Now())
	ops2, _ := e.issuer.Mint("ops-2", "basic", []string{httpapi.AdminScope}, time.Hour, time.Now())
	e.call(t, "POST", "/v1/devices/phone/licences", alice, `{"title_id":"tt-first-light"}`)
	if status, _, _ := e.call(t, "DELETE", "/v1/history", alice, ""); status != 202 {
		t.Fatalf("erase = %d", status)
	}
	e.call(t, "GET", "/v1/admin/members/alice/events", ops, "")
	if status, _, _ := e.call(t, "DELETE", "/v1/admin/members/alice/viewing", ops, ""); status != 202 && status != 409 {
		t.Fatalf("operator's erasure = %d", status)
	}
	status, _, doc := e.call(t, "GET", "/v1/admin/audit", ops, "")
	records, _ := doc["records"].([]any)
	if status != 200 || len(records) != 2 {
		t.Fatalf("ops-1's trail = %d %v, want its two calls", status, doc)
	}
	newest := records[0].(map[string]any)
	if newest["route"] != "DELETE /v1/admin/members/{member}/viewing" || newest["member"] != "alice" || newest["actor"] != "ops-1" || newest["at"] == nil || newest["status"] == nil {
		t.Errorf("the newest record = %v, want ops-1's erasure of alice", newest)
	}
	if _, _, doc := e.call(t, "GET", "/v1/admin/audit", ops2, ""); len(doc["records"].([]any)) != 0 {
		t.Errorf("ops-2's trail = %v, want none (another operator's calls are not theirs)", doc)
	}
	mine, err := e.parts.Stores.Audit.Audit(t.Context(), "alice", 10)
	if err != nil || len(mine) != 1 || mine[0].Route != "DELETE /v1/history" || mine[0].Member != "alice" || mine[0].Status != 202 {
		t.Errorf("alice's trail = %+v, %v; want her erasure", mine, err)
	}
}
