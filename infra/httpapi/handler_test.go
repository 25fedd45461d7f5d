package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/akrylysov/algnhsa"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/httpapi"
	"github.com/dlicense/dlicense/infra/memstore"
	"github.com/dlicense/dlicense/infra/tokens"
)

type clock time.Time

func (c clock) Now() time.Time { return time.Time(c) }

type ids struct{ n atomic.Int64 }

func (i *ids) NewID() string { return fmt.Sprintf("L%d", i.n.Add(1)) }

// stubSigner stands in for the token signer: it signs nothing real, it
// records that a token was asked for.
type stubSigner struct{}

func (stubSigner) Sign(l licensing.LicenceStatus, member, policy string) (string, error) {
	return "token-for-" + member + "-" + l.ID, nil
}
func (stubSigner) JWKS() []byte { return []byte(`{"keys":[]}`) }

// services are the API's services over svc, as setup wires them: its
// policy and refusals, and a stub signer.
func services(svc *licensing.Service) httpapi.Services {
	return httpapi.Services{Licensing: svc, Policy: svc.Policy, Signer: stubSigner{}, Refusals: svc.Refusals}
}

var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

// invoke sends one request through the same JSON path Lambda uses: an API
// Gateway v2 event, algnhsa, the handler, and the response event back.
func invoke(t testing.TB, h lambda.Handler, method, path, member, plan, body string, headers map[string]string) (events.APIGatewayV2HTTPResponse, map[string]any) {
	t.Helper()
	return invokeAs(t, h, method, path, member, plan, nil, body, headers)
}

// invokeAs is invoke for a member holding scopes.
func invokeAs(t testing.TB, h lambda.Handler, method, path, member, plan string, scopes []string, body string, headers map[string]string) (events.APIGatewayV2HTTPResponse, map[string]any) {
	t.Helper()
	raw, query, _ := strings.Cut(path, "?")
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default", RawPath: raw, RawQueryString: query, Body: body,
		Headers: map[string]string{"content-type": "application/json"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: raw, Protocol: "HTTP/1.1", SourceIP: "127.0.0.1"},
			RequestID: "req", Stage: "$default",
		},
	}
	for k, v := range headers {
		ev.Headers[strings.ToLower(k)] = v
	}
	if member != "" {
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"sub": member, "plan": plan}, Scopes: scopes},
		}
	}
	payload, _ := json.Marshal(ev)
	out, err := h.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatalf("Invoke(%s %s) = %v", method, path, err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	json.Unmarshal([]byte(resp.Body), &doc)
	return resp, doc
}

func newAPI() lambda.Handler {
	svc := licensing.NewService(memstore.New(), licensing.DefaultPolicy(), clock(t0), &ids{})
	return algnhsa.New(httpapi.New(services(svc), httpapi.Options{}), &algnhsa.Options{RequestType: algnhsa.RequestTypeAPIGatewayV2})
}

func TestLifecycle(t *testing.T) {
	api := newAPI()
	resp, doc := invoke(t, api, "POST", "/v1/devices/phone/licences", "m1", "basic", `{"title_id":"tt-first-light"}`, nil)
	if resp.StatusCode != 201 || resp.Headers["Location"] == "" {
		t.Fatalf("acquire = %d %v", resp.StatusCode, resp.Body)
	}
	lic := doc["licence"].(map[string]any)
	id := lic["licence_id"].(string)
	if doc["token"] != "token-for-m1-"+id || lic["status"] != "ACTIVE" {
		t.Errorf("acquire body = %v", doc)
	}
	// A second device on the basic plan is refused, with every rule named.
	resp, doc = invoke(t, api, "POST", "/v1/devices/tablet/licences", "m1", "basic", `{"title_id":"tt-meridian-two"}`, nil)
	if resp.StatusCode != 403 || resp.Headers["Content-Type"] != "application/problem+json" || doc["code"] != "DENIED" {
		t.Fatalf("denied acquire = %d %s", resp.StatusCode, resp.Body)
	}
	var codes []string
	for _, r := range doc["rules"].([]any) {
		codes = append(codes, r.(map[string]any)["code"].(string))
	}
	if strings.Join(codes, ",") != "TITLE_NOT_DOWNLOADABLE,DEVICE_COUNT_LIMIT" {
		t.Errorf("denial rules = %v", codes)
	}
	// Sync, renew, release.
	resp, doc = invoke(t, api, "GET", "/v1/devices/phone/licences?held="+id+",L-gone", "m1", "basic", "", nil)
	if resp.StatusCode != 200 || len(doc["active"].([]any)) != 1 || fmt.Sprint(doc["delete"]) != "[L-gone]" {
		t.Errorf("sync = %d %s", resp.StatusCode, resp.Body)
	}
	if resp, _ = invoke(t, api, "POST", "/v1/devices/phone/licences/"+id+"/renew", "m1", "basic", "", nil); resp.StatusCode != 200 {
		t.Errorf("renew = %d %s", resp.StatusCode, resp.Body)
	}
	resp, doc = invoke(t, api, "DELETE", "/v1/devices/phone/licences/"+id, "m1", "basic", "", nil)
	if resp.StatusCode != 200 || doc["licence"].(map[string]any)["status"] != "RELEASED" || doc["token"] != nil {
		t.Errorf("release = %d %s", resp.StatusCode, resp.Body)
	}
	// Eligibility is a dry run.
	resp, doc = invoke(t, api, "GET", "/v1/devices/tablet/titles/tt-first-light/eligibility", "m1", "basic", "", nil)
	if resp.StatusCode != 200 || doc["eligible"] != true {
		t.Errorf("eligibility = %d %s", resp.StatusCode, resp.Body)
	}
}

