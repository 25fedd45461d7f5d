package regions

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
)

// DrillOptions shape a region drill.
type DrillOptions struct {
	// Members is how many members the load has (each with a licensing
	// device and a screen, homed in a region by turn).
	Members int
	// Load is how long the load runs; the cut starts CutAfter into it and
	// lasts CutFor, on region Cut.
	Load, CutAfter, CutFor time.Duration
	Cut                    int
	// Log gets a line per phase (none if nil).
	Log func(format string, args ...any)
}

// DrillReport is what a drill found.
type DrillReport struct {
	// Granted is the licences clients were granted (a token received);
	// Lost those of them not in the member's log.
	Granted, Lost int
	// LimitsBroken is the grants and renewals the policy would have refused
	// on the log as it is (licensing.WhatIf with the policy in force).
	LimitsBroken int
	// BadVersions counts logs whose versions are not 1, 2, 3… without a
	// gap or a duplicate.
	BadVersions int
	// CountersOff counts counter fields, in any region, that differ from a
	// recount of every log.
	CountersOff int
	// OverLimit is the members watching on more screens than their plan
	// allows, across the regions, during the cut; OverLimitAfter after it
	// healed (goal 0).
	OverLimit, OverLimitAfter int
	// Diverged is the resume points, and HistoriesDiverged the histories
	// (their views), the regions do not agree on once healed, of the
	// members whose screens never conflicted.
	Diverged, HistoriesDiverged int
	// Failover is the longest a client took from its region failing to an
	// answer from another.
	Failover time.Duration
	// Converged is from the heal to the region cut off having what the
	// others wrote meanwhile, and the others what it wrote; Settled from
	// the end of the load to every region's stream functions having
	// handled everything.
	Converged, Settled time.Duration
	// ViewingAnswered and ViewingAsked are the viewing requests to the
	// regions not cut off, during the cut.
	ViewingAnswered, ViewingAsked int
	// ViewingFailed counts the viewing requests of the cut not answered, by
	// status.
	ViewingFailed map[int]int
	Requests      int
}

// Line is the drill's last line.
func (r DrillReport) Line() string {
	return fmt.Sprintf("region drill: %d licences granted, %d lost, %d limits broken, %d screens over limit during the cut, failover %.2f s, converged %.2f s",
		r.Granted, r.Lost, r.LimitsBroken, r.OverLimit, r.Failover.Seconds(), r.Converged.Seconds())
}

// OK reports whether nothing was lost or broken and the regions agree.
func (r DrillReport) OK() bool {
	return r.Granted > 0 && r.Lost == 0 && r.LimitsBroken == 0 && r.BadVersions == 0 && r.CountersOff == 0 &&
		r.OverLimitAfter == 0 && r.Diverged == 0 && r.HistoriesDiverged == 0 && r.ViewingAsked > 0 && r.ViewingAnswered == r.ViewingAsked
}

// drillTitles are downloadable titles the premium plan may hold.
var drillTitles = []string{"tt-first-light", "tt-low-tide", "tt-salt-and-rope", "tt-lighthouse", "tt-ice-road", "tt-breakwater"}

