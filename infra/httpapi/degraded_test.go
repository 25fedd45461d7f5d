package httpapi_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/akrylysov/algnhsa"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/httpapi"
	"github.com/dlicense/dlicense/infra/memstore"
)

// outage is the embedded store, which fails as DynamoDB does when it is
// out (down) or waits until the caller's deadline when it hangs (hung).
type outage struct {
	*memstore.Store
	down, hung atomic.Bool
}

func (o *outage) fail(ctx context.Context) error {
	if o.hung.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	if o.down.Load() {
		return kernel.Unavailable("the store is out", errors.New("connection refused"))
	}
	return nil
}

func (o *outage) ReadForStart(ctx context.Context, m string, n int, p, t string) ([]*viewing.View, *viewing.Resume, error) {
	if err := o.fail(ctx); err != nil {
		return nil, nil, err
	}
	return o.Store.ReadForStart(ctx, m, n, p, t)
}

func (o *outage) Beat(ctx context.Context, m string, b viewing.Beat) (*viewing.View, bool, error) {
	if err := o.fail(ctx); err != nil {
		return nil, false, err
	}
	return o.Store.Beat(ctx, m, b)
}

func (o *outage) Stop(ctx context.Context, m string, s viewing.Stop) (*viewing.View, bool, error) {
	if err := o.fail(ctx); err != nil {
		return nil, false, err
	}
	return o.Store.Stop(ctx, m, s)
}

func (o *outage) Views(ctx context.Context, m string) ([]*viewing.View, error) {
	if err := o.fail(ctx); err != nil {
		return nil, err
	}
	return o.Store.Views(ctx, m)
}

func (o *outage) Resume(ctx context.Context, m, p, t string) (*viewing.Resume, error) {
	if err := o.fail(ctx); err != nil {
		return nil, err
	}
	return o.Store.Resume(ctx, m, p, t)
}

func (o *outage) History(ctx context.Context, m, after string, limit int) ([]viewing.HistoryEntry, bool, error) {
	if err := o.fail(ctx); err != nil {
		return nil, false, err
	}
	return o.Store.History(ctx, m, after, limit)
}

func (o *outage) Load(ctx context.Context, m string, opts licensing.LoadOptions) (licensing.Stream, error) {
	if err := o.fail(ctx); err != nil {
		return licensing.Stream{}, err
	}
	return o.Store.Load(ctx, m, opts)
}

