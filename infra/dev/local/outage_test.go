package local_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/dev/devidp"
	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/httpapi"
	"github.com/dlicense/dlicense/infra/setup"
	"github.com/dlicense/dlicense/infra/storetest"
)

// TestStoreOutage is the outage drill on DynamoDB Local for real: a server
// of the test's own, on disk, hung (SIGSTOP) and then stopped while a
// member watches, and started again on its data. With the shipped deadlines
// (setup's defaults), the phone plays through more than two minutes of
// outage; reads answer stale; the licence of a held token still checks;
// nothing is granted without the log; and once the store is back, the
// phone's view goes on, its resume point and history hold the outage's
// watching, a device that took a screen after the recovery ends the view
// that expired, and retried requests count once.
func TestStoreOutage(t *testing.T) {
	d := startDrill(t)
	ctx := context.Background()
	viewer := d.token(t, "drill-viewer", "standard")
	holder := d.token(t, "drill-holder", "premium")
	beat := func(device, view string, seq, pos int64) (int, map[string]any) {
		t.Helper()
		code, _, doc := d.call(t, "POST", "/v1/devices/"+device+"/views/"+view+"/heartbeat", viewer,
			fmt.Sprintf(`{"position_ms":%d,"state":"playing","seq":%d}`, pos, seq))
		return code, doc
	}
	start := func(device, key string) (int, map[string]any) {
		t.Helper()
		code, _, doc := d.call(t, "POST", "/v1/devices/"+device+"/views", viewer, `{"title_id":"tt-first-light"}`, "Idempotency-Key", key)
		return code, doc
	}
	viewID := func(doc map[string]any) string {
		v, _ := doc["view"].(map[string]any)
		id, _ := v["view_id"].(string)
		return id
	}

	// Before: the phone and the laptop watch (the plan's two screens); the
	// holder has a licence; this instance has read the phone's resume point
	// and history.
	code, doc := start("phone", "start-phone")
	phone := viewID(doc)
	if code != 201 || phone == "" {
		t.Fatalf("phone start = %d %v", code, doc)
	}
	code, doc = start("laptop", "start-laptop")
	laptop := viewID(doc)
	if code != 201 || laptop == "" {
		t.Fatalf("laptop start = %d %v", code, doc)
	}
	var pos, seq int64
	for range 5 {
		d.clock.Advance(30 * time.Second)
		pos, seq = pos+30_000, seq+1
		if code, doc := beat("phone", phone, seq, pos); code != 200 {
			t.Fatalf("heartbeat %d = %d %v", seq, code, doc)
		}
	}
	code, _, doc = d.call(t, "POST", "/v1/devices/phone/licences", holder, `{"title_id":"tt-salt-and-rope"}`, "Idempotency-Key", "acquire-before")
	held, _ := doc["token"].(string)
	licence, _ := doc["licence"].(map[string]any)["licence_id"].(string)
	if code != 201 || held == "" {
		t.Fatalf("acquire = %d %v", code, doc)
	}
	d.catchUp(t)
	code, _, doc = d.call(t, "GET", "/v1/titles/tt-first-light/resume", viewer, "")
	if code != 200 || doc["position_ms"] != 150_000.0 || doc["stale"] != nil {
		t.Fatalf("resume before the outage = %d %v, want 150000", code, doc)
	}
	if code, _, doc = d.call(t, "GET", "/v1/history", viewer, ""); code != 200 || len(doc["entries"].([]any)) != 2 {
		t.Fatalf("history before the outage = %d %v", code, doc)
	}

	// The store hangs: every call waits for its deadline.
	if err := d.srv.Hang(); err != nil {
		t.Fatal(err)
	}
	outageStart := d.clock.Now()
	d.clock.Advance(30 * time.Second)
	pos, seq = pos+30_000, seq+1
	if code, doc := beat("phone", phone, seq, pos); code != 202 || doc["degraded"] != true || doc["recorded"] != false || doc["heartbeat_interval_s"] != 30.0 {
		t.Errorf("heartbeat with the store hung = %d %v, want 202 degraded, not recorded", code, doc)
	}
	code, _, doc = d.call(t, "GET", "/v1/titles/tt-first-light/resume", viewer, "")
	if code != 200 || doc["stale"] != true || doc["position_ms"] != 150_000.0 || doc["stale_as_of"] == nil {
		t.Errorf("resume with the store hung = %d %v, want the last answer, stale", code, doc)
	}
	code, _, doc = d.call(t, "GET", "/v1/history", viewer, "")
	if code != 200 || doc["stale"] != true || len(doc["entries"].([]any)) != 2 {
		t.Errorf("history with the store hung = %d %v, want the last answer, stale", code, doc)
	}
	verifier, err := d.issuer.Mint("drm-server", "basic", []string{httpapi.StatusScope}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	forged := held[:len(held)-6] + "AAAAAA"
	code, _, doc = d.call(t, "POST", "/v1/licence-status", verifier, fmt.Sprintf(`{"tokens":[%q,%q]}`, held, forged))
	rs, _ := doc["results"].([]any)
	if code != 200 || len(rs) != 2 {
		t.Fatalf("licence status with the store hung = %d %v", code, doc)
	}
	if r := rs[0].(map[string]any); r["valid"] != true || r["degraded"] != true || r["licence_id"] != licence {
		t.Errorf("a held licence with the store hung = %v, want valid, from its token (degraded)", r)
	}
	if r := rs[1].(map[string]any); r["valid"] != false || r["status"] != httpapi.StatusInvalidToken {
		t.Errorf("a forged licence with the store hung = %v, want %s", r, httpapi.StatusInvalidToken)
	}
	code, hdr, doc := d.call(t, "POST", "/v1/devices/tablet/licences", holder, `{"title_id":"tt-lighthouse"}`, "Idempotency-Key", "acquire-during")
	if code != 503 || doc["code"] != "STORE_UNAVAILABLE" || hdr.Get("Retry-After") == "" {
		t.Errorf("acquire with the store hung = %d %v, want 503 STORE_UNAVAILABLE with Retry-After", code, doc)
	}
	upload := fmt.Sprintf(`{"events":[{"id":"p1","licence_id":%q,"kind":"START","position_ms":0,"device_time":%q}]}`, licence, time.Now().UTC().Format(time.RFC3339))
	if code, _, doc = d.call(t, "POST", "/v1/devices/phone/playback", holder, upload); code != 503 {
		t.Errorf("playback upload with the store hung = %d %v, want 503", code, doc)
	}
	code, hdr, doc = d.call(t, "POST", "/v1/devices/tv/views", viewer, `{"title_id":"tt-first-light"}`, "Idempotency-Key", "start-tv")
	if code != 202 || doc["degraded"] != true || doc["view"] != nil || hdr.Get("Retry-After") != "30" {
		t.Errorf("start with the store hung = %d %v, want 202 degraded, no view, Retry-After 30", code, doc)
	}

	// The store goes away: the phone plays on for minutes.
	if err := d.srv.Stop(); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		d.clock.Advance(30 * time.Second)
		pos, seq = pos+30_000, seq+1
		if code, doc := beat("phone", phone, seq, pos); code != 202 || doc["degraded"] != true {
			t.Fatalf("heartbeat %d with the store gone = %d %v, want 202 degraded", seq, code, doc)
		}
	}
	if code, _, doc = d.call(t, "GET", "/v1/views", viewer, ""); code != 200 || doc["stale"] != true {
		t.Errorf("screens with the store gone = %d %v, want stale", code, doc)
	}
	if outage := d.clock.Now().Sub(outageStart); outage < 2*time.Minute {
		t.Fatalf("the outage lasted %v by the service's clock, want at least 2 minutes", outage)
	}

	// The store comes back on its data.
	d.restart(t)
	d.clock.Advance(30 * time.Second)
	pos, seq = pos+30_000, seq+1
	if code, doc := beat("phone", phone, seq, pos); code != 200 || doc["degraded"] != nil {
		t.Fatalf("the phone's first heartbeat after the outage = %d %v, want 200 (nobody took its screen)", code, doc)
	}
	last := pos
	// Heartbeats the player sends again count once: the same one is a
	// repeat, one the outage did not record is older than the last applied.
	if code, doc := beat("phone", phone, seq, pos); code != 200 || doc["repeated"] != true {
		t.Errorf("the same heartbeat again = %d %v, want 200 repeated", code, doc)
	}
	if code, doc := beat("phone", phone, 8, 240_000); code != 409 || doc["code"] != "HEARTBEAT_OUT_OF_ORDER" {
		t.Errorf("a heartbeat of the outage sent again = %d %v, want 409 HEARTBEAT_OUT_OF_ORDER", code, doc)
	}
	// The tv's start, retried with its key, takes the laptop's screen (the
	// laptop expired in the outage and nobody brought it back); the laptop
	// is then told its view is over.
	code, doc = start("tv", "start-tv")
	if code != 201 || viewID(doc) == "" {
		t.Fatalf("the tv's start retried after the outage = %d %v, want 201", code, doc)
	}
	if code, doc := beat("laptop", laptop, 1, 60_000); code != 409 || doc["code"] != "VIEW_ENDED" || doc["reason"] != "EXPIRED" {
		t.Errorf("the laptop's heartbeat after the tv took its screen = %d %v, want 409 VIEW_ENDED EXPIRED", code, doc)
	}
	if code, doc := start("laptop", "start-laptop-again"); code != 403 || doc["code"] != "CONCURRENT_SCREENS_LIMIT" {
		t.Errorf("a third start after the outage = %d %v, want the limit enforced again", code, doc)
	}
	// Retried requests land once.
	for range 2 {
		if code, _, doc := d.call(t, "POST", "/v1/devices/tablet/licences", holder, `{"title_id":"tt-lighthouse"}`, "Idempotency-Key", "acquire-during"); code != 201 {
			t.Errorf("acquire retried after the outage = %d %v", code, doc)
		}
		if code, _, doc := d.call(t, "POST", "/v1/devices/phone/playback", holder, upload); code != 200 {
			t.Errorf("playback upload retried after the outage = %d %v", code, doc)
		}
	}
	d.clock.Advance(10 * time.Second)
	if code, _, doc := d.call(t, "POST", "/v1/devices/phone/views/"+phone+"/stop", viewer, fmt.Sprintf(`{"position_ms":%d}`, last+10_000)); code != 200 {
		t.Fatalf("stop = %d %v", code, doc)
	}
	d.catchUp(t)

	// The resume point is the phone's last position; its history entry
	// counts every minute it played, the outage's included.
	code, _, doc = d.call(t, "GET", "/v1/titles/tt-first-light/resume", viewer, "")
	if code != 200 || doc["position_ms"] != float64(last+10_000) || doc["stale"] != nil {
		t.Errorf("resume after the outage = %d %v, want %d", code, doc, last+10_000)
	}
	played := d.clock.Now().Sub(outageStart.Add(-150 * time.Second))
	code, _, doc = d.call(t, "GET", "/v1/history", viewer, "")
	found := false
	for _, e := range doc["entries"].([]any) {
		e := e.(map[string]any)
		if e["view_id"] == phone {
			found = true
			if e["watched_ms"] != float64(played.Milliseconds()) || e["position_ms"] != float64(last+10_000) {
				t.Errorf("the phone's history entry = %v, want %v watched (the outage included) at %d", e, played, last+10_000)
			}
		}
	}
	if code != 200 || !found {
		t.Errorf("history after the outage = %d %v, want the phone's entry", code, doc)
	}

	// The holder's log: versions with no gap and no duplicate; the
	// acquisition and the upload retried after the outage are in it once.
	events, err := d.parts.Licensing.Log(ctx, "drill-holder")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for i, e := range events {
		if e.Version != int64(i+1) {
			t.Errorf("event %d has version %d: a gap or a duplicate", i, e.Version)
		}
		kinds = append(kinds, fmt.Sprintf("%T", e.Payload))
	}
	if want := []string{"*licensing.LicenceAcquired", "*licensing.LicenceAcquired", "*licensing.PlaybackRecorded"}; !slices.Equal(kinds, want) {
		t.Errorf("the holder's log = %v, want %v", kinds, want)
	}
}

