// Command streams is the stream function Lambda: it reads the licensing
// table's change stream, keeps member snapshots up, counts licences and
// keeps the viewing read models up (infra/projector), wired by setup.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/dlicense/dlicense/infra/setup"
)

func main() {
	slog.SetDefault(lambdacontext.NewLogger())
	cfg, err := setup.FromEnv()
	if err != nil {
		slog.Error("configuration", "error", err)
		os.Exit(1)
	}
	p, err := setup.StreamFunction(context.Background(), cfg)
	if err != nil {
		slog.Error("start", "error", err)
		os.Exit(1)
	}
	lambda.Start(p.Handle)
}
