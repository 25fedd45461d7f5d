package licensing

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration that reads and writes as text: Go durations
// ("48h", "90m") or whole days ("30d").
type Duration time.Duration

// ParseDuration reads "30d" or any time.ParseDuration text.
func ParseDuration(s string) (Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return Duration(time.Duration(n) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return Duration(d), nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string {
	td := time.Duration(d)
	if td != 0 && td%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", td/(24*time.Hour))
	}
	return td.String()
}

// MarshalText writes the duration as text.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads "30d" or a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Quota is a count allowed within a rolling window.
type Quota struct {
	Count  int      `json:"count"`
	Window Duration `json:"window"`
}

// Plan holds the rules that depend on the member's subscription plan.
type Plan struct {
	// MaxDownloadDevices is how many devices may hold active downloads at once.
	MaxDownloadDevices int `json:"max_download_devices"`
	// MaxActivePerDevice caps active downloads on one device.
	MaxActivePerDevice int `json:"max_active_per_device"`
	// MaxActivePerMember caps active downloads across all the member's devices.
	MaxActivePerMember int `json:"max_active_per_member"`
	// MaxScreens is how many views (streams) may play on the account at once.
	MaxScreens int `json:"max_screens"`
}

// MaxScreens is the most concurrent screens a plan may allow.
const MaxScreens = 16

// MaxRuntime is the longest a title may run.
const MaxRuntime = 24 * time.Hour

// ViewingRules tune viewing (streaming): heartbeats, expiry and completion.
// A zero field takes its default (DefaultViewing).
type ViewingRules struct {
	// HeartbeatInterval is how often a playing screen reports.
	HeartbeatInterval Duration `json:"heartbeat_interval,omitempty"`
	// ViewExpiry is how long a view counts against the screen limit after
	// its last heartbeat.
	ViewExpiry Duration `json:"view_expiry,omitempty"`
	// Completion is the share of a title's runtime past which it counts as
	// watched to the end (the credits).
	Completion float64 `json:"completion,omitempty"`
}

// DefaultViewing are the viewing rules of a policy that sets none.
var DefaultViewing = ViewingRules{
	HeartbeatInterval: Duration(30 * time.Second),
	ViewExpiry:        Duration(90 * time.Second),
	Completion:        0.95,
}

// StudioRules are the per-studio rules; a nil field falls back to the
// policy's defaults.
type StudioRules struct {
	LicenceDuration    *Duration `json:"licence_duration,omitempty"`
	PlaybackWindow     *Duration `json:"playback_window,omitempty"`
	MaxPlaysPerWindow  *int      `json:"max_plays_per_window,omitempty"`
	TitleQuota         *Quota    `json:"title_quota,omitempty"`
	MaxActivePerMember *int      `json:"max_active_per_member,omitempty"`
	Renewable          *bool     `json:"renewable,omitempty"`
	MaxRenewals        *int      `json:"max_renewals,omitempty"`
}

// NoRenewalLimit is Terms.MaxRenewals when the policy sets no limit.
const NoRenewalLimit = -1

// Terms are a studio's rules with every default applied. A zero
// PlaybackWindow, MaxPlaysPerWindow or MaxActivePerMember, or a nil
// TitleQuota, means the rule does not apply. MaxRenewals is the number of
// renewals a licence may have: 0 means none, NoRenewalLimit (the document
// gives none, for the studio or by default) no limit.
type Terms struct {
	LicenceDuration    time.Duration
	PlaybackWindow     time.Duration
	MaxPlaysPerWindow  int
	TitleQuota         *Quota
	MaxActivePerMember int
	Renewable          bool
	MaxRenewals        int
}

// Title is one entry of the catalogue.
type Title struct {
	Name           string     `json:"name,omitempty"`
	Studio         string     `json:"studio"`
	Downloadable   bool       `json:"downloadable"`
	AvailableFrom  *time.Time `json:"available_from,omitempty"`
	AvailableUntil *time.Time `json:"available_until,omitempty"`
	// Runtime is the title's length (1s to 24h, whole milliseconds);
	// positions past it are refused. Zero means unknown: positions up to
	// MaxRuntime are taken and the title is never counted as completed.
	Runtime Duration `json:"runtime,omitempty"`
	// WithdrawnFrom is when an operator withdrew the title (not part of the
	// policy document: see Policy.WithWithdrawals).
	WithdrawnFrom *time.Time `json:"-"`
}

// Availability is the rule failure of a title outside its availability
// window at now (TITLE_NOT_AVAILABLE, with when it frees up if it will), or
// nil inside it: downloads and streams share the window.
func (t Title) Availability(id string, now time.Time) *RuleFailure {
	switch {
	case t.WithdrawnFrom != nil && !now.Before(*t.WithdrawnFrom):
		return &RuleFailure{Code: CodeTitleWithdrawn,
			Message: fmt.Sprintf("title %s was withdrawn at %s", id, t.WithdrawnFrom.UTC().Format(time.RFC3339))}
	case t.AvailableFrom != nil && now.Before(*t.AvailableFrom):
		return &RuleFailure{Code: CodeTitleNotAvailable,
			Message: fmt.Sprintf("title %s is available from %s", id, t.AvailableFrom.UTC().Format(time.RFC3339)),
			FreesAt: at(*t.AvailableFrom)}
	case t.AvailableUntil != nil && !now.Before(*t.AvailableUntil):
		return &RuleFailure{Code: CodeTitleNotAvailable,
			Message: fmt.Sprintf("title %s stopped being available at %s", id, t.AvailableUntil.UTC().Format(time.RFC3339))}
	}
	return nil
}

// resolve applies the defaults in d to the studio's rules s.
func (d StudioRules) resolve(s StudioRules) Terms {
	pick := func(a, b *Duration) time.Duration {
		if a != nil {
			return a.D()
		}
		if b != nil {
			return b.D()
		}
		return 0
	}
	pickInt := func(a, b *int) int {
		if a != nil {
			return *a
		}
		if b != nil {
			return *b
		}
		return 0
	}
	t := Terms{
		LicenceDuration:    pick(s.LicenceDuration, d.LicenceDuration),
		PlaybackWindow:     pick(s.PlaybackWindow, d.PlaybackWindow),
		MaxPlaysPerWindow:  pickInt(s.MaxPlaysPerWindow, d.MaxPlaysPerWindow),
		MaxActivePerMember: pickInt(s.MaxActivePerMember, d.MaxActivePerMember),
		MaxRenewals:        NoRenewalLimit,
		TitleQuota:         d.TitleQuota,
	}
	if s.TitleQuota != nil {
		t.TitleQuota = s.TitleQuota
	}
	if s.MaxRenewals != nil || d.MaxRenewals != nil {
		t.MaxRenewals = pickInt(s.MaxRenewals, d.MaxRenewals)
	}
	switch {
	case s.Renewable != nil:
		t.Renewable = *s.Renewable
	case d.Renewable != nil:
		t.Renewable = *d.Renewable
	}
	return t
}
