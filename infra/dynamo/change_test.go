package dynamo

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
)

func TestDecodeChange(t *testing.T) {
	at := time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)
	se, err := licensing.EncodeEvent(licensing.Event{Version: 3, At: at, Payload: &licensing.LicenceReleased{Licence: "L1", Reason: licensing.ReasonDeleted}})
	if err != nil {
		t.Fatal(err)
	}
	event, err := marshalEvent("m-1", se)
	if err != nil {
		t.Fatal(err)
	}
	poison := map[string]types.AttributeValue{}
	for k, v := range event {
		poison[k] = v
	}
	poison["d"] = str(`{"licence_id":`)
	snapshot, err := marshalSnapshot(licensing.Snapshot{Stream: "m-1", Version: 3, Schema: 2, Data: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	screen, err := MarshalScreen("m-1", &viewing.View{ID: viewing.NewViewID(2, "abc"), Slot: 2, Device: "tv", Title: "tt-x", Started: at, LastSeen: at, State: viewing.Playing})
	if err != nil {
		t.Fatal(err)
	}
	counter := counterKey("title:tt-x", 3)
	counter["it"] = str(kindCounter)

	for _, tc := range []struct {
		name      string
		event     string
		item      map[string]types.AttributeValue
		member    string
		ok, fails bool
		kind      string
	}{
		{"event appended", "INSERT", event, "m-1", true, false, "event"},
		{"event rewritten", "MODIFY", event, "m-1", false, false, ""},
		{"poison event", "INSERT", poison, "m-1", false, true, ""},
		{"snapshot", "INSERT", snapshot, "m-1", false, false, ""},
		{"screen claimed", "INSERT", screen, "m-1", true, false, "view"},
		{"heartbeat", "MODIFY", screen, "m-1", true, false, "view"},
		{"screen removed", "REMOVE", screen, "m-1", false, false, ""},
		{"erasure", "MODIFY", MarshalErasure("m-1", at), "m-1", true, false, "erasure"},
		{"counter", "MODIFY", counter, "c#title:tt-x#3", false, false, ""},
	} {
		c, ok, err := DecodeChange(tc.event, keyOf(tc.item), tc.item)
		kind := ""
		switch {
		case c.Event != nil:
			kind = "event"
		case c.View != nil:
			kind = "view"
		case !c.Erasure.IsZero():
			kind = "erasure"
		}
		if ok != tc.ok || (err != nil) != tc.fails || kind != tc.kind || c.Member != tc.member || c.Partition != tc.item["pk"].(*types.AttributeValueMemberS).Value {
			t.Errorf("%s: DecodeChange = %+v (%s), %v, %v; want member %s, %s, ok %v, error %v", tc.name, c, kind, ok, err, tc.member, tc.kind, tc.ok, tc.fails)
		}
	}
	// An item that names another member than its partition is a poison record.
	moved := MarshalErasure("m-2", at)
	if _, ok, err := DecodeChange("MODIFY", key(ViewingPartition("m-1"), erasureSK), moved); ok || err == nil {
		t.Errorf("DecodeChange(m-2's erasure in m-1's partition) = %v, %v; want an error", ok, err)
	}
	if c, ok, _ := DecodeChange("INSERT", keyOf(event), event); !ok || c.Event.Version != 3 || !c.Event.At.Equal(at) {
		t.Errorf("DecodeChange(event) = %+v, want v3 at %v", c.Event, at)
	}
}
