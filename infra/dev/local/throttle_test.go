package local_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dlicense/dlicense/infra/dev/devidp"
	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/httpapi"
	"github.com/dlicense/dlicense/infra/setup"
)

// TestTheTemplatesThrottles: the local gateway reads the template's
// throttles as a deployment gets them: heartbeats high, operators low,
// every other route the stage's default.
func TestTheTemplatesThrottles(t *testing.T) {
	th, err := local.ThrottlesFromTemplate(filepath.Join("..", "..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	heartbeat := th.Routes["POST /v1/devices/{device}/views/{view}/heartbeat"]
	admin := th.Routes["DELETE /v1/admin/members/{member}/viewing"]
	if th.Default.Rate <= 0 || heartbeat.Rate <= th.Default.Rate || admin.Rate <= 0 || admin.Rate >= th.Default.Rate {
		t.Errorf("throttles: default %+v, heartbeat %+v, admin %+v; want heartbeats above the default, operators below", th.Default, heartbeat, admin)
	}
	for _, r := range httpapi.Routes() {
		_, own := th.Routes[r]
		if strings.Contains(r, "/v1/admin/") != own && !strings.HasSuffix(r, "/heartbeat") {
			t.Errorf("%s: throttled on its own %v, want only the operators' routes and heartbeats", r, own)
		}
	}
	if got := heartbeat.Rate * 30; got < 100_000 {
		t.Errorf("the heartbeat limit carries %.0f screens at one heartbeat per 30 s, want at least 100,000", got)
	}
}

// TestTheGatewayThrottlesPerRoute: a route's bucket empties and the next
// request answers 429 as API Gateway's does, before the function; another
// route has a bucket of its own.
func TestTheGatewayThrottlesPerRoute(t *testing.T) {
	keys, err := local.LoadKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	app, err := local.Build(context.Background(), "memory", setup.Config{SigningKeys: keys.Signing.Encode(), Issuer: "i", PlanClaim: "plan", QuietMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	issuer := devidp.NewDevIssuer(local.DevIssuer, local.DevAudience, keys.Issuer)
	gw := local.NewGateway(app.Handler(), issuer, httpapi.PublicRoutes())
	gw.Throttle(local.Throttles{Default: local.Limit{Rate: 0.01, Burst: 2}})
	srv := httptest.NewServer(gw)
	defer srv.Close()
	tok, _ := issuer.Mint("m-1", "premium", nil, time.Hour, time.Now())
	call := func(path string) int {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := []int{call("/v1/views"), call("/v1/views"), call("/v1/views")}; got[0] != 200 || got[1] != 200 || got[2] != 429 {
		t.Errorf("three requests on a route of burst 2 = %v, want 200 200 429", got)
	}
	if got := call("/v1/history"); got != 200 {
		t.Errorf("another route after = %d, want 200 (its own bucket)", got)
	}
}

// TestTheRootLeadsToTheConsole: a browser opening the server's root, or
// /console/, is sent to the console, not told 401.
func TestTheRootLeadsToTheConsole(t *testing.T) {
	keys, err := local.LoadKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	app, err := local.Build(context.Background(), "memory", setup.Config{SigningKeys: keys.Signing.Encode(), Issuer: "i", PlanClaim: "plan", QuietMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(local.NewGateway(app.Handler(), devidp.NewDevIssuer(local.DevIssuer, local.DevAudience, keys.Issuer), httpapi.PublicRoutes()))
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/", "/console/"} {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/console" {
			t.Errorf("GET %s = %d to %q, want 302 to /console", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("following it = %d %s, want the console's page", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
