package local_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dev/devidp"
	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/httpapi"
	"github.com/dlicense/dlicense/infra/setup"
	"github.com/dlicense/dlicense/infra/tokens"
)

type env struct {
	url    string
	issuer *devidp.DevIssuer
	parts  *local.App
	// catchUp waits until the stream function has handled every write so
	// far (with the embedded store it runs on every write already).
	catchUp func(t testing.TB)
}

// sharedStoreDeadline bounds store calls and requests of suites that share
// one DynamoDB Local with the other packages' suites on a busy machine,
// where a call may stall for seconds: long, so that only a hang fails one.
// The fault tests use the shipped deadlines on a server of their own.
const sharedStoreDeadline = 20 * time.Second

// start runs the local server over httptest on the given store: memory,
// dynamo (one table) or dynamo-regions (the three tables of several
// regions, dynamo.Layout, as one region sees them).
func start(t *testing.T, store string) *env {
	t.Helper()
	keys, err := local.LoadKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := setup.Config{SigningKeys: keys.Signing.Encode(), Issuer: "dlicense-e2e", PlanClaim: "plan", QuietMetrics: true, WithdrawalRefresh: -1}
	if store != "memory" {
		_, table := dynamotest.Table(t)
		endpoint, _ := dynamotest.EndpointFromEnv()
		cfg.Dynamo = dynamo.Config{Table: table, Endpoint: endpoint, AttemptTimeout: sharedStoreDeadline}
		cfg.RequestBudget, cfg.AdminBudget = sharedStoreDeadline, sharedStoreDeadline
		if store == "dynamo-regions" {
			_, cfg.Dynamo.ViewingTable = dynamotest.Table(t)
			_, cfg.Dynamo.RegionalTable = dynamotest.Table(t)
			store = "dynamo"
		}
	}
	parts, err := local.Build(context.Background(), store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{issuer: devidp.NewDevIssuer(local.DevIssuer, local.DevAudience, keys.Issuer), parts: parts, catchUp: func(testing.TB) {}}
	if store == "memory" {
		local.FeedFromMemory(parts.Memory, lambda.NewHandler(parts.Processor().Handle), nil)
	} else {
		pollers, err := parts.StreamPollers(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		e.catchUp = func(t testing.TB) {
			t.Helper()
			for _, p := range pollers {
				if err := p.CatchUp(context.Background()); err != nil {
					t.Fatalf("stream function: %v", err)
				}
			}
		}
	}
	// Every answer is validated against docs/openapi.yaml when the test ends.
	srv := httptest.NewServer(checkedAgainstOpenAPI(t, local.NewGateway(parts.Handler(), e.issuer, httpapi.PublicRoutes())))
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

func (e *env) token(t testing.TB, member, plan string) string {
	t.Helper()
	tok, err := e.issuer.Mint(member, plan, nil, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// holders is the index of title holders of the env's store.
func (e *env) holders() licensing.HolderStore {
	return e.parts.Stores.Holders
}

// adminToken is a token with the admin scope.
func (e *env) adminToken(t *testing.T) string {
	t.Helper()
	tok, err := e.issuer.Mint("ops", "basic", []string{httpapi.AdminScope}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// call makes one request and decodes a JSON answer.
func (e *env) call(t testing.TB, method, path, token, body string, headers ...string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	json.Unmarshal(raw, &doc)
	return resp.StatusCode, resp.Header, doc
}

func TestEndToEnd(t *testing.T) {
	for _, store := range []string{"memory", "dynamo", "dynamo-regions"} {
		t.Run(store, func(t *testing.T) { lifecycle(t, start(t, store)) })
	}
}

func lifecycle(t *testing.T, e *env) {
	alice := e.token(t, "alice", "basic")
	bob := e.token(t, "bob", "basic")

	// Acquire, and verify the licence token as a DRM server would.
	status, hdr, doc := e.call(t, "POST", "/v1/devices/phone/licences", alice, `{"title_id":"tt-low-tide"}`, "Idempotency-Key", "acq-1")
	if status != 201 || hdr.Get("Location") == "" {
		t.Fatalf("acquire = %d %v", status, doc)
	}
	lic := doc["licence"].(map[string]any)
	id := lic["licence_id"].(string)
	_, _, jwks := e.call(t, "GET", "/.well-known/jwks.json", "", "")
	jwksRaw, _ := json.Marshal(jwks)
	claims, err := tokens.Verify(doc["token"].(string), jwksRaw, "dlicense-e2e", time.Now())
	if err != nil || claims.Licence.LicenceID != id || claims.Member != "alice" {
		t.Fatalf("Verify(licence token) = %+v, %v", claims, err)
	}
	forged := strings.Replace(doc["token"].(string), ".", ".e30", 1)
	if _, err := tokens.Verify(forged, jwksRaw, "dlicense-e2e", time.Now()); err == nil {
		t.Errorf("Verify(forged licence token) = nil error")
	}

	// The same request again: the first answer, nothing new.
	status, hdr, again := e.call(t, "POST", "/v1/devices/phone/licences", alice, `{"title_id":"tt-low-tide"}`, "Idempotency-Key", "acq-1")
	if status != 201 || hdr.Get("Idempotent-Replayed") != "true" || again["licence"].(map[string]any)["licence_id"] != id {
		t.Errorf("idempotent retry = %d %v", status, again)
	}

	// A denial names every failed rule.
	status, hdr, doc = e.call(t, "POST", "/v1/devices/tablet/licences", alice, `{"title_id":"tt-meridian-two"}`)
	if status != 403 || hdr.Get("Content-Type") != "application/problem+json" || len(doc["rules"].([]any)) != 2 {
		t.Errorf("denied acquire = %d %v", status, doc)
	}

	// Playback, sync, renew.
	playback := fmt.Sprintf(`{"events":[{"id":"e1","licence_id":%q,"kind":"START","position_ms":0,"device_time":%q}]}`, id, time.Now().UTC().Format(time.RFC3339))
	status, _, doc = e.call(t, "POST", "/v1/devices/phone/playback", alice, playback)
	if status != 200 || fmt.Sprint(doc["results"]) != "[map[code:ACCEPTED id:e1]]" {
		t.Errorf("playback = %d %v", status, doc)
	}
	status, _, doc = e.call(t, "GET", "/v1/devices/phone/licences", alice, "")
	if status != 200 || len(doc["active"].([]any)) != 1 {
		t.Errorf("sync = %d %v", status, doc)
	}
	if status, _, doc = e.call(t, "POST", "/v1/devices/phone/licences/"+id+"/renew", alice, ""); status != 200 {
		t.Errorf("renew = %d %v", status, doc)
	}

	// Another member cannot see or touch the licence; no token is a 401.
	if status, _, doc = e.call(t, "DELETE", "/v1/devices/phone/licences/"+id, bob, ""); status != 404 {
		t.Errorf("release by another member = %d %v, want 404", status, doc)
	}
	if status, _, _ = e.call(t, "GET", "/v1/devices/phone/licences", "", ""); status != 401 {
		t.Errorf("sync without a token = %d, want 401", status)
	}
	forgedMember := strings.Replace(e.token(t, "alice", "basic"), ".", ".e30", 1)
	if status, _, _ = e.call(t, "GET", "/v1/devices/phone/licences", forgedMember, ""); status != 401 {
		t.Errorf("sync with a forged token = %d, want 401", status)
	}
	other, err := tokens.GenerateKey("attacker")
	if err != nil {
		t.Fatal(err)
	}
	attacker, _ := devidp.NewDevIssuer(local.DevIssuer, local.DevAudience, other).Mint("alice", "premium", nil, time.Hour, time.Now())
	if status, _, _ = e.call(t, "GET", "/v1/devices/phone/licences", attacker, ""); status != 401 {
		t.Errorf("sync with a token from another key = %d, want 401", status)
	}

	// Release, then the device is free for another title.
	status, _, doc = e.call(t, "DELETE", "/v1/devices/phone/licences/"+id, alice, "")
	if status != 200 || doc["licence"].(map[string]any)["status"] != "RELEASED" {
		t.Errorf("release = %d %v", status, doc)
	}
	if status, _, doc = e.call(t, "DELETE", "/v1/devices/phone/licences", alice, ""); status != 200 {
		t.Errorf("release device = %d %v", status, doc)
	}
	if status, _, doc = e.call(t, "POST", "/v1/devices/tablet/licences", alice, `{"title_id":"tt-first-light"}`); status != 201 {
		t.Errorf("acquire on another device after release = %d %v", status, doc)
	}
}