// TestGrantedTokensVerifyAgainstTheJWKS uses the real signer: the token a
// grant returns verifies with the key set the API publishes.
func TestGrantedTokensVerifyAgainstTheJWKS(t *testing.T) {
	key, err := tokens.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := tokens.NewSigner("dlicense-test", []tokens.Key{key})
	if err != nil {
		t.Fatal(err)
	}
	svc := licensing.NewService(memstore.New(), licensing.DefaultPolicy(), clock(t0), &ids{})
	s := services(svc)
	s.Signer = signer
	api := algnhsa.New(httpapi.New(s, httpapi.Options{}), &algnhsa.Options{RequestType: algnhsa.RequestTypeAPIGatewayV2})
	resp, doc := invoke(t, api, "POST", "/v1/devices/phone/licences", "m1", "basic", `{"title_id":"tt-low-tide"}`, nil)
	if resp.StatusCode != 201 {
		t.Fatalf("acquire = %d %s", resp.StatusCode, resp.Body)
	}
	jwks, _ := invoke(t, api, "GET", "/.well-known/jwks.json", "", "", "", nil)
	if jwks.StatusCode != 200 {
		t.Fatalf("jwks = %d", jwks.StatusCode)
	}
	claims, err := tokens.Verify(doc["token"].(string), []byte(jwks.Body), "dlicense-test", t0)
	if err != nil {
		t.Fatalf("Verify(granted token) = %v", err)
	}
	lic := doc["licence"].(map[string]any)
	if claims.Member != "m1" || claims.Licence.LicenceID != lic["licence_id"] || claims.Licence.DeviceID != "phone" || claims.Licence.TitleID != "tt-low-tide" {
		t.Errorf("token claims = %+v, want the granted licence of m1", claims)
	}
	forged := doc["token"].(string)
	forged = forged[:len(forged)-4] + "AAAA"
	if _, err := tokens.Verify(forged, []byte(jwks.Body), "dlicense-test", t0); err == nil {
		t.Errorf("Verify(forged token) = nil error")
	}
}

func TestIdempotentRetry(t *testing.T) {
	api := newAPI()
	key := map[string]string{"Idempotency-Key": "k-1"}
	r1, d1 := invoke(t, api, "POST", "/v1/devices/phone/licences", "m1", "basic", `{"title_id":"tt-first-light"}`, key)
	r2, d2 := invoke(t, api, "POST", "/v1/devices/phone/licences", "m1", "basic", `{"title_id":"tt-first-light"}`, key)
	if r1.StatusCode != 201 || r2.StatusCode != 201 || r2.Headers["Idempotent-Replayed"] != "true" ||
		fmt.Sprint(d1["licence"]) != fmt.Sprint(d2["licence"]) || d1["token"] != d2["token"] {
		t.Errorf("retry = %d %s, first %d %s", r2.StatusCode, r2.Body, r1.StatusCode, r1.Body)
	}
	r3, d3 := invoke(t, api, "POST", "/v1/devices/phone/licences", "m1", "basic", `{"title_id":"tt-paper-moons"}`, key)
	if r3.StatusCode != 409 || d3["code"] != kernel.CodeKeyReused {
		t.Errorf("same key, other request = %d %s", r3.StatusCode, r3.Body)
	}
}

func TestMembersAreIsolatedAndIdentityComesFromTheToken(t *testing.T) {
	api := newAPI()
	_, doc := invoke(t, api, "POST", "/v1/devices/phone/licences", "m1", "basic", `{"title_id":"tt-first-light"}`, nil)
	id := doc["licence"].(map[string]any)["licence_id"].(string)
	for _, c := range []struct{ method, path string }{
		{"DELETE", "/v1/devices/phone/licences/" + id},
		{"POST", "/v1/devices/phone/licences/" + id + "/renew"},
	} {
		resp, doc := invoke(t, api, c.method, c.path, "m2", "basic", "", nil)
		if resp.StatusCode != 404 || doc["code"] != licensing.CodeLicenceNotFound {
			t.Errorf("%s %s as another member = %d %s, want 404", c.method, c.path, resp.StatusCode, resp.Body)
		}
	}
	// No claims: 401, whatever the headers say.
	resp, doc := invoke(t, api, "POST", "/v1/devices/phone/licences", "", "", `{"title_id":"tt-first-light"}`, map[string]string{"X-Member-Id": "m1"})
	if resp.StatusCode != 401 || doc["code"] != "UNAUTHORIZED" {
		t.Errorf("no token = %d %s, want 401", resp.StatusCode, resp.Body)
	}
	// A member field in the body is refused, not used.
	resp, doc = invoke(t, api, "POST", "/v1/devices/phone/licences", "m2", "basic", `{"title_id":"tt-first-light","member":"m1"}`, nil)
	if resp.StatusCode != 400 || doc["code"] != httpapi.CodeUnknownField || doc["field"] != "member" {
		t.Errorf("body naming a member = %d %s, want 400 UNKNOWN_FIELD", resp.StatusCode, resp.Body)
	}
}

