package licensing

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
)

// ids lets a given step hand licence ids to the when step.
type ids map[string]string

type gwtCase struct {
	name  string
	given func(h *history, l ids)
	at    time.Duration
	when  func(l ids) Command
	// deny lists the expected denial codes in order; nil means granted.
	deny []string
	// fails is the kind of error expected instead of a decision.
	fails kernel.Kind
	// then checks more of the outcome, when set.
	then func(t *testing.T, res Result, err error)
}

func runGWT(t *testing.T, cases []gwtCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHistory(t, testPolicy(t))
			l := ids{}
			if tc.given != nil {
				tc.given(h, l)
			}
			cmd := tc.when(l)
			res, err := h.try(tc.at, cmd)
			if tc.fails != "" && kernel.KindOf(err) != tc.fails {
				t.Fatalf("Decide(%+v) = %v, want a %s error", cmd, err, tc.fails)
			}
			if tc.fails == "" && tc.deny == nil && err != nil {
				t.Fatalf("Decide(%+v) = %v, want granted", cmd, err)
			}
			if tc.deny != nil && !slices.Equal(codesOf(err), tc.deny) {
				t.Fatalf("Decide(%+v) = %v, want denial %v", cmd, err, tc.deny)
			}
			if tc.then != nil {
				tc.then(t, res, err)
			}
		})
	}
}

func wantRule(t *testing.T, err error, code string, limit, current int, frees time.Time) {
	t.Helper()
	r, ok := ruleOf(err, code)
	if !ok {
		t.Fatalf("denial %v has no %s", err, code)
	}
	if r.Limit != limit || r.Current != current {
		t.Errorf("%s limit/current = %d/%d, want %d/%d", code, r.Limit, r.Current, limit, current)
	}
	switch {
	case frees.IsZero() && r.FreesAt != nil:
		t.Errorf("%s frees at %v, want none", code, r.FreesAt)
	case !frees.IsZero() && (r.FreesAt == nil || !r.FreesAt.Equal(frees)):
		t.Errorf("%s frees at %v, want %v", code, r.FreesAt, frees)
	}
	if r.Message == "" {
		t.Errorf("%s has no message", code)
	}
}

