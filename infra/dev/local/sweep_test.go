package local_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/ops/eventsource"
	"github.com/dlicense/dlicense/infra/setup"
	"github.com/dlicense/dlicense/infra/storetest"
	"github.com/dlicense/dlicense/infra/tokens"
)

// TestLocalRunClosesSilentViews: wired as dlicense-local wires it, on both
// stores, the sweep (each shard through the job function's handler) closes
// a view whose heartbeats stopped minutes ago, not one still playing, and
// the stream function closes its history entry as EXPIRED with its last
// position.
func TestLocalRunClosesSilentViews(t *testing.T) {
	key, err := tokens.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	for _, store := range []string{"memory", "dynamo"} {
		t.Run(store, func(t *testing.T) {
			ctx := context.Background()
			cfg := setup.Config{SigningKeys: key.Encode(), Issuer: "i", PlanClaim: "plan", QuietMetrics: true}
			if store == "dynamo" {
				_, table := dynamotest.Table(t)
				endpoint, _ := dynamotest.EndpointFromEnv()
				cfg.Dynamo = dynamo.Config{Table: table, Endpoint: endpoint, AttemptTimeout: sharedStoreDeadline}
			}
			app, err := local.Build(ctx, store, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var poller *eventsource.Poller
			if app.Memory != nil {
				local.FeedFromMemory(app.Memory, lambda.NewHandler(app.Processor().Handle), slog.New(slog.NewTextHandler(io.Discard, nil)))
			} else if poller, err = app.StreamPoller(ctx); err != nil {
				t.Fatal(err)
			}
			clock := storetest.NewClock(time.Now().Add(-10 * time.Minute).Truncate(time.Millisecond))
			svc := viewing.NewService(app.Stores.Views, app.Policy(), clock, &storetest.IDs{})
			silent, err := svc.Start(ctx, viewing.Start{Member: "m-gone", Plan: "basic", Device: "tv", Title: "tt-first-light"}, "")
			if err != nil {
				t.Fatal(err)
			}
			playing, err := svc.Start(ctx, viewing.Start{Member: "m-here", Plan: "basic", Device: "tv", Title: "tt-first-light"}, "")
			if err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Minute)
			if _, err := svc.Beat(ctx, viewing.Beat{Member: "m-gone", Plan: "basic", Device: "tv", View: silent.View.ID, PositionMs: 60_000, State: viewing.Playing, Seq: 1}); err != nil {
				t.Fatal(err)
			}
			clock.Advance(9 * time.Minute)
			if _, err := svc.Beat(ctx, viewing.Beat{Member: "m-here", Plan: "basic", Device: "tv", View: playing.View.ID, PositionMs: 600_000, State: viewing.Playing, Seq: 1}); err != nil {
				t.Fatal(err)
			}
			if n, err := app.SweepSilentViews(ctx); err != nil || n != 1 {
				t.Fatalf("SweepSilentViews = %d, %v; want the silent view closed", n, err)
			}
			if n, err := app.SweepSilentViews(ctx); err != nil || n != 0 {
				t.Errorf("SweepSilentViews again = %d, %v; want nothing", n, err)
			}
			if poller != nil {
				if err := poller.CatchUp(ctx); err != nil {
					t.Fatal(err)
				}
			}
			es, _, err := app.Stores.History.History(ctx, "m-gone", "", 10)
			if err != nil || len(es) != 1 || es[0].Ended != viewing.Expired || es[0].PositionMs != 60_000 || es[0].WatchedMs != 60_000 {
				t.Errorf("history of the silent view = %+v, %v; want EXPIRED at 60000, 60 s watched", es, err)
			}
			if es, _, err := app.Stores.History.History(ctx, "m-here", "", 10); err != nil || len(es) != 1 || es[0].Ended != "" {
				t.Errorf("history of the view playing = %+v, %v; want it open", es, err)
			}
		})
	}
}