func TestBadInput(t *testing.T) {
	api := newAPI()
	for _, c := range []struct {
		name, method, path, body string
		headers                  map[string]string
		status                   int
		code                     string
	}{
		{"malformed JSON", "POST", "/v1/devices/phone/licences", `{"title_id":`, nil, 400, httpapi.CodeMalformedJSON},
		{"wrong type", "POST", "/v1/devices/phone/licences", `{"title_id":7}`, nil, 400, httpapi.CodeMalformedJSON},
		{"two objects", "POST", "/v1/devices/phone/licences", `{"title_id":"a"}{}`, nil, 400, httpapi.CodeMalformedJSON},
		{"huge body", "POST", "/v1/devices/phone/playback", `{"events":[` + strings.Repeat(`{"id":"x"},`, 30000) + `{}]}`, nil, 413, httpapi.CodeBodyTooLarge},
		{"not JSON", "POST", "/v1/devices/phone/licences", `title=x`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, httpapi.CodeUnsupportedMedia},
		{"bad device id", "POST", "/v1/devices/ph%20one/licences", `{"title_id":"tt-first-light"}`, nil, 400, kernel.CodeInvalidInput},
		{"long title id", "POST", "/v1/devices/phone/licences", `{"title_id":"` + strings.Repeat("t", 65) + `"}`, nil, 400, kernel.CodeInvalidInput},
		{"bad idempotency key", "POST", "/v1/devices/phone/licences", `{"title_id":"tt-first-light"}`, map[string]string{"Idempotency-Key": strings.Repeat("k", 200)}, 400, kernel.CodeInvalidInput},
		{"empty batch", "POST", "/v1/devices/phone/playback", `{"events":[]}`, nil, 400, kernel.CodeInvalidInput},
		{"bad held list", "GET", "/v1/devices/phone/licences?held=a,,b", "", nil, 400, kernel.CodeInvalidInput},
		{"unknown route", "GET", "/v2/anything", "", nil, 404, "NOT_FOUND"},
		{"wrong method", "PUT", "/v1/devices/phone/licences", "", nil, 405, "METHOD_NOT_ALLOWED"},
	} {
		resp, doc := invoke(t, api, c.method, c.path, "m1", "basic", c.body, c.headers)
		if resp.StatusCode != c.status || (c.code != "" && doc["code"] != c.code) {
			t.Errorf("%s: %s %s = %d %.200s; want %d %s", c.name, c.method, c.path, resp.StatusCode, resp.Body, c.status, c.code)
		}
	}
}

// TestEveryMutatingRouteSaysItReplayed: a retry with the same
// Idempotency-Key answers the first answer with Idempotent-Replayed: true,
// on every route that takes a key.
func TestEveryMutatingRouteSaysItReplayed(t *testing.T) {
	api := newAPI()
	_, doc := invoke(t, api, "POST", "/v1/devices/phone/licences", "m1", "premium", `{"title_id":"tt-first-light"}`, nil)
	id := doc["licence"].(map[string]any)["licence_id"].(string)
	upload := fmt.Sprintf(`{"events":[{"id":"e1","licence_id":%q,"kind":"START","position_ms":0,"device_time":"2026-11-02T10:00:30Z"}]}`, id)
	for i, c := range []struct{ method, path, body string }{
		{"POST", "/v1/devices/tablet/licences", `{"title_id":"tt-paper-moons"}`},
		{"POST", "/v1/devices/phone/licences/" + id + "/renew", ""},
		{"POST", "/v1/devices/phone/playback", upload},
		{"DELETE", "/v1/devices/phone/licences/" + id, ""},
		{"DELETE", "/v1/devices/tablet/licences", ""},
	} {
		key := map[string]string{"Idempotency-Key": fmt.Sprintf("replay-%d", i)}
		first, _ := invoke(t, api, c.method, c.path, "m1", "premium", c.body, key)
		again, _ := invoke(t, api, c.method, c.path, "m1", "premium", c.body, key)
		if first.StatusCode >= 300 || again.StatusCode != first.StatusCode || first.Headers["Idempotent-Replayed"] != "" || again.Headers["Idempotent-Replayed"] != "true" || again.Body != first.Body && !strings.Contains(again.Body, `"replayed":true`) {
			t.Errorf("%s %s: first %d %q, retry %d %q (Idempotent-Replayed %q)", c.method, c.path, first.StatusCode, first.Body, again.StatusCode, again.Body, again.Headers["Idempotent-Replayed"])
		}
	}
}
