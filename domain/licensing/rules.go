package licensing

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
)

// CodeLicenceNotFound is returned for a licence the member does not hold on
// that device: unknown, forgotten, another device's or another member's.
const CodeLicenceNotFound = "LICENCE_NOT_FOUND"

// tally counts the active licences at a moment, and when each count drops.
// A member holds few devices and studios, so small slices beat maps here.
type tally struct {
	member      int
	memberFrees time.Time
	devices     []bucket
	studios     []bucket
}

// bucket counts the active licences of one device or studio: how many,
// when the first of them ends and when the last does.
type bucket struct {
	key   string
	n     int
	frees time.Time
	ends  time.Time
}

func find(bs []bucket, key string) *bucket {
	for i := range bs {
		if bs[i].key == key {
			return &bs[i]
		}
	}
	return nil
}

func add(bs []bucket, key string, end time.Time) []bucket {
	b := find(bs, key)
	if b == nil {
		return append(bs, bucket{key: key, n: 1, frees: end, ends: end})
	}
	b.n++
	b.frees = earliest(b.frees, end)
	if end.After(b.ends) {
		b.ends = end
	}
	return bs
}

// on returns the bucket of key (zero if none).
func on(bs []bucket, key string) bucket {
	if b := find(bs, key); b != nil {
		return *b
	}
	return bucket{}
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// count tallies the active licences at now, leaving out the licence skip.
func count(s *State, p *Policy, now time.Time, skip string) tally {
	t := tally{devices: make([]bucket, 0, 8), studios: make([]bucket, 0, 8)}
	var studio string
	var terms Terms
	for _, l := range s.list {
		if l.ID == skip || l.Released() || !now.Before(l.ExpiresAt) {
			continue
		}
		if l.Studio != studio || terms.LicenceDuration == 0 {
			studio, terms = l.Studio, p.Terms(l.Studio)
		}
		end := l.EffectiveExpiry(terms)
		if !now.Before(end) {
			continue
		}
		t.member++
		t.memberFrees = earliest(t.memberFrees, end)
		t.devices = add(t.devices, l.Device, end)
		t.studios = add(t.studios, l.Studio, end)
	}
	return t
}

func at(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// checkTitle applies the catalogue rules: known, downloadable, available.
// It returns the title and whether it is known.
func checkTitle(p *Policy, id string, now time.Time, fail *[]RuleFailure) (Title, bool) {
	t, ok := p.Title(id)
	if !ok {
		*fail = append(*fail, RuleFailure{Code: CodeTitleNotFound, Message: fmt.Sprintf("title %s is not in the catalogue", id)})
		return t, false
	}
	if !t.Downloadable {
		*fail = append(*fail, RuleFailure{Code: CodeTitleNotDownloadable, Message: fmt.Sprintf("title %s cannot be downloaded", id)})
	}
	if f := t.Availability(id, now); f != nil {
		*fail = append(*fail, *f)
	}
	return t, true
}

// checkHolding applies the rules on how much a member may hold at once, for
// a licence of the given studio about to become active on device.
func checkHolding(plan Plan, terms Terms, studio, device string, t tally, fail *[]RuleFailure) {
	dev := on(t.devices, device)
	if dev.n >= plan.MaxActivePerDevice {
		*fail = append(*fail, RuleFailure{Code: CodeDeviceDownloadLimit,
			Message: fmt.Sprintf("device %s already holds %d downloads, the most this plan allows", device, dev.n),
			Limit:   plan.MaxActivePerDevice, Current: dev.n, FreesAt: at(dev.frees)})
	}
	if t.member >= plan.MaxActivePerMember {
		*fail = append(*fail, RuleFailure{Code: CodeMemberDownloadLimit,
			Message: fmt.Sprintf("the account already holds %d downloads, the most this plan allows", t.member),
			Limit:   plan.MaxActivePerMember, Current: t.member, FreesAt: at(t.memberFrees)})
	}
	if dev.n == 0 && len(t.devices) >= plan.MaxDownloadDevices {
		var frees time.Time
		for _, b := range t.devices {
			frees = earliest(frees, b.ends)
		}
		*fail = append(*fail, RuleFailure{Code: CodeDeviceCountLimit,
			Message: fmt.Sprintf("downloads are already on %d devices, the most this plan allows", len(t.devices)),
			Limit:   plan.MaxDownloadDevices, Current: len(t.devices), FreesAt: at(frees)})
	}
	if st := on(t.studios, studio); terms.MaxActivePerMember > 0 && st.n >= terms.MaxActivePerMember {
		*fail = append(*fail, RuleFailure{Code: CodeStudioDownloadLimit,
			Message: fmt.Sprintf("the account already holds %d downloads from studio %s, the most it allows", st.n, studio),
			Limit:   terms.MaxActivePerMember, Current: st.n, FreesAt: at(st.frees)})
	}
}

func planFor(p *Policy, name string, fail *[]RuleFailure) (Plan, bool) {
	plan, ok := p.Plan(name)
	if !ok || plan.MaxDownloadDevices == 0 {
		*fail = append(*fail, RuleFailure{Code: CodePlanNotEligible, Message: fmt.Sprintf("plan %s does not include downloads", name)})
		return plan, false
	}
	return plan, true
}

func denied(fail []RuleFailure) error {
	if len(fail) == 0 {
		return nil
	}
	return &Denial{Rules: fail}
}

func (c Acquire) decide(s *State, p *Policy, now time.Time, newID func() string) (Decision, error) {
	var fail []RuleFailure
	plan, planOK := planFor(p, c.Plan, &fail)
	title, titleOK := checkTitle(p, c.Title, now, &fail)
	for _, l := range s.list {
		if l.Title == c.Title && l.Device == c.Device && l.Active(p, now) {
			fail = append(fail, RuleFailure{Code: CodeAlreadyOnDevice,
				Message: fmt.Sprintf("device %s already holds title %s under licence %s", c.Device, c.Title, l.ID)})
			break
		}
	}
	var terms Terms
	if titleOK {
		terms = p.Terms(title.Studio)
	}
	if planOK && titleOK {
		checkHolding(plan, terms, title.Studio, c.Device, count(s, p, now, ""), &fail)
	}
	if q := terms.TitleQuota; titleOK && q != nil {
		times := s.downloads[c.Title]
		from := now.Add(-q.Window.D())
		i := sort.Search(len(times), func(i int) bool { return times[i].After(from) })
		inWindow := times[i:]
		if n := len(inWindow); n >= q.Count {
			fail = append(fail, RuleFailure{Code: CodeTitleDownloadQuota,
				Message: fmt.Sprintf("title %s was downloaded %d times in the last %s, the most its studio allows", c.Title, n, q.Window),
				Limit:   q.Count, Current: n, FreesAt: at(inWindow[n-q.Count].Add(q.Window.D()))})
		}
	}
	if err := denied(fail); err != nil {
		return Decision{}, err
	}
	return Decision{Event: &LicenceAcquired{
		Licence: newID(), Plan: c.Plan, Title: c.Title, Studio: title.Studio, Device: c.Device,
		ExpiresAt: expiry(title, now, terms.LicenceDuration),
	}}, nil
}

// expiry is when a licence granted or renewed at now ends: after the
// studio's licence duration, but never after the title's availability end
// (the rights end there).
func expiry(t Title, now time.Time, d time.Duration) time.Time {
	end := now.Add(d).UTC()
	if t.AvailableUntil != nil && t.AvailableUntil.Before(end) {
		end = t.AvailableUntil.UTC()
	}
	return end
}

// held returns the licence if the member holds it on the device at now.
func held(s *State, id, device string, now time.Time) (*Licence, error) {
	l := s.Licence(id, now)
	if l == nil || l.Device != device {
		e := kernel.Errorf(kernel.KindNotFound, CodeLicenceNotFound, "no licence %s on device %s", id, device)
		e.Field = "licence_id"
		return nil, e
	}
	return l, nil
}

func (c Renew) decide(s *State, p *Policy, now time.Time, _ func() string) (Decision, error) {
	l, err := held(s, c.Licence, c.Device, now)
	if err != nil {
		return Decision{}, err
	}
	var fail []RuleFailure
	if l.Released() {
		fail = append(fail, RuleFailure{Code: CodeLicenceReleased, Message: fmt.Sprintf("licence %s was released", l.ID)})
	}
	plan, planOK := planFor(p, c.Plan, &fail)
	checkTitle(p, l.Title, now, &fail)
	// The licence keeps the studio it was granted under.
	terms := p.Terms(l.Studio)
	if !terms.Renewable {
		fail = append(fail, RuleFailure{Code: CodeNotRenewable, Message: fmt.Sprintf("studio %s does not allow renewals", l.Studio)})
	} else if terms.MaxRenewals != NoRenewalLimit && l.Renewals >= terms.MaxRenewals {
		fail = append(fail, RuleFailure{Code: CodeRenewalLimit,
			Message: fmt.Sprintf("licence %s was renewed %d times, the most its studio allows", l.ID, l.Renewals),
			Limit:   terms.MaxRenewals, Current: l.Renewals})
	}
	// A licence that lapsed becomes active again: the holding rules apply to
	// it as to a new download. An active one changes no count.
	if planOK && !l.Released() && !l.Active(p, now) {
		checkHolding(plan, terms, l.Studio, l.Device, count(s, p, now, l.ID), &fail)
	}
	if err := denied(fail); err != nil {
		return Decision{}, err
	}
	title, _ := p.Title(l.Title)
	return Decision{Event: &LicenceRenewed{
		Licence: l.ID, Plan: c.Plan, ExpiresAt: expiry(title, now, terms.LicenceDuration), Renewal: l.Renewals + 1, Ref: refOf(l),
	}}, nil
}

func (c Release) decide(s *State, p *Policy, now time.Time, _ func() string) (Decision, error) {
	l, err := held(s, c.Licence, c.Device, now)
	if err != nil {
		return Decision{}, err
	}
	if l.Released() { // releasing twice is the same as once
		return Decision{Result: Result{Version: s.Version, Licences: []LicenceStatus{l.StatusAt(p, now)}}}, nil
	}
	return Decision{Event: &LicenceReleased{Licence: l.ID, Reason: c.Reason, Ref: refOf(l)}}, nil
}

func (c ReleaseDevice) decide(s *State, p *Policy, now time.Time, _ func() string) (Decision, error) {
	var ids []string
	var refs []LicenceRef
	for _, l := range s.Licences(now) {
		if l.Device == c.Device && !l.Released() {
			ids = append(ids, l.ID)
			refs = append(refs, *refOf(l))
		}
	}
	if len(ids) == 0 {
		return Decision{Result: Result{Version: s.Version, Licences: []LicenceStatus{}}}, nil
	}
	return Decision{Event: &DeviceReleased{Device: c.Device, Licences: ids, Reason: c.Reason, Refs: refs}}, nil
}

// Excess is the active licences at now that plan does not allow: walking
// them newest first (by the start of their term), each is kept if the
// holding rules of the plan (devices, per device, per member, per studio)
// still hold with it and those kept before it, and is excess otherwise. A
// plan without downloads keeps none. An unknown plan is an error.
func Excess(s *State, p *Policy, plan string, now time.Time) ([]*Licence, error) {
	var fail []RuleFailure
	pl, ok := planFor(p, plan, &fail)
	if _, known := p.Plan(plan); !known {
		return nil, denied(fail)
	}
	var active []*Licence
	for _, l := range s.list {
		if t, ok := p.Title(l.Title); ok && t.WithdrawnFrom != nil && !now.Before(*t.WithdrawnFrom) {
			continue // withdrawn: released for that, and holds no place
		}
		if l.Active(p, now) {
			active = append(active, l)
		}
	}
	sort.SliceStable(active, func(i, j int) bool {
		a, b := active[i], active[j]
		if !a.TermStart.Equal(b.TermStart) {
			return a.TermStart.After(b.TermStart)
		}
		return a.ID > b.ID
	})
	var excess []*Licence
	kept := tally{}
	for _, l := range active {
		var f []RuleFailure
		terms := p.Terms(l.Studio)
		if ok {
			checkHolding(pl, terms, l.Studio, l.Device, kept, &f)
		}
		if !ok || len(f) > 0 {
			excess = append(excess, l)
			continue
		}
		end := l.EffectiveExpiry(terms)
		kept.member++
		kept.memberFrees = earliest(kept.memberFrees, end)
		kept.devices = add(kept.devices, l.Device, end)
		kept.studios = add(kept.studios, l.Studio, end)
	}
	return excess, nil
}

func (c EnforcePlan) decide(s *State, p *Policy, now time.Time, _ func() string) (Decision, error) {
	excess, err := Excess(s, p, c.Plan, now)
	if err != nil {
		return Decision{}, err
	}
	withdrawn := Withdrawn(s, p, "", now)
	ls := append(withdrawn, slices.DeleteFunc(excess, func(l *Licence) bool { return slices.Contains(withdrawn, l) })...)
	reasons := map[*Licence]ReleaseReason{}
	for _, l := range withdrawn {
		reasons[l] = ReasonTitleWithdrawn
	}
	return releaseEach(s, ls, func(l *Licence) ReleaseReason {
		if r, ok := reasons[l]; ok {
			return r
		}
		return ReasonPlanChanged
	}), nil
}

// Withdrawn is the active licences at now of titles withdrawn by then
// (title "" for every title, else that one).
func Withdrawn(s *State, p *Policy, title string, now time.Time) []*Licence {
	var out []*Licence
	for _, l := range s.list {
		if title != "" && l.Title != title || l.Released() || !now.Before(l.ExpiresAt) {
			continue
		}
		if t, ok := p.Title(l.Title); ok && t.WithdrawnFrom != nil && !now.Before(*t.WithdrawnFrom) {
			out = append(out, l)
		}
	}
	return out
}

// WithdrawTitle ends a member's licences of a title withdrawn by now
// (ReasonTitleWithdrawn); for a title not withdrawn yet it does nothing.
type WithdrawTitle struct {
	Member string `json:"member"`
	Title  string `json:"title"`
}

// MemberID implements Command.
func (c WithdrawTitle) MemberID() string { return c.Member }

// Validate implements Command.
func (c WithdrawTitle) Validate() error { return checkIDs("member", c.Member, "title_id", c.Title) }

func (c WithdrawTitle) decide(s *State, p *Policy, now time.Time, _ func() string) (Decision, error) {
	return releaseAll(s, Withdrawn(s, p, c.Title, now), ReasonTitleWithdrawn), nil
}

func (c CloseAccount) decide(s *State, p *Policy, now time.Time, _ func() string) (Decision, error) {
	var held []*Licence
	for _, l := range s.list {
		if !l.Released() && now.Before(l.ExpiresAt) {
			held = append(held, l)
		}
	}
	return releaseAll(s, held, ReasonAccountClosed), nil
}

// releaseAll releases licences, the oldest first, at most
// MaxReleasesPerCommand; none is a no-op answered with the state's version.
func releaseAll(s *State, ls []*Licence, reason ReleaseReason) Decision {
	return releaseEach(s, ls, func(*Licence) ReleaseReason { return reason })
}

// releaseEach is releaseAll with a reason per licence.
func releaseEach(s *State, ls []*Licence, reason func(*Licence) ReleaseReason) Decision {
	if len(ls) == 0 {
		return Decision{Result: Result{Version: s.Version, Licences: []LicenceStatus{}}}
	}
	slices.SortStableFunc(ls, func(a, b *Licence) int { return a.TermStart.Compare(b.TermStart) })
	var released LicencesReleased
	for _, l := range ls[:min(len(ls), MaxReleasesPerCommand)] {
		released.Releases = append(released.Releases, LicenceReleased{Licence: l.ID, Reason: reason(l), Ref: refOf(l)})
	}
	return Decision{Event: &released}
}