// TestDegradedAnswers: with the store out or hung, each route answers as
// docs/reliability.md says, within the request's budget: heartbeats and
// starts degraded (202), member reads stale (the instance's last answer to
// the same member, else empty), licence checks from the token, and what
// needs the store (a stop, an acquisition) 503 with Retry-After.
func TestDegradedAnswers(t *testing.T) {
	store := &outage{Store: memstore.New()}
	lic := licensing.NewService(store, licensing.DefaultPolicy(), clock(t0), &ids{})
	views := viewing.NewService(store, licensing.DefaultPolicy(), clock(t0), &ids{})
	views.History = store
	s := services(lic)
	s.Viewing = views
	s.VerifyLicence = func(token string) (string, licensing.LicenceStatus, error) {
		if token != "held" {
			return "", licensing.LicenceStatus{}, errors.New("bad signature")
		}
		return "m1", licensing.LicenceStatus{ID: "L1", Title: "tt-first-light", Status: licensing.StatusActive}, nil
	}
	api := algnhsa.New(httpapi.New(s, httpapi.Options{Budget: 100 * time.Millisecond}), &algnhsa.Options{RequestType: algnhsa.RequestTypeAPIGatewayV2})

	resp, doc := invoke(t, api, "POST", "/v1/devices/tv/views", "m1", "standard", `{"title_id":"tt-first-light"}`, nil)
	view, _ := doc["view"].(map[string]any)["view_id"].(string)
	if resp.StatusCode != 201 || view == "" {
		t.Fatalf("start = %d %s", resp.StatusCode, resp.Body)
	}
	if resp, doc = invoke(t, api, "GET", "/v1/titles/tt-first-light/resume", "m1", "standard", "", nil); resp.StatusCode != 200 || doc["stale"] != nil {
		t.Fatalf("resume = %d %s", resp.StatusCode, resp.Body)
	}

	for _, mode := range []string{"down", "hung"} {
		t.Run(mode, func(t *testing.T) {
			store.down.Store(mode == "down")
			store.hung.Store(mode == "hung")
			defer store.down.Store(false)
			defer store.hung.Store(false)

			resp, doc := invoke(t, api, "POST", "/v1/devices/tv/views/"+view+"/heartbeat", "m1", "standard", `{"position_ms":30000,"state":"playing","seq":1}`, nil)
			if resp.StatusCode != 202 || doc["degraded"] != true || doc["recorded"] != false || doc["heartbeat_interval_s"] != 30.0 {
				t.Errorf("heartbeat = %d %s, want 202 degraded", resp.StatusCode, resp.Body)
			}
			resp, doc = invoke(t, api, "POST", "/v1/devices/phone/views", "m1", "standard", `{"title_id":"tt-first-light"}`, map[string]string{"Idempotency-Key": "k1"})
			if resp.StatusCode != 202 || doc["degraded"] != true || doc["view"] != nil || resp.Headers["Retry-After"] != "30" {
				t.Errorf("start = %d %v %s, want 202 degraded with Retry-After 30", resp.StatusCode, resp.Headers, resp.Body)
			}
			// A bad request is still refused for what it is.
			if resp, _ = invoke(t, api, "POST", "/v1/devices/tv/views/"+view+"/heartbeat", "m1", "standard", `{"position_ms":-1,"state":"playing","seq":1}`, nil); resp.StatusCode != 400 {
				t.Errorf("bad heartbeat = %d, want 400", resp.StatusCode)
			}
			resp, doc = invoke(t, api, "GET", "/v1/titles/tt-first-light/resume", "m1", "standard", "", nil)
			if resp.StatusCode != 200 || doc["stale"] != true || doc["stale_as_of"] == nil || doc["title_id"] != "tt-first-light" {
				t.Errorf("resume read before = %d %s, want the last answer, stale", resp.StatusCode, resp.Body)
			}
			// Another member's read of the same path never gets m1's answer.
			resp, doc = invoke(t, api, "GET", "/v1/titles/tt-first-light/resume", "m2", "standard", "", nil)
			if resp.StatusCode != 200 || doc["stale"] != true || doc["known"] != false || doc["stale_as_of"] != nil {
				t.Errorf("another member's resume = %d %s, want nothing known", resp.StatusCode, resp.Body)
			}
			resp, doc = invoke(t, api, "GET", "/v1/views", "m1", "standard", "", nil)
			if resp.StatusCode != 200 || doc["stale"] != true || doc["limit"] != 2.0 {
				t.Errorf("screens = %d %s, want stale with the plan's limit", resp.StatusCode, resp.Body)
			}
			resp, doc = invoke(t, api, "GET", "/v1/history", "m1", "standard", "", nil)
			if resp.StatusCode != 200 || doc["stale"] != true || len(doc["entries"].([]any)) != 0 {
				t.Errorf("history = %d %s, want stale and empty", resp.StatusCode, resp.Body)
			}
			resp, doc = invoke(t, api, "POST", "/v1/devices/tv/views/"+view+"/stop", "m1", "standard", `{"position_ms":30000}`, nil)
			if resp.StatusCode != 503 || doc["code"] != "STORE_UNAVAILABLE" || resp.Headers["Retry-After"] == "" {
				t.Errorf("stop = %d %s, want 503 STORE_UNAVAILABLE (retried later)", resp.StatusCode, resp.Body)
			}
			resp, doc = invoke(t, api, "POST", "/v1/devices/phone/licences", "m1", "premium", `{"title_id":"tt-first-light"}`, nil)
			if resp.StatusCode != 503 || doc["code"] != "STORE_UNAVAILABLE" || resp.Headers["Retry-After"] == "" {
				t.Errorf("acquire = %d %s, want 503 STORE_UNAVAILABLE", resp.StatusCode, resp.Body)
			}
			resp, doc = invokeAs(t, api, "POST", "/v1/licence-status", "drm", "basic", []string{httpapi.StatusScope}, `{"tokens":["held","forged"]}`, nil)
			rs, _ := doc["results"].([]any)
			if resp.StatusCode != 200 || len(rs) != 2 {
				t.Fatalf("licence status = %d %s", resp.StatusCode, resp.Body)
			}
			if r := rs[0].(map[string]any); r["valid"] != true || r["degraded"] != true || r["licence_id"] != "L1" {
				t.Errorf("held licence = %v, want valid from its token, degraded", r)
			}
			if r := rs[1].(map[string]any); r["valid"] != false || r["status"] != httpapi.StatusInvalidToken {
				t.Errorf("forged licence = %v, want INVALID_TOKEN", r)
			}
		})
	}
	// Back: the heartbeat the outage did not record is taken now.
	if resp, _ := invoke(t, api, "POST", "/v1/devices/tv/views/"+view+"/heartbeat", "m1", "standard", `{"position_ms":60000,"state":"playing","seq":2}`, nil); resp.StatusCode != 200 {
		t.Errorf("heartbeat after the outage = %d %s", resp.StatusCode, resp.Body)
	}
}

