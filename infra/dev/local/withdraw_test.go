package local_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/httpapi"
	"github.com/dlicense/dlicense/infra/ops/withdraw"
)

func TestWithdrawalEndToEnd(t *testing.T) {
	for _, store := range []string{"memory", "dynamo", "dynamo-regions"} {
		t.Run(store, func(t *testing.T) { withdrawal(t, start(t, store), store) })
	}
}

// withdrawal: 250 members hold a title; an operator withdraws it; from then
// it is not granted and its licences show ended; the withdrawal job, stopped
// after its first page and run again, ends every licence held, once, and a
// device's next sync says why.
func withdrawal(t *testing.T, e *env, store string) {
	ctx := context.Background()
	const members = 250
	var first string
	for i := range members {
		tok := e.token(t, fmt.Sprintf("holder-%03d", i), "premium")
		code, _, doc := e.call(t, "POST", "/v1/devices/phone/licences", tok, `{"title_id":"tt-salt-and-rope"}`)
		if code != 201 {
			t.Fatalf("acquire %d = %d %v", i, code, doc)
		}
		if i == 0 {
			first, _ = doc["token"].(string)
		}
	}
	e.catchUp(t) // the stream function records the holders
	admin := e.adminToken(t)
	// Bad input first: nothing changes.
	for _, c := range []struct {
		path, body string
		status     int
	}{
		{"/v1/admin/titles/tt-nope/withdrawal", `{}`, 404},
		{"/v1/admin/titles/tt-salt-and-rope/withdrawal", `{"from":"2020-01-01T00:00:00Z"}`, 400},
		{"/v1/admin/titles/tt-salt-and-rope/withdrawal", `{"from":"soon"}`, 400},
		{"/v1/admin/studios/nobody/withdrawal", `{}`, 404},
	} {
		if code, _, doc := e.call(t, "POST", c.path, admin, c.body); code != c.status {
			t.Errorf("POST %s %s = %d %v, want %d", c.path, c.body, code, doc, c.status)
		}
	}
	if code, _, _ := e.call(t, "GET", "/v1/admin/titles/tt-salt-and-rope/withdrawal", admin, ""); code != 404 {
		t.Errorf("a withdrawal before any = %d, want 404", code)
	}
	if code, _, doc := e.call(t, "POST", "/v1/admin/titles/tt-salt-and-rope/withdrawal", e.token(t, "holder-000", "premium"), `{}`); code != 403 {
		t.Errorf("withdraw without the admin scope = %d %v, want 403", code, doc)
	}
	code, _, doc := e.call(t, "POST", "/v1/admin/titles/tt-salt-and-rope/withdrawal", admin, `{}`)
	if code != 202 {
		t.Fatalf("withdraw = %d %v", code, doc)
	}
	if code, _, doc := e.call(t, "POST", "/v1/admin/titles/tt-salt-and-rope/withdrawal", admin, `{"from":"2099-01-01T00:00:00Z"}`); code != 409 || doc["code"] != licensing.CodeWithdrawalExists {
		t.Errorf("withdraw again from another time = %d %v, want 409 %s", code, doc, licensing.CodeWithdrawalExists)
	}
	// From now: not granted; the licences held show ended.
	if code, _, doc := e.call(t, "POST", "/v1/devices/tablet/licences", e.token(t, "late", "premium"), `{"title_id":"tt-salt-and-rope"}`); code != 403 || fmt.Sprint(doc["rules"]) == "" {
		t.Errorf("acquire a withdrawn title = %d %v, want 403", code, doc)
	}
	verifier, _ := e.issuer.Mint("drm", "basic", []string{httpapi.StatusScope}, time.Hour, time.Now())
	if _, _, doc := e.call(t, "POST", "/v1/licence-status", verifier, fmt.Sprintf(`{"tokens":[%q]}`, first)); fmt.Sprint(doc["results"]) == "" || doc["results"].([]any)[0].(map[string]any)["valid"] != false {
		t.Errorf("status of a withdrawn title's licence = %v, want it refused", doc)
	}

	// The job: stopped after its first page, then run again to the end.
	stopped, stop := context.WithCancel(ctx)
	var afterFirst licensing.Withdrawal
	_, err := withdraw.Run(stopped, e.parts.Licensing, e.parts.Stores.Withdrawals, e.holders(), "tt-salt-and-rope", time.Now(), func(w licensing.Withdrawal) {
		if afterFirst.Members == 0 {
			afterFirst = w
			stop()
		}
	})
	if err == nil || afterFirst.Members == 0 || afterFirst.Members >= members {
		t.Fatalf("the stopped run = %v after %d members, want it stopped after its first page", err, afterFirst.Members)
	}
	code, _, doc = e.call(t, "GET", "/v1/admin/titles/tt-salt-and-rope/withdrawal", admin, "")
	if w, _ := doc["withdrawal"].(map[string]any); code != 200 || w["done"] != false || w["members"].(float64) < float64(afterFirst.Members) {
		t.Errorf("progress after the stopped run = %d %v, want at least %d members, not done", code, doc, afterFirst.Members)
	}
	w, err := withdraw.Run(ctx, e.parts.Licensing, e.parts.Stores.Withdrawals, e.holders(), "tt-salt-and-rope", time.Now(), nil)
	if err != nil || !w.Done || w.Ended != members {
		t.Fatalf("the job run again = %+v, %v; want done, %d licences ended", w, err, members)
	}
	if again, err := withdraw.Run(ctx, e.parts.Licensing, e.parts.Stores.Withdrawals, e.holders(), "tt-salt-and-rope", time.Now(), nil); err != nil || again.Ended != members {
		t.Errorf("the job once done = %+v, %v; want the same", again, err)
	}
	// A device's next sync says why.
	_, _, doc = e.call(t, "GET", "/v1/devices/phone/licences", e.token(t, "holder-007", "premium"), "")
	if released, _ := doc["released"].([]any); len(released) != 1 || released[0].(map[string]any)["release_reason"] != string(licensing.ReasonTitleWithdrawn) {
		t.Errorf("sync after the withdrawal = %v, want the licence released, TITLE_WITHDRAWN", doc)
	}
	// A studio's titles, from a later time: recorded, not granted from then.
	code, _, doc = e.call(t, "POST", "/v1/admin/studios/northlight/withdrawal", admin, `{"from":"2099-01-01T00:00:00Z"}`)
	if ws, _ := doc["withdrawals"].([]any); code != 202 || len(ws) == 0 {
		t.Errorf("withdraw a studio = %d %v", code, doc)
	}
	_ = store
}
