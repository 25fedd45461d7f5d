package licensing

import (
	"sort"
	"strings"
	"time"
)

// Counter read models. Every event changes a few counters by a few units;
// CounterDeltas says which, as a pure function of the event, so the stream
// function and a rebuild count alike.
//
//   - "title:<title>": "granted" counts licences granted for the title;
//     "a:<day>" counts the title's licences held that expire on that day.
//   - "studio:<studio>:<day>": "granted" counts licences of the studio
//     granted on that day; "a:<day>" counts those of them held that expire
//     on that day.
//
// Licences active at a day D are the "a:" buckets of days on or after D:
// exact to the day. A licence ended early by its playback window still
// counts until its expiry.
const (
	FieldGranted = "granted"
	activePrefix = "a:"
)

// CounterDelta is one change to one counter field.
type CounterDelta struct {
	Scope string
	Field string
	Delta int64
}

func dateOf(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// TitleScope is the counter scope of a title.
func TitleScope(title string) string { return "title:" + title }

// StudioDayScope is the counter scope of a studio's grants on a day.
func StudioDayScope(studio string, on time.Time) string { return "studio:" + studio + ":" + dateOf(on) }

// CounterDeltas returns the counter changes an event makes. Releases and
// renewals written before events carried the licence's reference change
// nothing.
func CounterDeltas(e Event) []CounterDelta {
	var out []CounterDelta
	held := func(ref LicenceRef, exp time.Time, d int64) {
		out = append(out,
			CounterDelta{TitleScope(ref.Title), activePrefix + dateOf(exp), d},
			CounterDelta{StudioDayScope(ref.Studio, ref.IssuedAt), activePrefix + dateOf(exp), d})
	}
	switch p := e.Payload.(type) {
	case *LicenceAcquired:
		ref := LicenceRef{Licence: p.Licence, Title: p.Title, Studio: p.Studio, IssuedAt: e.At, ExpiresAt: p.ExpiresAt}
		out = append(out,
			CounterDelta{TitleScope(p.Title), FieldGranted, 1},
			CounterDelta{StudioDayScope(p.Studio, e.At), FieldGranted, 1})
		held(ref, p.ExpiresAt, 1)
	case *LicenceRenewed:
		if p.Ref != nil {
			held(*p.Ref, p.Ref.ExpiresAt, -1)
			held(*p.Ref, p.ExpiresAt, 1)
		}
	case *LicenceReleased:
		if p.Ref != nil {
			held(*p.Ref, p.Ref.ExpiresAt, -1)
		}
	case *DeviceReleased:
		for _, r := range p.Refs {
			held(r, r.ExpiresAt, -1)
		}
	case *LicencesReleased:
		for _, r := range p.Releases {
			if r.Ref != nil {
				held(*r.Ref, r.Ref.ExpiresAt, -1)
			}
		}
	}
	return merge(out)
}

// merge adds up deltas of the same field and drops those that cancel out,
// in a stable order.
func merge(ds []CounterDelta) []CounterDelta {
	sum := map[[2]string]int64{}
	var keys [][2]string
	for _, d := range ds {
		k := [2]string{d.Scope, d.Field}
		if _, ok := sum[k]; !ok {
			keys = append(keys, k)
		}
		sum[k] += d.Delta
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	var out []CounterDelta
	for _, k := range keys {
		if sum[k] != 0 {
			out = append(out, CounterDelta{k[0], k[1], sum[k]})
		}
	}
	return out
}

// Counts is a counter scope's fields summed over its shards.
type Counts map[string]int64

// Granted is the number of licences granted.
func (c Counts) Granted() int64 { return c[FieldGranted] }

// ActiveOn is the number of licences held on the given day (those expiring
// on it or later).
func (c Counts) ActiveOn(on time.Time) int64 {
	from := activePrefix + dateOf(on)
	var n int64
	for f, v := range c {
		if strings.HasPrefix(f, activePrefix) && f >= from {
			n += v
		}
	}
	return n
}
