package licensing

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// storedFile is the on-disk form of a stored event in testdata.
type storedFile struct {
	Version       int64           `json:"version"`
	Type          EventType       `json:"type"`
	Schema        int             `json:"schema"`
	At            time.Time       `json:"at"`
	PolicyVersion string          `json:"policy_version"`
	Key           string          `json:"key,omitempty"`
	Fingerprint   string          `json:"fingerprint,omitempty"`
	Data          json.RawMessage `json:"data"`
}

// decodedFile is what a golden file holds: the event as read today.
type decodedFile struct {
	Version       int64     `json:"version"`
	Type          EventType `json:"type"`
	At            time.Time `json:"at"`
	PolicyVersion string    `json:"policy_version"`
	Key           string    `json:"key,omitempty"`
	Fingerprint   string    `json:"fingerprint,omitempty"`
	Payload       Payload   `json:"payload"`
}

// TestUpcastGolden reads events stored in old schemas and checks that they
// decode to exactly the current shapes kept in the golden files.
func TestUpcastGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/upcast/*.stored.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no stored events in testdata/upcast (%v)", err)
	}
	upgraded := map[EventType]bool{}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var sf storedFile
			if err := strictUnmarshal(raw, &sf); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if sf.Schema < CurrentSchema(sf.Type) {
				upgraded[sf.Type] = true
			}
			e, err := DecodeEvent(StoredEvent{
				Version: sf.Version, Type: sf.Type, Schema: sf.Schema, At: sf.At, PolicyVersion: sf.PolicyVersion,
				Key: sf.Key, Fingerprint: sf.Fingerprint, Data: sf.Data,
			})
			if err != nil {
				t.Fatalf("DecodeEvent(%s) = %v", f, err)
			}
			got, err := json.MarshalIndent(decodedFile{e.Version, e.Type(), e.At, e.PolicyVersion, e.Key, e.Fingerprint, e.Payload}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(f, ".stored.json") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestUpcastGolden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("DecodeEvent(%s) =\n%s\nwant (%s)\n%s", f, got, golden, want)
			}
		})
	}
	for _, typ := range []EventType{TypeLicenceAcquired, TypePlaybackRecorded} {
		if !upgraded[typ] {
			t.Errorf("no stored %s in an old schema under testdata/upcast", typ)
		}
	}
}

func TestUpcasterChainsAreComplete(t *testing.T) {
	for typ, cur := range currentSchema {
		for v := 1; v < cur; v++ {
			if upcasters[upcastKey{typ, v}] == nil {
				t.Errorf("no upcaster for %s from schema %d (current %d)", typ, v, cur)
			}
		}
	}
	for k := range upcasters {
		if cur, ok := currentSchema[k.t]; !ok || k.from >= cur {
			t.Errorf("upcaster for %s from schema %d leads past the current schema", k.t, k.from)
		}
	}
}

func TestDecodeRefusesWhatItCannotRead(t *testing.T) {
	good := StoredEvent{Version: 1, Type: TypeLicenceReleased, Schema: 1, At: t0, Data: []byte(`{"licence_id":"L1","reason":"ADMINISTRATIVE"}`)}
	if _, err := DecodeEvent(good); err != nil {
		t.Fatalf("DecodeEvent(good) = %v", err)
	}
	for name, mutate := range map[string]func(*StoredEvent){
		"unknown type":        func(s *StoredEvent) { s.Type = "LicenceStolen" },
		"future schema":       func(s *StoredEvent) { s.Schema = 2 },
		"schema zero":         func(s *StoredEvent) { s.Schema = 0 },
		"malformed payload":   func(s *StoredEvent) { s.Data = []byte(`{"licence_id":`) },
		"unknown field":       func(s *StoredEvent) { s.Data = []byte(`{"licence_id":"L1","colour":"red"}`) },
		"old shape, bad data": func(s *StoredEvent) { s.Type, s.Data = TypeLicenceAcquired, []byte(`{"licence":"L1","duration_s":-5}`) },
	} {
		s := good
		mutate(&s)
		if _, err := DecodeEvent(s); err == nil {
			t.Errorf("DecodeEvent(%s) = nil error, want an error", name)
		}
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	exp := t0.Add(30 * day)
	for _, p := range []Payload{
		&LicenceAcquired{Licence: "L1", Plan: "family", Title: "p1", Studio: "plain", Device: "d1", ExpiresAt: exp},
		&LicenceRenewed{Licence: "L1", Plan: "family", ExpiresAt: exp, Renewal: 2},
		&LicenceReleased{Licence: "L1", Reason: ReasonTitleWithdrawn},
		&DeviceReleased{Device: "d1", Licences: []string{"L1", "L2"}, Reason: ReasonDeviceRemoved},
		&PlaybackRecorded{Device: "d1", Accepted: []PlaybackEntry{{ID: "e1", Licence: "L1", Kind: PlaybackStart, PositionMs: 10, DeviceTime: t0}},
			Results: []PlaybackResult{{"e1", PlaybackAccepted}, {"e0", PlaybackDuplicate}}},
	} {
		in := Event{Version: 3, At: t0, PolicyVersion: "v9", Key: "k", Fingerprint: "f", Payload: p}
		s, err := EncodeEvent(in)
		if err != nil {
			t.Fatalf("EncodeEvent(%T) = %v", p, err)
		}
		if s.Schema != CurrentSchema(in.Type()) {
			t.Errorf("EncodeEvent(%T) schema = %d, want %d", p, s.Schema, CurrentSchema(in.Type()))
		}
		out, err := DecodeEvent(s)
		if err != nil {
			t.Fatalf("DecodeEvent(%T) = %v", p, err)
		}
		if !reflect.DeepEqual(out, in) {
			t.Errorf("DecodeEvent(EncodeEvent(%+v)) = %+v", in, out)
		}
	}
}
