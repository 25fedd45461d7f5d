package local_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/httpapi"
)

// BenchmarkStoreOutage measures the outage drill at scale: 40 members
// watching (one view each, heartbeats every 30 s by the service's clock),
// 8 workers, the shipped deadlines (500 ms an attempt, 1.5 s a request),
// DynamoDB Local hung (SIGSTOP) for two heartbeat rounds, then stopped for
// two more and started again on its data. It reports each route's time to
// answer while the store hangs and once it is gone (p50, p99), the time
// from the store's return to each member's first accepted heartbeat (the
// players send one as soon as the previous answer comes), and the
// positions lost: members whose resume point, once the stream function has
// caught up, is not the last position their player reported (goal 0).
func BenchmarkStoreOutage(b *testing.B) {
	for range b.N {
		outageRun(b)
	}
}

func outageRun(b *testing.B) {
	const members, workers = 40, 8
	d := newDrill(b)
	web := httptest.NewServer(local.NewGateway(d.parts.Handler(), d.issuer, httpapi.PublicRoutes()))
	defer web.Close()
	client := &http.Client{Timeout: 30 * time.Second}
	send := func(method, path, token, body string, headers ...string) (int, time.Duration, map[string]any) {
		req, _ := http.NewRequest(method, web.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatalf("%s %s: %v", method, path, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		var doc map[string]any
		json.Unmarshal(raw, &doc)
		return resp.StatusCode, took, doc
	}
	type watcher struct {
		member, token, holderToken, view, licence string
		seq, pos                                  int64
	}
	ws := make([]*watcher, members)
	for i := range ws {
		w := &watcher{member: fmt.Sprintf("outage-%02d", i)}
		w.token, w.holderToken = d.token(b, w.member, "standard"), d.token(b, w.member+"-h", "premium")
		code, _, doc := send("POST", "/v1/devices/phone/views", w.token, `{"title_id":"tt-first-light"}`, "Idempotency-Key", "s-"+w.member)
		v, _ := doc["view"].(map[string]any)
		if w.view, _ = v["view_id"].(string); code != 201 {
			b.Fatalf("start = %d %v", code, doc)
		}
		code, _, doc = send("POST", "/v1/devices/phone/licences", w.holderToken, `{"title_id":"tt-salt-and-rope"}`)
		if w.licence, _ = doc["token"].(string); code != 201 {
			b.Fatalf("acquire = %d %v", code, doc)
		}
		ws[i] = w
	}
	verifier, err := d.issuer.Mint("drm-server", "basic", []string{httpapi.StatusScope}, time.Hour, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	beat := func(w *watcher) (int, time.Duration) {
		code, took, _ := send("POST", "/v1/devices/phone/views/"+w.view+"/heartbeat", w.token,
			fmt.Sprintf(`{"position_ms":%d,"state":"playing","seq":%d}`, w.pos, w.seq))
		return code, took
	}
	var mu sync.Mutex
	times := map[string][]time.Duration{}
	statuses := map[string]map[int]int{}
	note := func(phase, route string, code int, took time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		k := phase + "-" + route
		times[k] = append(times[k], took)
		if statuses[k] == nil {
			statuses[k] = map[int]int{}
		}
		statuses[k][code]++
	}
	// each runs f for every watcher over the workers.
	each := func(f func(w *watcher)) {
		jobs := make(chan *watcher)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for w := range jobs {
					f(w)
				}
			})
		}
		for _, w := range ws {
			jobs <- w
		}
		close(jobs)
		wg.Wait()
	}
	round := func(phase string) {
		d.clock.Advance(30 * time.Second)
		each(func(w *watcher) {
			w.seq, w.pos = w.seq+1, w.pos+30_000
			code, took := beat(w)
			note(phase, "heartbeat", code, took)
			code, took, _ = send("GET", "/v1/titles/tt-first-light/resume", w.token, "")
			note(phase, "resume", code, took)
			code, took, _ = send("POST", "/v1/licence-status", verifier, fmt.Sprintf(`{"tokens":[%q]}`, w.licence))
			note(phase, "licence-status", code, took)
			if phase != "before" {
				code, took, _ = send("POST", "/v1/devices/tablet/licences", w.holderToken, `{"title_id":"tt-lighthouse"}`, "Idempotency-Key", "a-"+w.member)
				note(phase, "acquire", code, took)
			}
		})
	}
	for range 3 {
		round("before")
	}
	d.catchUp(b)
	b.ResetTimer()
	if err := d.srv.Hang(); err != nil {
		b.Fatal(err)
	}
	round("hung")
	round("hung")
	if err := d.srv.Stop(); err != nil {
		b.Fatal(err)
	}
	round("gone")
	round("gone")
	d.restart(b)
	back := time.Now()
	d.clock.Advance(30 * time.Second)
	each(func(w *watcher) {
		w.seq, w.pos = w.seq+1, w.pos+30_000
		for {
			code, _ := beat(w)
			if code == 200 {
				note("recovery", "heartbeat", code, time.Since(back))
				return
			}
			if code != 202 {
				b.Errorf("heartbeat after the outage = %d", code)
				return
			}
			w.seq++
		}
	})
	b.StopTimer()
	// Each player stops where it is: the resume point then holds the
	// position its player had (a heartbeat reaches it only at a
	// checkpoint; the slot holds it meanwhile).
	each(func(w *watcher) {
		if code, _, doc := send("POST", "/v1/devices/phone/views/"+w.view+"/stop", w.token, fmt.Sprintf(`{"position_ms":%d}`, w.pos)); code != 200 {
			b.Errorf("stop after the outage = %d %v", code, doc)
		}
	})
	d.catchUp(b)
	lost := 0
	for _, w := range ws {
		_, _, doc := send("GET", "/v1/titles/tt-first-light/resume", w.token, "")
		if doc["position_ms"] != float64(w.pos) || doc["stale"] != nil {
			lost++
		}
	}
	for _, k := range []string{"hung-heartbeat", "hung-resume", "hung-licence-status", "hung-acquire", "gone-heartbeat", "gone-acquire"} {
		want := map[string]int{"heartbeat": 202, "resume": 200, "licence-status": 200, "acquire": 503}[k[strings.Index(k, "-")+1:]]
		if len(statuses[k]) != 1 || statuses[k][want] == 0 {
			b.Errorf("%s answered %v, want %d every time", k, statuses[k], want)
		}
	}
	for k, ds := range times {
		if strings.HasPrefix(k, "before") {
			continue
		}
		slices.Sort(ds)
		b.ReportMetric(float64(pct(ds, 50).Microseconds()), k+"-p50-µs")
		b.ReportMetric(float64(pct(ds, 99).Microseconds()), k+"-p99-µs")
	}
	b.ReportMetric(float64(lost), "positions-lost")
	b.ReportMetric(members, "members")
}

// pct is the p-th percentile of sorted ds (nearest rank).
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := (len(ds)*p + 99) / 100
	return ds[max(i-1, 0)]
}