func TestAcquireRules(t *testing.T) {
	threeOnD1 := func(h *history, l ids) {
		l["a"] = h.do(0, acq("family", "d1", "p1"))
		l["b"] = h.do(time.Hour, acq("family", "d1", "p2"))
		l["c"] = h.do(2*time.Hour, acq("family", "d1", "p3"))
	}
	runGWT(t, []gwtCase{
		{
			name: "first download is granted with the studio's licence duration",
			when: func(ids) Command { return acq("family", "d1", "p1") },
			then: func(t *testing.T, res Result, _ error) {
				if len(res.Licences) != 1 {
					t.Fatalf("Licences = %v, want one", res.Licences)
				}
				v := res.Licences[0]
				if v.Title != "p1" || v.Device != "d1" || v.Studio != "plain" || v.Status != StatusActive ||
					!v.ExpiresAt.Equal(t0.Add(30*day)) || !v.IssuedAt.Equal(t0) {
					t.Errorf("granted %+v, want p1 on d1 of plain, active, expiring at %v", v, t0.Add(30*day))
				}
			},
		},
		{
			name: "device one under its limit",
			given: func(h *history, l ids) {
				h.do(0, acq("family", "d1", "p1"))
				h.do(time.Hour, acq("family", "d1", "p2"))
			},
			at:   3 * time.Hour,
			when: func(ids) Command { return acq("family", "d1", "p3") },
		},
		{
			name:  "device at its limit",
			given: threeOnD1,
			at:    3 * time.Hour,
			when:  func(ids) Command { return acq("family", "d1", "p4") },
			deny:  []string{CodeDeviceDownloadLimit},
			then: func(t *testing.T, _ Result, err error) {
				wantRule(t, err, CodeDeviceDownloadLimit, 3, 3, t0.Add(30*day))
			},
		},
		{
			name: "a released licence counts against nothing",
			given: func(h *history, l ids) {
				threeOnD1(h, l)
				h.do(3*time.Hour, Release{"m1", "d1", l["b"], ReasonDeleted})
			},
			at:   4 * time.Hour,
			when: func(ids) Command { return acq("family", "d1", "p4") },
		},
		{
			name:  "an expired licence counts against nothing, from the instant it expires",
			given: threeOnD1,
			at:    30 * day,
			when:  func(ids) Command { return acq("family", "d1", "p4") },
		},
		{
			name:  "one nanosecond before expiry it still counts",
			given: threeOnD1,
			at:    30*day - 1,
			when:  func(ids) Command { return acq("family", "d1", "p4") },
			deny:  []string{CodeDeviceDownloadLimit},
		},
		{
			name: "member at its limit across devices",
			given: func(h *history, l ids) {
				threeOnD1(h, l)
				h.do(3*time.Hour, acq("family", "d2", "p4"))
			},
			at:   4 * time.Hour,
			when: func(ids) Command { return acq("family", "d2", "p5") },
			deny: []string{CodeMemberDownloadLimit},
			then: func(t *testing.T, _ Result, err error) {
				wantRule(t, err, CodeMemberDownloadLimit, 4, 4, t0.Add(30*day))
			},
		},
		{
			name: "devices at the plan's limit: a new device is refused",
			given: func(h *history, l ids) {
				h.do(0, acq("family", "d1", "p1"))
				h.do(day, acq("family", "d2", "p2"))
			},
			at:   2 * day,
			when: func(ids) Command { return acq("family", "d3", "p3") },
			deny: []string{CodeDeviceCountLimit},
			then: func(t *testing.T, _ Result, err error) {
				// d1 frees first: its only licence ends at 30 days.
				wantRule(t, err, CodeDeviceCountLimit, 2, 2, t0.Add(30*day))
			},
		},
		{
			name: "devices at the plan's limit: a device already holding downloads may add more",
			given: func(h *history, l ids) {
				h.do(0, acq("family", "d1", "p1"))
				h.do(day, acq("family", "d2", "p2"))
			},
			at:   2 * day,
			when: func(ids) Command { return acq("family", "d2", "p3") },
		},
		{
			name: "a device whose downloads were all released no longer counts",
			given: func(h *history, l ids) {
				h.do(0, acq("family", "d1", "p1"))
				h.do(day, acq("family", "d2", "p2"))
				h.do(day+time.Hour, ReleaseDevice{"m1", "d1", ReasonDeviceRemoved})
			},
			at:   2 * day,
			when: func(ids) Command { return acq("family", "d3", "p3") },
		},
		{
			name: "title quota: one under",
			given: func(h *history, l ids) {
				l["a"] = h.do(0, acq("family", "d1", "q1"))
			},
			at:   day,
			when: func(ids) Command { return acq("family", "d2", "q1") },
		},
		{
			name: "title quota reached inside the rolling window",
			given: func(h *history, l ids) {
				l["a"] = h.do(0, acq("family", "d1", "q1"))
				h.do(time.Hour, Release{"m1", "d1", l["a"], ReasonDeleted})
				h.do(day, acq("family", "d1", "q1"))
			},
			at:   10*day - 1,
			when: func(ids) Command { return acq("family", "d2", "q1") },
			deny: []string{CodeTitleDownloadQuota},
			then: func(t *testing.T, _ Result, err error) {
				wantRule(t, err, CodeTitleDownloadQuota, 2, 2, t0.Add(10*day))
			},
		},
		{
			name: "title quota frees when the oldest download leaves the window",
			given: func(h *history, l ids) {
				l["a"] = h.do(0, acq("family", "d1", "q1"))
				h.do(time.Hour, Release{"m1", "d1", l["a"], ReasonDeleted})
				h.do(day, acq("family", "d1", "q1"))
			},
			at:   10 * day,
			when: func(ids) Command { return acq("family", "d2", "q1") },
		},
		{
			name: "a renewal is not a download for the quota",
			given: func(h *history, l ids) {
				l["a"] = h.do(0, acq("family", "d1", "q1"))
				h.do(day, Renew{"m1", "family", "d1", l["a"]})
			},
			at:   2 * day,
			when: func(ids) Command { return acq("family", "d2", "q1") },
		},
		{
			name: "studio cap reached",
			given: func(h *history, l ids) {
				h.do(0, acq("family", "d1", "c1"))
				h.do(time.Hour, acq("family", "d2", "c2"))
			},
			at:   2 * time.Hour,
			when: func(ids) Command { return acq("family", "d1", "c3") },
			deny: []string{CodeStudioDownloadLimit},
			then: func(t *testing.T, _ Result, err error) {
				wantRule(t, err, CodeStudioDownloadLimit, 2, 2, t0.Add(30*day))
			},
		},
		{
			name: "the same title twice on one device",
			given: func(h *history, l ids) {
				h.do(0, acq("family", "d1", "p1"))
			},
			at:   time.Hour,
			when: func(ids) Command { return acq("family", "d1", "p1") },
			deny: []string{CodeAlreadyOnDevice},
		},
		{
			name: "the same title on another device",
			given: func(h *history, l ids) {
				h.do(0, acq("family", "d1", "p1"))
			},
			at:   time.Hour,
			when: func(ids) Command { return acq("family", "d2", "p1") },
		},
		{
			name: "unknown title",
			when: func(ids) Command { return acq("family", "d1", "nope") },
			deny: []string{CodeTitleNotFound},
		},
		{
			name: "streaming-only title",
			when: func(ids) Command { return acq("family", "d1", "stream-only") },
			deny: []string{CodeTitleNotDownloadable},
		},
		{
			name: "title not yet available, and when it will be",
			when: func(ids) Command { return acq("family", "d1", "soon") },
			deny: []string{CodeTitleNotAvailable},
			then: func(t *testing.T, _ Result, err error) {
				wantRule(t, err, CodeTitleNotAvailable, 0, 0, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
			},
		},
		{
			name: "title available until its last instant",
			at:   time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC).Sub(t0) - 1,
			when: func(ids) Command { return acq("family", "d1", "gone") },
		},
		{
			name: "title no longer available",
			at:   time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC).Sub(t0),
			when: func(ids) Command { return acq("family", "d1", "gone") },
			deny: []string{CodeTitleNotAvailable},
		},
		{
			name: "plan without downloads",
			when: func(ids) Command { return acq("nodl", "d1", "p1") },
			deny: []string{CodePlanNotEligible},
		},
		{
			name: "unknown plan",
			when: func(ids) Command { return acq("gold", "d1", "p1") },
			deny: []string{CodePlanNotEligible},
		},
		{
			name: "several rules fail at once and all are listed",
			given: func(h *history, l ids) {
				h.do(0, acq("solo", "d1", "c1"))
				h.do(time.Hour, acq("solo", "d1", "c2"))
			},
			at:   2 * time.Hour,
			when: func(ids) Command { return acq("solo", "d2", "c3") },
			deny: []string{CodeMemberDownloadLimit, CodeDeviceCountLimit, CodeStudioDownloadLimit},
		},
		{
			name: "catalogue and holding rules together",
			given: func(h *history, l ids) {
				h.do(0, acq("solo", "d1", "p1"))
				h.do(time.Hour, acq("solo", "d1", "p2"))
			},
			at:   2 * time.Hour,
			when: func(ids) Command { return acq("solo", "d1", "stream-only") },
			deny: []string{CodeTitleNotDownloadable, CodeDeviceDownloadLimit, CodeMemberDownloadLimit},
		},
	})
}

