package faults_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/akrylysov/algnhsa"
	"github.com/aws/aws-lambda-go/events"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dev/faults"
	"github.com/dlicense/dlicense/infra/httpapi"
)

type stubSigner struct{}

func (stubSigner) Sign(l licensing.LicenceStatus, member, policy string) (string, error) {
	return "token-" + l.ID, nil
}
func (stubSigner) JWKS() []byte { return []byte(`{"keys":[]}`) }

// apiAcquire asks for a licence through the HTTP API, as API Gateway hands
// the request to the Lambda, and returns the status and Retry-After header.
func apiAcquire(t *testing.T, svc *licensing.Service, member, key string) (int, string) {
	t.Helper()
	h := algnhsa.New(httpapi.New(httpapi.Services{Licensing: svc, Policy: svc.Policy, Signer: stubSigner{}}, httpapi.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}),
		&algnhsa.Options{RequestType: algnhsa.RequestTypeAPIGatewayV2})
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default", RawPath: "/v1/devices/d1/licences", Body: `{"title_id":"tt-first-light"}`,
		Headers: map[string]string{"content-type": "application/json", "idempotency-key": key},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/v1/devices/d1/licences", Protocol: "HTTP/1.1", SourceIP: "127.0.0.1"},
			RequestID: "req",
			Stage:     "$default",
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
				JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"sub": member, "plan": "premium"}},
			},
		},
	}
	payload, _ := json.Marshal(ev)
	out, err := h.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatalf("Invoke(POST acquire) = %v", err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, http.Header{"Retry-After": {resp.Headers["Retry-After"]}}.Get("Retry-After")
}

// exhaustion is what happened when every PutItem attempt the SDK made
// failed one way, and the device then retried with the same key while
// DynamoDB was healthy again.
type exhaustion struct {
	err        error // the service's answer to the first request
	status     int   // the API's answer to a request like it
	retryAfter string
	stats      faults.Stats
	// before and after are the member's log after the first request and
	// after the retry.
	before, after []licensing.Event
	retry         licensing.Result
	retryErr      error
}

const exhaustKey = "device-d1-request-1"

var exhaustCases = []struct {
	name  string
	plan  faults.Plan
	lands bool // the failed write reached the table
}{
	{"throttle", faults.Plan{Throttle: 1, Ops: []string{"PutItem"}}, false},
	{"5xx", faults.Plan{ServerError: 1, Ops: []string{"PutItem"}}, false},
	{"reset", faults.Plan{Reset: 1, Ops: []string{"PutItem"}}, false},
	{"lost-response", faults.Plan{LostResponse: 1, Ops: []string{"PutItem"}}, true},
}

func exhaust(t *testing.T, plan faults.Plan, seed uint64) exhaustion {
	t.Helper()
	rg := newRig(t, licensing.DefaultPolicy(), plan, seed, 4)
	ctx := context.Background()
	cmd := licensing.Acquire{Member: "m1", Plan: "premium", Device: "d1", Title: "tt-first-light"}
	logged := func() []licensing.Event {
		str, err := rg.clean.Load(ctx, "m1", licensing.LoadOptions{Consistent: true})
		if err != nil {
			t.Fatalf("Load(m1) = %v", err)
		}
		return str.Events
	}
	var x exhaustion
	_, x.err = rg.svc.Execute(ctx, cmd, exhaustKey)
	x.status, x.retryAfter = apiAcquire(t, rg.svc, "m2", "device-d1-request-2")
	x.stats = rg.tr.Stats()
	x.before = logged()
	rg.tr.SetPlan(faults.Plan{})
	x.retry, x.retryErr = rg.svc.Execute(ctx, cmd, exhaustKey)
	x.after = logged()
	return x
}

// When every attempt the SDK makes at the append fails, the service gives
// up; the device's retry with the same key must then get the first answer
// if the write had landed, and a single grant if it had not.
func TestRetryAfterRunningOutGetsTheFirstAnswer(t *testing.T) {
	for i, tt := range exhaustCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			x := exhaust(t, tt.plan, uint64(200+i))
			licence := ""
			if x.retryErr == nil && len(x.retry.Licences) > 0 {
				licence = x.retry.Licences[0].ID
			}
			t.Logf("%s: Execute gave up after %v; the log held %d events for the key; the retry with the same key: err %v, replayed %v, licence %s; the log holds %d events",
				tt.name, x.stats, len(x.before), x.retryErr, x.retry.Replayed, licence, len(x.after))
			if x.err == nil {
				t.Fatalf("Execute with every PutItem failing (%s) = nil error", tt.name)
			}
			if want := map[bool]int{true: 1, false: 0}[tt.lands]; len(x.before) != want {
				t.Errorf("log holds %d events after the failed request, want %d", len(x.before), want)
			}
			if x.retryErr != nil {
				t.Fatalf("retry with the same key = %v", x.retryErr)
			}
			if len(x.after) != 1 {
				t.Fatalf("log holds %d events after the retry, want 1", len(x.after))
			}
			granted, _ := x.after[0].Payload.(*licensing.LicenceAcquired)
			if granted == nil || granted.Licence != licence || x.after[0].Key != exhaustKey {
				t.Errorf("retry answered licence %s; the log holds %+v under key %q", licence, x.after[0].Payload, x.after[0].Key)
			}
			if tt.lands && x.before[0].Payload.(*licensing.LicenceAcquired).Licence != licence {
				t.Errorf("retry answered licence %s, want the first answer %s", licence, x.before[0].Payload.(*licensing.LicenceAcquired).Licence)
			}
			if x.retry.Replayed != tt.lands {
				t.Errorf("retry with the same key: Replayed = %v, want %v", x.retry.Replayed, tt.lands)
			}
		})
	}
}

// When the SDK's attempts run out on a fault DynamoDB would clear up by
// itself, the device must be told to retry: KindUnavailable, which the
// API answers with 503 and Retry-After.
func TestRunningOutOfRetriesIsUnavailable(t *testing.T) {
	for i, tt := range exhaustCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			x := exhaust(t, tt.plan, uint64(300+i))
			kind := kernel.KindOf(x.err)
			t.Logf("%s: Execute gave up after %v with a %s error; the API answered %d, Retry-After %q", tt.name, x.stats, kind, x.status, x.retryAfter)
			if kind != kernel.KindUnavailable {
				t.Errorf("Execute with every PutItem failing (%s) = %s error (%v), want %s", tt.name, kind, x.err, kernel.KindUnavailable)
			}
			if x.status != http.StatusServiceUnavailable || x.retryAfter == "" {
				t.Errorf("POST acquire with every PutItem failing (%s) = %d, Retry-After %q; want 503 with Retry-After", tt.name, x.status, x.retryAfter)
			}
		})
	}
}
