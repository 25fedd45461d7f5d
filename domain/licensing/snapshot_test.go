package licensing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// longHistory builds a busy member's log of n events under the default
// policy: downloads on six devices, offline playback uploads, renewals and
// deletions, over as long as it takes (about two events an hour).
func longHistory(tb fataler, n int) *history { return longHistoryOf(tb, n, 6) }

// longHistoryOf is longHistory with at most batch playback events an upload.
func longHistoryOf(tb fataler, n, batchMax int) *history {
	p := DefaultPolicy()
	h := newHistory(tb, p)
	titles := make([]string, 0, len(p.Titles))
	for _, id := range sortedKeys(p.Titles) {
		if tt := p.Titles[id]; tt.Downloadable && tt.AvailableFrom == nil && tt.AvailableUntil == nil {
			titles = append(titles, id)
		}
	}
	at := time.Duration(0)
	for i := 0; len(h.events) < n; i++ {
		at += 30 * time.Minute
		now := t0.Add(at)
		device := fmt.Sprintf("device-%d", i%6)
		switch i % 10 {
		case 0, 5:
			h.try(at, acq("premium", device, titles[(i/10)%len(titles)]))
		case 3:
			if ls := h.state.Licences(now); len(ls) > 0 {
				l := ls[i%len(ls)]
				h.try(at, Renew{"m1", "premium", l.Device, l.ID})
			}
		case 8:
			if ls := h.state.Licences(now); len(ls) > 3 {
				l := ls[0]
				h.try(at, Release{"m1", l.Device, l.ID, ReasonDeleted})
			}
		default:
			var batch []PlaybackInput
			for _, l := range h.state.Licences(now) {
				if l.Device == device && l.Active(p, now) && len(batch) < batchMax {
					for k, kind := range []PlaybackKind{PlaybackStart, PlaybackKeepalive, PlaybackStop} {
						batch = append(batch, PlaybackInput{
							ID: fmt.Sprintf("ev-%d-%s-%d", i, l.ID, k), Licence: l.ID, Kind: kind,
							PositionMs: int64(k) * 60000, DeviceTime: now.Add(time.Duration(k-3) * time.Minute),
						})
					}
				}
			}
			if len(batch) > 0 {
				h.try(at, RecordPlayback{"m1", device, batch})
			}
		}
	}
	return h
}

func TestSnapshotOfTenThousandEventsIsSmall(t *testing.T) {
	h := longHistory(t, 10000)
	snap, err := EncodeSnapshot(h.state, DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	span := h.events[len(h.events)-1].At.Sub(h.events[0].At)
	t.Logf("%d events over %d days: snapshot %d bytes, %d licences remembered", len(h.events), int(span.Hours()/24), len(snap.Data), len(h.state.licences))
	// DynamoDB refuses items over 400 KB; a snapshot must stay far below.
	if len(snap.Data) > 64<<10 {
		t.Errorf("snapshot of %d events is %d bytes, want at most 64 KiB", len(h.events), len(snap.Data))
	}
	if len(h.state.licences) >= len(h.events)/10 {
		t.Errorf("state remembers %d licences of %d events: ended ones are not pruned", len(h.state.licences), len(h.events))
	}
}

func TestSnapshotOfAnotherSchemaIsIgnored(t *testing.T) {
	h := longHistory(t, 50)
	p := DefaultPolicy()
	snap, err := EncodeSnapshot(h.state, p)
	if err != nil {
		t.Fatal(err)
	}
	snap.Schema = StateSchema + 1
	if s, ok, err := RestoreSnapshot(snap, p); s != nil || ok || err != nil {
		t.Errorf("RestoreSnapshot(schema %d) = %v, %v, %v; want ignored", snap.Schema, s, ok, err)
	}
	snap.Schema = StateSchema
	snap.Version++
	if _, _, err := RestoreSnapshot(snap, p); err == nil {
		t.Errorf("RestoreSnapshot of a snapshot labelled with the wrong version = nil error")
	}
	snap.Version--
	for name, data := range map[string][]byte{
		"cut short":           snap.Data[:len(snap.Data)-3],
		"with bytes after it": append(bytes.Clone(snap.Data), 7),
		"empty":               nil,
	} {
		if _, _, err := RestoreSnapshot(Snapshot{Stream: snap.Stream, Version: snap.Version, Schema: StateSchema, Data: data}, p); err == nil {
			t.Errorf("RestoreSnapshot of a snapshot %s = nil error", name)
		}
	}
}

// TestSnapshotKeepsWhatTheQuotasCanSee: the snapshot keeps only the
// acquisition times the policy's title quotas can look at, decides like the
// whole fold under that policy, and is ignored under other quotas.
func TestSnapshotKeepsWhatTheQuotasCanSee(t *testing.T) {
	p := DefaultPolicy() // northlight: 3 downloads of a title per 365 days
	h := longHistory(t, 3000)
	st := h.state
	snap, err := EncodeSnapshot(st, p)
	if err != nil {
		t.Fatal(err)
	}
	restored, ok, err := RestoreSnapshot(snap, p)
	if err != nil || !ok {
		t.Fatalf("RestoreSnapshot = %v, %v", ok, err)
	}
	held := 0
	for title, times := range restored.downloads {
		held += len(times)
		tt, _ := p.Title(title)
		if q := p.Terms(tt.Studio).TitleQuota; q == nil || len(times) > q.Count {
			t.Errorf("snapshot keeps %d acquisitions of %s (quota %v)", len(times), title, q)
		}
	}
	t.Logf("the fold holds acquisitions of %d titles, the snapshot %d times", len(st.downloads), held)
	now := st.LastEventAt.Add(time.Hour)
	for _, title := range sortedKeys(p.Titles) {
		c := Acquire{Member: "m1", Plan: "premium", Device: "device-9", Title: title}
		_, want := Decide(st, c, p, now, func() string { return "x" })
		_, got := Decide(restored, c, p, now, func() string { return "x" })
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Acquire %s after restore = %v, from the whole fold %v", title, got, want)
		}
	}
	looser := strings.Replace(string(DefaultPolicyJSON()), `"count": 3, "window": "365d"`, `"count": 5, "window": "365d"`, 1)
	other, err := ParsePolicy(strings.NewReader(looser))
	if err != nil {
		t.Fatal(err)
	}
	if other.QuotaDigest() == p.QuotaDigest() {
		t.Fatalf("policies with other quotas have the same digest %s", p.QuotaDigest())
	}
	if s, ok, err := RestoreSnapshot(snap, other); s != nil || ok || err != nil {
		t.Errorf("RestoreSnapshot under other quotas = %v, %v, %v; want ignored, for a replay", s != nil, ok, err)
	}
}