func TestRenewRules(t *testing.T) {
	one := func(title string) func(h *history, l ids) {
		return func(h *history, l ids) { l["a"] = h.do(0, acq("family", "d1", title)) }
	}
	renew := func(l ids) Command { return Renew{"m1", "family", "d1", l["a"]} }
	runGWT(t, []gwtCase{
		{
			name:  "renewal gives a new term from now",
			given: one("p1"),
			at:    20 * day,
			when:  renew,
			then: func(t *testing.T, res Result, _ error) {
				v := res.Licences[0]
				if !v.ExpiresAt.Equal(t0.Add(50*day)) || v.Renewals != 1 {
					t.Errorf("renewed %+v, want expiry %v and 1 renewal", v, t0.Add(50*day))
				}
			},
		},
		{
			name:  "an expired licence can be renewed",
			given: one("p1"),
			at:    31 * day,
			when:  renew,
		},
		{
			name: "renewals up to the studio's limit",
			given: func(h *history, l ids) {
				one("w1")(h, l)
				h.do(day, Renew{"m1", "family", "d1", l["a"]})
			},
			at:   2 * day,
			when: renew,
			deny: []string{CodeRenewalLimit},
			then: func(t *testing.T, _ Result, err error) { wantRule(t, err, CodeRenewalLimit, 1, 1, time.Time{}) },
		},
		{
			name:  "studio that forbids renewals",
			given: one("f1"),
			at:    day,
			when:  renew,
			deny:  []string{CodeNotRenewable},
		},
		{
			name: "a released licence cannot be renewed",
			given: func(h *history, l ids) {
				one("p1")(h, l)
				h.do(day, Release{"m1", "d1", l["a"], ReasonDeleted})
			},
			at:   2 * day,
			when: renew,
			deny: []string{CodeLicenceReleased},
		},
		{
			name:  "title no longer available",
			given: one("gone"),
			at:    10 * day,
			when:  renew,
			deny:  []string{CodeTitleNotAvailable},
		},
		{
			name: "a lapsed licence meets the holding rules again",
			given: func(h *history, l ids) {
				one("w1")(h, l) // expires after 7 days
				h.do(8*day, acq("family", "d1", "p1"))
				h.do(8*day, acq("family", "d1", "p2"))
				h.do(8*day, acq("family", "d1", "p3"))
			},
			at:   9 * day,
			when: renew,
			deny: []string{CodeDeviceDownloadLimit},
		},
		{
			name: "an active licence changes no count, so a full device may renew it",
			given: func(h *history, l ids) {
				one("p1")(h, l)
				h.do(time.Hour, acq("family", "d1", "p2"))
				h.do(time.Hour, acq("family", "d1", "p3"))
			},
			at:   day,
			when: renew,
		},
		{
			name:  "another device's licence is not found",
			given: one("p1"),
			at:    day,
			when:  func(l ids) Command { return Renew{"m1", "family", "d2", l["a"]} },
			fails: kernel.KindNotFound,
			then: func(t *testing.T, _ Result, err error) {
				var e *kernel.Error
				if !errors.As(err, &e) || e.Kind != kernel.KindNotFound || e.Code != CodeLicenceNotFound {
					t.Errorf("Renew on another device = %v, want %s", err, CodeLicenceNotFound)
				}
			},
		},
		{
			name:  "a licence forgotten after retention is not found",
			given: one("p1"),
			at:    30*day + EndedRetention,
			when:  renew,
			fails: kernel.KindNotFound,
		},
	})
}

