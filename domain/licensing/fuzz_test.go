package licensing

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzParsePolicy: any document either is refused with an error or gives a
// policy every decision can run under without panicking.
func FuzzParsePolicy(f *testing.F) {
	f.Add(DefaultPolicyJSON())
	f.Add([]byte(testPolicyJSON))
	f.Add([]byte(`{"version":"v","defaults":{"licence_duration":"1d"},"plans":{"p":{"max_download_devices":1,"max_active_per_device":1,"max_active_per_member":1, "max_screens": 2}},"studios":{"s":{"title_quota":{"count":1,"window":"1h"}}},"titles":{"t":{"studio":"s","downloadable":true}}}`))
	f.Add([]byte(`{"version":"v","defaults":{"licence_duration":"-1d"}}`))
	f.Add([]byte(`{"plans":{"p":{"max_download_devices":"x"}}}`))
	f.Add([]byte(strings.Repeat("[", 5000)))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := ParsePolicy(bytes.NewReader(doc))
		if err != nil {
			if p != nil {
				t.Fatalf("ParsePolicy returned a policy and an error")
			}
			return
		}
		s := NewState("m1")
		now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
		for plan := range p.Plans {
			for title := range p.Titles {
				d, err := Decide(s, Acquire{Member: "m1", Plan: plan, Device: "d1", Title: title}, p, now, func() string { return "L1" })
				if err == nil {
					if d.Event != nil {
						s.Apply(Event{Version: s.Version + 1, At: now, Payload: d.Event})
					}
				}
			}
		}
		Sync(s, p, "d1", nil, now)
		WhatIf("m1", nil, p)
	})
}

// FuzzDecodeEvent: a stored event of any type, schema and payload either
// decodes (and then encodes back to the same event) or is refused; it never
// panics.
func FuzzDecodeEvent(f *testing.F) {
	f.Add("LicenceAcquired", 1, []byte(`{"licence":"L1","title":"t","studio":"s","device":"d","duration_s":3600}`))
	f.Add("LicenceAcquired", 2, []byte(`{"licence_id":"L1","plan":"p","title_id":"t","studio_id":"s","device_id":"d","expires_at":"2026-12-01T00:00:00Z"}`))
	f.Add("PlaybackRecorded", 1, []byte(`{"device_id":"d","events":[{"id":"e","licence_id":"L1","kind":"START","position_s":1.5,"device_time":"2026-11-01T00:00:00Z"}]}`))
	f.Add("LicenceReleased", 1, []byte(`{"licence_id":"L1","reason":"ADMINISTRATIVE","ref":{"licence_id":"L1","title_id":"t","studio_id":"s","issued_at":"2026-11-01T00:00:00Z","expires_at":"2026-12-01T00:00:00Z"}}`))
	f.Add("DeviceReleased", 1, []byte(`{"device_id":"d","licence_ids":["a"],"reason":"DEVICE_REMOVED"}`))
	f.Add("Unknown", 7, []byte(`{}`))
	f.Fuzz(func(t *testing.T, typ string, schema int, data []byte) {
		in := StoredEvent{Version: 3, Type: EventType(typ), Schema: schema, At: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC), Data: data}
		e, err := DecodeEvent(in)
		if err != nil {
			return
		}
		s, err := EncodeEvent(e)
		if err != nil {
			t.Fatalf("EncodeEvent(DecodeEvent(...)) = %v", err)
		}
		back, err := DecodeEvent(s)
		if err != nil || !reflect.DeepEqual(back, e) {
			t.Fatalf("decode(encode(decode(x))) = %+v, %v; want %+v", back, err, e)
		}
		// A decoded event can always be folded.
		NewState("m1").Apply(e)
	})
}