// TestSnapshotOfTheFirstSchemaIsStillRead: a stored JSON snapshot restores
// to a state that decides like the fold it came from: downloads, renewals,
// and playback uploads already seen.
func TestSnapshotOfTheFirstSchemaIsStillRead(t *testing.T) {
	p := DefaultPolicy()
	h := longHistory(t, 2000)
	old, err := encodeJSON(h.state)
	if err != nil {
		t.Fatal(err)
	}
	restored, ok, err := RestoreSnapshot(Snapshot{Stream: "m1", Version: h.state.Version, Schema: 1, Data: old}, p)
	if err != nil || !ok {
		t.Fatalf("RestoreSnapshot(schema 1) = %v, %v", ok, err)
	}
	now := h.state.LastEventAt.Add(time.Minute)
	var cmds []Command
	for _, title := range sortedKeys(p.Titles) {
		cmds = append(cmds, Acquire{Member: "m1", Plan: "premium", Device: "device-1", Title: title})
	}
	for _, l := range h.state.Licences(now) {
		cmds = append(cmds, Renew{"m1", "premium", l.Device, l.ID})
	}
	for _, e := range h.events[len(h.events)-200:] {
		if pr, ok := e.Payload.(*PlaybackRecorded); ok {
			var again []PlaybackInput
			for _, a := range pr.Accepted {
				again = append(again, PlaybackInput{ID: a.ID, Licence: a.Licence, Kind: a.Kind, PositionMs: a.PositionMs, DeviceTime: a.DeviceTime})
			}
			cmds = append(cmds, RecordPlayback{"m1", pr.Device, again})
		}
	}
	for _, c := range cmds {
		want, wantErr := Decide(h.state, c, p, now, func() string { return "x" })
		got, gotErr := Decide(restored, c, p, now, func() string { return "x" })
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("%T %+v after a schema 1 restore = %s, %v; from the fold %s, %v", c, c, g, gotErr, w, wantErr)
		}
	}
	now2, _ := EncodeSnapshot(h.state, p)
	t.Logf("%d decisions alike; schema 1: %d bytes of JSON; schema 2: %d bytes", len(cmds), len(old), len(now2.Data))
}

func TestIdempotencyKeysAreBounded(t *testing.T) {
	s := NewState("m1")
	for i := 1; i <= 500; i++ {
		s.Apply(Event{Version: int64(i), At: t0.Add(time.Duration(i) * time.Minute), Key: fmt.Sprintf("k%d", i), Fingerprint: "f",
			Payload: &LicenceAcquired{Licence: fmt.Sprintf("L%d", i), Title: "p1", Studio: "plain", Device: "d1", ExpiresAt: t0.Add(day)}})
	}
	now := t0.Add(500 * time.Minute)
	if _, ok := s.Request("k500", now); !ok {
		t.Errorf("Request(k500) forgotten, want remembered")
	}
	if _, ok := s.Request("k1", now); ok {
		t.Errorf("Request(k1) remembered after %d newer keys, want forgotten", 499)
	}
	if len(s.requests) > MaxKeys {
		t.Errorf("%d keys remembered, want at most %d", len(s.requests), MaxKeys)
	}
	if _, ok := s.Request("k500", now.Add(KeyRetention)); ok {
		t.Errorf("Request(k500) remembered after %v, want forgotten", KeyRetention)
	}
}