func TestPlaybackWindow(t *testing.T) {
	p := testPolicy(t)
	h := newHistory(t, p)
	id := h.do(0, acq("family", "d1", "w1"))
	h.do(2*time.Hour, acq("family", "d1", "p1"))
	h.do(2*time.Hour, acq("family", "d1", "p2"))
	start := t0.Add(time.Hour)
	h.do(3*time.Hour, RecordPlayback{"m1", "d1", []PlaybackInput{{ID: "e1", Licence: id, Kind: PlaybackStart, DeviceTime: start}}})

	l := h.state.Licence(id, t0.Add(3*time.Hour))
	if got, want := l.EffectiveExpiry(p.Terms("window")), start.Add(48*time.Hour); !got.Equal(want) {
		t.Fatalf("EffectiveExpiry after first play = %v, want %v", got, want)
	}
	// Until the window ends the device is full; from then on the window
	// licence counts against nothing.
	if _, err := h.try(start.Add(48*time.Hour).Sub(t0)-1, acq("family", "d1", "p3")); !slices.Equal(codesOf(err), []string{CodeDeviceDownloadLimit}) {
		t.Fatalf("Acquire inside the window = %v, want %s", err, CodeDeviceDownloadLimit)
	}
	if _, err := h.try(start.Add(48*time.Hour).Sub(t0), acq("family", "d1", "p3")); err != nil {
		t.Fatalf("Acquire after the window = %v, want granted", err)
	}
	// A renewal opens a new term: the next first play starts a new window.
	h.do(4*day, Release{"m1", "d1", h.state.Licences(t0.Add(4 * day))[3].ID, ReasonDeleted})
	res, err := h.try(4*day, Renew{"m1", "family", "d1", id})
	if err != nil {
		t.Fatalf("Renew after the window = %v", err)
	}
	if v := res.Licences[0]; v.Plays != 0 || v.FirstPlayAt != nil {
		t.Errorf("renewed licence = %+v, want no plays in the new term", v)
	}
}

