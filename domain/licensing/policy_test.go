package licensing

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultPolicy(t *testing.T) {
	p := DefaultPolicy()
	for plan, want := range map[string][2]int{"basic": {1, 1}, "standard": {2, 2}, "premium": {6, 4}} {
		pl, ok := p.Plan(plan)
		if !ok || pl.MaxDownloadDevices != want[0] || pl.MaxActivePerDevice != 100 || pl.MaxScreens != want[1] {
			t.Errorf("default plan %s = %+v, want %d devices, 100 downloads per device and %d screens", plan, pl, want[0], want[1])
		}
	}
	if v := p.Viewing; v.HeartbeatInterval.D() != 30*time.Second || v.ViewExpiry.D() != 90*time.Second || v.Completion != 0.95 {
		t.Errorf("default viewing rules = %+v, want 30s heartbeats, 90s expiry, completion at 0.95", v)
	}
	var yearlyQuota, window48h bool
	for studio := range p.Studios {
		terms := p.Terms(studio)
		if q := terms.TitleQuota; q != nil && q.Window.D() == 365*day {
			yearlyQuota = true
		}
		if terms.PlaybackWindow == 48*time.Hour {
			window48h = true
		}
	}
	if !yearlyQuota || !window48h {
		t.Errorf("default policy: yearly title quota %v, 48-hour playback window %v; want both", yearlyQuota, window48h)
	}
	for id, title := range p.Titles {
		if _, ok := p.Studios[title.Studio]; !ok {
			t.Errorf("default title %s has unknown studio %s", id, title.Studio)
		}
	}
}

func TestParsePolicyNamesTheBadField(t *testing.T) {
	base := DefaultPolicyJSON()
	for _, c := range []struct {
		name, from, to, field string
	}{
		{"missing version", `"version": "2026-11-01"`, `"version": ""`, "version"},
		{"bad duration", `"licence_duration": "7d"`, `"licence_duration": "7 days"`, `invalid duration "7 days"`},
		{"negative window", `"playback_window": "48h"`, `"playback_window": "-48h"`, "studios.harbour.playback_window"},
		{"quota of zero", `"count": 3`, `"count": 0`, "studios.northlight.title_quota.count"},
		{"quota window too long", `"window": "365d"`, `"window": "3650d"`, "studios.northlight.title_quota.window"},
		{"unknown studio", `"studio": "meridian",   "downloadable": false`, `"studio": "nowhere", "downloadable": false`, "titles.tt-meridian-two.studio"},
		{"device cap below one", `"basic":    { "max_download_devices": 1, "max_active_per_device": 100`, `"basic":    { "max_download_devices": 1, "max_active_per_device": 0`, "plans.basic.max_active_per_device"},
		{"wrong type", `"max_renewals": 2`, `"max_renewals": "two"`, "studios.harbour.max_renewals"},
		{"unknown field", `"renewable": false`, `"renewable": false, "renewabel": true`, `"renewabel"`},
		{"plays without window", `"renewable": false`, `"renewable": false, "max_plays_per_window": 2`, "studios.meridian.max_plays_per_window"},
		{"availability backwards", `"available_from": "2027-03-01T00:00:00Z"`, `"available_from": "2027-03-01T00:00:00Z", "available_until": "2027-01-01T00:00:00Z"`, "titles.tt-coming-soon.available_until"},
		{"malformed", `"plans": {`, `"plans": {{`, "malformed JSON"},
		{"no screens", `"max_active_per_member": 100, "max_screens": 1 }`, `"max_active_per_member": 100 }`, "plans.basic.max_screens"},
		{"too many screens", `"max_screens": 4 }`, `"max_screens": 17 }`, "plans.premium.max_screens"},
		{"negative runtime", `"runtime": "47m"`, `"runtime": "-47m"`, "titles.tt-northern-lines.runtime"},
		{"runtime over a day", `"runtime": "47m"`, `"runtime": "25h"`, "titles.tt-northern-lines.runtime"},
		{"runtime under a second", `"runtime": "47m"`, `"runtime": "500ms"`, "titles.tt-northern-lines.runtime"},
		{"runtime in microseconds", `"runtime": "47m"`, `"runtime": "47m0.0005s"`, "titles.tt-northern-lines.runtime"},
		{"heartbeats too often", `"heartbeat_interval": "30s"`, `"heartbeat_interval": "1s"`, "viewing.heartbeat_interval"},
		{"expiry before a heartbeat", `"view_expiry": "90s"`, `"view_expiry": "10s"`, "viewing.view_expiry"},
		{"completion past the end", `"completion": 0.95`, `"completion": 1.5`, "viewing.completion"},
		{"unknown viewing field", `"completion": 0.95`, `"completion": 0.95, "screens": 3`, `"screens"`},
	} {
		doc := strings.Replace(string(base), c.from, c.to, 1)
		if doc == string(base) {
			t.Fatalf("%s: the default policy has no %q to replace", c.name, c.from)
		}
		_, err := ParsePolicy(strings.NewReader(doc))
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: ParsePolicy = %v, want an error naming %s", c.name, err, c.field)
		}
	}
}

