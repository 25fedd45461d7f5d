package deploytest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/memstore"
	"github.com/dlicense/dlicense/infra/projector"
	"github.com/dlicense/dlicense/infra/setup"
)

// sampleFiles reads every sample event of ../../../events by file name.
func sampleFiles(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("../../../events/*.json")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// isStreamEvent: a DynamoDB Streams event, every record from aws:dynamodb.
func isStreamEvent(b []byte) bool {
	var ev struct {
		Records []struct {
			EventSource string `json:"eventSource"`
		} `json:"Records"`
	}
	if json.Unmarshal(b, &ev) != nil || len(ev.Records) == 0 {
		return false
	}
	for _, r := range ev.Records {
		if r.EventSource != "aws:dynamodb" {
			return false
		}
	}
	return true
}

// streamSamples reads the DynamoDB Streams events of ../../../events.
func streamSamples(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for name, b := range sampleFiles(t) {
		if isStreamEvent(b) {
			out[name] = b
		}
	}
	return out
}

// TestEverySampleEventIsForAFunction: each file in events/ is an API event
// or a stream event, so none is skipped by both sample tests unnoticed.
func TestEverySampleEventIsForAFunction(t *testing.T) {
	api, stream := apiEvents(t), streamSamples(t)
	for name := range sampleFiles(t) {
		_, isAPI := api[name]
		_, isStream := stream[name]
		if !isAPI && !isStream {
			t.Errorf("events/%s is neither an API Gateway v2 event nor a DynamoDB Streams event", name)
		}
	}
}

// seed appends the events of stream samples to the store, in their order,
// as the API function would have before the stream delivered them.
func seed(t *testing.T, s *memstore.Store, sample []byte) {
	t.Helper()
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(sample, &ev); err != nil {
		t.Fatal(err)
	}
	for _, r := range ev.Records {
		item, err := projector.ToSDK(r.Change.NewImage)
		if err != nil {
			t.Fatal(err)
		}
		e, ok, err := dynamo.UnmarshalStoredEvent(item)
		if err != nil || !ok {
			t.Fatalf("record %s: %v, %v; want an event item", r.Change.SequenceNumber, ok, err)
		}
		member, _ := strings.CutPrefix(r.Change.Keys["pk"].String(), "m#")
		if err := s.AppendStored(context.Background(), member, e.Version-1, []licensing.StoredEvent{e}); err != nil {
			t.Fatalf("seed %s v%d: %v", member, e.Version, err)
		}
	}
}

// streamStep is a stream sample, the samples whose events the store holds
// when it arrives (itself included), and what must follow.
type streamStep struct {
	file  string
	seed  []string
	check func(t *testing.T, ev events.DynamoDBEvent, failures []string, s *memstore.Store)
}

// TestStreamSampleEventsThroughTheLambdaPath feeds each stream sample to the
// stream handler through lambda.NewHandler (what lambda.Start wraps it in),
// on the embedded store seeded with the events the records announce, and
// checks the partial batch response and the snapshot it leaves. Each record
// must also pass the template's filter: sam local invoke applies none.
func TestStreamSampleEventsThroughTheLambdaPath(t *testing.T) {
	ctx := context.Background()
	samples := streamSamples(t)
	var patterns []map[string]any
	for _, e := range load(t).streamEvents() {
		if e.function == streamFunction {
			if p, err := filterPatterns(e.props); err == nil {
				patterns = append(patterns, p...)
			}
		}
	}
	if len(patterns) == 0 {
		t.Fatalf("the template gives %s no filter", streamFunction)
	}

	steps := []streamStep{
		{"stream-batch.json", []string{"stream-batch.json"}, func(t *testing.T, ev events.DynamoDBEvent, failures []string, s *memstore.Store) {
			if len(failures) != 0 {
				t.Errorf("batchItemFailures = %v, want none", failures)
			}
			if n := len(ev.Records); n < 4 {
				t.Fatalf("%d records; the sample must cross a snapshot (SnapshotEvery 4)", n)
			}
			member, _ := strings.CutPrefix(ev.Records[0].Change.Keys["pk"].String(), "m#")
			str, err := s.Load(ctx, member, licensing.LoadOptions{SnapshotSchema: licensing.StateSchema, Consistent: true})
			if err != nil {
				t.Fatal(err)
			}
			head := int64(len(ev.Records))
			if str.Snapshot == nil || str.Snapshot.Version != head || str.Snapshot.Schema != licensing.StateSchema {
				t.Errorf("snapshot = %+v, want one of v%d at state schema %d", str.Snapshot, head, licensing.StateSchema)
			}
		}},
		{"stream-heartbeats.json", nil, func(t *testing.T, ev events.DynamoDBEvent, failures []string, s *memstore.Store) {
			if len(failures) != 0 {
				t.Errorf("batchItemFailures = %v, want none", failures)
			}
			member, _ := strings.CutPrefix(ev.Records[0].Change.Keys["pk"].String(), "v#")
			r, err := s.Resume(ctx, member, "family", "tt-first-light")
			// A start, three heartbeats 30 s apart (the third a checkpoint: the
			// first two change only the slot, and Lambda never gets them), a
			// stop 10 s later: 100 s played.
			if err != nil || r == nil || r.PositionMs != 100_000 || r.WatchedMs != 100_000 || r.Device != "living-room-tv" {
				t.Errorf("resume point = %+v, %v; want 100 s watched, at 100 s, on living-room-tv", r, err)
			}
		}},
		{"stream-poison.json", []string{"stream-batch.json", "stream-poison.json"}, func(t *testing.T, ev events.DynamoDBEvent, failures []string, _ *memstore.Store) {
			if len(ev.Records) != 1 {
				t.Fatalf("%d records, want the one poison record", len(ev.Records))
			}
			if want := []string{ev.Records[0].Change.SequenceNumber}; !slices.Equal(failures, want) {
				t.Errorf("batchItemFailures = %v, want exactly %v", failures, want)
			}
		}},
	}
	files := make([]string, len(steps))
	for i, s := range steps {
		files[i] = s.file
	}
	checkCovered(t, samples, files)

	for _, st := range steps {
		payload, ok := samples[st.file]
		if !ok {
			continue
		}
		t.Run(st.file, func(t *testing.T) {
			var raw struct {
				Records []any `json:"Records"`
			}
			if err := json.Unmarshal(payload, &raw); err != nil {
				t.Fatal(err)
			}
			for i, r := range raw.Records {
				if !slices.ContainsFunc(patterns, func(p map[string]any) bool { return matches(p, r) }) {
					t.Errorf("record %d does not pass the template's filter: Lambda would never deliver it", i)
				}
			}
			var ev events.DynamoDBEvent
			if err := json.Unmarshal(payload, &ev); err != nil {
				t.Fatal(err)
			}
			store := memstore.New()
			for _, f := range st.seed {
				seed(t, store, samples[f])
			}
			p := setup.NewProcessor(setup.Stores{Events: store, Progress: store, History: store}, 4, nil)
			out, err := lambda.NewHandler(p.Handle).Invoke(ctx, payload)
			if err != nil {
				t.Fatalf("Invoke = %v", err)
			}
			var resp struct {
				Failures []struct {
					ItemIdentifier string `json:"itemIdentifier"`
				} `json:"batchItemFailures"`
			}
			if err := json.Unmarshal(out, &resp); err != nil {
				t.Fatalf("response %s: %v", out, err)
			}
			var failures []string
			for _, f := range resp.Failures {
				failures = append(failures, f.ItemIdentifier)
			}
			st.check(t, ev, failures, store)
		})
	}
}