// Drill runs a mixed load on the cluster from clients that fail over to
// the next region when theirs fails, cuts a region off in the middle,
// heals it, and checks every log and every region's read models.
func Drill(ctx context.Context, c *Cluster, o DrillOptions) (DrillReport, error) {
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	d := &drill{c: c, o: o, granted: map[string][]string{}}
	var wg sync.WaitGroup
	end := time.Now().Add(o.Load)
	for m := range o.Members {
		member := fmt.Sprintf("drill-%03d", m)
		home := m % len(c.Regions)
		wg.Go(func() { d.licensing(ctx, member, home, "phone", end, int64(m)) })
		if m%2 == 0 {
			// Racing the first device for the member's caps from the
			// next region.
			wg.Go(func() { d.licensing(ctx, member, (home+1)%len(c.Regions), "tablet", end, int64(m)+1000) })
		}
		wg.Go(func() { d.viewing(ctx, member, home, "tv", end) })
	}
	cut := c.Regions[o.Cut]
	select {
	case <-time.After(o.CutAfter):
	case <-ctx.Done():
		return DrillReport{}, ctx.Err()
	}
	logf("cutting %s off for %v", cut.Name, o.CutFor)
	cut.Cut()
	d.cutAt.Store(true)
	// During the cut, members on the basic plan start a second screen in
	// the region cut off: each region alone allows one.
	over := d.overLimit(ctx, cut)
	select {
	case <-time.After(o.CutFor):
	case <-ctx.Done():
		return DrillReport{}, ctx.Err()
	}
	d.rep.OverLimit = over
	cut.Heal()
	d.cutAt.Store(false)
	healed := time.Now()
	if err := cut.Rejoined(ctx, healed); err != nil {
		return DrillReport{}, err
	}
	d.rep.Converged = time.Since(healed)
	logf("healed %s: the replicas had each other's writes of the cut %.2f s later", cut.Name, d.rep.Converged.Seconds())
	wg.Wait()
	settle := time.Now()
	if err := c.Settle(ctx); err != nil {
		return DrillReport{}, err
	}
	d.rep.Settled = time.Since(settle)
	logf("load over; every region's stream functions caught up %.2f s later", d.rep.Settled.Seconds())
	if err := d.check(ctx); err != nil {
		return DrillReport{}, err
	}
	return d.rep, nil
}

type drill struct {
	c     *Cluster
	o     DrillOptions
	cutAt atomicBool

	mu      sync.Mutex
	rep     DrillReport
	granted map[string][]string // member → licence ids received
	basic   []string            // members with two screens in the cut
	resumes map[[2]string]bool  // member and title watched
}

type atomicBool struct {
	mu sync.Mutex
	v  bool
}

func (b *atomicBool) Store(v bool) { b.mu.Lock(); b.v = v; b.mu.Unlock() }
func (b *atomicBool) Load() bool   { b.mu.Lock(); defer b.mu.Unlock(); return b.v }

var drillClient = &http.Client{Timeout: 15 * time.Second}

// call sends a request to a region; status 0 is a transport failure.
func call(region *Region, token, method, path, body string, headers ...string) (int, map[string]any) {
	req, _ := http.NewRequest(method, region.URL+path, bytes.NewReader([]byte(body)))
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := drillClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	json.Unmarshal(raw, &doc)
	return resp.StatusCode, doc
}

// send sends a request to the client's region and, while it fails (no
// answer, 5xx), to the next ones, as a client with a list of regional
// endpoints does; it returns the answer and the region that gave it.
func (d *drill) send(home *int, token, method, path, body string, headers ...string) (int, map[string]any) {
	n := len(d.c.Regions)
	var firstFail time.Time
	for attempt := range 2 * n {
		r := d.c.Regions[(*home+attempt)%n]
		code, doc := call(r, token, method, path, body, headers...)
		d.mu.Lock()
		d.rep.Requests++
		d.mu.Unlock()
		if code != 0 && code < 500 {
			if !firstFail.IsZero() {
				d.mu.Lock()
				d.rep.Failover = max(d.rep.Failover, time.Since(firstFail))
				d.mu.Unlock()
				*home = (*home + attempt) % n // stay where it answered
			}
			return code, doc
		}
		if firstFail.IsZero() {
			firstFail = time.Now()
		}
	}
	return 503, nil
}

func (d *drill) token(member, plan string) string {
	t, _ := d.c.Issuer.Mint(member, plan, nil, time.Hour, time.Now())
	return t
}