func TestViewingRulesDefault(t *testing.T) {
	doc := strings.Replace(string(DefaultPolicyJSON()), `"heartbeat_interval": "30s",
    "view_expiry": "90s",
    "completion": 0.95`, `"view_expiry": "5m"`, 1)
	p, err := ParsePolicy(strings.NewReader(doc))
	if err != nil {
		t.Fatalf("ParsePolicy(viewing with only an expiry) = %v", err)
	}
	if v := p.Viewing; v.HeartbeatInterval != DefaultViewing.HeartbeatInterval || v.ViewExpiry.D() != 5*time.Minute || v.Completion != DefaultViewing.Completion {
		t.Errorf("viewing = %+v, want the default interval and completion, and a 5m expiry", v)
	}
}

func TestTermsFallBackToDefaults(t *testing.T) {
	p := testPolicy(t)
	if got := p.Terms("plain"); got.LicenceDuration != 30*day || !got.Renewable || got.MaxRenewals != 3 || got.TitleQuota != nil {
		t.Errorf("Terms(plain) = %+v, want the defaults", got)
	}
	if got := p.Terms("window"); got.LicenceDuration != 7*day || got.PlaybackWindow != 48*time.Hour || got.MaxRenewals != 1 {
		t.Errorf("Terms(window) = %+v, want 7d, 48h window, 1 renewal", got)
	}
	if got := p.Terms("fixed"); got.Renewable {
		t.Errorf("Terms(fixed).Renewable = true, want false")
	}
	if got := p.Terms("gone-studio"); got.LicenceDuration != 30*day {
		t.Errorf("Terms(unknown studio) = %+v, want the defaults", got)
	}
}

func TestDurationText(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 30 * day, "48h": 48 * time.Hour, "90m": 90 * time.Minute, "0": 0} {
		d, err := ParseDuration(in)
		if err != nil || d.D() != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, d, err, want)
		}
		if back, _ := ParseDuration(d.String()); back != d {
			t.Errorf("ParseDuration(%q.String()) = %v, want %v", in, back, d)
		}
	}
	for _, in := range []string{"", "d", "-3d", "3 days", "1y"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = nil error, want an error", in)
		}
	}
}

// TestMaxRenewalsMeansWhatItSays: max_renewals is the number of renewals a
// licence may have: 0 refuses the first (RENEWAL_LIMIT), as the what-if of
// such a policy over a past renewal shows; a document without it (for the
// studio and by default) sets no limit.
func TestMaxRenewalsMeansWhatItSays(t *testing.T) {
	none := strings.Replace(testPolicyJSON, `"renewable": true, "max_renewals": 3}`, `"renewable": true}`, 1)
	zero := strings.Replace(testPolicyJSON, `"renewable": true, "max_renewals": 3}`, `"renewable": true, "max_renewals": 0}`, 1)
	parse := func(doc string) *Policy {
		p, err := ParsePolicy(strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	unlimited, noRenewals := parse(none), parse(zero)
	if got := unlimited.Terms("plain").MaxRenewals; got != NoRenewalLimit {
		t.Errorf("no max_renewals anywhere: Terms.MaxRenewals = %d, want no limit", got)
	}
	if got := noRenewals.Terms("plain").MaxRenewals; got != 0 {
		t.Errorf("max_renewals 0: Terms.MaxRenewals = %d, want 0", got)
	}
	// A licence renewed five times under no limit.
	h := newHistory(t, unlimited)
	l := h.do(0, Acquire{"m1", "family", "d1", "p1"})
	for i := range 5 {
		h.do(time.Duration(i+1)*day, Renew{"m1", "family", "d1", l})
	}
	// Under max_renewals 0, every one of them would have been refused.
	divs := WhatIf("m1", h.events, noRenewals)
	if len(divs) != 5 {
		t.Fatalf("what-if under max_renewals 0 = %d divergences, want the 5 renewals", len(divs))
	}
	for _, d := range divs {
		if len(d.Rules) != 1 || d.Rules[0].Code != CodeRenewalLimit {
			t.Errorf("divergence %+v, want RENEWAL_LIMIT", d)
		}
	}
}

// TestViewingBoundsAsDocumented: the bounds docs/architecture.md gives the
// viewing section hold at their edges: a heartbeat every 5s to 10m, an
// expiry from one interval to 1h, a completion above 0 and at most 1.
func TestViewingBoundsAsDocumented(t *testing.T) {
	for _, c := range []struct {
		viewing string
		field   string // refused naming it, or "" if accepted
	}{
		{`"heartbeat_interval": "5s", "view_expiry": "5s"`, ""},
		{`"heartbeat_interval": "4s"`, "viewing.heartbeat_interval"},
		{`"heartbeat_interval": "10m", "view_expiry": "10m"`, ""},
		{`"heartbeat_interval": "11m", "view_expiry": "1h"`, "viewing.heartbeat_interval"},
		{`"heartbeat_interval": "30s", "view_expiry": "29s"`, "viewing.view_expiry"},
		{`"view_expiry": "60m"`, ""},
		{`"view_expiry": "61m"`, "viewing.view_expiry"},
		{`"completion": 1`, ""},
		{`"completion": 1.01`, "viewing.completion"},
		{`"completion": -0.5`, "viewing.completion"},
	} {
		doc := strings.Replace(string(DefaultPolicyJSON()), `"heartbeat_interval": "30s",
    "view_expiry": "90s",
    "completion": 0.95`, c.viewing, 1)
		_, err := ParsePolicy(strings.NewReader(doc))
		if (c.field == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.field)) {
			t.Errorf("viewing {%s} = %v; want refused naming %q (empty: accepted)", c.viewing, err, c.field)
		}
	}
}
