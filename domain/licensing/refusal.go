package licensing

import (
	"context"
	"time"
)

// Refusal is a command the service refused, kept for operators to see why
// (the member's timeline) and to try a new policy on (what-if). It is not
// part of the member's log: keeping it costs one plain write, never a
// conditional append.
type Refusal struct {
	At time.Time `json:"at"`
	// Version is the member's log version the command was decided at.
	Version int64  `json:"version"`
	Command string `json:"command"` // "acquire" or "renew"
	Plan    string `json:"plan"`
	Device  string `json:"device_id"`
	Title   string `json:"title_id,omitempty"`
	Licence string `json:"licence_id,omitempty"`
	// Rules are the rules that refused it.
	Rules []RuleFailure `json:"rules"`
}

// RefusalRetention is how long refusals are kept.
const RefusalRetention = 30 * 24 * time.Hour

// RefusalStore keeps members' recent refusals.
type RefusalStore interface {
	// RecordRefusal keeps a refusal of member (for RefusalRetention).
	RecordRefusal(ctx context.Context, member string, r Refusal) error
	// Refusals returns up to limit of member's refusals, newest first.
	Refusals(ctx context.Context, member string, limit int) ([]Refusal, error)
}

// RefusalOf is the refusal to keep of cmd, refused by d at a state of
// version at time now; ok is false for commands whose refusals are not
// kept (only acquisitions and renewals are).
func RefusalOf(cmd Command, version int64, now time.Time, d *Denial) (Refusal, bool) {
	r := Refusal{At: now.UTC(), Version: version, Rules: d.Rules}
	switch c := cmd.(type) {
	case Acquire:
		r.Command, r.Plan, r.Device, r.Title = "acquire", c.Plan, c.Device, c.Title
	case Renew:
		r.Command, r.Plan, r.Device, r.Licence = "renew", c.Plan, c.Device, c.Licence
	default:
		return Refusal{}, false
	}
	return r, true
}

// command is the refused command again, for member.
func (r Refusal) command(member string) Command {
	if r.Command == "renew" {
		return Renew{Member: member, Plan: r.Plan, Device: r.Device, Licence: r.Licence}
	}
	return Acquire{Member: member, Plan: r.Plan, Device: r.Device, Title: r.Title}
}

// Grant is a refused command another policy would have granted.
type Grant struct {
	Refusal Refusal `json:"refusal"`
}

// WouldGrant lists the refusals that policy p would have granted, each
// decided again against the member's log as it was when it was refused
// (its version) at the time it was refused.
func WouldGrant(member string, events []Event, refused []Refusal, p *Policy) []Grant {
	var out []Grant
	for _, r := range refused {
		s := NewState(member)
		for _, e := range events {
			if e.Version > r.Version {
				break
			}
			s.Apply(e)
		}
		if len(refusals(s, r.command(member), p, r.At)) == 0 {
			out = append(out, Grant{Refusal: r})
		}
	}
	return out
}