func TestRelease(t *testing.T) {
	p := testPolicy(t)
	h := newHistory(t, p)
	a := h.do(0, acq("family", "d1", "p1"))
	b := h.do(0, acq("family", "d1", "p2"))
	h.do(0, acq("family", "d2", "p3"))

	res := mustTry(t, h, time.Hour, Release{"m1", "d1", a, ReasonDeleted})
	if v := res.Licences[0]; v.Status != StatusReleased || v.ReleaseReason != ReasonDeleted {
		t.Errorf("Release = %+v, want released by the member", v)
	}
	n := len(h.events)
	res = mustTry(t, h, 2*time.Hour, Release{"m1", "d1", a, ReasonDeleted})
	if len(h.events) != n || res.Licences[0].Status != StatusReleased {
		t.Errorf("second Release appended %d events and answered %+v, want none and the released licence", len(h.events)-n, res.Licences)
	}
	if _, err := h.try(2*time.Hour, Release{"m1", "d2", b, ReasonDeleted}); kernel.KindOf(err) != kernel.KindNotFound {
		t.Errorf("Release from the wrong device = %v, want not found", err)
	}
	if _, err := h.try(2*time.Hour, Release{"m1", "d1", b, "BORED"}); kernel.KindOf(err) != kernel.KindInvalid {
		t.Errorf("Release with an unknown reason = %v, want invalid", err)
	}

	res = mustTry(t, h, 3*time.Hour, ReleaseDevice{"m1", "d1", ReasonDeviceRemoved})
	if len(res.Licences) != 1 || res.Licences[0].ID != b || res.Licences[0].ReleaseReason != ReasonDeviceRemoved {
		t.Errorf("ReleaseDevice(d1) = %+v, want only %s released as device removed", res.Licences, b)
	}
	n = len(h.events)
	if res := mustTry(t, h, 4*time.Hour, ReleaseDevice{"m1", "d1", ReasonDeviceRemoved}); len(res.Licences) != 0 || len(h.events) != n {
		t.Errorf("ReleaseDevice of an empty device = %+v, %d events, want nothing", res.Licences, len(h.events)-n)
	}
	if got := count(h.state, p, t0.Add(5*time.Hour), "").member; got != 1 {
		t.Errorf("active licences after releases = %d, want 1", got)
	}
}

func mustTry(t *testing.T, h *history, at time.Duration, cmd Command) Result {
	t.Helper()
	res, err := h.try(at, cmd)
	if err != nil {
		t.Fatalf("%T %+v = %v", cmd, cmd, err)
	}
	return res
}

func TestSync(t *testing.T) {
	p := testPolicy(t)
	h := newHistory(t, p)
	active := h.do(0, acq("family", "d1", "p1"))
	expiredRenewable := h.do(0, acq("family", "d1", "w1"))
	expiredFixed := h.do(0, acq("family", "d1", "f1"))
	h.do(time.Hour, acq("family", "d2", "p3"))
	released := h.do(8*day, acq("family", "d1", "p2"))
	h.do(9*day, Release{"m1", "d1", released, ReasonDeleted})
	h.do(10*day, Renew{"m1", "family", "d1", active})

	v := Sync(h.state, p, "d1", []string{active, "L-unknown"}, t0.Add(31*day))
	ids := func(vs []LicenceStatus) []string {
		var out []string
		for _, v := range vs {
			out = append(out, v.ID)
		}
		return out
	}
	if got := ids(v.Active); !slices.Equal(got, []string{active}) {
		t.Errorf("Sync active = %v, want %v", got, []string{active})
	}
	if got := ids(v.Released); !slices.Equal(got, []string{released}) {
		t.Errorf("Sync released = %v, want %v", got, []string{released})
	}
	if got := ids(v.Expired); !slices.Equal(got, []string{expiredRenewable, expiredFixed}) {
		t.Errorf("Sync expired = %v, want %v", got, []string{expiredRenewable, expiredFixed})
	}
	want := []string{released, expiredFixed, "L-unknown"}
	slices.Sort(want)
	got := slices.Clone(v.Delete)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("Sync delete = %v, want %v", got, want)
	}
}

