package licensing

import (
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
)

// StateAt folds the events that had happened by time t (At ≤ t): the
// member's state as the service saw it then.
func StateAt(member string, events []Event, t time.Time) *State {
	s := NewState(member)
	for _, e := range events {
		if e.At.After(t) {
			break
		}
		s.Apply(e)
	}
	return s
}

// Divergence is a past decision that another policy would have made
// differently.
type Divergence struct {
	Version int64     `json:"version"`
	At      time.Time `json:"at"`
	Type    EventType `json:"type"`
	Licence string    `json:"licence_id"`
	Title   string    `json:"title_id,omitempty"`
	// Rules lists what the other policy would have refused, by rule.
	Rules []RuleFailure `json:"rules"`
}

// WhatIf replays a member's log under policy p and lists the grants and
// renewals that p would have refused. Each past decision is judged against
// the log as it actually happened up to that point, so one refusal does
// not change how later decisions are judged. Events written before the plan
// was recorded (schema 1 acquisitions) are judged without the plan's rules.
func WhatIf(member string, events []Event, p *Policy) []Divergence {
	s := NewState(member)
	var out []Divergence
	for _, e := range events {
		var cmd Command
		var title string
		switch pl := e.Payload.(type) {
		case *LicenceAcquired:
			cmd, title = Acquire{Member: member, Plan: pl.Plan, Device: pl.Device, Title: pl.Title}, pl.Title
		case *LicenceRenewed:
			if l := s.licences[pl.Licence]; l != nil {
				cmd, title = Renew{Member: member, Plan: pl.Plan, Device: l.Device, Licence: pl.Licence}, l.Title
			}
		}
		if cmd != nil {
			if rules := refusals(s, cmd, p, e.At); len(rules) > 0 {
				out = append(out, Divergence{
					Version: e.Version, At: e.At, Type: e.Type(), Licence: licenceOf(e.Payload), Title: title, Rules: rules,
				})
			}
		}
		s.Apply(e)
	}
	return out
}

// refusals decides cmd and returns the rules that refused it, or one
// failure carrying the error code when the command could not be decided.
func refusals(s *State, cmd Command, p *Policy, now time.Time) []RuleFailure {
	unknownPlan := false
	switch c := cmd.(type) {
	case Acquire:
		unknownPlan = c.Plan == ""
		if unknownPlan {
			c.Plan = "unrecorded"
			cmd = c
		}
	case Renew:
		unknownPlan = c.Plan == ""
		if unknownPlan {
			c.Plan = "unrecorded"
			cmd = c
		}
	}
	_, err := cmd.decide(s, p, now, func() string { return "what-if" })
	if err == nil {
		return nil
	}
	d, ok := err.(*Denial)
	if !ok {
		code := "UNDECIDABLE"
		if e, ok := err.(*kernel.Error); ok {
			code = e.Code
		}
		return []RuleFailure{{Code: code, Message: err.Error()}}
	}
	var rules []RuleFailure
	for _, r := range d.Rules {
		if unknownPlan && r.Code == CodePlanNotEligible {
			continue
		}
		rules = append(rules, r)
	}
	return rules
}

func licenceOf(p Payload) string {
	switch pl := p.(type) {
	case *LicenceAcquired:
		return pl.Licence
	case *LicenceRenewed:
		return pl.Licence
	case *LicenceReleased:
		return pl.Licence
	}
	return ""
}
