package licensing

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
)

// MaxLookback is the longest rolling window a policy may configure. The state
// keeps acquisition history this far back, so any policy within it can be
// applied to an existing log without a migration.
const MaxLookback = 730 * 24 * time.Hour

// MaxQuotaCount is the largest per-title quota a policy may set. The state
// keeps that many of the latest acquisitions of each title, which is all any
// quota within it can look at.
const MaxQuotaCount = 100

// Policy is the versioned rule set and title catalogue every decision is
// made under. Build one with ParsePolicy or DefaultPolicy; a Policy is
// read-only once built and safe for concurrent use.
type Policy struct {
	Version  string                 `json:"version"`
	Defaults StudioRules            `json:"defaults"`
	Plans    map[string]Plan        `json:"plans"`
	Studios  map[string]StudioRules `json:"studios"`
	Titles   map[string]Title       `json:"titles"`
	Viewing  ViewingRules           `json:"viewing"`

	terms       map[string]Terms
	quotaDigest string
}

//go:embed default_policy.json
var defaultPolicyJSON []byte

// DefaultPolicy returns the policy that ships with the service.
func DefaultPolicy() *Policy {
	p, err := ParsePolicy(bytes.NewReader(defaultPolicyJSON))
	if err != nil {
		panic("default policy is invalid: " + err.Error())
	}
	return p
}

// DefaultPolicyJSON returns the text of the shipped policy document.
func DefaultPolicyJSON() []byte { return bytes.Clone(defaultPolicyJSON) }

// ParsePolicy reads and validates a policy document (JSON). Unknown fields
// are refused; the error names the first bad field.
func ParsePolicy(r io.Reader) (*Policy, error) {
	var doc struct {
		Version  string                     `json:"version"`
		Defaults json.RawMessage            `json:"defaults"`
		Plans    map[string]json.RawMessage `json:"plans"`
		Studios  map[string]json.RawMessage `json:"studios"`
		Titles   map[string]json.RawMessage `json:"titles"`
		Viewing  json.RawMessage            `json:"viewing"`
	}
	dec := json.NewDecoder(io.LimitReader(r, 8<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("policy: %s", describeJSONError("", err))
	}
	if dec.More() {
		return nil, errors.New("policy: trailing data after the document")
	}
	p := Policy{Version: doc.Version, Plans: map[string]Plan{}, Studios: map[string]StudioRules{}, Titles: map[string]Title{}}
	if err := decodePart("defaults", doc.Defaults, &p.Defaults); err != nil {
		return nil, err
	}
	if err := decodeParts("plans", doc.Plans, p.Plans); err != nil {
		return nil, err
	}
	if err := decodeParts("studios", doc.Studios, p.Studios); err != nil {
		return nil, err
	}
	if err := decodeParts("titles", doc.Titles, p.Titles); err != nil {
		return nil, err
	}
	if err := decodePart("viewing", doc.Viewing, &p.Viewing); err != nil {
		return nil, err
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

func decodePart(path string, raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil
	}
	if err := strictUnmarshal(raw, v); err != nil {
		return fmt.Errorf("policy: %s", describeJSONError(path, err))
	}
	return nil
}

func decodeParts[V any](path string, raws map[string]json.RawMessage, into map[string]V) error {
	for _, k := range sortedKeys(raws) {
		var v V
		if err := decodePart(path+"."+k, raws[k], &v); err != nil {
			return err
		}
		into[k] = v
	}
	return nil
}

// describeJSONError turns a decoding error into text that names the field.
func describeJSONError(path string, err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	join := func(field string) string {
		switch {
		case path == "":
			return field
		case field == "":
			return path
		}
		return path + "." + field
	}
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("%s: want %s, got %s", join(te.Field), te.Type, te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	}
	return join(strings.TrimPrefix(err.Error(), "json: "))
}

func (p *Policy) validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("policy: %s: %s", field, fmt.Sprintf(format, args...))
	}
	if strings.TrimSpace(p.Version) == "" || len(p.Version) > 64 {
		return bad("version", "required, at most 64 characters")
	}
	if err := p.Defaults.validate("defaults", bad); err != nil {
		return err
	}
	if p.Defaults.LicenceDuration == nil {
		return bad("defaults.licence_duration", "required")
	}
	if len(p.Plans) == 0 {
		return bad("plans", "at least one plan is required")
	}
	for _, name := range sortedKeys(p.Plans) {
		pl := p.Plans[name]
		f := "plans." + name
		if !kernel.ValidID(name) {
			return bad(f, "invalid plan id")
		}
		if pl.MaxDownloadDevices < 0 {
			return bad(f+".max_download_devices", "must not be negative")
		}
		if pl.MaxActivePerDevice < 1 {
			return bad(f+".max_active_per_device", "must be at least 1")
		}
		if pl.MaxActivePerMember < 1 {
			return bad(f+".max_active_per_member", "must be at least 1")
		}
		if pl.MaxScreens < 1 || pl.MaxScreens > MaxScreens {
			return bad(f+".max_screens", "must be from 1 to %d", MaxScreens)
		}
	}
	p.terms = make(map[string]Terms, len(p.Studios))
	for _, name := range sortedKeys(p.Studios) {
		f := "studios." + name
		if !kernel.ValidID(name) {
			return bad(f, "invalid studio id")
		}
		s := p.Studios[name]
		if err := s.validate(f, bad); err != nil {
			return err
		}
		t := p.Defaults.resolve(s)
		if t.MaxPlaysPerWindow > 0 && t.PlaybackWindow == 0 {
			return bad(f+".max_plays_per_window", "needs a playback_window")
		}
		p.terms[name] = t
	}
	for _, id := range sortedKeys(p.Titles) {
		t := p.Titles[id]
		f := "titles." + id
		if !kernel.ValidID(id) {
			return bad(f, "invalid title id")
		}
		if _, ok := p.Studios[t.Studio]; !ok {
			return bad(f+".studio", "unknown studio %q", t.Studio)
		}
		if t.AvailableFrom != nil && t.AvailableUntil != nil && !t.AvailableUntil.After(*t.AvailableFrom) {
			return bad(f+".available_until", "must be after available_from")
		}
		if t.Runtime != 0 && (t.Runtime.D() < time.Second || t.Runtime.D() > MaxRuntime || t.Runtime.D()%time.Millisecond != 0) {
			return bad(f+".runtime", "must be from 1s to %s, in whole milliseconds", Duration(MaxRuntime))
		}
	}
	p.quotaDigest = p.digestQuotas()
	return p.Viewing.validate(bad)
}

