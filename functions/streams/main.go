// Command streams is the stream function Lambda: it reads the licensing
// table's change stream, keeps member snapshots up, counts licences and
// keeps resume points up.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/streams"
)

func main() {
	slog.SetDefault(lambdacontext.NewLogger())
	cfg, err := dynamo.ConfigFromEnv()
	if err != nil {
		slog.Error("configuration", "error", err)
		os.Exit(1)
	}
	db, err := dynamo.NewClient(context.Background(), cfg)
	if err != nil {
		slog.Error("start", "error", err)
		os.Exit(1)
	}
	every := cfg.SnapshotEvery
	if every == 0 {
		every = dynamo.DefaultSnapshotEvery
	}
	store := dynamo.New(db, cfg.Table, every)
	p := &streams.Processor{Store: store, Counters: store, Progress: store, SnapshotEvery: every}
	lambda.Start(p.Handle)
}