// licensing is a device acquiring, renewing, releasing and uploading plays.
func (d *drill) licensing(ctx context.Context, member string, home int, device string, end time.Time, seed int64) {
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	tok := d.token(member, "premium")
	var held []string
	for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
		switch {
		case len(held) > 0 && rng.IntN(4) == 0:
			l := held[rng.IntN(len(held))]
			d.send(&home, tok, "POST", "/v1/devices/"+device+"/licences/"+l+"/renew", "")
		case len(held) > 0 && rng.IntN(4) == 0:
			l := held[0]
			if code, _ := d.send(&home, tok, "DELETE", "/v1/devices/"+device+"/licences/"+l, ""); code == 200 || code == 404 {
				held = held[1:]
			}
		case len(held) > 0 && rng.IntN(3) == 0:
			l := held[len(held)-1]
			upload := fmt.Sprintf(`{"events":[{"id":"%s-%d","licence_id":%q,"kind":"START","position_ms":0,"device_time":%q}]}`,
				device, i, l, time.Now().UTC().Format(time.RFC3339))
			d.send(&home, tok, "POST", "/v1/devices/"+device+"/playback", upload)
		default:
			title := drillTitles[rng.IntN(len(drillTitles))]
			key := fmt.Sprintf("%s-%s-%d", member, device, i)
			code, doc := d.send(&home, tok, "POST", "/v1/devices/"+device+"/licences", fmt.Sprintf(`{"title_id":%q}`, title), "Idempotency-Key", key)
			if code == 201 {
				lic, _ := doc["licence"].(map[string]any)
				id, _ := lic["licence_id"].(string)
				if id != "" && !slices.Contains(held, id) {
					held = append(held, id)
					d.mu.Lock()
					d.granted[member] = append(d.granted[member], id)
					d.rep.Granted++
					d.mu.Unlock()
				}
			}
		}
		time.Sleep(time.Duration(20+rng.IntN(40)) * time.Millisecond)
	}
}

