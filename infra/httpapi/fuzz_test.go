package httpapi_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/akrylysov/algnhsa"
	"github.com/aws/aws-lambda-go/events"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/httpapi"
	"github.com/dlicense/dlicense/infra/memstore"
)

// FuzzHandler sends arbitrary methods, paths, headers and bodies through
// the Lambda JSON path: whatever comes in, the answer is never a 5xx, and an
// error is always problem+json. `go test` runs the seed corpus (these seeds
// and testdata/fuzz/FuzzHandler); `make fuzz` searches for more.
func FuzzHandler(f *testing.F) {
	seeds := []struct{ method, path, key, body string }{
		{"POST", "/v1/devices/phone/licences", "", `{"title_id":"tt-first-light"}`},
		{"POST", "/v1/devices/phone/licences", "k1", `{"title_id":"tt-meridian-two"}`},
		{"POST", "/v1/devices/phone/licences", "", `{"title_id":` + strings.Repeat("[", 10000)},
		{"POST", "/v1/devices/phone/playback", "", `{"events":[{"id":"e1","licence_id":"L1","kind":"START","position_ms":-5,"device_time":"2026-11-02T10:00:00Z"}]}`},
		{"POST", "/v1/devices/phone/playback", "", `{"events":[{"id":"e1","kind":"START","device_time":"not a time"}]}`},
		{"GET", "/v1/devices/phone/licences?held=a,b,%ff", "", ""},
		{"DELETE", "/v1/devices/phone/licences/L1", "", ""},
		{"POST", "/v1/devices/phone/licences/L1/renew", "", "\xff\xfe"},
		{"GET", "/v1/devices/" + strings.Repeat("d", 300) + "/titles/x/eligibility", "", ""},
		{"PATCH", "/v1/../../etc/passwd", "", ""},
		{"POST", "/v1/devices/phone/licences", strings.Repeat("k", 129), `{}`},
		{"POST", "/v1/devices/tv/views", "k2", `{"title_id":"tt-first-light","profile_id":"kids"}`},
		{"POST", "/v1/devices/tv/views/v0-abc/heartbeat", "", `{"position_ms":1,"state":"playing","seq":1}`},
		{"POST", "/v1/devices/tv/views/v99-abc/heartbeat", "", `{"position_ms":-1,"state":"x","seq":-1}`},
		{"POST", "/v1/devices/tv/views/v0-abc/stop", "", `{"position_ms":1e30}`},
		{"DELETE", "/v1/views/v0-abc", "", ""},
		{"GET", "/v1/views", "", ""},
		{"GET", "/v1/titles/tt-first-light/resume?profile=%00", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.key, s.body)
	}
	store := memstore.New()
	svc := licensing.NewService(store, licensing.DefaultPolicy(), clock(t0), &ids{})
	views := viewing.NewService(store, licensing.DefaultPolicy(), clock(t0), &ids{})
	s := services(svc)
	s.Viewing = views
	api := algnhsa.New(httpapi.New(s, httpapi.Options{}), &algnhsa.Options{RequestType: algnhsa.RequestTypeAPIGatewayV2})
	f.Fuzz(func(t *testing.T, method, path, key, body string) {
		if method == "" || !strings.HasPrefix(path, "/") {
			return // API Gateway never sends these
		}
		raw, query, _ := strings.Cut(path, "?")
		ev := events.APIGatewayV2HTTPRequest{
			Version: "2.0", RouteKey: "$default", RawPath: raw, RawQueryString: query, Body: body,
			Headers: map[string]string{"content-type": "application/json", "idempotency-key": key},
			RequestContext: events.APIGatewayV2HTTPRequestContext{
				HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: raw},
				Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
					JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"sub": "fuzz-member", "plan": "basic"}},
				},
			},
		}
		payload, err := json.Marshal(ev)
		if err != nil {
			return
		}
		out, err := api.Invoke(context.Background(), payload)
		if err != nil {
			return // the adapter refused the event (e.g. an unparsable URL): no handler ran
		}
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("response is not an API Gateway response: %v", err)
		}
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s (%q) = %d %s", method, path, body, resp.StatusCode, resp.Body)
		}
		if resp.StatusCode >= 400 && resp.Headers["Content-Type"] != "application/problem+json" {
			t.Fatalf("%s %s = %d with content type %q, want problem+json", method, path, resp.StatusCode, resp.Headers["Content-Type"])
		}
	})
}
