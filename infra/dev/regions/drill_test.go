package regions_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/dev/regions"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/httpapi"
)

// TestRegionDrill is the region drill in a short form, on a DynamoDB Local
// of its own: a mixed load on three regions, one cut off for a few
// seconds, then every log and every region's read models checked.
func TestRegionDrill(t *testing.T) {
	srv := dynamotest.StartFor(t, dynamotest.Options{})
	keys, err := local.LoadKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a guard against a hang
	defer cancel()
	c, err := regions.Start(ctx, regions.Options{Endpoint: srv.Endpoint(), Prefix: "drill-", Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rep, err := regions.Drill(ctx, c, regions.DrillOptions{Members: 6, Load: 8 * time.Second, CutAfter: 2 * time.Second, CutFor: 3 * time.Second, Cut: 1, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	applied, dropped := c.Replication()
	t.Logf("%+v; replication: %d applied, %d dropped", rep, applied, dropped)
	t.Log(rep.Line())
	if !rep.OK() {
		t.Errorf("the drill found something lost, broken or diverged: %+v", rep)
	}
	if rep.OverLimit == 0 {
		t.Errorf("no member watched over its limit during the cut: the cut did not cut the viewing replicas")
	}

	// A licence signed in one region verifies in the others: the same keys
	// everywhere, the same key set at every JWKS route.
	member, err := c.Issuer.Mint("keys-member", "premium", nil, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := c.Issuer.Mint("drm", "basic", []string{httpapi.StatusScope}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	code, doc := post(t, c.Regions[0].URL+"/v1/devices/phone/licences", member, `{"title_id":"tt-first-light"}`)
	tok, _ := doc["token"].(string)
	if code != 201 || tok == "" {
		t.Fatalf("acquire in %s = %d %v", c.Regions[0].Name, code, doc)
	}
	var jwks []string
	for _, r := range c.Regions {
		code, doc := post(t, r.URL+"/v1/licence-status", verifier, `{"tokens":["`+tok+`"]}`)
		res, _ := doc["results"].([]any)
		if code != 200 || len(res) != 1 || res[0].(map[string]any)["valid"] != true {
			t.Errorf("the licence of %s checked in %s = %d %v, want valid", c.Regions[0].Name, r.Name, code, doc)
		}
		resp, err := http.Get(r.URL + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		jwks = append(jwks, string(b))
	}
	if jwks[0] != jwks[1] || jwks[1] != jwks[2] {
		t.Errorf("the regions publish different key sets: %q", jwks)
	}
}

func post(t *testing.T, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	json.NewDecoder(resp.Body).Decode(&doc)
	return resp.StatusCode, doc
}
