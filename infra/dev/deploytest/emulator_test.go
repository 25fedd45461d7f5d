package deploytest

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/invoke"
	"github.com/dlicense/dlicense/infra/projector"
	"github.com/dlicense/dlicense/infra/tokens"
)

// TestSampleEventsUnderTheEmulator invokes every sample event the way
// `make invoke` (and `sam local invoke`) does: each function's bootstrap
// built as `sam build` builds it, running in the AWS Lambda Runtime
// Interface Emulator with the environment the template gives it, on
// DynamoDB Local. The API's samples get the answers the in-process test
// expects, in a device's order (the job routes 503: no state machine runs
// here); each stream sample, its log seeded as the API would have written
// it, is handled without a failure but the poison record's.
func TestSampleEventsUnderTheEmulator(t *testing.T) {
	endpoint := dynamotest.Require(t)
	db, table := dynamotest.Table(t)
	ctx := context.Background()
	root := filepath.Join("..", "..", "..")
	dir := t.TempDir()
	if err := invoke.Build(ctx, root, dir, "ApiFunction", "StreamsFunction"); err != nil {
		t.Fatal(err)
	}
	key, err := tokens.GenerateKey("test")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := tokens.NewSigner("dlicense", []tokens.Key{key})
	if err != nil {
		t.Fatal(err)
	}
	start := func(function, table string) *invoke.Emulator {
		env, err := invoke.TemplateEnv(filepath.Join(root, "template.yaml"), function, invoke.Local{Table: table, StackName: "dlicense-test", Region: "eu-west-1", AccountID: "000000000000"})
		if err != nil {
			t.Fatal(err)
		}
		env = invoke.ForLocal(env, endpoint, key.Encode(), "eu-west-1")
		e, err := invoke.Start(filepath.Join(dir, "aws-lambda-rie"), filepath.Join(dir, function, "bootstrap"), invoke.Environ(env))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			e.Stop()
			if t.Failed() {
				t.Logf("%s's logs:\n%s", function, e.Logs())
			}
		})
		return e
	}
	within := func(e *invoke.Emulator) func(context.Context, []byte) ([]byte, error) {
		return func(ctx context.Context, payload []byte) ([]byte, error) {
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			return e.Invoke(ctx, payload)
		}
	}
	api := start("ApiFunction", table)
	playSamples(t, within(api), signer.JWKS(), map[string]int{"admin-start-job.json": 503, "admin-job.json": 503})

	// The stream samples, each on the log its records announce, in a
	// table of their own.
	_, streamTable := dynamotest.Table(t)
	streams := within(start("StreamsFunction", streamTable))
	log := dynamo.OneTable(db, streamTable).Log
	samples := streamSamples(t)
	// In name order: the poison sample, whose undecodable event joins the
	// member's log, comes last, as in the in-process test.
	for _, name := range slices.Sorted(maps.Keys(samples)) {
		sample := samples[name]
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
				continue // a screen's write, or the poison record
			}
			member, _ := strings.CutPrefix(r.Change.Keys["pk"].String(), "m#")
			if err := log.AppendStored(ctx, member, e.Version-1, []licensing.StoredEvent{e}); err != nil && !errors.Is(err, licensing.ErrConflict) {
				t.Fatalf("%s: seed %s v%d: %v", name, member, e.Version, err)
			}
		}
		out, err := streams(ctx, sample)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var resp events.DynamoDBEventResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("%s: answer %s: %v", name, out, err)
		}
		var failed []string
		for _, f := range resp.BatchItemFailures {
			failed = append(failed, f.ItemIdentifier)
		}
		if poison := strings.Contains(name, "poison"); poison != (len(failed) > 0) {
			t.Errorf("%s: batchItemFailures %v, want %s", name, failed, map[bool]string{true: "the poison record's", false: "none"}[poison])
		}
		t.Logf("%s: %d records, failures %v", name, len(ev.Records), slices.Clip(failed))
	}
}