// TestSnapshotStaysBoundedUnderAbuse downloads, plays and deletes as fast as
// the rules allow, with long idempotency keys: the snapshot still fits an
// item with room to spare.
func TestSnapshotStaysBoundedUnderAbuse(t *testing.T) {
	h := newHistory(t, DefaultPolicy())
	key := strings.Repeat("k", 128)
	for i := 0; i < 3000; i++ {
		at := time.Duration(i) * time.Minute
		id := h.do(at, acq("premium", fmt.Sprintf("d%d", i%6), "tt-first-light"))
		var batch []PlaybackInput
		for k := 0; k < 20; k++ {
			batch = append(batch, PlaybackInput{ID: fmt.Sprintf("%s-%d", id, k), Licence: id, Kind: PlaybackKeepalive, DeviceTime: t0.Add(at)})
		}
		h.do(at, RecordPlayback{"m1", fmt.Sprintf("d%d", i%6), batch})
		h.do(at, Release{"m1", fmt.Sprintf("d%d", i%6), id, ReasonDeleted})
		h.state.Apply(Event{Version: h.state.Version + 1, At: t0.Add(at), Key: fmt.Sprintf("%s%d", key[:120], i), Fingerprint: "f",
			Payload: &DeviceReleased{Device: "d0", Reason: ReasonDeviceRemoved}})
	}
	snap, err := EncodeSnapshot(h.state, DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d versions: snapshot %d bytes, %d licences, %d playback ids, %d keys", h.state.Version, len(snap.Data), len(h.state.licences), h.state.playback.count, len(h.state.requests))
	if len(snap.Data) > 160<<10 {
		t.Errorf("snapshot is %d bytes, want at most 160 KiB", len(snap.Data))
	}
	if h.state.playback.count > 2*MaxPlaybackIDs || len(h.state.licences) > 2*MaxEndedLicences {
		t.Errorf("state holds %d playback ids and %d licences, want at most %d and %d", h.state.playback.count, len(h.state.licences), MaxPlaybackIDs, 2*MaxEndedLicences)
	}
	// Forgotten ids never let a duplicate in: older uploads are refused.
	res := mustTry(t, h, 3000*time.Minute, RecordPlayback{"m1", "d0", []PlaybackInput{{ID: "L1-0", Licence: "L1", Kind: PlaybackKeepalive, DeviceTime: t0}}})
	if c := res.Playback[0].Code; c == PlaybackAccepted {
		t.Errorf("re-upload of a forgotten id = %s, want it refused", c)
	}
}

// TestRememberedAnswersSurviveASnapshot: the answers kept for idempotency
// keys come back exactly from a snapshot, though their licences were
// played, renewed and released since (answers are kept as differences).
func TestRememberedAnswersSurviveASnapshot(t *testing.T) {
	p := DefaultPolicy()
	st := NewState("m1")
	at := func(m int) time.Time { return t0.Add(time.Duration(m)*time.Minute + 123*time.Millisecond) }
	add := func(m int, key string, pl Payload) {
		st.Apply(Event{Version: st.Version + 1, At: at(m), Key: key, Fingerprint: "0123456789abcdef01234567", Payload: pl})
	}
	add(1, "k1", &LicenceAcquired{Licence: "ab23cd45ef67gh89jk01", Title: "tt-low-tide", Studio: "harbour", Device: "d1", ExpiresAt: at(1).Add(7 * day)})
	add(2, "k2", &PlaybackRecorded{Device: "d1", Accepted: []PlaybackEntry{{ID: "e1", Licence: "ab23cd45ef67gh89jk01", Kind: PlaybackStart, DeviceTime: at(2)}},
		Results: []PlaybackResult{{ID: "e1", Code: PlaybackAccepted}, {ID: "6f1c7a52-0b1e-4c3d-9e8f-0123456789ab", Code: PlaybackUnknownLicence}}})
	add(3, "k3", &LicenceRenewed{Licence: "ab23cd45ef67gh89jk01", ExpiresAt: at(3).Add(7 * day), Renewal: 1})
	add(4, "k4", &LicenceAcquired{Licence: "L-two", Title: "tt-first-light", Studio: "open-reel", Device: "d2", ExpiresAt: at(4).Add(30 * day)})
	add(5, "6f1c7a52-0b1e-4c3d-9e8f-0123456789ab", &DeviceReleased{Device: "d1", Licences: []string{"ab23cd45ef67gh89jk01"}, Reason: ReasonDeviceRemoved})
	add(6, "k6", &LicenceAcquired{Licence: "L-gone", Title: "tt-paper-moons", Studio: "open-reel", Device: "d2", ExpiresAt: at(6).Add(30 * day)})
	// A remembered answer about a licence the state forgot keeps every field.
	st.requests[len(st.requests)-1].Licences[0].ID = "L-forgotten"
	snap, err := EncodeSnapshot(st, p)
	if err != nil {
		t.Fatal(err)
	}
	restored, ok, err := RestoreSnapshot(snap, p)
	if err != nil || !ok {
		t.Fatalf("RestoreSnapshot = %v, %v", ok, err)
	}
	if !reflect.DeepEqual(restored.requests, st.requests) {
		got, _ := json.Marshal(restored.requests)
		want, _ := json.Marshal(st.requests)
		t.Errorf("remembered answers after a snapshot:\n%s\nwant\n%s", got, want)
	}
}
