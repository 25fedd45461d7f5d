package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
)

// titles are the default policy's downloadable titles, sorted so a seed
// picks the same ones every run.
var titles = func() []string {
	var ts []string
	for id, t := range licensing.DefaultPolicy().Titles {
		if t.Downloadable {
			ts = append(ts, id)
		}
	}
	sort.Strings(ts)
	return ts
}()

var (
	plans       = []string{"basic", "standard", "premium"}
	deviceNames = []string{"phone", "tablet", "laptop"}
)

// held is a licence a member believes it holds.
type held struct {
	id, device, title string
	issued            time.Time // by the generator's clock
	position          int64     // playback position, in ms
}

// member is one simulated member: its plan, its devices and its licences.
// Only one worker uses a member at a time.
type member struct {
	id, plan string
	token    string
	devices  []string
	licences []*held
	rng      *rand.Rand
	calls    int // numbers idempotency keys and playback event ids
	// results counts the per-event results of this member's uploads;
	// refusals the rules its refused requests failed.
	results, refusals map[string]int
}

func newMember(id string, seed, index uint64, token func(member, plan string) string) *member {
	rng := rand.New(rand.NewPCG(seed, index+1))
	m := &member{id: id, plan: plans[rng.IntN(len(plans))], rng: rng, results: map[string]int{}, refusals: map[string]int{}}
	for i := range 1 + rng.IntN(3) {
		m.devices = append(m.devices, fmt.Sprintf("%s-%d", deviceNames[i], i+1))
	}
	m.token = token(m.id, m.plan)
	return m
}

// pick chooses the next operation by the mix; those needing a licence fall
// back to an acquisition while the member holds none.
func (m *member) pick() string {
	n := m.rng.IntN(100)
	op := mix[len(mix)-1].op
	for _, w := range mix {
		if n < w.weight {
			op = w.op
			break
		}
		n -= w.weight
	}
	if len(m.licences) == 0 && (op == OpPlayback || op == OpRenew || op == OpRelease) {
		return OpAcquire
	}
	return op
}

