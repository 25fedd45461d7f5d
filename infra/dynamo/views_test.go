package dynamo

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/storetest"
)

// TestScreenItemFitsOneWriteUnit: a heartbeat must cost at most one write
// unit, so the largest screen item any view can make stays within 1 KB.
func TestScreenItemFitsOneWriteUnit(t *testing.T) {
	id := func(c string) string { return strings.Repeat(c, 64) }
	at := time.Date(2099, 12, 31, 23, 59, 59, 999e6, time.UTC)
	v := &viewing.View{
		ID: viewing.NewViewID(15, strings.Repeat("v", 20)), Slot: 15, Device: id("d"), Title: id("t"), Profile: id("p"),
		Runtime: 24 * time.Hour, Started: at, LastSeen: at, PrevSeen: at, Expires: at, PositionMs: viewing.MaxPositionMs,
		State: viewing.Paused, PrevState: viewing.Paused, Seq: viewing.MaxSeq, Ended: viewing.EndedByMember, EndedAt: at,
		Key: viewing.KeyDigest(strings.Repeat("k", 128)), Fingerprint: strings.Repeat("f", 24),
		WatchedMs: 1e10, Unwatched: at, CheckpointMs: 1e10, PrevCheckpointMs: 1e10, Checkpoint: true,
		Former: &viewing.Former{ID: viewing.NewViewID(15, strings.Repeat("w", 20)), Reason: viewing.EndedByMember, Title: id("t"), Profile: id("p"), Started: at,
			KeyDigest: viewing.KeyDigest(strings.Repeat("k", 128)), Fingerprint: strings.Repeat("f", 24), Device: id("d"),
			LastSeen: at, PositionMs: viewing.MaxPositionMs, WatchedMs: 1e10, CheckpointMs: 1e10},
	}
	item, err := MarshalScreen(id("m"), v)
	if err != nil {
		t.Fatal(err)
	}
	if n := itemSize(item); n > 1024 {
		t.Errorf("the largest screen item is %d bytes, over one write unit (1 KB)", n)
	} else {
		t.Logf("the largest screen item is %d bytes", n)
	}
	member, back, ok, err := UnmarshalScreen(item)
	if err != nil || !ok || member != id("m") || back.ID != v.ID || *back.Former != *v.Former || !back.EndedAt.Equal(at) {
		t.Errorf("UnmarshalScreen(MarshalScreen(v)) = %s, %+v, %v, %v", member, back, ok, err)
	}
	typical, _ := MarshalScreen("4f8a2c1e-6b3d-4e9a-8c7f-2d1b0a9e8f7c", &viewing.View{ID: "v1-abcdefghjkmnpqrstvwx", Slot: 1,
		Device: "living-room-tv", Title: "tt-first-light", Runtime: time.Hour, Started: at, LastSeen: at, PrevSeen: at, Expires: at,
		State: viewing.Playing, PrevState: viewing.Playing, Seq: 120, Key: "7c2e9a10-5b3f-4d8e-a1c4-viewstart001", Fingerprint: strings.Repeat("f", 24)})
	t.Logf("a typical screen item is %d bytes", itemSize(typical))
}

// TestRealisticSnapshotFitsOneReadUnit: the snapshot item of a realistic
// member with 10,000 events (storetest.RealisticHistory: six titles, three
// devices, every request keyed, a download a day or so) is at most 4 KB,
// one read unit; a member twice as busy stays well under two.
func TestRealisticSnapshotFitsOneReadUnit(t *testing.T) {
	p := licensing.DefaultPolicy()
	end := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name  string
		log   []licensing.Event
		limit int
	}{
		{"realistic", storetest.RealisticHistory("m-realistic", 10000, end, 1), 4096},
		{"twice as busy", storetest.RealisticHistoryPaced("m-busy", 10000, end, 2, 0.5), 8192},
	} {
		snap, err := licensing.EncodeSnapshot(licensing.Fold(c.name, c.log), p)
		if err != nil {
			t.Fatal(err)
		}
		item, err := marshalSnapshot(snap)
		if err != nil {
			t.Fatal(err)
		}
		span := c.log[len(c.log)-1].At.Sub(c.log[0].At)
		t.Logf("%s: %d events over %.0f days: snapshot %d bytes encoded, item %d bytes (%s)", c.name, len(c.log), span.Hours()/24, len(snap.Data), itemSize(item), item["z"].(*types.AttributeValueMemberS).Value)
		if n := itemSize(item); n > c.limit {
			t.Errorf("%s: the snapshot item is %d bytes, want at most %d", c.name, n, c.limit)
		}
	}
}