// oneBrokenLog is a store whose log of one member cannot be read (an
// error that is not the store's outage), the others' can.
type oneBrokenLog struct {
	*memstore.Store
	broken string
}

func (o *oneBrokenLog) Load(ctx context.Context, m string, opts licensing.LoadOptions) (licensing.Stream, error) {
	if m == o.broken {
		return licensing.Stream{}, errors.New("load m-broken: event v3 (schema 9): unreadable")
	}
	return o.Store.Load(ctx, m, opts)
}

// TestLicenceStatusAnswersEachToken: one member's unreadable log marks
// that member's token only (answered from its claims, degraded); the
// other tokens of the batch are checked against their logs.
func TestLicenceStatusAnswersEachToken(t *testing.T) {
	store := &oneBrokenLog{Store: memstore.New(), broken: "m-broken"}
	lic := licensing.NewService(store, licensing.DefaultPolicy(), clock(t0), &ids{})
	ctx := context.Background()
	held, err := lic.Execute(ctx, licensing.Acquire{Member: "m-ok", Plan: "premium", Device: "d1", Title: "tt-first-light"}, "")
	if err != nil {
		t.Fatal(err)
	}
	released, err := lic.Execute(ctx, licensing.Acquire{Member: "m-ok", Plan: "premium", Device: "d1", Title: "tt-low-tide"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lic.Execute(ctx, licensing.Release{Member: "m-ok", Device: "d1", Licence: released.Licences[0].ID, Reason: licensing.ReasonDeleted}, ""); err != nil {
		t.Fatal(err)
	}
	s := services(lic)
	s.VerifyLicence = func(token string) (string, licensing.LicenceStatus, error) {
		switch token {
		case "ok-held":
			return "m-ok", licensing.LicenceStatus{ID: held.Licences[0].ID, Status: licensing.StatusActive}, nil
		case "ok-released":
			return "m-ok", licensing.LicenceStatus{ID: released.Licences[0].ID, Status: licensing.StatusActive}, nil
		case "broken":
			return "m-broken", licensing.LicenceStatus{ID: "L-b", Status: licensing.StatusActive}, nil
		}
		return "", licensing.LicenceStatus{}, errors.New("bad signature")
	}
	api := algnhsa.New(httpapi.New(s, httpapi.Options{}), &algnhsa.Options{RequestType: algnhsa.RequestTypeAPIGatewayV2})
	resp, doc := invokeAs(t, api, "POST", "/v1/licence-status", "drm", "basic", []string{httpapi.StatusScope}, `{"tokens":["ok-held","broken","ok-released"]}`, nil)
	rs, _ := doc["results"].([]any)
	if resp.StatusCode != 200 || len(rs) != 3 {
		t.Fatalf("licence status = %d %s, want an answer per token", resp.StatusCode, resp.Body)
	}
	want := []struct {
		status          string
		valid, degraded bool
	}{{"ACTIVE", true, false}, {"ACTIVE", true, true}, {"RELEASED", false, false}}
	for i, w := range want {
		r := rs[i].(map[string]any)
		if r["status"] != w.status || r["valid"] != w.valid || (r["degraded"] == true) != w.degraded {
			t.Errorf("token %d = %v, want %s, valid %v, degraded %v", i, r, w.status, w.valid, w.degraded)
		}
	}
}
