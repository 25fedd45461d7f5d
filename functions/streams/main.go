// Command streams is the stream function Lambda: it reads the licensing
// table's change stream, keeps member snapshots up, counts licences and
// keeps the viewing read models up (infra/projector), and redrives the
// batches it gave up on when its dead-letter queue hands them back
// (infra/changestream), wired by setup.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/dlicense/dlicense/infra/changestream"
	"github.com/dlicense/dlicense/infra/setup"
)

func main() {
	slog.SetDefault(lambdacontext.NewLogger())
	cfg, err := setup.FromEnv()
	if err != nil {
		exit("configuration", err)
	}
	ctx := context.Background()
	p, err := setup.StreamFunction(ctx, cfg)
	if err != nil {
		exit("start", err)
	}
	h, err := changestream.Redriving(ctx, cfg.Dynamo, lambda.NewHandler(p.Handle))
	if err != nil {
		exit("start", err)
	}
	lambda.Start(h)
}

func exit(what string, err error) {
	slog.Error(what, "error", err)
	os.Exit(1)
}