// TestAPlanChangeKeepsTheNewestLicences: a family member (2 devices, 3 a
// device, 4 in all) who moves to solo (1 device, 2 a device, 2 in all)
// keeps the newest licences the new plan allows; a plan without downloads
// keeps none; an unknown plan is refused.
func TestAPlanChangeKeepsTheNewestLicences(t *testing.T) {
	p := testPolicy(t)
	h := newHistory(t, p)
	a := h.do(0, acq("family", "d1", "p1"))
	b := h.do(time.Hour, acq("family", "d2", "p2"))
	c := h.do(2*time.Hour, acq("family", "d1", "p3"))
	d := h.do(3*time.Hour, acq("family", "d1", "p4"))
	now := t0.Add(4 * time.Hour)
	ids := func(ls []*Licence) []string {
		var out []string
		for _, l := range ls {
			out = append(out, l.ID)
		}
		slices.Sort(out)
		return out
	}
	excess, err := Excess(h.state, p, "solo", now)
	// Newest first: d (d1), c (d1): kept, d1 full at 2; b (d2): a second
	// device; a (d1): over 2 on d1 and in all.
	want := []string{a, b}
	slices.Sort(want)
	if err != nil || !slices.Equal(ids(excess), want) {
		t.Errorf("Excess(solo) = %v, %v; want %v (keeping %s and %s)", ids(excess), err, want, c, d)
	}
	if excess, err := Excess(h.state, p, "family", now); err != nil || len(excess) != 0 {
		t.Errorf("Excess(family) = %v, %v; want none", ids(excess), err)
	}
	if excess, err := Excess(h.state, p, "nodl", now); err != nil || len(excess) != 4 {
		t.Errorf("Excess(a plan without downloads) = %v, %v; want all 4", ids(excess), err)
	}
	var denial *Denial
	if _, err := Excess(h.state, p, "gold", now); !errors.As(err, &denial) || denial.Rules[0].Code != CodePlanNotEligible {
		t.Errorf("Excess(an unknown plan) = %v, want %s", err, CodePlanNotEligible)
	}
	// EnforcePlan releases the excess, with the reason; again, nothing.
	res := mustTry(t, h, 4*time.Hour, EnforcePlan{Member: "m1", Plan: "solo"})
	if len(res.Licences) != 2 || res.Licences[0].ReleaseReason != ReasonPlanChanged {
		t.Errorf("EnforcePlan = %+v, want 2 released, PLAN_CHANGED", res.Licences)
	}
	if res := mustTry(t, h, 4*time.Hour, EnforcePlan{Member: "m1", Plan: "solo"}); len(res.Licences) != 0 {
		t.Errorf("EnforcePlan again = %+v, want nothing", res.Licences)
	}
	// Closing the account releases the rest.
	res = mustTry(t, h, 5*time.Hour, CloseAccount{Member: "m1"})
	if len(res.Licences) != 2 || res.Licences[0].ReleaseReason != ReasonAccountClosed {
		t.Errorf("CloseAccount = %+v, want the 2 kept released, ACCOUNT_CLOSED", res.Licences)
	}
}