// step sends one request and learns from its answer.
func (m *member) step(ctx context.Context, client *http.Client, base string) outcome {
	op := m.pick()
	var (
		method, path string
		body         any
		learn        func(status int, body []byte)
	)
	switch op {
	case OpAcquire:
		method, path, body, learn = m.acquire()
	case OpPlayback:
		method, path, body, learn = m.playback()
	case OpSync:
		method, path, body, learn = m.sync()
	case OpRenew:
		method, path, body, learn = m.renew()
	case OpRelease:
		method, path, body, learn = m.release()
	default:
		method, path, body, learn = m.eligibility()
	}
	var payload io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return outcome{op: op, err: err}
		}
		payload = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, payload)
	if err != nil {
		return outcome{op: op, err: err}
	}
	req.Header.Set("Authorization", "Bearer "+m.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method != http.MethodGet {
		m.calls++
		req.Header.Set("Idempotency-Key", fmt.Sprintf("%s-k%d", m.id, m.calls))
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return outcome{op: op, latency: time.Since(start), err: err}
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	latency := time.Since(start)
	if err != nil {
		return outcome{op: op, latency: latency, err: err}
	}
	if learn != nil {
		learn(resp.StatusCode, raw)
	}
	var p problemBody
	if resp.StatusCode == http.StatusForbidden && json.Unmarshal(raw, &p) == nil {
		for _, r := range p.Rules {
			m.refusals[r.Code]++
		}
	}
	o := outcome{op: op, status: resp.StatusCode, latency: latency}
	if resp.StatusCode >= 500 {
		o.err = fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	return o
}

type licenceBody struct {
	Licence struct {
		ID     string `json:"licence_id"`
		Title  string `json:"title_id"`
		Device string `json:"device_id"`
	} `json:"licence"`
}

type problemBody struct {
	Code  string `json:"code"`
	Rules []struct {
		Code string `json:"code"`
	} `json:"rules"`
}

func (p problemBody) has(code string) bool {
	return p.Code == code || slices.ContainsFunc(p.Rules, func(r struct {
		Code string `json:"code"`
	}) bool {
		return r.Code == code
	})
}

func (m *member) device() string { return m.devices[m.rng.IntN(len(m.devices))] }

func (m *member) licence() *held { return m.licences[m.rng.IntN(len(m.licences))] }

func (m *member) forget(id string) {
	m.licences = slices.DeleteFunc(m.licences, func(h *held) bool { return h.id == id })
}

// acquire downloads a title the device does not hold yet, when there is one.
func (m *member) acquire() (string, string, any, func(int, []byte)) {
	device := m.device()
	var fresh []string
	for _, t := range titles {
		if !slices.ContainsFunc(m.licences, func(h *held) bool { return h.device == device && h.title == t }) {
			fresh = append(fresh, t)
		}
	}
	if len(fresh) == 0 {
		fresh = titles
	}
	title := fresh[m.rng.IntN(len(fresh))]
	return http.MethodPost, "/v1/devices/" + device + "/licences", map[string]string{"title_id": title}, func(status int, raw []byte) {
		var b licenceBody
		if status == http.StatusCreated && json.Unmarshal(raw, &b) == nil && b.Licence.ID != "" {
			m.licences = append(m.licences, &held{id: b.Licence.ID, device: device, title: title, issued: time.Now()})
		}
	}
}

// playback uploads 1–10 session events (START, KEEPALIVE…, STOP) for one
// or two licences of a device, with device times just before now.
func (m *member) playback() (string, string, any, func(int, []byte)) {
	device := m.licence().device
	var onDevice []*held
	for _, h := range m.licences {
		if h.device == device {
			onDevice = append(onDevice, h)
		}
	}
	m.rng.Shuffle(len(onDevice), func(i, j int) { onDevice[i], onDevice[j] = onDevice[j], onDevice[i] })
	onDevice = onDevice[:min(len(onDevice), 1+m.rng.IntN(2))]
	n := 1 + m.rng.IntN(10)
	// Device times in order, from the newest licence's download (or two
	// minutes ago) to a moment ago; at least a second back, which the
	// service's allowance for device clock skew covers.
	now := time.Now()
	from := now.Add(-2 * time.Minute)
	for _, h := range onDevice {
		if h.issued.After(from) {
			from = h.issued
		}
	}
	if latest := now.Add(-time.Second); from.After(latest) {
		from = latest
	}
	step := now.Add(-100*time.Millisecond).Sub(from) / time.Duration(n+1)
	events := make([]licensing.PlaybackInput, 0, n)
	for s, h := range onDevice {
		count := n / len(onDevice)
		if s == 0 {
			count += n % len(onDevice)
		}
		for i := range count {
			kind := licensing.PlaybackKeepalive
			switch {
			case i == 0:
				kind = licensing.PlaybackStart
			case i == count-1:
				kind = licensing.PlaybackStop
			}
			m.calls++
			h.position += 1000 + m.rng.Int64N(29000)
			events = append(events, licensing.PlaybackInput{
				ID: fmt.Sprintf("%s-e%d", m.id, m.calls), Licence: h.id, Kind: kind, PositionMs: h.position,
				DeviceTime: from.Add(step * time.Duration(len(events)+1)).UTC().Truncate(time.Millisecond),
			})
		}
	}
	return http.MethodPost, "/v1/devices/" + device + "/playback", map[string]any{"events": events}, func(status int, raw []byte) {
		var b struct {
			Results []licensing.PlaybackResult `json:"results"`
		}
		if status == http.StatusOK && json.Unmarshal(raw, &b) == nil {
			for _, r := range b.Results {
				m.results[r.Code]++
			}
		}
	}
}

// sync lists a device's licences, saying which it holds, and takes the
// service's word for which are still active.
func (m *member) sync() (string, string, any, func(int, []byte)) {
	device := m.device()
	var ids []string
	for _, h := range m.licences {
		if h.device == device {
			ids = append(ids, h.id)
		}
	}
	path := "/v1/devices/" + device + "/licences"
	if len(ids) > 0 {
		path += "?held=" + url.QueryEscape(strings.Join(ids, ","))
	}
	return http.MethodGet, path, nil, func(status int, raw []byte) {
		var v licensing.Synced
		if status != http.StatusOK || json.Unmarshal(raw, &v) != nil {
			return
		}
		active := map[string]bool{}
		for _, l := range v.Active {
			active[l.ID] = true
		}
		m.licences = slices.DeleteFunc(m.licences, func(h *held) bool { return h.device == device && !active[h.id] })
	}
}

func (m *member) renew() (string, string, any, func(int, []byte)) {
	h := m.licence()
	return http.MethodPost, "/v1/devices/" + h.device + "/licences/" + h.id + "/renew", nil, func(status int, raw []byte) {
		var p problemBody
		if status == http.StatusNotFound || (status == http.StatusForbidden && json.Unmarshal(raw, &p) == nil && p.has("LICENCE_RELEASED")) {
			m.forget(h.id)
		}
	}
}

func (m *member) release() (string, string, any, func(int, []byte)) {
	h := m.licence()
	return http.MethodDelete, "/v1/devices/" + h.device + "/licences/" + h.id, nil, func(status int, _ []byte) {
		if status == http.StatusOK || status == http.StatusNotFound {
			m.forget(h.id)
		}
	}
}

// eligibility asks whether any downloadable title could go on a device.
func (m *member) eligibility() (string, string, any, func(int, []byte)) {
	title := titles[m.rng.IntN(len(titles))]
	return http.MethodGet, "/v1/devices/" + m.device() + "/titles/" + title + "/eligibility", nil, nil
}
