package licensing

import (
	"slices"
	"time"
)

// Synced is what a device learns when it syncs: its licences by status,
// and the downloads it must delete.
type Synced struct {
	Device   string          `json:"device_id"`
	Active   []LicenceStatus `json:"active"`
	Expired  []LicenceStatus `json:"expired"`
	Released []LicenceStatus `json:"released"`
	// Delete lists the licence ids whose downloads the device must delete:
	// released licences, expired ones that can never be renewed, and ids the
	// device reported holding that the service does not know for it.
	Delete []string `json:"delete"`
}

// Sync reads a device's licences at time now. held is the list of licence
// ids the device says it stores (it may be empty).
func Sync(s *State, p *Policy, device string, held []string, now time.Time) Synced {
	v := Synced{Device: device, Active: []LicenceStatus{}, Expired: []LicenceStatus{}, Released: []LicenceStatus{}, Delete: []string{}}
	known := map[string]bool{}
	for _, l := range s.Licences(now) {
		if l.Device != device {
			continue
		}
		known[l.ID] = true
		lv := l.StatusAt(p, now)
		switch lv.Status {
		case StatusActive:
			v.Active = append(v.Active, lv)
		case StatusExpired:
			v.Expired = append(v.Expired, lv)
			if !renewable(l, p, now) {
				v.Delete = append(v.Delete, l.ID)
			}
		case StatusReleased:
			v.Released = append(v.Released, lv)
			v.Delete = append(v.Delete, l.ID)
		}
	}
	for _, id := range held {
		if !known[id] && !slices.Contains(v.Delete, id) {
			v.Delete = append(v.Delete, id)
		}
	}
	return v
}

// renewable reports whether a lapsed licence could ever be renewed: the
// studio allows it, renewals are left and the title is still offered.
// Holding limits are left out: they change as other downloads come and go.
func renewable(l *Licence, p *Policy, now time.Time) bool {
	t := p.Terms(l.Studio)
	if !t.Renewable || (t.MaxRenewals != NoRenewalLimit && l.Renewals >= t.MaxRenewals) {
		return false
	}
	var fail []RuleFailure
	checkTitle(p, l.Title, now, &fail)
	return len(fail) == 0
}
