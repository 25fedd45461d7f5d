package licensing

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestStateAt(t *testing.T) {
	p := testPolicy(t)
	h := newHistory(t, p)
	a := h.do(0, acq("family", "d1", "p1"))
	h.do(day, acq("family", "d1", "p2"))
	h.do(2*day, Release{"m1", "d1", a, ReasonDeleted})

	for _, c := range []struct {
		at     time.Duration
		active int
	}{{-time.Second, 0}, {0, 1}, {day - 1, 1}, {day, 2}, {2 * day, 1}} {
		s := StateAt("m1", h.events, t0.Add(c.at))
		if got := count(s, p, t0.Add(c.at), "").member; got != c.active {
			t.Errorf("StateAt(+%v) has %d active licences, want %d", c.at, got, c.active)
		}
	}
}

func TestWhatIfListsDecisionsAnotherPolicyWouldRefuse(t *testing.T) {
	p := testPolicy(t)
	h := newHistory(t, p)
	h.do(0, acq("family", "d1", "p1"))
	second := h.do(time.Hour, acq("family", "d2", "p2"))
	h.do(2*time.Hour, acq("family", "d1", "q1"))
	renewed := h.do(3*time.Hour, acq("family", "d1", "w1"))
	h.do(day, Renew{"m1", "family", "d1", renewed})

	// A stricter policy: one download device on the family plan, and the
	// window studio no longer renews.
	stricter := strings.Replace(testPolicyJSON, `"family": {"max_download_devices": 2`, `"family": {"max_download_devices": 1`, 1)
	stricter = strings.Replace(stricter, `"max_plays_per_window": 2, "max_renewals": 1}`, `"max_plays_per_window": 2, "renewable": false}`, 1)
	sp, err := ParsePolicy(strings.NewReader(stricter))
	if err != nil {
		t.Fatal(err)
	}
	got := WhatIf("m1", h.events, sp)
	if len(got) != 2 {
		t.Fatalf("WhatIf(stricter) = %+v, want 2 divergences", got)
	}
	if d := got[0]; d.Licence != second || d.Type != TypeLicenceAcquired || !slices.Equal(ruleCodes(d.Rules), []string{CodeDeviceCountLimit}) {
		t.Errorf("first divergence = %+v, want %s refused by %s", d, second, CodeDeviceCountLimit)
	}
	if d := got[1]; d.Licence != renewed || d.Type != TypeLicenceRenewed || !slices.Equal(ruleCodes(d.Rules), []string{CodeNotRenewable}) {
		t.Errorf("second divergence = %+v, want the renewal of %s refused by %s", d, renewed, CodeNotRenewable)
	}
	if d := WhatIf("m1", h.events, p); len(d) != 0 {
		t.Errorf("WhatIf(same policy) = %+v, want none", d)
	}
}

func TestWhatIfOnEventsWithoutAPlan(t *testing.T) {
	// Schema 1 acquisitions did not record the plan: the plan's rules are
	// left out, the studio's and title's still apply.
	e, err := DecodeEvent(StoredEvent{Version: 1, Type: TypeLicenceAcquired, Schema: 1, At: t0,
		Data: []byte(`{"licence":"L1","title":"stream-only","studio":"plain","device":"d1","duration_s":60}`)})
	if err != nil {
		t.Fatal(err)
	}
	got := WhatIf("m1", []Event{e}, testPolicy(t))
	if len(got) != 1 || !slices.Equal(ruleCodes(got[0].Rules), []string{CodeTitleNotDownloadable}) {
		t.Errorf("WhatIf(v1 event) = %+v, want only %s", got, CodeTitleNotDownloadable)
	}
}

func ruleCodes(rs []RuleFailure) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Code)
	}
	return out
}