// TestAWithdrawnTitle: from its withdrawal on, a title is not granted and
// its plays are refused; a renewal before it expires by then and says why;
// licences granted before the withdrawal was known end (TITLE_WITHDRAWN) by
// WithdrawTitle or at the member's next sync (EnforcePlan), and hold no
// place against the plan meanwhile.
func TestAWithdrawnTitle(t *testing.T) {
	base := testPolicy(t)
	from := t0.Add(10 * day)
	p := base.WithWithdrawals(map[string]time.Time{"p1": from})
	if base.Titles["p1"].WithdrawnFrom != nil {
		t.Fatal("WithWithdrawals changed the policy it was given")
	}
	h := newHistory(t, base)
	held := h.do(0, acq("family", "d1", "p1")) // before the withdrawal was known: expires at 30 days
	renewed := h.do(0, acq("family", "d1", "p2"))
	h.do(0, acq("family", "d2", "p3"))
	h.do(0, acq("family", "d2", "p4"))
	h.policy = p // the withdrawal is known from here on
	res := mustTry(t, h, day, Renew{Member: "m1", Plan: "family", Device: "d1", Licence: held})
	if l := p.annotated(res.Licences)[0]; !l.ExpiresAt.Equal(from) || l.ExpiryCappedBy != CappedByWithdrawal {
		t.Errorf("a renewal before the withdrawal = expires %v, capped by %q; want %v, %s", l.ExpiresAt, l.ExpiryCappedBy, from, CappedByWithdrawal)
	}
	var denial *Denial
	if _, err := h.try(11*day, acq("family", "d1", "p1")); !errors.As(err, &denial) || denial.Rules[0].Code != CodeTitleWithdrawn {
		t.Errorf("a grant after the withdrawal = %v, want %s", err, CodeTitleWithdrawn)
	}
	res = mustTry(t, h, 10*day+time.Hour, RecordPlayback{"m1", "d1", []PlaybackInput{
		{ID: "before", Licence: held, Kind: PlaybackStart, DeviceTime: from.Add(-time.Hour)},
	}})
	if res.Playback[0].Code != PlaybackAccepted {
		t.Errorf("a play before the withdrawal = %v, want accepted", res.Playback)
	}
	// A licence of the title granted before the withdrawal was known, and
	// not renewed since: still held past it until something ends it.
	h2 := newHistory(t, base)
	old := h2.do(0, acq("family", "d1", "p1"))
	h2.do(0, acq("family", "d1", "p2"))
	h2.do(0, acq("family", "d2", "p3"))
	h2.do(0, acq("family", "d2", "p4")) // 4 in all: the family plan's most
	h2.policy = p
	now := t0.Add(11 * day)
	if got := idsOf(Withdrawn(h2.state, p, "", now)); !slices.Equal(got, []string{old}) {
		t.Errorf("Withdrawn = %v, want %s", got, old)
	}
	if excess, _ := Excess(h2.state, p, "family", now); len(excess) != 0 {
		t.Errorf("Excess = %v, want none: a withdrawn licence holds no place", idsOf(excess))
	}
	res = mustTry(t, h2, 11*day, RecordPlayback{"m1", "d1", []PlaybackInput{{ID: "after", Licence: old, Kind: PlaybackStart, DeviceTime: from.Add(time.Hour)}}})
	if res.Playback[0].Code != PlaybackOutsideLicence {
		t.Errorf("a play after the withdrawal = %v, want refused", res.Playback)
	}
	if v := h2.state.Licence(old, now).StatusAt(p, now); v.Status != StatusExpired || !v.PlayableUntil.Equal(from) {
		t.Errorf("the licence seen after the withdrawal = %s until %v, want EXPIRED at %v", v.Status, v.PlayableUntil, from)
	}
	if res := mustTry(t, h2, 9*day, WithdrawTitle{Member: "m1", Title: "p1"}); len(res.Licences) != 0 {
		t.Errorf("WithdrawTitle before the withdrawal = %+v, want nothing", res.Licences)
	}
	res = mustTry(t, h2, 11*day, EnforcePlan{Member: "m1", Plan: "family"})
	if len(res.Licences) != 1 || res.Licences[0].ID != old || res.Licences[0].ReleaseReason != ReasonTitleWithdrawn {
		t.Errorf("EnforcePlan after the withdrawal = %+v, want %s released, TITLE_WITHDRAWN", res.Licences, old)
	}
	if res := mustTry(t, h2, 11*day, WithdrawTitle{Member: "m1", Title: "p1"}); len(res.Licences) != 0 {
		t.Errorf("WithdrawTitle once released = %+v, want nothing", res.Licences)
	}
	_ = renewed
}

func idsOf(ls []*Licence) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.ID)
	}
	slices.Sort(out)
	return out
}
