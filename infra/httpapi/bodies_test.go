package httpapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/akrylysov/algnhsa"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/httpapi"
	"github.com/dlicense/dlicense/infra/memstore"
)

// TestBodiesAPlayerMustSend: a heartbeat or a stop without a position
// (missing, null) is refused with INVALID_INPUT naming position_ms, and
// changes nothing: the resume point keeps the last position on every
// device. A body that is not a JSON object (an array, null, a string) is
// MALFORMED_JSON on every route that takes one, and its answer names no
// Go type.
func TestBodiesAPlayerMustSend(t *testing.T) {
	store := memstore.New()
	lic := licensing.NewService(store, licensing.DefaultPolicy(), clock(t0), &ids{})
	views := viewing.NewService(store, licensing.DefaultPolicy(), clock(t0), &ids{})
	s := services(lic)
	s.Viewing = views
	api := algnhsa.New(httpapi.New(s, httpapi.Options{}), &algnhsa.Options{RequestType: algnhsa.RequestTypeAPIGatewayV2})
	resp, doc := invoke(t, api, "POST", "/v1/devices/tv/views", "m1", "standard", `{"title_id":"tt-first-light"}`, nil)
	view, _ := doc["view"].(map[string]any)["view_id"].(string)
	if resp.StatusCode != 201 {
		t.Fatalf("start = %d %s", resp.StatusCode, resp.Body)
	}
	beat := "/v1/devices/tv/views/" + view + "/heartbeat"
	if resp, _ := invoke(t, api, "POST", beat, "m1", "standard", `{"position_ms":754000,"state":"playing","seq":1}`, nil); resp.StatusCode != 200 {
		t.Fatalf("heartbeat = %d %s", resp.StatusCode, resp.Body)
	}
	for _, c := range []struct{ path, body string }{
		{beat, `{"state":"playing","seq":2}`},
		{beat, `{"position_ms":null,"state":"playing","seq":2}`},
		{"/v1/devices/tv/views/" + view + "/stop", `{}`},
		{"/v1/devices/tv/views/" + view + "/stop", `{"position_ms":null}`},
	} {
		resp, doc := invoke(t, api, "POST", c.path, "m1", "standard", c.body, nil)
		if resp.StatusCode != 400 || doc["code"] != "INVALID_INPUT" || doc["field"] != "position_ms" {
			t.Errorf("%s %s = %d %s; want 400 INVALID_INPUT naming position_ms", c.path, c.body, resp.StatusCode, resp.Body)
		}
	}
	// The view holds its last position (what a start on another device
	// resumes from).
	if vs, err := store.Views(context.Background(), "m1"); err != nil || len(vs) != 1 || vs[0].PositionMs != 754000 || vs[0].Ended != "" {
		t.Errorf("the view after the refused reports = %+v, %v; want it playing at 754000", vs, err)
	}
	for _, c := range []struct{ method, path string }{
		{"POST", beat}, {"POST", "/v1/devices/tv/views/" + view + "/stop"}, {"POST", "/v1/devices/tv/views"},
		{"POST", "/v1/devices/phone/licences"}, {"DELETE", "/v1/views/" + view},
	} {
		for _, body := range []string{`[{"position_ms":1}]`, `null`, `"x"`, `12`} {
			resp, doc := invoke(t, api, c.method, c.path, "m1", "standard", body, nil)
			title, _ := doc["title"].(string)
			detail, _ := doc["detail"].(string)
			if resp.StatusCode != 400 || doc["code"] != "MALFORMED_JSON" || strings.Contains(title+detail, "struct") || strings.Contains(title+detail, "int64") {
				t.Errorf("%s %s with %s = %d %s; want 400 MALFORMED_JSON naming no Go type", c.method, c.path, body, resp.StatusCode, resp.Body)
			}
		}
	}
	// A field of the wrong type says what JSON it wants.
	resp, doc = invoke(t, api, "POST", beat, "m1", "standard", `{"position_ms":"late","state":"playing","seq":2}`, nil)
	if detail, _ := doc["detail"].(string); resp.StatusCode != 400 || doc["field"] != "position_ms" || !strings.Contains(detail, "a whole number") {
		t.Errorf("a position as a string = %d %s; want MALFORMED_JSON: position_ms must be a whole number", resp.StatusCode, resp.Body)
	}
}

