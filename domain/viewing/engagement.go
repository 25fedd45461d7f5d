package viewing

import (
	"context"
	"sort"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
)

// Engagement is what a title drew on one day: views started, time watched
// and views completed, counted by the stream function once per view.
type Engagement struct {
	Views       int64 `json:"views"`
	WatchedMs   int64 `json:"watched_ms"`
	Completions int64 `json:"completions"`
}

// Add adds o to e.
func (e *Engagement) Add(o Engagement) {
	e.Views += o.Views
	e.WatchedMs += o.WatchedMs
	e.Completions += o.Completions
}

// Day is the UTC day a time falls on, as engagement counts key it.
func Day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// StartEngagement is what a view's start adds to its title's day: one view.
func StartEngagement(e HistoryEntry) Engagement { return Engagement{Views: 1} }

// EndEngagement is what a view's end adds to the day it started on: the
// time watched and, if it got into the credits, a completion.
func EndEngagement(e HistoryEntry, runtime time.Duration, rules licensing.ViewingRules) Engagement {
	out := Engagement{WatchedMs: e.WatchedMs}
	if Completed(e.FurthestMs, runtime, rules) {
		out.Completions = 1
	}
	return out
}

// Ranked is a title's engagement on a day, for the most watched ranking.
type Ranked struct {
	Title string `json:"title_id"`
	Engagement
}

// Rank orders titles by time watched, then views started, then title, and
// keeps the first n (all for n ≤ 0).
func Rank(counts map[string]Engagement, n int) []Ranked {
	out := make([]Ranked, 0, len(counts))
	for t, e := range counts {
		out = append(out, Ranked{Title: t, Engagement: e})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.WatchedMs != b.WatchedMs {
			return a.WatchedMs > b.WatchedMs
		}
		if a.Views != b.Views {
			return a.Views > b.Views
		}
		return a.Title < b.Title
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// TitleEngagement reads a title's engagement on a day.
func (s *Service) TitleEngagement(ctx context.Context, title, day string) (Engagement, error) {
	h, err := s.historyStore()
	if err != nil {
		return Engagement{}, err
	}
	if err := checkIDs("title_id", title); err != nil {
		return Engagement{}, err
	}
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return Engagement{}, kernel.Invalid("day", "day must be YYYY-MM-DD")
	}
	return h.Engagement(ctx, title, day)
}

// MostWatched ranks a day's titles by time watched (Rank), the first n.
func (s *Service) MostWatched(ctx context.Context, day string, n int) ([]Ranked, error) {
	h, err := s.historyStore()
	if err != nil {
		return nil, err
	}
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return nil, kernel.Invalid("day", "day must be YYYY-MM-DD")
	}
	if n < 1 || n > MaxPageSize {
		return nil, kernel.Invalid("limit", "limit must be from 1 to %d", MaxPageSize)
	}
	counts, err := h.DayEngagement(ctx, day)
	if err != nil {
		return nil, err
	}
	return Rank(counts, n), nil
}
