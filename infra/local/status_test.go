package local_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dlicense/dlicense/infra/httpapi"
)

func TestRevocationEndToEnd(t *testing.T) {
	for _, store := range []string{"memory", "dynamo"} {
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