// drill is the local server on a DynamoDB Local of the test's own, with the
// shipped deadlines and a clock the test moves.
type drill struct {
	env
	srv   *dynamotest.Server
	clock *storetest.Clock
}

func startDrill(t *testing.T) *drill {
	t.Helper()
	d := newDrill(t)
	web := httptest.NewServer(checkedAgainstOpenAPI(t, local.NewGateway(d.parts.Handler(), d.issuer, httpapi.PublicRoutes())))
	t.Cleanup(web.Close)
	d.url = web.URL
	return d
}

// newDrill is the drill's server without its gateway.
func newDrill(t testing.TB) *drill {
	t.Helper()
	srv := dynamotest.StartFor(t, dynamotest.Options{DataDir: t.TempDir()})
	_, table := dynamotest.TableOn(t, srv.Endpoint())
	keys, err := local.LoadKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := setup.Config{SigningKeys: keys.Signing.Encode(), Issuer: "dlicense-drill", PlanClaim: "plan", QuietMetrics: true,
		Dynamo: dynamo.Config{Table: table, Endpoint: srv.Endpoint()}}
	parts, err := local.Build(context.Background(), "dynamo", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := parts.Config(); got.RequestBudget != setup.DefaultRequestBudget || got.Dynamo.AttemptTimeout != setup.DefaultStoreAttemptTimeout {
		t.Fatalf("the drill runs with %v per attempt and %v per request, want the shipped deadlines", got.Dynamo.AttemptTimeout, got.RequestBudget)
	}
	// The phone's fifth heartbeat (150 s in) is a checkpoint: the resume
	// point has its position before the outage.
	start := time.Now().UTC().Truncate(viewing.CheckpointEvery).Add(viewing.CheckpointEvery - 150*time.Second)
	d := &drill{srv: srv, clock: storetest.NewClock(start)}
	// Viewing runs on the test's clock; licensing keeps the real one, by
	// which licence tokens are verified.
	parts.Viewing.Clock = d.clock
	d.env = env{issuer: devidp.NewDevIssuer(local.DevIssuer, local.DevAudience, keys.Issuer), parts: parts}
	poller, err := parts.StreamPoller(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d.catchUp = func(t testing.TB) {
		t.Helper()
		if err := poller.CatchUp(context.Background()); err != nil {
			t.Fatalf("stream function: %v", err)
		}
	}
	return d
}

// restart starts DynamoDB Local again on the same port and data.
func (d *drill) restart(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := d.srv.Restart(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	if srv.Endpoint() != d.srv.Endpoint() {
		t.Fatalf("restarted on %s, want %s", srv.Endpoint(), d.srv.Endpoint())
	}
	d.srv = srv
}
