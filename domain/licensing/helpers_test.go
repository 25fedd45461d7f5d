package licensing

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// t0 is the start of every test history.
var t0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// testPolicyJSON has small limits so that every rule is easy to reach.
const testPolicyJSON = `{
  "version": "test-1",
  "defaults": {"licence_duration": "30d", "renewable": true, "max_renewals": 3},
  "plans": {
    "family": {"max_download_devices": 2, "max_active_per_device": 3, "max_active_per_member": 4, "max_screens": 2},
    "solo":   {"max_download_devices": 1, "max_active_per_device": 2, "max_active_per_member": 2, "max_screens": 2},
    "nodl":   {"max_download_devices": 0, "max_active_per_device": 1, "max_active_per_member": 1, "max_screens": 2}
  },
  "studios": {
    "plain": {},
    "quota": {"title_quota": {"count": 2, "window": "10d"}},
    "window": {"licence_duration": "7d", "playback_window": "48h", "max_plays_per_window": 2, "max_renewals": 1},
    "capped": {"max_active_per_member": 2},
    "fixed": {"renewable": false}
  },
  "titles": {
    "p1": {"studio": "plain", "downloadable": true},
    "p2": {"studio": "plain", "downloadable": true},
    "p3": {"studio": "plain", "downloadable": true},
    "p4": {"studio": "plain", "downloadable": true},
    "p5": {"studio": "plain", "downloadable": true},
    "q1": {"studio": "quota", "downloadable": true},
    "w1": {"studio": "window", "downloadable": true},
    "c1": {"studio": "capped", "downloadable": true},
    "c2": {"studio": "capped", "downloadable": true},
    "c3": {"studio": "capped", "downloadable": true},
    "f1": {"studio": "fixed", "downloadable": true},
    "stream-only": {"studio": "plain", "downloadable": false},
    "soon": {"studio": "plain", "downloadable": true, "available_from": "2026-02-01T00:00:00Z"},
    "gone": {"studio": "plain", "downloadable": true, "available_until": "2026-01-10T00:00:00Z"}
  }
}`

func testPolicy(t testing.TB) *Policy {
	t.Helper()
	p, err := ParsePolicy(strings.NewReader(testPolicyJSON))
	if err != nil {
		t.Fatalf("ParsePolicy(test policy) = %v", err)
	}
	return p
}

// history builds a member's stream by deciding commands at given times,
// exactly as the service does, and keeps the resulting events.
type history struct {
	t      fataler
	policy *Policy
	state  *State
	events []Event
	ids    int
}

// fataler is what history needs of a *testing.T or a *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

func newHistory(t fataler, p *Policy) *history {
	return &history{t: t, policy: p, state: NewState("m1")}
}

func (h *history) newID() string {
	h.ids++
	return fmt.Sprintf("L%d", h.ids)
}

// try decides cmd at t0+at and applies its events if it was granted.
func (h *history) try(at time.Duration, cmd Command) (Result, error) {
	now := t0.Add(at)
	d, err := Decide(h.state, cmd, h.policy, now, h.newID)
	if err != nil {
		return Result{}, err
	}
	if d.Event == nil {
		return d.Result, nil
	}
	e := Event{Version: h.state.Version + 1, At: now, PolicyVersion: h.policy.Version, Payload: d.Event}
	touched, playback := h.state.apply(e, true)
	h.events = append(h.events, e)
	return Result{Version: e.Version, Licences: touched, Playback: playback}, nil
}

// do is try for commands that must succeed; it returns the licence id the
// command touched first, if any.
func (h *history) do(at time.Duration, cmd Command) string {
	h.t.Helper()
	res, err := h.try(at, cmd)
	if err != nil {
		h.t.Fatalf("given %T %+v at +%v: %v", cmd, cmd, at, err)
	}
	if len(res.Licences) > 0 {
		return res.Licences[0].ID
	}
	return ""
}

func acq(plan, device, title string) Acquire {
	return Acquire{Member: "m1", Plan: plan, Device: device, Title: title}
}

func codesOf(err error) []string {
	var d *Denial
	if errors.As(err, &d) {
		return d.Codes()
	}
	return nil
}

func ruleOf(err error, code string) (RuleFailure, bool) {
	var d *Denial
	if errors.As(err, &d) {
		for _, r := range d.Rules {
			if r.Code == code {
				return r, true
			}
		}
	}
	return RuleFailure{}, false
}
