package httpapi_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/akrylysov/algnhsa"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/httpapi"
	"github.com/dlicense/dlicense/infra/memstore"
)

func TestEachRequestIsLoggedAndMeasured(t *testing.T) {
	var logs, metrics bytes.Buffer
	svc := licensing.NewService(memstore.New(), licensing.DefaultPolicy(), clock(t0), &ids{})
	h := httpapi.New(services(svc), httpapi.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Metrics: &metrics})
	api := algnhsa.New(h, &algnhsa.Options{RequestType: algnhsa.RequestTypeAPIGatewayV2})
	invoke(t, api, "POST", "/v1/devices/phone/licences", "member-secret-1", "basic", `{"title_id":"tt-first-light"}`, nil)
	invoke(t, api, "POST", "/v1/devices/tablet/licences", "member-secret-1", "basic", `{"title_id":"tt-meridian-two"}`, nil)

	if strings.Contains(logs.String(), "member-secret-1") {
		t.Errorf("logs carry the member id in clear: %s", logs.String())
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(logs.String(), "\n", 2)[0]), &line); err != nil {
		t.Fatalf("log line = %q: %v", logs.String(), err)
	}
	if line["route"] != "POST /v1/devices/{device}/licences" || line["status"] != 201.0 || line["member"] != httpapi.MemberHash("member-secret-1") || line["latency_ms"] == nil {
		t.Errorf("log line = %v", line)
	}
	var grants, denials []string
	for _, l := range strings.Split(strings.TrimSpace(metrics.String()), "\n") {
		var doc map[string]any
		if err := json.Unmarshal([]byte(l), &doc); err != nil || doc["_aws"] == nil {
			t.Fatalf("metrics line %q is not EMF: %v", l, err)
		}
		if g, ok := doc["Grants"].(float64); ok && g > 0 {
			grants = append(grants, doc["Route"].(string))
		}
		if c, ok := doc["Code"].(string); ok {
			denials = append(denials, c)
		}
	}
	if len(grants) != 1 || strings.Join(denials, ",") != "TITLE_NOT_DOWNLOADABLE,DEVICE_COUNT_LIMIT" {
		t.Errorf("metrics: grants on %v, denials %v; want one grant and the two denial codes", grants, denials)
	}
}