// viewing is a screen playing a title: a start, heartbeats, a stop now
// and then. Requests to a region not cut off are counted during the cut.
func (d *drill) viewing(ctx context.Context, member string, home int, device string, end time.Time) {
	tok := d.token(member, "premium")
	title := drillTitles[len(member)%len(drillTitles)]
	d.mu.Lock()
	if d.resumes == nil {
		d.resumes = map[[2]string]bool{}
	}
	d.resumes[[2]string{member, title}] = true
	d.mu.Unlock()
	view, seq, pos := "", int64(0), int64(0)
	count := func(code int, region int) {
		if d.cutAt.Load() && !d.c.Regions[region].IsCut() {
			d.mu.Lock()
			d.rep.ViewingAsked++
			if code >= 200 && code < 300 {
				d.rep.ViewingAnswered++
			} else {
				if d.rep.ViewingFailed == nil {
					d.rep.ViewingFailed = map[int]int{}
				}
				d.rep.ViewingFailed[code]++
			}
			d.mu.Unlock()
		}
	}
	for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
		region := home
		if view == "" {
			code, doc := call(d.c.Regions[region], tok, "POST", "/v1/devices/"+device+"/views", fmt.Sprintf(`{"title_id":%q}`, title), "Idempotency-Key", fmt.Sprintf("%s-%d", member, i))
			count(code, region)
			if v, _ := doc["view"].(map[string]any); code == 201 && v != nil {
				view, _ = v["view_id"].(string)
				seq = 0
			}
		} else if pos >= 3_000_000 {
			// Fifty minutes in: stop, and watch again from the start.
			code, _ := call(d.c.Regions[region], tok, "POST", "/v1/devices/"+device+"/views/"+view+"/stop", fmt.Sprintf(`{"position_ms":%d}`, pos))
			count(code, region)
			view, pos = "", 0
		} else {
			seq, pos = seq+1, pos+30_000
			code, _ := call(d.c.Regions[region], tok, "POST", "/v1/devices/"+device+"/views/"+view+"/heartbeat",
				fmt.Sprintf(`{"position_ms":%d,"state":"playing","seq":%d}`, pos, seq))
			count(code, region)
			if code == 404 || code == 409 {
				view = ""
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if view != "" {
		call(d.c.Regions[home], tok, "POST", "/v1/devices/"+device+"/views/"+view+"/stop", fmt.Sprintf(`{"position_ms":%d}`, pos))
	}
}

// overLimit starts, for a few members on the basic plan (one screen), a
// screen in a region not cut off and one in the region cut off, and counts
// the members watching on two screens across the regions.
func (d *drill) overLimit(ctx context.Context, cut *Region) int {
	other := d.c.Regions[(cut.index+1)%len(d.c.Regions)]
	n := 0
	for m := range 3 {
		member := fmt.Sprintf("drill-basic-%d", m)
		tok := d.token(member, "basic")
		a, _ := call(other, tok, "POST", "/v1/devices/phone/views", `{"title_id":"tt-first-light"}`)
		b, _ := call(cut, tok, "POST", "/v1/devices/tv/views", `{"title_id":"tt-first-light"}`)
		if a == 201 && b == 201 {
			n++
		}
		d.mu.Lock()
		d.basic = append(d.basic, member)
		d.mu.Unlock()
	}
	return n
}

// check reads every log and every region's read models.
func (d *drill) check(ctx context.Context) error {
	first := d.c.Regions[0]
	policy := first.App.Policy()
	recount := map[string]map[string]int64{}
	d.mu.Lock()
	defer d.mu.Unlock()
	for member, ids := range d.granted {
		events, err := first.App.Licensing.Log(ctx, member)
		if err != nil {
			return err
		}
		inLog := map[string]bool{}
		for i, e := range events {
			if e.Version != int64(i+1) {
				d.rep.BadVersions++
				break
			}
			if a, ok := e.Payload.(*licensing.LicenceAcquired); ok {
				inLog[a.Licence] = true
			}
			for _, delta := range licensing.CounterDeltas(e) {
				if recount[delta.Scope] == nil {
					recount[delta.Scope] = map[string]int64{}
				}
				recount[delta.Scope][delta.Field] += delta.Delta
			}
		}
		for _, id := range ids {
			if !inLog[id] {
				d.rep.Lost++
			}
		}
		d.rep.LimitsBroken += len(licensing.WhatIf(member, events, policy))
	}
	for _, r := range d.c.Regions {
		for scope, fields := range recount {
			got, err := r.App.Stores.Counters.Counts(ctx, scope)
			if err != nil {
				return err
			}
			for f, v := range fields {
				if got[f] != v {
					d.rep.CountersOff++
				}
			}
		}
	}
	// Screens: after the heal, no member holds more than the plan allows,
	// in any region.
	for _, member := range d.basic {
		tok := d.token(member, "basic")
		for _, r := range d.c.Regions {
			_, doc := call(r, tok, "GET", "/v1/views", "")
			if n, _ := doc["in_use"].(float64); n > 1 {
				d.rep.OverLimitAfter++
			}
		}
	}
	// Resume points: every region holds the same.
	for mt := range d.resumes {
		tok := d.token(mt[0], "premium")
		var seen []any
		for _, r := range d.c.Regions {
			_, doc := call(r, tok, "GET", "/v1/titles/"+mt[1]+"/resume", "")
			seen = append(seen, doc["position_ms"])
		}
		if seen[0] != seen[1] || seen[1] != seen[2] {
			d.rep.Diverged++
		}
		// Their histories: the same views in every region.
		var views []string
		for _, r := range d.c.Regions {
			_, doc := call(r, tok, "GET", "/v1/history?limit=100", "")
			var ids []string
			for _, e := range list(doc["entries"]) {
				id, _ := object(e)["view_id"].(string)
				ids = append(ids, id)
			}
			slices.Sort(ids)
			views = append(views, fmt.Sprint(ids))
		}
		if views[0] != views[1] || views[1] != views[2] || views[0] == "[]" {
			d.rep.HistoriesDiverged++
		}
	}
	return nil
}
