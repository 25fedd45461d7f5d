package licensing

import "time"

// Status is where a licence stands at a point in time.
type Status string

// The licence statuses.
const (
	StatusActive   Status = "ACTIVE"
	StatusExpired  Status = "EXPIRED"
	StatusReleased Status = "RELEASED"
)

// LicenceStatus is where a licence stands at a time, as a client sees it:
// its status, dates and counts.
type LicenceStatus struct {
	ID        string    `json:"licence_id"`
	Title     string    `json:"title_id"`
	Studio    string    `json:"studio_id"`
	Device    string    `json:"device_id"`
	Status    Status    `json:"status"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// PlayableUntil is the effective end: the expiry, or the end of the
	// playback window opened by the first play, whichever comes first.
	PlayableUntil time.Time     `json:"playable_until"`
	Renewals      int           `json:"renewals"`
	Plays         int           `json:"plays"`
	FirstPlayAt   *time.Time    `json:"first_play_at,omitempty"`
	ReleasedAt    *time.Time    `json:"released_at,omitempty"`
	ReleaseReason ReleaseReason `json:"release_reason,omitempty"`
	// ExpiryCappedBy says why the expiry is earlier than the studio's
	// licence duration would make it: CappedByAvailability when it is the
	// title's availability end (the rights end there).
	ExpiryCappedBy string `json:"expiry_capped_by,omitempty"`
}

// CappedByAvailability: the licence expires when the title stops being
// available, before the end of the studio's licence duration.
const CappedByAvailability = "AVAILABILITY_END"

// annotated is a copy of vs, each noting what bounds its expiry under p.
func (p *Policy) annotated(vs []LicenceStatus) []LicenceStatus {
	if vs == nil {
		return nil
	}
	out := make([]LicenceStatus, len(vs))
	for i, v := range vs {
		p.annotate(&v)
		out[i] = v
	}
	return out
}

// CappedByWithdrawal: the licence expires when the title is withdrawn.
const CappedByWithdrawal = "TITLE_WITHDRAWN"

// annotate notes on v what bounds its expiry under policy p.
func (p *Policy) annotate(v *LicenceStatus) {
	t, ok := p.Title(v.Title)
	switch {
	case !ok:
	case t.WithdrawnFrom != nil && v.ExpiresAt.Equal(t.WithdrawnFrom.UTC()):
		v.ExpiryCappedBy = CappedByWithdrawal
	case t.AvailableUntil != nil && v.ExpiresAt.Equal(t.AvailableUntil.UTC()):
		v.ExpiryCappedBy = CappedByAvailability
	}
}

// asStatus is the licence as it stands right after the event that touched it,
// before any play: what the first answer to a request showed.
func (l *Licence) asStatus(st Status) LicenceStatus {
	v := LicenceStatus{
		ID: l.ID, Title: l.Title, Studio: l.Studio, Device: l.Device, Status: st,
		IssuedAt: l.IssuedAt, ExpiresAt: l.ExpiresAt, PlayableUntil: l.ExpiresAt,
		Renewals: l.Renewals, Plays: l.Plays, ReleaseReason: l.ReleaseReason,
	}
	if !l.FirstPlayAt.IsZero() {
		t := l.FirstPlayAt
		v.FirstPlayAt = &t
	}
	if l.Released() {
		t := l.ReleasedAt
		v.ReleasedAt = &t
	}
	return v
}

// StatusAt is the licence as it stands at time now under policy p.
func (l *Licence) StatusAt(p *Policy, now time.Time) LicenceStatus {
	end := l.EffectiveExpiry(p.Terms(l.Studio))
	if t, ok := p.Title(l.Title); ok && t.AvailableUntil != nil && t.AvailableUntil.Before(end) {
		end = t.AvailableUntil.UTC() // the rights ended (or the title was withdrawn) since the grant
	}
	st := StatusActive
	switch {
	case l.Released() && !now.Before(l.ReleasedAt):
		st = StatusReleased
	case !now.Before(end):
		st = StatusExpired
	}
	v := l.asStatus(st)
	v.PlayableUntil = end
	p.annotate(&v)
	return v
}
