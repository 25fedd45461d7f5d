package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
)

// base is when fixture histories start. It has nanoseconds so that a store
// that loses precision fails.
var base = time.Date(2026, 11, 2, 10, 0, 0, 123456789, time.UTC)

const policyVersion = "2026-11-01"

var (
	// runID keeps stream ids of separate runs apart in a shared table.
	runID   = strconv.FormatInt(time.Now().UnixNano()%(1<<40), 36)
	streams atomic.Int64
)

// streamID returns a stream id no other subtest or run uses, derived from
// the test's name and valid under kernel.ValidID.
func streamID(t *testing.T) string {
	t.Helper()
	prefix := fmt.Sprintf("st-%s-%d-", runID, streams.Add(1))
	name := strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '.', r == '_', r == ':', r == '-':
			return r
		}
		return '-'
	}, t.Name())
	if room := 64 - len(prefix); len(name) > room {
		name = name[len(name)-room:] // the tail names the subtest
	}
	id := prefix + name
	if !kernel.ValidID(id) {
		t.Fatalf("streamID(%q) = %q, not a valid id", t.Name(), id)
	}
	return id
}

// event wraps a payload in an envelope at version v.
func event(v int64, p licensing.Payload) licensing.Event {
	return licensing.Event{
		Version:       v,
		At:            base.Add(time.Duration(v) * time.Minute),
		PolicyVersion: policyVersion,
		Payload:       p,
	}
}

func acquired(licence, device, title string, expires time.Time) *licensing.LicenceAcquired {
	return &licensing.LicenceAcquired{
		Licence: licence, Plan: "standard", Title: title, Studio: "open-reel", Device: device,
		ExpiresAt: expires.UTC(),
	}
}

// history returns n realistic events at versions from, from+1, …: grants,
// playback uploads, renewals and releases, some made with idempotency keys.
// tag keeps licence ids of different histories apart.
func history(from int64, n int, tag string) []licensing.Event {
	lic := func(v int64) string { return fmt.Sprintf("%s-l%d", tag, v) }
	out := make([]licensing.Event, n)
	for i := range out {
		v := from + int64(i)
		at := base.Add(time.Duration(v) * time.Minute)
		var p licensing.Payload
		switch v % 5 {
		case 1:
			p = acquired(lic(v), "phone-1", fmt.Sprintf("tt-%d", v), at.Add(30*24*time.Hour))
		case 2:
			p = acquired(lic(v), "tablet-1", fmt.Sprintf("tt-%d", v), at.Add(7*24*time.Hour))
		case 3:
			p = &licensing.PlaybackRecorded{
				Device: "phone-1",
				Accepted: []licensing.PlaybackEntry{
					{ID: fmt.Sprintf("pb-%d-a", v), Licence: lic(v - 2), Kind: licensing.PlaybackStart, PositionMs: 0, DeviceTime: at.Add(-time.Hour)},
					{ID: fmt.Sprintf("pb-%d-b", v), Licence: lic(v - 2), Kind: licensing.PlaybackStop, PositionMs: 61_250, DeviceTime: at.Add(-59 * time.Minute)},
				},
				Results: []licensing.PlaybackResult{
					{ID: fmt.Sprintf("pb-%d-a", v), Code: licensing.PlaybackAccepted},
					{ID: fmt.Sprintf("pb-%d-b", v), Code: licensing.PlaybackAccepted},
					{ID: fmt.Sprintf("pb-%d-c", v), Code: licensing.PlaybackUnknownLicence},
				},
			}
		case 4:
			p = &licensing.LicenceRenewed{Licence: lic(v - 3), Plan: "standard", ExpiresAt: at.Add(30 * 24 * time.Hour), Renewal: 1}
		case 0:
			if v%10 == 0 {
				p = &licensing.DeviceReleased{Device: "tablet-1", Licences: []string{lic(v - 3)}, Reason: licensing.ReasonDeviceRemoved}
			} else {
				p = &licensing.LicenceReleased{Licence: lic(v - 4), Reason: licensing.ReasonDeleted}
			}
		}
		e := event(v, p)
		if v%3 == 0 {
			e.Key = fmt.Sprintf("key-%s-%d", tag, v)
			e.Fingerprint = fmt.Sprintf("fp%022d", v)
		}
		out[i] = e
	}
	return out
}

// snapshotOf encodes the state folded from events.
func snapshotOf(t *testing.T, stream string, events []licensing.Event) licensing.Snapshot {
	t.Helper()
	snap, err := licensing.EncodeSnapshot(licensing.Fold(stream, events), licensing.DefaultPolicy())
	if err != nil {
		t.Fatalf("EncodeSnapshot(Fold(%s, %d events), licensing.DefaultPolicy()) error: %v", stream, len(events), err)
	}
	return snap
}

// describe prints an event with its whole payload, for failure messages.
func describe(e licensing.Event) string {
	p, err := json.Marshal(e.Payload)
	if err != nil {
		p = []byte(err.Error())
	}
	typ := licensing.EventType("<nil>")
	if e.Payload != nil {
		typ = e.Type()
	}
	return fmt.Sprintf("{v%d %s policy=%q key=%q fp=%q %s %s}",
		e.Version, e.At.Format(time.RFC3339Nano), e.PolicyVersion, e.Key, e.Fingerprint, typ, p)
}

// sameEvent reports whether two events are equal: the envelope, the time
// to the nanosecond and the payload's type and content.
func sameEvent(a, b licensing.Event) bool {
	if a.Version != b.Version || !a.At.Equal(b.At) || a.PolicyVersion != b.PolicyVersion ||
		a.Key != b.Key || a.Fingerprint != b.Fingerprint || a.Payload == nil || b.Payload == nil ||
		a.Type() != b.Type() {
		return false
	}
	pa, errA := json.Marshal(a.Payload)
	pb, errB := json.Marshal(b.Payload)
	return errA == nil && errB == nil && bytes.Equal(pa, pb)
}

// checkEvents fails the test unless got and want hold the same events.
func checkEvents(t *testing.T, call string, got, want []licensing.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s returned %d events (versions %v), want %d (versions %v)", call, len(got), versions(got), len(want), versions(want))
		return
	}
	for i := range got {
		if !sameEvent(got[i], want[i]) {
			t.Errorf("%s.Events[%d] = %s, want %s", call, i, describe(got[i]), describe(want[i]))
		}
	}
}

func versions(events []licensing.Event) []int64 {
	vs := make([]int64, len(events))
	for i, e := range events {
		vs[i] = e.Version
	}
	return vs
}

// checkContiguous fails the test unless events have versions 1..len(events).
func checkContiguous(t *testing.T, call string, events []licensing.Event) {
	t.Helper()
	for i, e := range events {
		if e.Version != int64(i)+1 {
			t.Errorf("%s versions = %v, want 1..%d without gap or duplicate", call, versions(events), len(events))
			return
		}
	}
}
