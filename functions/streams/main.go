// Command streams is the stream function Lambda: it reads the licensing
// table's change stream and keeps member snapshots up.
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
	p := &streams.Processor{Store: dynamo.New(db, cfg.Table, every), SnapshotEvery: every}
	lambda.Start(p.Handle)
}
