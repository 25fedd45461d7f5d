package jobs

import (
	"slices"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
)

// Summary is what a slice, or a whole job, found.
type Summary struct {
	Kind     string `json:"kind"`
	Segments int    `json:"segments"` // slices merged into it
	Members  int    `json:"members"`
	Events   int    `json:"events"`
	Errors   int    `json:"errors"` // members that could not be read
	// What-if: grants and renewals the policy would refuse (Flips), and
	// refusals it would grant (WouldGrant), with the rules of the flips and
	// the studios, plans and titles of both; Samples are members with any,
	// the first by id.
	Flips      int            `json:"flips,omitempty"`
	WouldGrant int            `json:"would_grant,omitempty"`
	ByRule     map[string]int `json:"by_rule,omitempty"`
	ByStudio   map[string]int `json:"by_studio,omitempty"`
	ByPlan     map[string]int `json:"by_plan,omitempty"`
	ByTitle    map[string]int `json:"by_title,omitempty"`
	Samples    []string       `json:"samples,omitempty"`
	// Recount: the counters recounted from the logs, by scope and field.
	Counts map[string]licensing.Counts `json:"counts,omitempty"`
	// Rebuilds: snapshots written (the others were the same already) and
	// holders recorded.
	Written int `json:"written,omitempty"`
	Holders int `json:"holders,omitempty"`
	// Viewing: history entries read, rows written, members skipped for an
	// erasure under way.
	Entries int `json:"entries,omitempty"`
	Rows    int `json:"rows,omitempty"`
	Erasing int `json:"erasing,omitempty"`
	// Engagement: the counts recounted (by day, then title) until the job
	// writes them (Finish), then how many title-days it wrote.
	Engagement map[string]map[string]viewing.Engagement `json:"engagement,omitempty"`
	TitleDays  int                                      `json:"title_days,omitempty"`
	// Counters and engagement, once written: scopes written, and scopes or
	// counts held before that no event counts any more (cleared).
	Scopes  int `json:"scopes,omitempty"`
	Cleared int `json:"cleared,omitempty"`
}

// Merge adds o to s.
func (s *Summary) Merge(o Summary) {
	if s.Kind == "" {
		s.Kind = o.Kind
	}
	s.Segments += o.Segments
	s.Members += o.Members
	s.Events += o.Events
	s.Errors += o.Errors
	s.Flips += o.Flips
	s.WouldGrant += o.WouldGrant
	s.Written += o.Written
	s.Holders += o.Holders
	s.Entries += o.Entries
	s.Rows += o.Rows
	s.Erasing += o.Erasing
	s.TitleDays += o.TitleDays
	s.Scopes += o.Scopes
	s.Cleared += o.Cleared
	if len(o.Engagement) > 0 {
		if s.Engagement == nil {
			s.Engagement = map[string]map[string]viewing.Engagement{}
		}
		AddEngagement(s.Engagement, o.Engagement)
	}
	for _, m := range []struct {
		to   *map[string]int
		from map[string]int
	}{
		{&s.ByRule, o.ByRule}, {&s.ByStudio, o.ByStudio}, {&s.ByPlan, o.ByPlan}, {&s.ByTitle, o.ByTitle},
	} {
		for k, v := range m.from {
			if *m.to == nil {
				*m.to = map[string]int{}
			}
			(*m.to)[k] += v
		}
	}
	s.Samples = append(s.Samples, o.Samples...)
	slices.Sort(s.Samples)
	s.Samples = slices.Compact(s.Samples)
	if len(s.Samples) > MaxSamples {
		s.Samples = s.Samples[:MaxSamples]
	}
	for scope, counts := range o.Counts {
		if s.Counts == nil {
			s.Counts = map[string]licensing.Counts{}
		}
		if s.Counts[scope] == nil {
			s.Counts[scope] = licensing.Counts{}
		}
		for f, v := range counts {
			s.Counts[scope][f] += v
		}
	}
}