// validate applies the viewing defaults and checks the result.
func (v *ViewingRules) validate(bad func(string, string, ...any) error) error {
	if v.HeartbeatInterval == 0 {
		v.HeartbeatInterval = DefaultViewing.HeartbeatInterval
	}
	if v.ViewExpiry == 0 {
		v.ViewExpiry = DefaultViewing.ViewExpiry
	}
	if v.Completion == 0 {
		v.Completion = DefaultViewing.Completion
	}
	if hb := v.HeartbeatInterval.D(); hb < 5*time.Second || hb > 10*time.Minute {
		return bad("viewing.heartbeat_interval", "must be from 5s to 10m")
	}
	if e := v.ViewExpiry.D(); e < v.HeartbeatInterval.D() || e > time.Hour {
		return bad("viewing.view_expiry", "must be from the heartbeat interval to 1h")
	}
	if v.Completion <= 0 || v.Completion > 1 {
		return bad("viewing.completion", "must be above 0 and at most 1")
	}
	return nil
}

func (s StudioRules) validate(f string, bad func(string, string, ...any) error) error {
	if s.LicenceDuration != nil && (*s.LicenceDuration <= 0 || s.LicenceDuration.D() > MaxLookback) {
		return bad(f+".licence_duration", "must be positive and at most %s", Duration(MaxLookback))
	}
	if s.PlaybackWindow != nil && (*s.PlaybackWindow < 0 || s.PlaybackWindow.D() > MaxLookback) {
		return bad(f+".playback_window", "must be between 0 and %s", Duration(MaxLookback))
	}
	if s.MaxPlaysPerWindow != nil && *s.MaxPlaysPerWindow < 0 {
		return bad(f+".max_plays_per_window", "must not be negative")
	}
	if q := s.TitleQuota; q != nil {
		if q.Count < 1 || q.Count > MaxQuotaCount {
			return bad(f+".title_quota.count", "must be from 1 to %d", MaxQuotaCount)
		}
		if q.Window <= 0 || q.Window.D() > MaxLookback {
			return bad(f+".title_quota.window", "must be positive and at most %s", Duration(MaxLookback))
		}
	}
	if s.MaxActivePerMember != nil && *s.MaxActivePerMember < 0 {
		return bad(f+".max_active_per_member", "must not be negative")
	}
	if s.MaxRenewals != nil && *s.MaxRenewals < 0 {
		return bad(f+".max_renewals", "must not be negative")
	}
	return nil
}

// Terms returns the resolved rules of a studio. A studio missing from the
// policy (a licence granted under an older catalogue) gets the defaults.
func (p *Policy) Terms(studio string) Terms {
	if t, ok := p.terms[studio]; ok {
		return t
	}
	return p.Defaults.resolve(StudioRules{})
}

// WithWithdrawals is p with the titles withdrawn at the given times (title
// → from): each ends its availability there, so that no licence is granted
// from then on, grants and renewals before it expire by then, and plays
// after it are refused. Titles not in the catalogue are ignored.
func (p *Policy) WithWithdrawals(ws map[string]time.Time) *Policy {
	if len(ws) == 0 {
		return p
	}
	c := *p
	c.Titles = make(map[string]Title, len(p.Titles))
	for id, t := range p.Titles {
		if from, ok := ws[id]; ok {
			from = from.UTC()
			t.WithdrawnFrom = &from
			if t.AvailableUntil == nil || from.Before(*t.AvailableUntil) {
				t.AvailableUntil = &from
			}
		}
		c.Titles[id] = t
	}
	return &c
}

// QuotaDigest identifies the policy's title quotas: which titles have one,
// of what count and window. Snapshots keep the acquisition times these
// quotas can look at, and are used only under a policy with the same digest.
func (p *Policy) QuotaDigest() string { return p.quotaDigest }

func (p *Policy) digestQuotas() string {
	h := sha256.New()
	for _, id := range sortedKeys(p.Titles) {
		if q := p.Terms(p.Titles[id].Studio).TitleQuota; q != nil {
			fmt.Fprintf(h, "%s %d %d\n", id, q.Count, int64(q.Window))
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Title looks a title up in the catalogue.
func (p *Policy) Title(id string) (Title, bool) {
	t, ok := p.Titles[id]
	return t, ok
}

// Plan looks a plan up.
func (p *Policy) Plan(name string) (Plan, bool) {
	pl, ok := p.Plans[name]
	return pl, ok
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