// TestAStartResumesFromAViewStillPlaying: with no stream function at all
// (no resume point written), a start on the tv resumes from the position
// the phone's view reported a moment ago.
func TestAStartResumesFromAViewStillPlaying(t *testing.T) {
	store := memstore.New()
	lic := licensing.NewService(store, licensing.DefaultPolicy(), clock(t0), &ids{})
	views := viewing.NewService(store, licensing.DefaultPolicy(), clock(t0), &ids{})
	s := services(lic)
	s.Viewing = views
	api := algnhsa.New(httpapi.New(s, httpapi.Options{}), &algnhsa.Options{RequestType: algnhsa.RequestTypeAPIGatewayV2})
	_, doc := invoke(t, api, "POST", "/v1/devices/phone/views", "m1", "premium", `{"title_id":"tt-first-light"}`, nil)
	phone, _ := doc["view"].(map[string]any)["view_id"].(string)
	if resp, _ := invoke(t, api, "POST", "/v1/devices/phone/views/"+phone+"/heartbeat", "m1", "premium", `{"position_ms":754000,"state":"playing","seq":1}`, nil); resp.StatusCode != 200 {
		t.Fatalf("heartbeat = %d %s", resp.StatusCode, resp.Body)
	}
	resp, doc := invoke(t, api, "POST", "/v1/devices/tv/views", "m1", "premium", `{"title_id":"tt-first-light"}`, nil)
	resume, _ := doc["resume"].(map[string]any)
	if resp.StatusCode != 201 || resume["resume_from_ms"] != 754000.0 || resume["device_id"] != "phone" {
		t.Errorf("the tv's start = %d %s; want it resumed at 754000 from the phone", resp.StatusCode, resp.Body)
	}
}

// movingClock is a clock a test moves.
type movingClock struct{ t time.Time }

func (c *movingClock) Now() time.Time { return c.t }

// TestAViewKeptPastALimitSurvivesAGap: after a move to a one-screen plan,
// the only view still playing, in a screen past the new limit, keeps
// playing when its next heartbeat comes after a gap longer than the
// view's expiry (a dropped network, an outage): nothing newer plays.
func TestAViewKeptPastALimitSurvivesAGap(t *testing.T) {
	store := memstore.New()
	c := &movingClock{t: t0}
	lic := licensing.NewService(store, licensing.DefaultPolicy(), c, &ids{})
	views := viewing.NewService(store, licensing.DefaultPolicy(), c, &ids{})
	s := services(lic)
	s.Viewing = views
	api := algnhsa.New(httpapi.New(s, httpapi.Options{}), &algnhsa.Options{RequestType: algnhsa.RequestTypeAPIGatewayV2})
	high := ""
	for _, device := range []string{"tv", "phone", "laptop", "tablet"} {
		_, doc := invoke(t, api, "POST", "/v1/devices/"+device+"/views", "m1", "premium", `{"title_id":"tt-first-light"}`, nil)
		id, _ := doc["view"].(map[string]any)["view_id"].(string)
		if high == "" && !strings.HasPrefix(id, "v0-") {
			high = device + "/views/" + id
			continue
		}
		if resp, _ := invoke(t, api, "POST", "/v1/devices/"+device+"/views/"+id+"/stop", "m1", "premium", `{"position_ms":1000}`, nil); resp.StatusCode != 200 {
			t.Fatalf("stop on %s = %d %s", device, resp.StatusCode, resp.Body)
		}
		c.t = c.t.Add(time.Second)
	}
	if high == "" {
		t.Fatal("no view in a screen past the first")
	}
	c.t = c.t.Add(2 * time.Minute) // past the 90 s expiry
	resp, _ := invoke(t, api, "POST", "/v1/devices/"+high+"/heartbeat", "m1", "basic", `{"position_ms":60000,"state":"playing","seq":1}`, nil)
	if resp.StatusCode != 200 {
		t.Errorf("the lone view's heartbeat on basic after a gap = %d %s; want it kept", resp.StatusCode, resp.Body)
	}
}
