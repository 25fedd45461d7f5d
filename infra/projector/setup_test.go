package projector_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/ops/eventsource"
	"github.com/dlicense/dlicense/infra/setup"
	"github.com/dlicense/dlicense/infra/tokens"
)

// TestLocalRunKeepsSnapshots wires the stream function as dlicense-local
// does, on both stores, and checks the API's writes get snapshots.
func TestLocalRunKeepsSnapshots(t *testing.T) {
	key, err := tokens.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	for _, store := range []string{"memory", "dynamo"} {
		t.Run(store, func(t *testing.T) {
			ctx := context.Background()
			cfg := setup.Config{SigningKeys: key.Encode(), Issuer: "i", PlanClaim: "plan", QuietMetrics: true}
			if store == "dynamo" {
				_, cfg.Dynamo = localTable(t)
			}
			parts, err := local.Build(ctx, store, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var poller *eventsource.Poller
			if parts.Memory != nil {
				local.FeedFromMemory(parts.Memory, lambda.NewHandler(parts.Processor().Handle), slog.New(&bufferHandler{}))
			} else if poller, err = parts.StreamPoller(ctx); err != nil {
				t.Fatal(err)
			}
			s := parts.Stores.Events
			seq := 0
			history(t, s, "m-local", 9, &seq) // through a licensing.Service over the same store
			if poller != nil {
				catchUpSlowly(t, poller)
			}
			// v8 in-process; v9 (the head) when the poller catches up later.
			if v := snapshotVersion(t, s, "m-local"); v < 8 {
				t.Errorf("snapshot v%d, want at least v8", v)
			}
		})
	}
}
