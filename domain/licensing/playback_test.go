package licensing

import (
	"slices"
	"testing"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
)

func TestPlaybackBatch(t *testing.T) {
	p := testPolicy(t)
	h := newHistory(t, p)
	w := h.do(0, acq("family", "d1", "w1")) // 2 plays per 48-hour window
	plain := h.do(0, acq("family", "d1", "p1"))
	other := h.do(0, acq("family", "d2", "p2"))
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	batch := []PlaybackInput{
		{ID: "s2", Licence: w, Kind: PlaybackStart, DeviceTime: at(3 * time.Hour)}, // out of order: judged after s1
		{ID: "s1", Licence: w, Kind: PlaybackStart, DeviceTime: at(time.Hour)},
		{ID: "k1", Licence: w, Kind: PlaybackKeepalive, PositionMs: 60000, DeviceTime: at(time.Hour + time.Minute)},
		{ID: "k1", Licence: w, Kind: PlaybackKeepalive, PositionMs: 60000, DeviceTime: at(time.Hour + time.Minute)},
		{ID: "s3", Licence: w, Kind: PlaybackStart, DeviceTime: at(5 * time.Hour)},
		{ID: "x1", Licence: "L-nope", Kind: PlaybackStart, DeviceTime: at(time.Hour)},
		{ID: "x2", Licence: other, Kind: PlaybackStart, DeviceTime: at(time.Hour)},
		{ID: "x3", Licence: plain, Kind: "REWIND", DeviceTime: at(time.Hour)},
		{ID: "x4", Licence: plain, Kind: PlaybackStop, PositionMs: -1, DeviceTime: at(time.Hour)},
		{ID: "x5", Licence: plain, Kind: PlaybackStart, DeviceTime: at(-time.Hour)},
		{ID: "x6", Licence: plain, Kind: PlaybackStart, DeviceTime: at(7 * time.Hour)},
		{ID: "p1", Licence: plain, Kind: PlaybackStop, PositionMs: 5000, DeviceTime: at(2 * time.Hour)},
	}
	res := mustTry(t, h, 6*time.Hour, RecordPlayback{"m1", "d1", batch})
	want := []PlaybackResult{
		{"s2", PlaybackAccepted}, {"s1", PlaybackAccepted}, {"k1", PlaybackAccepted}, {"k1", PlaybackDuplicate},
		{"s3", PlaybackPlayLimit}, {"x1", PlaybackUnknownLicence}, {"x2", PlaybackUnknownLicence},
		{"x3", PlaybackInvalid}, {"x4", PlaybackInvalid}, {"x5", PlaybackOutsideLicence}, {"x6", PlaybackOutsideLicence},
		{"p1", PlaybackAccepted},
	}
	if !slices.Equal(res.Playback, want) {
		t.Fatalf("RecordPlayback results =\n%v\nwant\n%v", res.Playback, want)
	}
	l := h.state.Licence(w, t0.Add(6*time.Hour))
	if l.Plays != 2 || !l.FirstPlayAt.Equal(at(time.Hour)) {
		t.Errorf("licence after batch: plays %d, first play %v; want 2, %v", l.Plays, l.FirstPlayAt, at(time.Hour))
	}

	// The same batch again: everything already seen is a duplicate, nothing is appended.
	n := len(h.events)
	res = mustTry(t, h, 7*time.Hour, RecordPlayback{"m1", "d1", batch[:3]})
	for _, r := range res.Playback {
		if r.Code != PlaybackDuplicate {
			t.Errorf("re-upload %s = %s, want %s", r.ID, r.Code, PlaybackDuplicate)
		}
	}
	if len(h.events) != n {
		t.Errorf("re-upload appended %d events, want 0", len(h.events)-n)
	}

	// A START after the window opened by the first play has closed.
	res = mustTry(t, h, 60*time.Hour, RecordPlayback{"m1", "d1", []PlaybackInput{
		{ID: "late", Licence: w, Kind: PlaybackStart, DeviceTime: at(50 * time.Hour)},
	}})
	if res.Playback[0].Code != PlaybackOutsideLicence {
		t.Errorf("START after the window = %s, want %s", res.Playback[0].Code, PlaybackOutsideLicence)
	}

	// Events older than the horizon are refused.
	h2 := newHistory(t, p)
	id := h2.do(0, acq("family", "d1", "p1"))
	h2.do(20*day, Renew{"m1", "family", "d1", id})
	res = mustTry(t, h2, 40*day, RecordPlayback{"m1", "d1", []PlaybackInput{
		{ID: "old", Licence: id, Kind: PlaybackStart, DeviceTime: at(5 * day)},
		{ID: "new", Licence: id, Kind: PlaybackStart, DeviceTime: at(39 * day)},
	}})
	if got := []string{res.Playback[0].Code, res.Playback[1].Code}; !slices.Equal(got, []string{PlaybackTooOld, PlaybackAccepted}) {
		t.Errorf("old and new uploads = %v, want [%s %s]", got, PlaybackTooOld, PlaybackAccepted)
	}
}

func TestPlaybackBatchValidation(t *testing.T) {
	h := newHistory(t, testPolicy(t))
	for _, c := range []struct {
		name  string
		batch []PlaybackInput
		field string
	}{
		{"empty batch", nil, "events"},
		{"too many events", make([]PlaybackInput, MaxPlaybackBatch+1), "events"},
		{"event without id", []PlaybackInput{{Kind: PlaybackStart}}, "events[0].id"},
		{"event id with spaces", []PlaybackInput{{ID: "a b", Kind: PlaybackStart}}, "events[0].id"},
	} {
		_, err := h.try(0, RecordPlayback{"m1", "d1", c.batch})
		e, ok := err.(*kernel.Error)
		if !ok || e.Kind != kernel.KindInvalid || e.Field != c.field {
			t.Errorf("%s: RecordPlayback = %v, want invalid %s", c.name, err, c.field)
		}
	}
}

// TestOneUploadOpensTheWindowForItsLaterPlays: an upload holding a
// licence's first play and later plays judges the later ones against the
// window the first opened, as two uploads of the same plays are judged.
func TestOneUploadOpensTheWindowForItsLaterPlays(t *testing.T) {
	p := testPolicy(t)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	plays := []PlaybackInput{
		{ID: "first", Kind: PlaybackStart, DeviceTime: at(time.Hour)},
		{ID: "inside", Kind: PlaybackStart, DeviceTime: at(20 * time.Hour)},
		{ID: "after", Kind: PlaybackStart, DeviceTime: at(50 * time.Hour)}, // the 48-hour window closed at 49 h
	}
	judged := func(uploads ...[]PlaybackInput) []PlaybackResult {
		h := newHistory(t, p)
		w := h.do(0, acq("family", "d1", "w1"))
		var out []PlaybackResult
		for _, u := range uploads {
			batch := slices.Clone(u)
			for i := range batch {
				batch[i].Licence = w
			}
			out = append(out, mustTry(t, h, 60*time.Hour, RecordPlayback{"m1", "d1", batch}).Playback...)
		}
		return out
	}
	one := judged(plays)
	apart := judged(plays[:1], plays[1:])
	want := []PlaybackResult{{"first", PlaybackAccepted}, {"inside", PlaybackAccepted}, {"after", PlaybackOutsideLicence}}
	if !slices.Equal(one, want) || !slices.Equal(apart, want) {
		t.Errorf("one upload: %v\ntwo uploads: %v\nwant both %v", one, apart, want)
	}
}
