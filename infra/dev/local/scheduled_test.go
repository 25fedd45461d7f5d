package local_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/dlicense/dlicense/infra/httpapi"
)

// TestAScheduledWithdrawalRunsAtItsTime: a withdrawal from a later time is
// scheduled (its progress route says so, and when); the scheduled run of
// due withdrawals (what make run does every minute, through the job
// function's handler) leaves it alone until then, and ends its licences
// once its time has come, with no operator.
func TestAScheduledWithdrawalRunsAtItsTime(t *testing.T) {
	e := start(t, "memory")
	alice := e.token(t, "alice", "premium")
	ops, _ := e.issuer.Mint("ops-1", "basic", []string{httpapi.AdminScope}, time.Hour, time.Now())
	if status, _, doc := e.call(t, "POST", "/v1/devices/phone/licences", alice, `{"title_id":"tt-first-light"}`); status != 201 {
		t.Fatalf("acquire = %d %v", status, doc)
	}
	e.catchUp(t) // the holders index
	from := time.Now().Add(1500 * time.Millisecond).UTC().Truncate(time.Millisecond)
	if status, _, doc := e.call(t, "POST", "/v1/admin/titles/tt-first-light/withdrawal", ops, fmt.Sprintf(`{"from":%q}`, from.Format(time.RFC3339Nano))); status != 202 {
		t.Fatalf("withdraw = %d %v", status, doc)
	}
	_, _, doc := e.call(t, "GET", "/v1/admin/titles/tt-first-light/withdrawal", ops, "")
	sched, _ := doc["schedule"].(map[string]any)
	if sched["state"] != "scheduled" || sched["runs_at"] != from.Format(time.RFC3339Nano) {
		t.Fatalf("the withdrawal's progress = %v, want scheduled for %s", doc, from.Format(time.RFC3339Nano))
	}
	if ws, err := e.parts.RunDueWithdrawals(t.Context()); err != nil || len(ws) != 0 {
		t.Fatalf("a run before its time = %+v, %v; want nothing done", ws, err)
	}
	time.Sleep(time.Until(from) + 50*time.Millisecond)
	ws, err := e.parts.RunDueWithdrawals(t.Context())
	if err != nil || len(ws) != 1 || !ws[0].Done || ws[0].Ended != 1 || ws[0].Members != 1 {
		t.Fatalf("the run at its time = %+v, %v; want it done, alice's licence ended", ws, err)
	}
	_, _, doc = e.call(t, "GET", "/v1/admin/titles/tt-first-light/withdrawal", ops, "")
	if sched, _ = doc["schedule"].(map[string]any); sched["state"] != "done" {
		t.Errorf("the withdrawal's progress after = %v, want done", doc)
	}
	_, _, doc = e.call(t, "GET", "/v1/devices/phone/licences", alice, "")
	if active, _ := doc["active"].([]any); len(active) != 0 {
		t.Errorf("alice's licences after = %v, want none active", doc)
	}
	if ws, err := e.parts.RunDueWithdrawals(t.Context()); err != nil || len(ws) != 0 {
		t.Errorf("a run after it is done = %+v, %v; want nothing", ws, err)
	}
}
