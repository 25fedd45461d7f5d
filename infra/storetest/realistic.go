package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
)

// RealisticTitles are the six titles of a realistic member's history, from
// the shipped policy's catalogue: studios with a yearly quota, a playback
// window with a play cap, no renewals, and none of these.
var RealisticTitles = []string{"tt-first-light", "tt-paper-moons", "tt-low-tide", "tt-breakwater", "tt-meridian-one", "tt-lighthouse"}

// RealisticHistory returns the log of a realistic member on the premium
// plan: n events over six titles on three devices, ending about end, every
// request made with an idempotency key, decided by the real rules under
// the shipped policy exactly as the service decides them. About 4.3 events
// a day, so 10,000 events take six and a half years: a download, one to four playback uploads of three events (start,
// keep-alive, stop), sometimes a renewal, and a release (or the licence
// left to expire); now and then a burst of downloads of every title within
// a second. Refused requests write nothing, as in the service.
func RealisticHistory(member string, n int, end time.Time, seed uint64) []licensing.Event {
	return RealisticHistoryPaced(member, n, end, seed, 1)
}

// RealisticHistoryPaced is RealisticHistory with the gaps between a
// member's sessions scaled by gaps: 0.5 is a member twice as busy.
func RealisticHistoryPaced(member string, n int, end time.Time, seed uint64, gaps float64) []licensing.Event {
	policy := licensing.DefaultPolicy()
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	devices := []string{"phone-1", "tablet-1", "laptop-1"}
	st := licensing.NewState(member)
	var log []licensing.Event
	calls := 0
	// Times to the millisecond, as the service keeps them.
	at := end.Add(-time.Duration(float64(time.Duration(n)*24*time.Hour*10/43) * gaps)).Truncate(time.Millisecond)
	gap := func(d time.Duration) time.Duration {
		return time.Duration(float64(d) * gaps).Truncate(time.Millisecond)
	}
	// Ids and keys as the service and its clients make them: 20-character
	// licence ids, UUID idempotency keys.
	id := func() string {
		const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
		b := make([]byte, 20)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	uuid := func() string {
		return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<12), 0x8000|rng.IntN(1<<14), rng.Int64N(1<<48))
	}
	do := func(cmd licensing.Command) []licensing.LicenceStatus {
		calls++
		key := uuid()
		d, err := licensing.Decide(st, cmd, policy, at, id)
		var denial *licensing.Denial
		if errors.As(err, &denial) || d.Event == nil {
			return nil
		}
		if err != nil {
			panic(fmt.Sprintf("realistic history: %T: %v", cmd, err))
		}
		e := licensing.Event{Version: st.Version + 1, At: at, PolicyVersion: policy.Version, Key: key,
			Fingerprint: licensing.Fingerprint(cmd), RequestID: id(), Payload: d.Event}
		st.Apply(e)
		log = append(log, e)
		if a, ok := d.Event.(*licensing.LicenceAcquired); ok {
			return []licensing.LicenceStatus{{ID: a.Licence}}
		}
		return nil
	}
	acquire := func(device, title string) string {
		if v := do(licensing.Acquire{Member: member, Plan: "premium", Device: device, Title: title}); len(v) > 0 {
			return v[0].ID
		}
		return ""
	}
	for len(log) < n {
		at = at.Add(gap(time.Duration(6+rng.IntN(14)) * time.Hour))
		device := devices[rng.IntN(len(devices))]
		if rng.IntN(20) == 0 {
			// A burst: every title downloaded to one device within a second.
			for _, title := range RealisticTitles {
				at = at.Add(time.Duration(rng.IntN(150)) * time.Millisecond)
				acquire(device, title)
			}
			at = at.Add(time.Duration(1+rng.IntN(5)) * time.Hour)
			do(licensing.ReleaseDevice{Member: member, Device: device, Reason: licensing.ReasonDeviceRemoved})
			continue
		}
		lic := acquire(device, RealisticTitles[rng.IntN(len(RealisticTitles))])
		if lic == "" {
			continue
		}
		position := int64(0)
		for range 1 + rng.IntN(4) {
			at = at.Add(time.Duration(10+rng.IntN(170)) * time.Minute)
			events := make([]licensing.PlaybackInput, 3)
			for i, kind := range []licensing.PlaybackKind{licensing.PlaybackStart, licensing.PlaybackKeepalive, licensing.PlaybackStop} {
				position += int64(rng.IntN(1_200_000))
				events[i] = licensing.PlaybackInput{ID: uuid(), Licence: lic, Kind: kind, PositionMs: position,
					DeviceTime: at.Add(time.Duration(i*20) * time.Minute).Truncate(time.Second)}
			}
			at = at.Add(time.Hour)
			do(licensing.RecordPlayback{Member: member, Device: device, Events: events})
		}
		if rng.IntN(4) == 0 {
			do(licensing.Renew{Member: member, Plan: "premium", Device: device, Licence: lic})
		}
		if rng.IntN(5) != 0 {
			at = at.Add(time.Duration(rng.IntN(6)) * time.Hour)
			do(licensing.Release{Member: member, Device: device, Licence: lic, Reason: licensing.ReasonDeleted})
		}
	}
	return log[:n]
}
