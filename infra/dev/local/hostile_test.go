package local_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dev/devidp"
	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/tokens"
)

// TestHostileRequests sends requests no honest device sends. Each gets a
// 4xx (with a problem code when it reached the function) and none changes
// any member's log.
func TestHostileRequests(t *testing.T) {
	e := start(t, "memory")
	alice := e.token(t, "alice", "premium")
	bob := e.token(t, "bob", "premium")
	_, _, doc := e.call(t, "POST", "/v1/devices/phone/licences", alice, `{"title_id":"tt-first-light"}`)
	aliceLicence := doc["licence"].(map[string]any)["licence_id"].(string)
	e.call(t, "POST", "/v1/devices/phone/licences", bob, `{"title_id":"tt-first-light"}`)

	expired, _ := e.issuer.Mint("alice", "premium", nil, time.Minute, time.Now().Add(-time.Hour))
	otherKey, _ := tokens.GenerateKey("other")
	foreign, _ := devidp.NewDevIssuer(local.DevIssuer, local.DevAudience, otherKey).Mint("alice", "premium", nil, time.Hour, time.Now())
	wrongAudience, _ := devidp.NewDevIssuer(local.DevIssuer, "someone-else", otherKey).Mint("alice", "premium", nil, time.Hour, time.Now())
	otherAdmin, _ := e.issuer.Mint("ops-x", "premium", []string{"reporting-api/admin", "https://other.example/admin", "admin"}, time.Hour, time.Now())
	noPlan, _ := e.issuer.Mint("alice", "", nil, time.Hour, time.Now())
	hugeToken, _ := e.issuer.Mint("alice", "premium", []string{strings.Repeat("s", 16<<10)}, time.Hour, time.Now())
	parts := strings.Split(alice, ".")
	noneAlg := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."

	batch := func(n int) string {
		var evs []string
		for i := 0; i < n; i++ {
			evs = append(evs, fmt.Sprintf(`{"id":"e%d","licence_id":%q,"kind":"START","position_ms":0,"device_time":"2026-11-02T10:00:00Z"}`, i, aliceLicence))
		}
		return `{"events":[` + strings.Join(evs, ",") + `]}`
	}
	cases := []struct {
		name, method, path, token, body string
		headers                         []string
		status                          int
		code                            string // "" when API Gateway answers before the function
	}{
		{"no token", "POST", "/v1/devices/phone/licences", "", `{"title_id":"tt-paper-moons"}`, nil, 401, ""},
		{"expired token", "POST", "/v1/devices/phone/licences", expired, `{"title_id":"tt-paper-moons"}`, nil, 401, ""},
		{"token from another key", "POST", "/v1/devices/phone/licences", foreign, `{"title_id":"tt-paper-moons"}`, nil, 401, ""},
		{"token for another audience", "POST", "/v1/devices/phone/licences", wrongAudience, `{"title_id":"tt-paper-moons"}`, nil, 401, ""},
		{"unsigned token", "POST", "/v1/devices/phone/licences", noneAlg, `{"title_id":"tt-paper-moons"}`, nil, 401, ""},
		{"garbage token", "GET", "/v1/devices/phone/licences", "not.a.jwt", "", nil, 401, ""},
		{"huge body", "POST", "/v1/devices/phone/licences", alice, `{"title_id":"` + strings.Repeat("x", 1<<20) + `"}`, nil, 413, "BODY_TOO_LARGE"},
		{"deep JSON", "POST", "/v1/devices/phone/licences", alice, strings.Repeat(`{"title_id":`, 20000), nil, 400, "MALFORMED_JSON"},
		{"bad UTF-8", "POST", "/v1/devices/phone/licences", alice, "{\"title_id\":\"tt-\xff\xfe\"}", nil, 400, kernel.CodeInvalidInput},
		{"wrong type", "POST", "/v1/devices/phone/licences", alice, `{"title_id":["tt-paper-moons"]}`, nil, 400, "MALFORMED_JSON"},
		{"a member in the body", "POST", "/v1/devices/phone/licences", alice, `{"title_id":"tt-paper-moons","member":"bob"}`, nil, 400, "UNKNOWN_FIELD"},
		{"not JSON", "POST", "/v1/devices/phone/licences", alice, `title_id=x`, []string{"Content-Type", "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE"},
		{"oversized idempotency key", "POST", "/v1/devices/phone/licences", alice, `{"title_id":"tt-paper-moons"}`, []string{"Idempotency-Key", strings.Repeat("k", 500)}, 400, kernel.CodeInvalidInput},
		{"control characters in a device id", "POST", "/v1/devices/ph%00one/licences", alice, `{"title_id":"tt-paper-moons"}`, nil, 400, kernel.CodeInvalidInput},
		{"a 65-character title id", "POST", "/v1/devices/phone/licences", alice, `{"title_id":"` + strings.Repeat("t", 65) + `"}`, nil, 400, kernel.CodeInvalidInput},
		{"another member's licence: release", "DELETE", "/v1/devices/phone/licences/" + aliceLicence, bob, "", nil, 404, licensing.CodeLicenceNotFound},
		{"another member's licence: renew", "POST", "/v1/devices/phone/licences/" + aliceLicence + "/renew", bob, "", nil, 404, licensing.CodeLicenceNotFound},
		{"too many playback events", "POST", "/v1/devices/phone/playback", alice, batch(501), nil, 400, kernel.CodeInvalidInput},
		// API Gateway refuses these before the function (its AuthorizationScopes).
		{"admin route without the scope", "GET", "/v1/admin/titles/tt-first-light/counts", alice, "", nil, 403, ""},
		{"another resource server's admin scope", "GET", "/v1/admin/titles/tt-first-light/counts", otherAdmin, "", nil, 403, ""},
		{"erasure with another's admin scope", "DELETE", "/v1/admin/members/alice/viewing", otherAdmin, "", nil, 403, ""},
		{"a 16 KB token", "GET", "/v1/views", hugeToken, "", nil, 431, ""},
		// A member's token without its plan claim: 403 on every member route.
		{"acquire without a plan claim", "POST", "/v1/devices/phone/licences", noPlan, `{"title_id":"tt-first-light"}`, nil, 403, "FORBIDDEN"},
		{"start without a plan claim", "POST", "/v1/devices/tv/views", noPlan, `{"title_id":"tt-first-light"}`, nil, 403, "FORBIDDEN"},
		{"history without a plan claim", "GET", "/v1/history", noPlan, "", nil, 403, "FORBIDDEN"},
		{"resume without a plan claim", "GET", "/v1/titles/tt-first-light/resume", noPlan, "", nil, 403, "FORBIDDEN"},
		{"path traversal", "GET", "/v1/devices/../../admin/titles/x/counts", alice, "", nil, 404, ""},
	}
	before := map[string]int64{}
	for _, m := range []string{"alice", "bob"} {
		before[m] = version(t, e, m)
	}
	for _, c := range cases {
		status, hdr, doc := e.call(t, c.method, c.path, c.token, c.body, c.headers...)
		if status != c.status {
			t.Errorf("%s: %s %s = %d %v, want %d", c.name, c.method, c.path, status, doc, c.status)
			continue
		}
		if c.code != "" && (doc["code"] != c.code || hdr.Get("Content-Type") != "application/problem+json") {
			t.Errorf("%s: code %v (%s), want %s as problem+json", c.name, doc["code"], hdr.Get("Content-Type"), c.code)
		}
	}
	// Playback naming another member's licence is judged per event and
	// appends nothing.
	status, _, doc := e.call(t, "POST", "/v1/devices/phone/playback", bob,
		fmt.Sprintf(`{"events":[{"id":"x1","licence_id":%q,"kind":"START","position_ms":0,"device_time":%q}]}`, aliceLicence, time.Now().UTC().Format(time.RFC3339)))
	if status != 200 || fmt.Sprint(doc["results"]) != "[map[code:LICENCE_NOT_FOUND id:x1]]" {
		t.Errorf("playback on another member's licence = %d %v", status, doc)
	}
	for _, m := range []string{"alice", "bob"} {
		if v := version(t, e, m); v != before[m] {
			t.Errorf("%s's log moved from v%d to v%d under hostile requests", m, before[m], v)
		}
	}
}

// version reads a member's log version from the store behind the server.
func version(t *testing.T, e *env, member string) int64 {
	t.Helper()
	st, err := e.parts.Licensing.Load(context.Background(), member)
	if err != nil {
		t.Fatal(err)
	}
	return st.Version
}
